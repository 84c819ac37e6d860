package verify

import (
	"fmt"

	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/trace"
)

// comparePaths compares the kernel's packets with a trace. When the
// kernel chooses a path at random (statistic --mode random, multipath
// routes) the engine predicts every branch: the kernel took one of them,
// so the comparison is with the branch that matches exactly, and when
// none does, with the closest one (fewest differences), whose
// differences are returned.
func comparePaths(tr *trace.Trace, kernel []lab.Packet) (*trace.Trace, []string) {
	if len(tr.Branches) == 0 {
		return tr, Compare(tr, kernel)
	}
	var best *trace.Trace
	var bestDiffs []string
	for _, b := range tr.Branches {
		d := Compare(b, kernel)
		if len(d) == 0 {
			return b, nil
		}
		if best == nil || len(d) < len(bestDiffs) {
			best, bestDiffs = b, d
		}
	}
	out := []string{fmt.Sprintf("matches none of the %d paths a random choice decides between; closest: %s", len(tr.Branches), choices(best))}
	return best, append(out, bestDiffs...)
}

func choices(b *trace.Trace) string {
	if len(b.Choices) == 0 {
		return "the first"
	}
	s := ""
	for i, c := range b.Choices {
		if i > 0 {
			s += ", "
		}
		s += c
	}
	return s
}
