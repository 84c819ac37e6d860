package engine

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/pktflow/pktflow/internal/netfilter"
	"github.com/pktflow/pktflow/internal/packet"
)

// IPv6 neighbour discovery runs through ip6tables, unlike ARP, which
// iptables never sees: the solicitation leaves the resolving node by its
// OUTPUT and POSTROUTING hooks and enters the target by PREROUTING and
// INPUT, and the advertisement makes the way back. Conntrack leaves both
// untracked (nf_conntrack_icmpv6: neighbour discovery is never a
// connection), so they match no --ctstate RELATED,ESTABLISHED rule and
// skip the nat table. An INPUT chain with policy DROP that lets no ICMPv6
// in therefore makes a node unreachable over IPv6 — and unable to reach
// its neighbours — while IPv4 to it works: the classic way to break IPv6
// with a firewall.

// ICMPv6 neighbour discovery messages.
const (
	icmpv6NeighSolicit = 135
	icmpv6NeighAdvert  = 136
)

// ndpHooks are the hooks a neighbour discovery message crosses leaving a
// node and entering one, and the tables that see it there (raw and
// mangle everywhere, filter and security where they hook; never nat).
var ndpHooks = [...]struct {
	h      netfilter.Hook
	tables []string
	out    bool
}{
	{netfilter.Output, []string{"raw", "mangle", "filter", "security"}, true},
	{netfilter.PostRouting, []string{"mangle"}, true},
	{netfilter.PreRouting, []string{"raw", "mangle"}, false},
	{netfilter.Input, []string{"mangle", "filter", "security"}, false},
}

// ndpStop says why neighbour discovery from ns on dev (soliciting from
// src) for target nh, owned by ep, fails in the nodes' ip6tables, or ""
// when the solicitation and the advertisement both get through. unsure is
// set when a REJECT stops it and the ICMPv6 error the REJECT sends might
// reach the wire: that error needs neighbour discovery of its own, back
// to the message's sender, which is followed one level (when the same
// rules stop it, the error is never sent) but no deeper.
//
// Whatever the advertisement's fate, a target that accepted the
// solicitation has learned the solicitor's address from it (ndisc_recv_ns
// makes a STALE entry from its source link-layer option), and answers
// that address later without asking: solicited says so.
func (r *run) ndpStop(ns *nodeState, dev string, src netip.Addr, ep ipEndpoint, nh netip.Addr) (why string, unsure, solicited bool) {
	return ndpStopDepth(ipEndpoint{ns, dev}, src, ep, nh, 1)
}

func ndpStopDepth(from ipEndpoint, src netip.Addr, ep ipEndpoint, nh netip.Addr, depth int) (why string, unsure, solicited bool) {
	sol := packet.Packet{Src: src, Dst: solicitedNode(nh), Proto: packet.ICMPv6, ICMPType: icmpv6NeighSolicit, TTL: 255}
	adv := packet.Packet{Src: nh, Dst: src, Proto: packet.ICMPv6, ICMPType: icmpv6NeighAdvert, TTL: 255}
	for _, leg := range []struct {
		what     string
		pkt      packet.Packet
		from, to ipEndpoint
	}{
		{"neighbor solicitation", sol, from, ep},
		{"neighbor advertisement", adv, ep, from},
	} {
		if leg.pkt.ICMPType == icmpv6NeighAdvert {
			solicited = true
		}
		for _, hk := range ndpHooks {
			node := leg.to
			if hk.out {
				node = leg.from
			}
			res, table := node.ns.ndpVerdict(&leg.pkt, hk.h, hk.tables, node.dev, hk.out)
			if res.Verdict != netfilter.Drop && res.Verdict != netfilter.Reject {
				continue
			}
			verb := "drops"
			if res.Verdict == netfilter.Reject {
				verb = "rejects"
			}
			why = fmt.Sprintf("%s %s the %s %s > %s in %s %s (%s; neighbor discovery is not a connection: conntrack leaves it untracked, so no RELATED,ESTABLISHED rule lets it through)",
				node.ns.n.Name, verb, leg.what, leg.pkt.Src, leg.pkt.Dst, table, hk.h, decided(res))
			if res.Verdict != netfilter.Reject {
				return why, false, solicited
			}
			// The REJECT answers the message's sender, whose address the
			// rejecting node must resolve first (unless the sender's own
			// solicitation taught it).
			if hk.out || depth == 0 || solicited && node.ns == ep.ns {
				return why, true, solicited
			}
			back, _, _ := ndpStopDepth(node, node.ns.ndpSource(node.dev, netip.Addr{}), leg.from, leg.pkt.Src, depth-1)
			if back == "" {
				return why, true, solicited
			}
			return why + "; the ICMPv6 error the REJECT sends back is lost the same way, since " + node.ns.n.Name + " cannot resolve " + leg.pkt.Src.String() + " either", false, solicited
		}
	}
	return "", false, solicited
}

