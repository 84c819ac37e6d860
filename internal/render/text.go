// Package render turns a trace into what people and programs read: a
// hop-by-hop text explanation, JSON (a documented contract), and pcap.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/trace"
)

// Text writes the trace as a hop-by-hop explanation: for each leg, each
// node in turn with the events there, then the captures tcpdump would
// show and the verdict.
func Text(w io.Writer, t *trace.Trace) error {
	b := &strings.Builder{}
	if len(t.Notes) > 0 {
		b.WriteString("snapshot notes:\n")
		for _, n := range t.Notes {
			fmt.Fprintf(b, "  - %s\n", n)
		}
		b.WriteString("\n")
	}
	if len(t.Families) > 0 {
		for i, f := range t.Families {
			if i > 0 {
				b.WriteString("\n")
			}
			var fb strings.Builder
			if err := Text(&fb, f); err != nil {
				return err
			}
			b.WriteString(fb.String())
		}
		fmt.Fprintf(b, "\nboth address families: %s\n", t.Verdict)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(b, "pktflow trace: %s\n", t.Probe)
	if len(t.Branches) > 0 {
		fmt.Fprintf(b, "\n%d possible paths: the kernel chooses at random (or by a flow hash pktflow cannot know) between them.\n", len(t.Branches))
		for i, br := range t.Branches {
			fmt.Fprintf(b, "\n######## path %d of %d: probability %.1f%%, verdict %s\n", i+1, len(t.Branches), 100*br.Probability, br.Verdict)
			for _, c := range br.Choices {
				fmt.Fprintf(b, "  choice: %s\n", c)
			}
			body(b, br)
		}
		fmt.Fprintf(b, "\n######## all paths\n")
		if len(t.Uncertain) > 0 {
			b.WriteString("\n== uncertain ==\n")
			for _, u := range t.Uncertain {
				fmt.Fprintf(b, "  ! %s\n", u)
			}
		}
		fmt.Fprintf(b, "\nverdict: %s\n  %s\n", t.Verdict, t.Reason)
		_, err := io.WriteString(w, b.String())
		return err
	}
	body(b, t)
	_, err := io.WriteString(w, b.String())
	return err
}

// body writes one path: its events, captures, uncertainties and verdict.
func body(b *strings.Builder, t *trace.Trace) {
	var leg trace.Leg
	node := ""
	for _, ev := range t.Hops {
		if ev.Leg != leg {
			leg, node = ev.Leg, ""
			fmt.Fprintf(b, "\n== %s ==\n", legTitle(leg))
		}
		if ev.Node != node {
			node = ev.Node
			fmt.Fprintf(b, "%s\n", node)
		}
		fmt.Fprintf(b, "  %-10s %s%s\n", tag(ev), eventText(ev), originText(ev.Origin))
	}
	b.WriteString("\n== captures (tcpdump -nn on each interface) ==\n")
	for _, c := range t.Captures {
		fmt.Fprintf(b, "  %s\n", CaptureLine(c))
	}
	if len(t.Uncertain) > 0 {
		b.WriteString("\n== uncertain ==\n")
		for _, u := range t.Uncertain {
			fmt.Fprintf(b, "  ! %s\n", u)
		}
	}
	fmt.Fprintf(b, "\nverdict: %s\n  %s\n", t.Verdict, t.Reason)
	if len(t.Uncertain) > 0 {
		fmt.Fprintf(b, "  (uncertain: %d point(s) above could change this result)\n", len(t.Uncertain))
	}
}

// CaptureLine is "NODE IFACE DIR TCPDUMP-LINE", the form the README and
// the issue tracker use.
func CaptureLine(c trace.Capture) string {
	return fmt.Sprintf("%-7s %s %s %s %s", c.Leg, c.Node, c.Iface, c.Dir, c.Line)
}

func legTitle(leg trace.Leg) string {
	switch leg {
	case trace.LegRequest:
		return "request"
	case trace.LegReply:
		return "reply"
	case trace.LegError:
		return "error sent back to the sender"
	}
	return leg.String()
}

func tag(ev trace.Event) string {
	switch ev.Kind {
	case trace.EvRule, trace.EvPolicy:
		return strings.ToLower(ev.Hook.String())
	case trace.EvCapture:
		return "tcpdump"
	}
	return ev.Kind.String()
}

func eventText(ev trace.Event) string {
	switch ev.Kind {
	case trace.EvRule:
		if ev.Rule == 0 {
			return fmt.Sprintf("%s %s: %s", ev.Table, ev.Chain, ev.Message)
		}
		return fmt.Sprintf("%s %s rule %d: %s", ev.Table, ev.Chain, ev.Rule, ev.Message)
	case trace.EvPolicy:
		if strings.HasPrefix(ev.Message, "end of chain") {
			return fmt.Sprintf("%s %s: no rule decided, policy %s", ev.Table, ev.Chain, ev.Target)
		}
		return fmt.Sprintf("%s %s: %s", ev.Table, ev.Chain, ev.Message)
	}
	return ev.Message
}

func originText(o *model.Origin) string {
	if o == nil {
		return ""
	}
	switch {
	case o.Synthesized && !strings.HasPrefix(o.File, "synthesized") && o.File != "" && o.Line > 0:
		// Derived the way the kernel derives it (a local route from an
		// address): point at the fact it came from.
		return fmt.Sprintf("  [derived from %s:%d]", o.File, o.Line)
	case o.File != "" && o.Line > 0:
		return fmt.Sprintf("  [%s:%d]", o.File, o.Line)
	case o.File != "":
		return fmt.Sprintf("  [%s]", o.File)
	case o.Synthesized:
		return "  [derived]"
	}
	return ""
}

// JSON writes the trace as indented JSON (see README.md for the contract).
func JSON(w io.Writer, t *trace.Trace) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}
