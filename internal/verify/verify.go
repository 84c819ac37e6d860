// Package verify checks pktflow against the Linux kernel: it sends a
// probe for real through a lab (the snapshot built as network
// namespaces), captures every interface with tcpdump, traces the same
// probe with the engine, and compares the two interface by interface and
// header by header.
package verify

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// Result is one probe's comparison.
type Result struct {
	Probe engine.Probe
	Trace *trace.Trace
	// Kernel holds the packets the kernel put on the wire, as compared.
	Kernel []lab.Packet
	// Agreed is true when every interface saw exactly what pktflow
	// predicted. An uncertain trace never counts as agreement.
	Agreed bool
	// Diffs lists the differences, first difference first.
	Diffs []string
	// SendErr is what the probe's sender got from the kernel, if it
	// failed (no route, refused...): informative, not a failure.
	SendErr error
	// Path is the path of the trace the kernel's packets are compared
	// with: the trace itself, or when a random choice decides the path
	// (Trace.Branches), the branch the kernel took (or, if it matches
	// none, the closest one).
	Path *trace.Trace
	// Outcome is what the sending program saw, in words: "answered" (an
	// echo reply, a completed handshake, a UDP reply), "refused", an
	// ICMP error's name, "no reply", or why nothing was sent. Assess
	// compares it with the trace's verdict.
	Outcome string
}

// Settle is how long captures keep running after the probe returns, so
// that late answers are seen.
var Settle = 300 * time.Millisecond

// Check sends p through the lab, captures, traces p with the engine and
// compares. ICMP echo identifiers are chosen by the sender, so the
// engine is given the identifier the kernel actually used.
func Check(ctx context.Context, l *lab.Lab, e *engine.Engine, p engine.Probe) (*Result, error) {
	res := &Result{Probe: p}
	Reset(ctx, l)
	pkts, err := l.Capture(ctx, l.AllInterfaces(), func() error {
		res.Outcome, res.SendErr = send(ctx, l, p)
		return nil
	}, Settle)
	if err != nil {
		return nil, err
	}
	pkts = relevant(pkts, p)
	if p.Proto == packet.ICMP {
		for _, k := range pkts {
			if k.Node == p.From && ((k.Pkt.Proto == packet.ICMP && k.Pkt.ICMPType == packet.ICMPEchoRequest) ||
				(k.Pkt.Proto == packet.ICMPv6 && k.Pkt.ICMPType == packet.ICMPv6EchoRequest)) {
				p.ICMPID, p.ICMPSeq = k.Pkt.ICMPID, k.Pkt.ICMPSeq
				break
			}
		}
	}
	res.Probe = p
	res.Trace = e.Trace(p)
	res.Kernel = pkts
	res.Path, res.Diffs = comparePaths(res.Trace, pkts)
	res.Agreed = len(res.Diffs) == 0 && len(res.Trace.Uncertain) == 0
	return res, nil
}

// Reset puts the lab's dynamic state back to what the snapshot describes
// before a probe: it forgets the connections and the learned neighbours
// earlier probes left behind (permanent entries from the snapshot stay),
// since the engine knows only the snapshot. Without it a probe's result
// could depend on the ones before it: a clashing NAT port, an
// ESTABLISHED state, br_netfilter bridging a DNATed frame directly
// once the neighbour is cached, or a host sending straight to where an
// earlier ICMP redirect told it to. Failures are ignored: a node without
// the conntrack tool simply keeps its table.
func Reset(ctx context.Context, l *lab.Lab) {
	for _, n := range l.Snapshot().Nodes {
		l.Exec(ctx, n.Name, "ip", "neigh", "flush", "all")
		l.Exec(ctx, n.Name, "ip", "-6", "neigh", "flush", "all")
		l.Exec(ctx, n.Name, "conntrack", "-F")
		// Route exceptions learned from ICMP redirects and PMTU (the
		// route cache's flush also bumps their generation).
		l.Exec(ctx, n.Name, "ip", "route", "flush", "cache")
		l.Exec(ctx, n.Name, "ip", "-6", "route", "flush", "cache")
	}
}

