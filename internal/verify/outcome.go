package verify

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// Outcomes a sender can see (Result.Outcome); an ICMP error answering a
// ping is named by packet.ICMPName, a socket error by its text.
const (
	OutcomeAnswered = "answered"
	OutcomeRefused  = "refused"
	OutcomeNoReply  = "no reply"
	OutcomeNotSent  = "not sent"
	// OutcomeRedirect: the only answer a ping got was an ICMP redirect,
	// which is advice rather than an answer (lab.Ping stops at it): what
	// the sender finally saw is unknown, and not compared.
	OutcomeRedirect = "ICMP redirect"
)

func pingOutcome(answers []packet.Packet, err error) string {
	if err != nil {
		return OutcomeNotSent
	}
	for _, a := range answers {
		if !a.IsICMPError() {
			return OutcomeAnswered
		}
	}
	if len(answers) > 0 {
		if answers[0].Proto == packet.ICMP && answers[0].ICMPType == packet.ICMPRedirect {
			return OutcomeRedirect
		}
		return packet.ICMPName(answers[0].ICMPType, answers[0].ICMPCode)
	}
	return OutcomeNoReply
}

func sockOutcome(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return OutcomeAnswered
	case errors.Is(err, syscall.ECONNREFUSED):
		return OutcomeRefused
	case errors.Is(err, lab.ErrNoReply):
		return OutcomeNoReply
	case errors.As(err, &errno):
		return errno.Error()
	}
	return OutcomeNotSent
}

// Classes of an Assessment.
const (
	Agreed    = "agreed"
	Disagreed = "disagreed"
	Uncertain = "uncertain"
)

// Assessment is the judgement on one probe that `pktflow verify` and the
// conformance suite report.
type Assessment struct {
	// Class is Agreed, Disagreed or Uncertain. A trace pktflow marks
	// uncertain is Uncertain whatever the captures say (it is never
	// counted as agreement); Disagreed means pktflow was certain and
	// wrong.
	Class string
	// Diffs are the differences: the captures' (Result.Diffs), then the
	// sender's outcome when it contradicts the verdict.
	Diffs []string
}

// Assess judges a result. Beyond Check's comparison of every interface it
// checks what the sending program saw: pktflow's verdict is "answered"
// exactly when the sender got its answer (an echo reply, a handshake, a
// UDP reply). That catches a reply the wire carried but the sender's own
// INPUT chain dropped, and the converse.
func Assess(r *Result) Assessment {
	a := Assessment{Diffs: append([]string(nil), r.Diffs...)}
	if r.Trace != nil && r.Outcome != "" && r.Outcome != OutcomeRedirect {
		path := r.Trace
		if r.Path != nil {
			path = r.Path // the branch the kernel took
		}
		predicted := path.Verdict == trace.Answered
		if got := r.Outcome == OutcomeAnswered; predicted != got {
			a.Diffs = append(a.Diffs, fmt.Sprintf("sender: pktflow's verdict is %s; the sending program saw %s", path.Verdict, r.Outcome))
		}
	}
	switch {
	case r.Trace != nil && len(r.Trace.Uncertain) > 0:
		a.Class = Uncertain
	case len(a.Diffs) > 0:
		a.Class = Disagreed
	default:
		a.Class = Agreed
	}
	return a
}
