package engine

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/pktflow/pktflow/internal/conntrack"
	"github.com/pktflow/pktflow/internal/netfilter"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/route"
	"github.com/pktflow/pktflow/internal/trace"
)

type manip int

const (
	manipSrc manip = iota
	manipDst
)

// manipOf is the kernel's HOOK2MANIP: source NAT happens on the way out
// (POSTROUTING) or in (INPUT); destination NAT as a packet enters
// (PREROUTING) or is sent (OUTPUT).
func manipOf(h netfilter.Hook) manip {
	if h == netfilter.PostRouting || h == netfilter.Input {
		return manipSrc
	}
	return manipDst
}

// natStage is the nat table's place in a hook (nf_nat_inet_fn): the nat
// chains are consulted only for a connection's first packet, which fixes
// its bindings; every packet, in either direction, is then rewritten from
// the binding.
func (r *run) natStage(c *pctx, h netfilter.Hook) bool {
	if !c.ns.nf(&c.pkt).HasTable("nat") || c.ent == nil || c.state == netfilter.CTUntracked {
		return true
	}
	m := manipOf(h)
	e := c.ent
	if c.state == netfilter.CTRelated && c.pkt.Proto == packet.ICMP && c.pkt.ICMPType == packet.ICMPRedirect && (e.SrcNAT || e.DstNAT || !e.SrcDone || !e.DstDone) {
		// nf_nat_icmp_reply_translation: a redirect about a translated
		// connection would teach hosts to bypass the translation, and
		// one about a connection whose NAT is not settled yet (a first
		// packet, before POSTROUTING) may be about to be translated.
		r.drop(c, c.iif, "NAT drops an ICMP redirect about a connection that is translated or whose translation is not settled yet", nil)
		return false
	}
	if c.state == netfilter.CTRelated && c.pkt.IsICMPError() {
		r.icmpReplyTranslation(c, h, m)
		return true
	}
	if c.state == netfilter.CTNew || c.state == netfilter.CTRelated {
		done := e.SrcDone
		if m == manipDst {
			done = e.DstDone
		}
		if !done {
			res := r.runTable(c, h, "nat")
			switch res.Verdict {
			case netfilter.Drop, netfilter.Reject:
				r.drop(c, c.iif, fmt.Sprintf("nat %s %s", h, decided(res)), deciderOrigin(res))
				return false
			}
			if res.NAT != nil && res.NAT.Kind != netfilter.NoNAT {
				if !r.setupBinding(c, h, m, res) {
					return false
				}
			} else {
				r.nullBinding(c, h, m)
			}
		}
	}
	r.natPacket(c, h, m)
	return true
}

