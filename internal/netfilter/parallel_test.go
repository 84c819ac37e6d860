package netfilter

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/model"
)

// TestParallelCompileSameErrors compiles a table big enough to be split
// between cores, with bad rules spread over its chains, on one core and
// on several: the errors must be the same, in the same order.
func TestParallelCompileSameErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n")
	for c := 0; c < 400; c++ {
		fmt.Fprintf(&b, ":C%d - [0:0]\n", c)
	}
	for c := 0; c < 400; c++ {
		fmt.Fprintf(&b, "-A INPUT -s 10.%d.0.0/16 -j C%d\n", c%250, c)
		for r := 0; r < 30; r++ {
			if (c*30+r)%997 == 0 {
				fmt.Fprintf(&b, "-A C%d -p tcp -m tcp --dport 99999 -j ACCEPT\n", c)
				continue
			}
			fmt.Fprintf(&b, "-A C%d -d 10.1.%d.%d/32 -p tcp -m tcp --dport %d -j ACCEPT\n", c, c%250, r, 1000+r)
		}
	}
	b.WriteString("COMMIT\n")
	msg := compileErrorsBothWays(t, parse(t, 4, b.String()))
	if n := strings.Count(msg, "\n"); n < 10 {
		t.Errorf("only %d errors: %v", n+1, msg)
	}
}

// compileErrorsBothWays compiles rs on one core and on several, requires
// both to fail with the same errors, and returns them.
func compileErrorsBothWays(t *testing.T, rs *model.Ruleset) string {
	t.Helper()
	prev := runtime.GOMAXPROCS(1)
	_, serial := Compile(rs)
	runtime.GOMAXPROCS(max(prev, 2))
	_, parallel := Compile(rs)
	runtime.GOMAXPROCS(prev)
	if serial == nil || parallel == nil {
		t.Fatalf("expected errors: serial %v, parallel %v", serial, parallel)
	}
	if serial.Error() != parallel.Error() {
		t.Errorf("errors differ\nserial:   %v\nparallel: %v", serial, parallel)
	}
	return serial.Error()
}

// TestParallelCompileSameGraphErrors does the same for the errors found
// on the chain graph, which is walked while the rules compile: a target
// used in a chain reachable from a hook it is not allowed in, and a
// jump loop (made in the model: the parser refuses loops).
func TestParallelCompileSameGraphErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	for c := 0; c < 400; c++ {
		fmt.Fprintf(&b, ":C%d - [0:0]\n", c)
	}
	for c := 0; c < 400; c++ {
		fmt.Fprintf(&b, "-A PREROUTING -d 10.%d.0.0/16 -j C%d\n", c%250, c)
		for r := 0; r < 30; r++ {
			fmt.Fprintf(&b, "-A C%d -d 10.1.%d.%d/32 -p tcp -m tcp --dport %d -j DNAT --to-destination 10.2.0.1\n", c, c%250, r, 1000+r)
		}
	}
	b.WriteString("-A C7 -j MASQUERADE\n-A C300 -j MASQUERADE\nCOMMIT\n")
	rs := parse(t, 4, b.String())
	if msg := compileErrorsBothWays(t, rs); !strings.Contains(msg, "C300") || !strings.Contains(msg, "PREROUTING") {
		t.Errorf("unexpected errors: %v", msg)
	}
	rs = parse(t, 4, b.String())
	nat := rs.Table("nat")
	c9, c200 := nat.Chain("C9"), nat.Chain("C200")
	c9.Rules = append(c9.Rules, &model.Rule{Chain: "C9", Pos: len(c9.Rules) + 1, Target: "C200"})
	c200.Rules = append(c200.Rules, &model.Rule{Chain: "C200", Pos: len(c200.Rules) + 1, Target: "C9"})
	if msg := compileErrorsBothWays(t, rs); !strings.Contains(msg, "closes a loop") {
		t.Errorf("unexpected errors: %v", msg)
	}
}
