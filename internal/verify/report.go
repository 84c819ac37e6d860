package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// ProbeReport is one probe's line of a Report. Its JSON form is what
// `pktflow verify --format json` prints for each probe.
type ProbeReport struct {
	// Probe is the probe in ParseProbe's syntax, ready to be given back
	// to `pktflow verify`.
	Probe string `json:"probe"`
	// Description is the probe in words, as `pktflow trace` prints it.
	Description string `json:"description"`
	// Verdict and Reason are pktflow's (see `pktflow trace`).
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	// Result is agreed, disagreed or uncertain (see Assessment).
	Result string `json:"result"`
	// Diffs lists the differences, first difference first.
	Diffs []string `json:"diffs"`
	// Uncertain is what pktflow could not model on this path.
	Uncertain []string `json:"uncertain"`
	// Outcome is what the sending program saw (Result.Outcome).
	Outcome string `json:"outcome"`
	// Predicted and Kernel are the compared packets, one per line:
	// "NODE IFACE DIR header".
	Predicted []string `json:"predicted"`
	Kernel    []string `json:"kernel"`
	// Error is set when the probe could not be checked at all (a capture
	// failed); Result is then "error".
	Error string `json:"error,omitempty"`
}

// Report is the outcome of checking a list of probes in one lab.
type Report struct {
	Snapshot  string        `json:"snapshot,omitempty"`
	Probes    []ProbeReport `json:"probes"`
	Agreed    int           `json:"agreed"`
	Disagreed int           `json:"disagreed"`
	Uncertain int           `json:"uncertain"`
	Errors    int           `json:"errors"`
	Seconds   float64       `json:"seconds"`
	// Warnings are what the lab could not build exactly.
	Warnings []string `json:"warnings"`
}

// OK reports whether every probe agreed or was uncertain: no certain
// disagreement and no probe that could not be checked.
func (r *Report) OK() bool { return r.Disagreed == 0 && r.Errors == 0 }

// ErrorSpacing is the least time Run leaves between the end of a probe
// that drew an ICMP error and the start of one for which pktflow predicts
// one. The kernel limits the errors a router sends for packets it cannot
// route (ip_error: a burst of five per source address, then one a second,
// not tunable per namespace), and every ICMP error sent to an address
// empties that address's allowance (icmpv4_xrlim_allow shares the same
// inet_peer tokens): a routing error less than a second after any other
// error to the same host is silently not sent. Probes spaced like this
// never meet that limit, so what is compared does not depend on how fast
// the probes follow each other.
var ErrorSpacing = 1100 * time.Millisecond

// Run checks each probe in turn in lab l against engine e and tallies the
// results. progress, when not nil, is called after each probe.
func Run(ctx context.Context, l *lab.Lab, e *engine.Engine, probes []engine.Probe, progress func(ProbeReport)) *Report {
	t0 := time.Now()
	rep := &Report{Probes: []ProbeReport{}, Warnings: append([]string{}, l.Warnings()...)}
	var lastErr time.Time
	earlier := map[string]bool{}
	redirects := redirectPacer{}
	for _, p := range probes {
		if ctx.Err() != nil {
			break
		}
		tr := e.Trace(p)
		predicted := predictsICMPError(tr)
		wait := redirects.wait(predictedRedirects(tr))
		if predicted {
			wait = max(wait, ErrorSpacing-time.Since(lastErr))
		}
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		pr := ProbeReport{Probe: ProbeString(p), Description: p.String(), Diffs: []string{}, Uncertain: []string{},
			Predicted: []string{}, Kernel: []string{}}
		res, err := Check(ctx, l, e, p)
		if err == nil {
			dropEarlier(res, earlier)
		}
		if predicted || (err == nil && sawICMPError(res)) {
			lastErr = time.Now()
		}
		if err == nil {
			redirects.saw(res.Kernel)
		}
		if err != nil {
			pr.Result, pr.Error = "error", err.Error()
			rep.Errors++
		} else {
			fillReport(&pr, res)
			switch pr.Result {
			case Agreed:
				rep.Agreed++
			case Disagreed:
				rep.Disagreed++
			default:
				rep.Uncertain++
			}
		}
		rep.Probes = append(rep.Probes, pr)
		if progress != nil {
			progress(pr)
		}
	}
	rep.Seconds = time.Since(t0).Seconds()
	return rep
}