// setupBinding decides a connection's translation from a NAT target, as
// nf_nat_setup_info does: the reply tuple is changed so that replies will
// be recognised and reversed.
func (r *run) setupBinding(c *pctx, h netfilter.Hook, m manip, res netfilter.Result) bool {
	e := c.ent
	n := res.NAT
	curr := e.Reply.Invert() // the connection as translated so far
	nt := curr
	why := ""
	switch n.Kind {
	case netfilter.Masquerade:
		// MASQUERADE takes the address the output device would choose
		// for the next hop (nf_nat_masquerade_ipv4 → inet_select_addr).
		nh := c.pkt.Dst
		if c.rt != nil && !c.pkt.Is6() {
			nh = c.rt.NextHop(c.pkt.Dst)
		}
		a := c.ns.fib.DeviceSrc(c.oif, nh, route.ScopeUniverse)
		if r.e.fault == FaultMasqueradeWrongAddr {
			a = c.ns.primaryAddr(c.iif)
		}
		if !a.IsValid() {
			r.drop(c, c.oif, fmt.Sprintf("MASQUERADE found no address on %s to use", c.oif), nil)
			return false
		}
		nt.Src = a
		why = r.cat("MASQUERADE: ", c.oif, "'s address toward next hop ", r.addr(nh))
	case netfilter.SNAT:
		nt.Src = n.AddrMin
		why = r.natText("SNAT --to-source ", n)
		if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
			r.uncertain(c.ns, fmt.Sprintf("SNAT range %s: the kernel picks the address by a hash of the connection; pktflow uses the first, %s", rangeText(n), n.AddrMin))
		}
	case netfilter.DNAT:
		if n.AddrMin.IsValid() {
			nt.Dst = n.AddrMin
		}
		why = r.natText("DNAT --to-destination ", n)
		if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
			r.uncertain(c.ns, fmt.Sprintf("DNAT range %s: the kernel picks the address by a hash of the source; pktflow uses the first, %s", rangeText(n), n.AddrMin))
		}
	case netfilter.Redirect:
		// REDIRECT sends to the primary address of the input device, or
		// to 127.0.0.1 for locally generated packets.
		if c.locallyGenerated {
			nt.Dst = netip.MustParseAddr("127.0.0.1")
			if c.pkt.Is6() {
				nt.Dst = netip.IPv6Loopback()
			}
		} else {
			a := c.ns.primaryAddr(c.iif)
			if !a.IsValid() {
				r.drop(c, c.iif, fmt.Sprintf("REDIRECT: %s has no address, so the kernel drops the packet", c.iif), nil)
				return false
			}
			nt.Dst = a
		}
		why = fmt.Sprintf("REDIRECT to %s", nt.Dst)
	}
	if c.pkt.HasPorts() && n.PortMin != 0 {
		p := &nt.SPort
		if m == manipDst {
			p = &nt.DPort
		}
		if *p < n.PortMin || *p > n.PortMax || r.table(c.ns).ReplyTaken(nt.Invert(), e) {
			old := *p
			*p = r.freePort(c, nt, m, n.PortMin, n.PortMax)
			if n.PortMin != n.PortMax {
				r.uncertain(c.ns, fmt.Sprintf("port %d is outside %d-%d or taken: the kernel picks a free port in the range; pktflow uses %d", old, n.PortMin, n.PortMax, *p))
			}
		}
	} else if m == manipSrc && r.table(c.ns).ReplyTaken(nt.Invert(), e) {
		old := nt.SPort
		nt.SPort = r.freePort(c, nt, m, 1024, 65535)
		r.uncertain(c.ns, fmt.Sprintf("source port %d is already used by another connection to the same place: the kernel picks another free port; pktflow uses %d", old, nt.SPort))
	}
	if (n.Random || n.RandomFully) && (c.pkt.HasPorts() || nt.Proto == packet.ICMP || nt.Proto == packet.ICMPv6) {
		// With --random or --random-fully the kernel never keeps the
		// original port or echo id, even when it is free
		// (NF_NAT_RANGE_PROTO_RANDOM_ALL): it draws one.
		port := nt.SPort
		if m == manipDst {
			port = nt.DPort
		}
		flag := "--random"
		if n.RandomFully {
			flag = "--random-fully"
		}
		r.uncertain(c.ns, fmt.Sprintf("%s with %s: the kernel picks the %s port at random; pktflow shows %d", natName(n.Kind), flag, map[manip]string{manipSrc: "source", manipDst: "destination"}[m], port))
	}
	if nt.Proto == packet.ICMP || nt.Proto == packet.ICMPv6 {
		nt.DPort = nt.SPort
	}
	r.bind(c, h, m, curr, nt, why, res)
	return true
}

func natName(k netfilter.NATKind) string {
	switch k {
	case netfilter.DNAT:
		return "DNAT"
	case netfilter.SNAT:
		return "SNAT"
	case netfilter.Masquerade:
		return "MASQUERADE"
	case netfilter.Redirect:
		return "REDIRECT"
	}
	return "NAT"
}

