// Package tracepath predicts what `tracepath` and `traceroute -n` print for
// a destination: it traces probes with rising TTLs through the engine and
// reads, hop by hop, the ICMP error (or the answer) that comes back to the
// sender, with the addresses Linux puts in it after every NAT on the way
// back.
package tracepath

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// Hop is what one TTL's probe brought back.
type Hop struct {
	TTL int
	// Addr is the source of the answer as the sender receives it;
	// invalid when nothing came back.
	Addr netip.Addr
	// Name is the node that sent it, standing in for reverse DNS.
	Name string
	// Reached: the destination itself answered (port unreachable, or a
	// reply from a listener).
	Reached bool
	// PMTU is set when the answer was fragmentation-needed.
	PMTU int
	// Error names an ICMP error other than time exceeded and port
	// unreachable (!H, !N, !X ...), as traceroute marks them.
	Error string
	// Back is the number of hops the answer took back, as tracepath
	// estimates it from the answer's TTL.
	Back int
	// Reason explains the hop.
	Reason string
	Trace  *trace.Trace
}

// Result is a whole path.
type Result struct {
	Dst      netip.Addr
	DstName  string
	FirstMTU int
	PMTU     int
	Hops     []Hop
	Reached  bool
}

// Options tune the probing.
type Options struct {
	MaxHops int
	// BasePort is the first destination port (tracepath 44444,
	// traceroute 33434); each probe uses the next one.
	BasePort uint16
	// PMTU discovery: probes start at the output device's MTU with DF
	// set (tracepath does; traceroute sends 60-byte probes).
	Discover bool
	// Len is the probe size when not discovering (traceroute: 60 bytes
	// of IP datagram).
	Len int
}

// Run probes with TTL 1, 2, ... until the destination answers.
func Run(e *engine.Engine, p engine.Probe, o Options) *Result {
	if o.MaxHops == 0 {
		o.MaxHops = 30
	}
	res := &Result{Dst: p.Dst, DstName: p.DstName}
	snap := e.Snapshot()
	mtu := 1500
	if first := e.Trace(withTTL(p, 1, o.BasePort, 0)); len(first.Captures) > 0 {
		if n := snap.Node(p.From); n != nil {
			if i := n.Iface(first.Captures[0].Iface); i != nil && i.MTU > 0 {
				mtu = i.MTU
			}
		}
	}
	res.FirstMTU, res.PMTU = mtu, mtu
	port := o.BasePort
	for ttl := 1; ttl <= o.MaxHops; ttl++ {
		size := o.Len
		if o.Discover {
			size = res.PMTU - 28
		}
		tr := e.Trace(withTTL(p, ttl, port, size))
		port++
		h := readHop(snap, p, tr, ttl)
		if h.PMTU > 0 && h.PMTU < res.PMTU && o.Discover {
			res.Hops = append(res.Hops, h)
			res.PMTU = h.PMTU
			ttl-- // probe the same TTL again with the smaller size
			continue
		}
		res.Hops = append(res.Hops, h)
		if h.Reached || h.Error != "" {
			res.Reached = h.Reached
			break
		}
	}
	return res
}

func withTTL(p engine.Probe, ttl int, port uint16, size int) engine.Probe {
	p.Proto, p.TTL, p.DPort, p.Len = packet.UDP, ttl, port, size
	if p.SPort == 0 {
		p.SPort = engine.DefaultSPort
	}
	return p
}

// readHop finds what came back to the sender.
func readHop(snap *model.Snapshot, p engine.Probe, tr *trace.Trace, ttl int) Hop {
	h := Hop{TTL: ttl, Reason: tr.Reason, Trace: tr}
	var back *trace.Capture
	for i := range tr.Captures {
		c := &tr.Captures[i]
		if c.Node == p.From && c.Dir == "in" && c.Leg != trace.LegRequest {
			back = c
		}
	}
	if back == nil {
		return h
	}
	h.Addr = back.Packet.Src
	h.Name = ownerName(snap, h.Addr)
	h.Back = backHops(int(back.Packet.TTL))
	switch {
	case back.Leg == trace.LegReply:
		h.Reached = true
	case back.Packet.Proto == packet.ICMP && back.Packet.ICMPType == packet.ICMPTimeExceeded:
	case back.Packet.Proto == packet.ICMP && back.Packet.ICMPType == packet.ICMPDestUnreach:
		switch back.Packet.ICMPCode {
		case packet.CodePortUnreach:
			h.Reached = back.Packet.Src == p.Dst || tr.Verdict == trace.Refused
			if !h.Reached {
				h.Error = "!P"
			}
		case packet.CodeFragNeeded:
			h.PMTU = int(back.Packet.ICMPMTU)
		case packet.CodeNetUnreach:
			h.Error = "!N"
		case packet.CodeHostUnreach:
			h.Error = "!H"
		case packet.CodeProtoUnreach:
			h.Error = "!P"
		default:
			h.Error = "!X"
		}
	}
	return h
}