// ndpLearn records that node learned addr's link-layer address on dev
// during this trace (from a solicitation it accepted, or the
// advertisement answering its own).
func (r *run) ndpLearn(node *nodeState, dev string, addr netip.Addr) {
	k := neighKey{node.n.Name, dev, addr}
	if !r.ndpKnown(node, dev, addr) {
		r.ndpLearned = append(r.ndpLearned, k)
	}
}

// ndpKnown reports whether node learned addr on dev earlier in the trace.
func (r *run) ndpKnown(node *nodeState, dev string, addr netip.Addr) bool {
	return slices.Contains(r.ndpLearned, neighKey{node.n.Name, dev, addr})
}

// ndpVerdict walks a neighbour discovery message through the tables of
// one hook on this node, quietly, and returns the first verdict that
// stops it with its table.
func (ns *nodeState) ndpVerdict(p *packet.Packet, h netfilter.Hook, tables []string, dev string, out bool) (netfilter.Result, string) {
	nf := ns.nf6
	if nf == nil {
		return netfilter.Result{Verdict: netfilter.Accept}, ""
	}
	ctx := &netfilter.Ctx{Pkt: p, State: netfilter.CTUntracked, AddrType: ns.addrTypeFn}
	if out {
		ctx.OutIface = dev
	} else {
		ctx.InIface = dev
	}
	for _, t := range tables {
		if !nf.HasTable(t) {
			continue
		}
		res := nf.Run(t, h, ctx)
		if res.Verdict == netfilter.Drop || res.Verdict == netfilter.Reject {
			return res, t
		}
	}
	return netfilter.Result{Verdict: netfilter.Accept}, ""
}

// ndpSource is the source address of a neighbour solicitation for a
// packet from src leaving by dev (ndisc_solicit): the packet's own source
// when it is an address of dev, otherwise dev's link-local address.
func (ns *nodeState) ndpSource(dev string, src netip.Addr) netip.Addr {
	var ll netip.Addr
	if i := ns.ifaces[dev]; i != nil {
		for _, a := range i.Addrs {
			switch ad := a.Prefix.Addr(); {
			case ad == src:
				return src
			case ad.Is6() && ad.IsLinkLocalUnicast() && !ll.IsValid():
				ll = ad
			}
		}
	}
	if !ll.IsValid() {
		ll = linkLocal(ns.mac(dev))
	}
	return ll
}

// linkLocal is the EUI-64 link-local address the kernel gives a device
// with this MAC (addr_gen_mode 0), or fe80::1 when the MAC is unknown.
func linkLocal(mac string) netip.Addr {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return netip.MustParseAddr("fe80::1")
	}
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	b[8], b[9], b[10], b[11] = hw[0]^0x02, hw[1], hw[2], 0xff
	b[12], b[13], b[14], b[15] = 0xfe, hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b)
}

// solicitedNode is the solicited-node multicast address of a (RFC 4291
// 2.7.1): ff02::1:ff00:0/104 and its last 24 bits.
func solicitedNode(a netip.Addr) netip.Addr {
	t := a.As16()
	var b [16]byte
	b[0], b[1], b[11], b[12] = 0xff, 0x02, 0x01, 0xff
	b[13], b[14], b[15] = t[13], t[14], t[15]
	return netip.AddrFrom16(b)
}