// nullBinding is what the kernel does when no nat rule matched: keep the
// tuple, unless its reply would clash with an existing connection, in
// which case the source port is changed (nf_nat_alloc_null_binding).
func (r *run) nullBinding(c *pctx, h netfilter.Hook, m manip) {
	e := c.ent
	curr := e.Reply.Invert()
	nt := curr
	why := ""
	if m == manipSrc && r.table(c.ns).ReplyTaken(nt.Invert(), e) && (c.pkt.HasPorts() || c.pkt.Proto == packet.ICMP) {
		old := nt.SPort
		nt.SPort = r.freePort(c, nt, m, 1024, 65535)
		if nt.Proto == packet.ICMP || nt.Proto == packet.ICMPv6 {
			nt.DPort = nt.SPort
		}
		why = fmt.Sprintf("no nat rule matched, but %d clashes with an existing connection, so the kernel picks another port", old)
		r.uncertain(c.ns, fmt.Sprintf("source port clash: the kernel picks a free port; pktflow uses %d", nt.SPort))
	}
	r.bind(c, h, m, curr, nt, why, netfilter.Result{})
}

func (r *run) bind(c *pctx, h netfilter.Hook, m manip, curr, nt conntrack.Tuple, why string, res netfilter.Result) {
	e := c.ent
	if m == manipSrc {
		e.SrcDone = true
	} else {
		e.DstDone = true
	}
	if nt == curr {
		return
	}
	e.Reply = nt.Invert()
	if m == manipSrc {
		e.SrcNAT = true
	} else {
		e.DstNAT = true
	}
	at := len(r.msg)
	r.msg = append(append(append(r.msg, why...), "; conntrack now expects replies as "...), r.tuple(e.Reply)...)
	r.emitMsg(trace.Event{Leg: c.leg, Node: c.ns.n.Name, Kind: trace.EvConntrack, Hook: hookOf(h), Origin: deciderOrigin(res)}, at)
}

func rangeText(n *netfilter.NAT) string { return string(appendRange(nil, n)) }

// natText is what a NAT target says it does: verb and range.
func (r *run) natText(verb string, n *netfilter.NAT) string {
	return r.sh.keep(appendRange(append(r.sh.scratch[:0], verb...), n))
}

// appendRange appends a NAT range as iptables-save prints it
// (ADDR[-ADDR][:PORT[-PORT]]).
func appendRange(b []byte, n *netfilter.NAT) []byte {
	if n.AddrMin.IsValid() {
		b = n.AddrMin.AppendTo(b)
		if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
			b = n.AddrMax.AppendTo(append(b, '-'))
		}
	}
	if n.PortMin != 0 {
		b = strconv.AppendUint(append(b, ':'), uint64(n.PortMin), 10)
		if n.PortMax != n.PortMin {
			b = strconv.AppendUint(append(b, '-'), uint64(n.PortMax), 10)
		}
	}
	return b
}

// freePort returns the first port in [lo,hi] that makes the tuple unique.
func (r *run) freePort(c *pctx, nt conntrack.Tuple, m manip, lo, hi uint16) uint16 {
	tab := r.table(c.ns)
	for p := uint32(lo); p <= uint32(hi); p++ {
		t := nt
		if m == manipSrc {
			t.SPort = uint16(p)
		} else {
			t.DPort = uint16(p)
		}
		if t.Proto == packet.ICMP || t.Proto == packet.ICMPv6 {
			t.SPort, t.DPort = uint16(p), uint16(p)
		}
		if !tab.ReplyTaken(t.Invert(), c.ent) {
			return uint16(p)
		}
	}
	return lo
}

// natPacket is nf_nat_packet: rewrite the packet from its connection's
// binding. For the original direction, the translation chosen for the
// first packet; for replies, its reverse.
func (r *run) natPacket(c *pctx, h netfilter.Hook, m manip) {
	e := c.ent
	other, ok := natApplies(c, m)
	if !ok {
		return
	}
	target := other.Invert()
	before := c.pkt
	applyManip(&c.pkt, target, m)
	if before == c.pkt {
		return
	}
	var why string
	switch {
	case !c.reply && m == manipSrc:
		why = "source NAT of connection "
	case !c.reply && m == manipDst:
		why = "destination NAT of connection "
	case c.reply && m == manipDst:
		why = "reply: conntrack reverses the source NAT of "
	default:
		why = "reply: conntrack reverses the destination NAT of "
	}
	at := len(r.msg)
	r.msg = append(append(append(r.msg, why...), r.tuple(e.Orig)...), ": "...)
	r.msg = appendHdr(r.msg, &before, m)
	r.msg = appendHdr(append(r.msg, " → "...), &c.pkt, m)
	r.emitMsg(trace.Event{Leg: c.leg, Node: c.ns.n.Name, Kind: trace.EvNAT, Hook: hookOf(h), Table: "nat",
		Before: r.header(&before), After: r.header(&c.pkt)}, at)
}