// send performs the probe as a program on the node would, and says what
// that program saw (see Result.Outcome).
func send(ctx context.Context, l *lab.Lab, p engine.Probe) (string, error) {
	if p.FromIface != "" {
		return OutcomeNotSent, errors.New("verify: probes injected on an interface are not sent for real yet")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	src := netip.AddrPortFrom(p.Src, p.SPort)
	dst := netip.AddrPortFrom(p.Dst, p.DPort)
	switch p.Proto {
	case packet.ICMP:
		answers, err := l.PingSize(ctx, p.From, p.Dst, p.TTL, p.Len, 1)
		return pingOutcome(answers, err), err
	case packet.TCP:
		err := l.TCPConnect(ctx, p.From, src, dst)
		return sockOutcome(err), err
	case packet.UDP:
		n := p.Len
		if n == 0 {
			n = engine.DefaultUDPLen
		}
		_, err := l.UDPSendTTL(ctx, p.From, src, dst, make([]byte, n), p.TTL)
		return sockOutcome(err), err
	}
	return OutcomeNotSent, fmt.Errorf("verify: protocol %d", p.Proto)
}

// relevant keeps the packets of the probe's own exchange: the first
// segment each way of a TCP handshake (SYN, SYN-ACK, resets; not the ACKs
// and FINs of the connection the lab then closes), and drops exact
// retransmissions on the same interface.
func relevant(pkts []lab.Packet, p engine.Probe) []lab.Packet {
	var out []lab.Packet
	seen := map[string]bool{}
	for _, k := range pkts {
		if !k.IP || k.Iface == "lo" {
			continue
		}
		q := &k.Pkt
		if q.Proto == packet.TCP && q.TCPFlags&(packet.SYN|packet.RST) == 0 {
			continue
		}
		key := k.Node + "|" + k.Iface + "|" + k.Dir + "|" + fingerprint(q)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, k)
	}
	return out
}

// fingerprint is the part of a header the comparison looks at.
func fingerprint(p *packet.Packet) string {
	s := fmt.Sprintf("%s>%s %s", p.Src, p.Dst, packet.ProtoName(p.Proto))
	switch p.Proto {
	case packet.TCP:
		s += fmt.Sprintf(" %d>%d [%s]", p.SPort, p.DPort, packet.FlagString(p.TCPFlags&(packet.SYN|packet.ACK|packet.RST|packet.FIN)))
	case packet.UDP:
		s += fmt.Sprintf(" %d>%d", p.SPort, p.DPort)
	case packet.ICMP, packet.ICMPv6:
		s += fmt.Sprintf(" type %d code %d", p.ICMPType, p.ICMPCode)
		if p.IsICMPError() {
			if in := p.Inner; in != nil {
				s += " quoting " + fingerprint(in)
			}
		} else {
			s += fmt.Sprintf(" id %d", p.ICMPID)
		}
	}
	s += fmt.Sprintf(" ttl %d", p.TTL)
	return s
}

// Compare lists where the kernel's captures and the trace's predicted
// captures differ: per interface and direction, the same packets in the
// same order. Loopback is not compared.
func Compare(tr *trace.Trace, kernel []lab.Packet) []string {
	type key struct{ node, iface, dir string }
	pred := map[key][]string{}
	got := map[key][]string{}
	var keys []key
	add := func(k key) {
		if _, ok := pred[k]; ok {
			return
		}
		if _, ok := got[k]; ok {
			return
		}
		keys = append(keys, k)
	}
	for _, c := range tr.Captures {
		if c.Iface == "lo" {
			continue
		}
		k := key{c.Node, c.Iface, c.Dir}
		add(k)
		pred[k] = append(pred[k], fingerprint(&c.Packet))
	}
	for _, p := range kernel {
		k := key{p.Node, p.Iface, p.Dir}
		add(k)
		got[k] = append(got[k], fingerprint(&p.Pkt))
	}
	var diffs []string
	for _, k := range keys {
		a, b := pred[k], got[k]
		if slices.Equal(a, b) {
			continue
		}
		where := fmt.Sprintf("%s %s %s", k.node, k.iface, k.dir)
		n := max(len(a), len(b))
		for i := 0; i < n; i++ {
			switch {
			case i >= len(a):
				diffs = append(diffs, fmt.Sprintf("%s: kernel sent %s; pktflow predicted nothing more", where, b[i]))
			case i >= len(b):
				diffs = append(diffs, fmt.Sprintf("%s: pktflow predicted %s; kernel sent nothing more", where, a[i]))
			case a[i] != b[i]:
				diffs = append(diffs, fmt.Sprintf("%s: pktflow predicted %s; kernel sent %s", where, a[i], b[i]))
			}
		}
	}
	return diffs
}

// Summary is a one-line description of a result.
func (r *Result) Summary() string {
	state := "agreed"
	switch {
	case len(r.Diffs) > 0:
		state = "DISAGREED: " + r.Diffs[0]
	case len(r.Trace.Uncertain) > 0:
		state = "uncertain: " + strings.Join(r.Trace.Uncertain, "; ")
	}
	return fmt.Sprintf("%s [%s] %s", r.Probe.String(), r.Trace.Verdict, state)
}