// dropEarlier removes from a result the kernel's packets that belong to
// an earlier probe's exchange (a SYN-ACK the server retransmits because
// the earlier handshake never completed, say), recognised by their
// flow: every probe has its own source port, so no two probes share one.
// It then records the result's own flows as earlier ones.
func dropEarlier(res *Result, earlier map[string]bool) {
	var keep []lab.Packet
	for _, k := range res.Kernel {
		if !earlier[flowKey(&k.Pkt)] {
			keep = append(keep, k)
		}
	}
	if len(keep) != len(res.Kernel) {
		res.Kernel = keep
		res.Path, res.Diffs = comparePaths(res.Trace, keep)
		res.Agreed = len(res.Diffs) == 0 && len(res.Trace.Uncertain) == 0
	}
	for _, k := range res.Kernel {
		earlier[flowKey(&k.Pkt)] = true
	}
}

// flowKey names the flow a packet belongs to, whichever way it goes:
// addresses, protocol and ports (the echo id for ICMP queries, the quoted
// flow for ICMP errors).
func flowKey(p *packet.Packet) string {
	a, b := p.Src.String(), p.Dst.String()
	pa, pb := p.SPort, p.DPort
	switch {
	case p.IsICMPError() && p.Inner != nil:
		return fmt.Sprintf("err %d/%d %s>%s %s", p.ICMPType, p.ICMPCode, a, b, flowKey(p.Inner))
	case p.Proto == packet.ICMP || p.Proto == packet.ICMPv6:
		pa, pb = p.ICMPID, p.ICMPID
	}
	if a > b || (a == b && pa > pb) {
		a, b, pa, pb = b, a, pb, pa
	}
	return fmt.Sprintf("%d %s:%d %s:%d", p.Proto, a, pa, b, pb)
}

// predictsICMPError reports whether pktflow expects a trace to draw an
// ICMP error from some node.
func predictsICMPError(tr *trace.Trace) bool {
	for _, b := range append([]*trace.Trace{tr}, tr.Branches...) {
		for _, c := range b.Captures {
			if c.Packet.IsICMPError() {
				return true
			}
		}
	}
	return false
}

// predictedRedirects lists the hosts pktflow expects an ICMP redirect to
// be sent to.
func predictedRedirects(tr *trace.Trace) []netip.Addr {
	var out []netip.Addr
	for _, b := range append([]*trace.Trace{tr}, tr.Branches...) {
		for _, c := range b.Captures {
			if p := &c.Packet; p.Proto == packet.ICMP && p.ICMPType == packet.ICMPRedirect && !slices.Contains(out, p.Dst) {
				out = append(out, p.Dst)
			}
		}
	}
	return out
}

// redirectPacer keeps probes that draw ICMP redirects clear of the
// kernel's redirect limit, which no namespace can turn off: a router
// sends a host its n-th redirect only 20ms<<n after the last ICMP message
// it sent that host, stops after 9 until the host has had 20 s of
// silence (ip_rt_send_redirect), and route cache flushes do not reset
// it. It remembers, per host, how many redirects the kernel sent it and
// when it last got any ICMP error, and says how long to wait before a
// probe that should draw a redirect to it.
type redirectPacer map[netip.Addr]*redirectState

type redirectState struct {
	n    int
	last time.Time
}

const (
	redirectLoad    = 20 * time.Millisecond
	redirectNumber  = 9
	redirectSilence = 20*time.Second + 480*time.Millisecond
)

func (rp redirectPacer) wait(hosts []netip.Addr) time.Duration {
	var wait time.Duration
	for _, h := range hosts {
		st := rp[h]
		if st == nil {
			continue
		}
		since := time.Since(st.last)
		if since > redirectSilence {
			st.n = 0
			continue
		}
		need := redirectLoad<<st.n + 50*time.Millisecond
		if st.n >= redirectNumber {
			need = redirectSilence + 500*time.Millisecond
			st.n = 0 // by the time the probe runs
		}
		wait = max(wait, need-since)
	}
	return wait
}