// backHops is tracepath's guess of the return path length from the
// answer's TTL: the distance below the nearest common initial TTL.
func backHops(ttl int) int {
	switch {
	case ttl <= 64:
		return 65 - ttl
	case ttl <= 128:
		return 129 - ttl
	}
	return 256 - ttl
}

// ownerName names the node that owns an address (tracepath would show
// the reverse-DNS name; the snapshot's node names stand in for it), or a
// name from topology.yaml's names.
func ownerName(snap *model.Snapshot, a netip.Addr) string {
	for name, addrs := range snap.Names {
		for _, x := range addrs {
			if x == a {
				return name
			}
		}
	}
	for _, n := range snap.Nodes {
		for _, i := range n.Interfaces {
			for _, ad := range i.Addrs {
				if ad.Prefix.Addr() == a {
					return n.Name
				}
			}
		}
	}
	return ""
}

// Tracepath writes the result as `tracepath [-n]` prints it. Round-trip
// times are not modelled and are left out.
func Tracepath(w io.Writer, r *Result, numeric bool) {
	var b strings.Builder
	// Column widths as tracepath prints them; the round-trip time that
	// tracepath puts at column 59 is not modelled, so what follows it
	// (reached, asymm, pmtu) starts there.
	fmt.Fprintf(&b, " 1?: %-32s pmtu %d\n", "[LOCALHOST]", r.FirstMTU)
	last := 0
	for i, h := range r.Hops {
		host := "no reply"
		if h.Addr.IsValid() {
			host = h.Addr.String()
			if !numeric && h.Name != "" {
				host = h.Name
			}
		}
		line := fmt.Sprintf("%2d:  %-53s", h.TTL, host)
		switch {
		case !h.Addr.IsValid():
			line = fmt.Sprintf("%2d:  no reply", h.TTL)
		case h.PMTU > 0:
			line += fmt.Sprintf(" pmtu %d", h.PMTU)
		case h.Reached:
			line += " reached"
		case h.Error != "":
			line += " " + h.Error
		default:
			if h.Back != h.TTL {
				line += fmt.Sprintf(" asymm %2d", h.Back)
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		// tracepath reports its first hop twice: the probe that found the
		// path MTU of the first hop and the one that measured it.
		if i == 0 && h.TTL == 1 && h.PMTU == 0 {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
		last = i
	}
	if len(r.Hops) > 0 {
		h := r.Hops[last]
		if h.Reached {
			fmt.Fprintf(&b, "     Resume: pmtu %d hops %d back %d\n", r.PMTU, h.TTL, h.Back)
		} else {
			fmt.Fprintf(&b, "     Too many hops: pmtu %d\n     Resume: pmtu %d\n", r.PMTU, r.PMTU)
		}
	}
	io.WriteString(w, b.String())
}

// Traceroute writes the result as `traceroute -n` prints it (one line per
// hop; times are not modelled).
func Traceroute(w io.Writer, r *Result, maxHops, packetLen int) {
	var b strings.Builder
	fmt.Fprintf(&b, "traceroute to %s (%s), %d hops max, %d byte packets\n", hostOf(r), r.Dst, maxHops, packetLen)
	for _, h := range r.Hops {
		if !h.Addr.IsValid() {
			fmt.Fprintf(&b, "%2d  * * *\n", h.TTL)
			continue
		}
		line := fmt.Sprintf("%2d  %s", h.TTL, h.Addr)
		if h.Error != "" {
			line += " " + h.Error
		}
		b.WriteString(line + "\n")
	}
	io.WriteString(w, b.String())
}

func hostOf(r *Result) string {
	if r.DstName != "" {
		return r.DstName
	}
	return r.Dst.String()
}