// appendHdr appends what hdrText returns.
func appendHdr(b []byte, p *packet.Packet, m manip) []byte {
	a, port := p.Src, p.SPort
	if m == manipDst {
		a, port = p.Dst, p.DPort
	}
	b = appendAddr(b, a)
	if p.HasPorts() {
		return strconv.AppendUint(append(b, ':'), uint64(port), 10)
	}
	if (p.Proto == packet.ICMP || p.Proto == packet.ICMPv6) && !p.IsICMPError() {
		b = strconv.AppendUint(append(b, " (id "...), uint64(p.ICMPID), 10)
		return append(b, ')')
	}
	return b
}

// natApplies is nf_nat_packet's status-bit test: whether a packet of the
// connection, in its direction, is rewritten at manipulation m. In the
// original direction SNAT applies at the source manipulation and DNAT at
// the destination one; in the reply direction they are undone the other
// way round. It returns the other direction's tuple, from which the
// rewrite is computed.
func natApplies(c *pctx, m manip) (conntrack.Tuple, bool) {
	e := c.ent
	src := m == manipSrc
	if c.reply {
		src = !src
	}
	if (src && !e.SrcNAT) || (!src && !e.DstNAT) {
		return conntrack.Tuple{}, false
	}
	if c.reply {
		return e.Orig, true
	}
	return e.Reply, true
}

func applyManip(p *packet.Packet, t conntrack.Tuple, m manip) {
	if m == manipSrc {
		p.Src = t.Src
		if p.HasPorts() {
			p.SPort = t.SPort
		}
	} else {
		p.Dst = t.Dst
		if p.HasPorts() {
			p.DPort = t.DPort
		}
	}
	if (p.Proto == packet.ICMP || p.Proto == packet.ICMPv6) && !p.IsICMPError() {
		p.ICMPID = t.SPort
	}
}

func (r *run) hdrText(p *packet.Packet, m manip) string {
	a, port := p.Src, p.SPort
	if m == manipDst {
		a, port = p.Dst, p.DPort
	}
	if p.HasPorts() {
		return r.addr(a) + ":" + strconv.Itoa(int(port))
	}
	if (p.Proto == packet.ICMP || p.Proto == packet.ICMPv6) && !p.IsICMPError() {
		return r.addr(a) + " (id " + strconv.Itoa(int(p.ICMPID)) + ")"
	}
	return r.addr(a)
}

// icmpReplyTranslation is nf_nat_icmp_reply_translation: an ICMP error
// RELATED to a translated connection gets both the datagram it quotes and
// its own outer header rewritten, so that it makes sense to the host that
// sent the quoted packet.
func (r *run) icmpReplyTranslation(c *pctx, h netfilter.Hook, m manip) {
	e := c.ent
	other, ok := natApplies(c, m)
	if !ok || c.pkt.Inner == nil {
		return
	}
	before := c.pkt
	inner := *c.pkt.Inner
	innerM := manipSrc
	if m == manipSrc {
		innerM = manipDst
	}
	applyManip(&inner, other, innerM) // the quoted datagram takes the opposite manipulation
	c.pkt.Inner = &inner
	t := other.Invert()
	if m == manipSrc {
		c.pkt.Src = t.Src
	} else {
		c.pkt.Dst = t.Dst
	}
	r.emit(trace.Event{Leg: c.leg, Node: c.ns.n.Name, Kind: trace.EvNAT, Hook: hookOf(h), Table: "nat",
		Message: fmt.Sprintf("ICMP error RELATED to %s: conntrack rewrites it and the header it quotes: %s → %s (quoted %s > %s → %s > %s)",
			e.Orig, r.hdrText(&before, m), r.hdrText(&c.pkt, m), before.Inner.Src, before.Inner.Dst, inner.Src, inner.Dst),
		Before: r.header(&before), After: r.header(&c.pkt)})
}