// saw records the ICMP errors the kernel sent during a probe.
func (rp redirectPacer) saw(kernel []lab.Packet) {
	counted := map[netip.Addr]bool{}
	for _, k := range kernel {
		p := &k.Pkt
		if p.Proto != packet.ICMP || !p.IsICMPError() {
			continue
		}
		st := rp[p.Dst]
		if st == nil {
			st = &redirectState{}
			rp[p.Dst] = st
		}
		st.last = time.Now()
		if p.ICMPType == packet.ICMPRedirect && !counted[p.Dst] {
			counted[p.Dst] = true
			st.n++
		}
	}
}

// sawICMPError reports whether the kernel sent an ICMP error during a
// probe.
func sawICMPError(res *Result) bool {
	for _, k := range res.Kernel {
		if k.Pkt.IsICMPError() {
			return true
		}
	}
	return false
}

func fillReport(pr *ProbeReport, res *Result) {
	a := Assess(res)
	pr.Description = res.Probe.String()
	pr.Verdict, pr.Reason = res.Trace.Verdict, res.Trace.Reason
	pr.Result = a.Class
	pr.Diffs = append(pr.Diffs, a.Diffs...)
	pr.Uncertain = append(pr.Uncertain, res.Trace.Uncertain...)
	pr.Outcome = res.Outcome
	path := res.Trace
	if res.Path != nil {
		path = res.Path
	}
	if path != res.Trace {
		pr.Reason += "; compared with the path where " + choices(path)
	}
	for _, c := range path.Captures {
		if c.Iface == "lo" {
			continue
		}
		pr.Predicted = append(pr.Predicted, fmt.Sprintf("%s %s %s %s", c.Node, c.Iface, c.Dir, fingerprint(&c.Packet)))
	}
	for _, k := range res.Kernel {
		pr.Kernel = append(pr.Kernel, fmt.Sprintf("%s %s %s %s", k.Node, k.Iface, k.Dir, fingerprint(&k.Pkt)))
	}
}

// Summary is the report's closing line.
func (r *Report) Summary() string {
	n := len(r.Probes)
	noun := "probes"
	if n == 1 {
		noun = "probe"
	}
	s := fmt.Sprintf("%d %s: %d agreed, %d disagreed, %d uncertain", n, noun, r.Agreed, r.Disagreed, r.Uncertain)
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d could not be checked", r.Errors)
	}
	if certain := r.Agreed + r.Disagreed; certain > 0 {
		s += fmt.Sprintf("; agreement %.1f%% of certain probes", 100*float64(r.Agreed)/float64(certain))
	}
	return s + fmt.Sprintf(" (%.1fs)", r.Seconds)
}

// WriteText prints the report as a table (probe, verdict, result, first
// difference), then the details of every probe that did not agree.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PROBE\tVERDICT\tRESULT\tFIRST DIFFERENCE")
	for _, p := range r.Probes {
		first := ""
		switch {
		case p.Error != "":
			first = p.Error
		case len(p.Diffs) > 0:
			first = p.Diffs[0]
		case p.Result == Uncertain && len(p.Uncertain) > 0:
			first = "(uncertain: " + p.Uncertain[0] + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Probe, p.Verdict, p.Result, first)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := range r.Probes {
		p := &r.Probes[i]
		if p.Result == Agreed || (p.Result == Uncertain && len(p.Diffs) == 0) {
			continue
		}
		fmt.Fprintf(w, "\n%s", p.Details())
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "lab warning: %s\n", wn)
	}
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Details says, over several lines, what pktflow and the kernel did for
// a probe: the verdict, the differences and both packet lists.
func (p *ProbeReport) Details() string {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s: %s (%s)\n", p.Result, p.Probe, p.Description)
	if p.Error != "" {
		fmt.Fprintf(&b, "  error: %s\n", p.Error)
		return b.String()
	}
	fmt.Fprintf(&b, "  pktflow: %s: %s\n  sender saw: %s\n", p.Verdict, p.Reason, p.Outcome)
	for _, u := range p.Uncertain {
		fmt.Fprintf(&b, "  uncertain: %s\n", u)
	}
	for _, d := range p.Diffs {
		fmt.Fprintf(&b, "  diff: %s\n", d)
	}
	fmt.Fprintln(&b, "  pktflow predicted:")
	for _, s := range p.Predicted {
		fmt.Fprintf(&b, "    %s\n", s)
	}
	fmt.Fprintln(&b, "  kernel sent:")
	for _, s := range p.Kernel {
		fmt.Fprintf(&b, "    %s\n", s)
	}
	return b.String()
}
