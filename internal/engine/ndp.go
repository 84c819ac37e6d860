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
// when the solicitation and the advertisement both get through; what the
// rules on the way could not decide makes the trace uncertain. So does a
// REJECT that stops it when the ICMPv6 error it sends might reach the
// wire: that error needs neighbour discovery of its own, back to the
// message's sender, which is followed one level (when the same rules stop
// it, the error is never sent) but no deeper.
//
// Whatever the advertisement's fate, a target that accepted the
// solicitation has learned the solicitor's address from it (ndisc_recv_ns
// makes a STALE entry from its source link-layer option), and answers
// that address later without asking: solicited says so.
func (r *run) ndpStop(ns *nodeState, dev string, src netip.Addr, ep ipEndpoint, nh netip.Addr) (why string, solicited bool) {
	w := ndpWalk{e: r.e}
	why, unsure, solicited := w.stop(ipEndpoint{ns, dev}, src, ep, nh, 1)
	if unsure {
		w.uncertain = append(w.uncertain, why+"; the ICMPv6 error the REJECT sends back may reach the wire, and pktflow does not follow it")
	}
	for _, u := range w.uncertain {
		r.uncertain(ns, "neighbor discovery for "+nh.String()+": "+u)
	}
	return why, solicited
}

// ndpWalk follows neighbour discovery messages through the firewalls on
// their way, keeping what the rules they meet could not decide.
type ndpWalk struct {
	e         *Engine
	uncertain []string
}

// run walks one table for a neighbour discovery message.
func (w *ndpWalk) run(nf *netfilter.Compiled, t string, h netfilter.Hook, ctx *netfilter.Ctx) netfilter.Result {
	res := nf.Run(t, h, ctx)
	w.uncertain = append(w.uncertain, res.Uncertain...)
	return res
}

func (w *ndpWalk) stop(from ipEndpoint, src netip.Addr, ep ipEndpoint, nh netip.Addr, depth int) (why string, unsure, solicited bool) {
	crossings := w.e.bridgesBetween(from, ep)
	for _, c := range crossings {
		if c.unknown != "" && depth == 1 {
			// As for bridged packets (brNetfilter): assumed 0, and said.
			w.uncertain = append(w.uncertain, fmt.Sprintf("%s is not in the snapshot on %s: pktflow assumes 0, so what %s bridges skips its firewall", c.unknown, c.ns.n.Name, c.br))
		}
	}
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
		if why, unsure := w.bridged(crossings, &leg.pkt, leg.what, leg.pkt.ICMPType == icmpv6NeighAdvert); why != "" {
			return why, unsure, solicited
		}
		for _, hk := range ndpHooks {
			node := leg.to
			if hk.out {
				node = leg.from
			}
			res, table := w.verdict(node.ns, &leg.pkt, hk.h, hk.tables, node.dev, hk.out)
			if res.Verdict != netfilter.Drop && res.Verdict != netfilter.Reject {
				continue
			}
			why = ndpStopped(node.ns, res, leg.what, &leg.pkt, "", "", table, hk.h)
			if res.Verdict != netfilter.Reject {
				return why, false, solicited
			}
			// The REJECT answers the message's sender, whose address the
			// rejecting node must resolve first (unless the sender's own
			// solicitation taught it).
			if hk.out || depth == 0 || solicited && node.ns == ep.ns {
				return why, true, solicited
			}
			back, _, _ := w.stop(node, node.ns.ndpSource(node.dev, netip.Addr{}), leg.from, leg.pkt.Src, depth-1)
			if back == "" {
				return why, true, solicited
			}
			return why + "; the ICMPv6 error the REJECT sends back is lost the same way, since " + node.ns.n.Name + " cannot resolve " + leg.pkt.Src.String() + " either", false, solicited
		}
	}
	return "", false, solicited
}

// ndpStopped says that node's rules stopped a neighbour discovery message
// (how is what the message went through there, and note what made the
// rules see it, if anything) and why that happens to neighbour discovery
// in particular.
func ndpStopped(node *nodeState, res netfilter.Result, what string, p *packet.Packet, how, note, table string, h netfilter.Hook) string {
	verb := "drops"
	if res.Verdict == netfilter.Reject {
		verb = "rejects"
	}
	return fmt.Sprintf("%s %s the %s %s > %s%s in %s %s (%s%s; neighbor discovery is not a connection: conntrack leaves it untracked, so no RELATED,ESTABLISHED rule lets it through)",
		node.n.Name, verb, what, p.Src, p.Dst, how, table, h, note, decided(res))
}

// ndpLearn records that node learned addr's link-layer address on dev
// during this trace (from a solicitation it accepted, or the
// advertisement answering its own).
func (r *run) ndpLearn(node *nodeState, dev string, addr netip.Addr) {
	if k := (neighKey{node.n.Name, dev, addr}); !slices.Contains(r.ndpLearned, k) {
		r.ndpLearned = append(r.ndpLearned, k)
	}
}

// ndpKnown reports whether node learned addr on dev earlier in the trace.
func (r *run) ndpKnown(node *nodeState, dev string, addr netip.Addr) bool {
	return slices.Contains(r.ndpLearned, neighKey{node.n.Name, dev, addr})
}

// crossing is a bridge a frame crosses from one port to another.
type crossing struct {
	ns        *nodeState
	br        string
	in, out   string
	ip6tables bool   // net.bridge.bridge-nf-call-ip6tables is 1
	unknown   string // set when the snapshot does not say (the key)
}

// bridgesBetween lists the bridges a frame from one endpoint crosses, port
// to port, on its way to another, in order: with br_netfilter, those are
// where ip6tables sees neighbour discovery bridged. A frame a bridge
// delivers to its own IP stack, or sends from it, crosses nothing there.
func (e *Engine) bridgesBetween(from, to ipEndpoint) []crossing {
	seen := map[ipEndpoint]bool{from: true}
	var path, found []crossing
	var wire func(ns *nodeState, dev string) bool
	enter := func(ns *nodeState, dev string) bool {
		if seen[ipEndpoint{ns, dev}] {
			return false
		}
		seen[ipEndpoint{ns, dev}] = true
		if (ipEndpoint{ns, dev}) == to {
			found = slices.Clone(path)
			return true
		}
		br := ns.bridgeOf(dev)
		if br == "" {
			return false
		}
		if (ipEndpoint{ns, br}) == to {
			found = slices.Clone(path)
			return true
		}
		for _, q := range ns.ports[br] {
			if q == dev || seen[ipEndpoint{ns, q}] {
				continue
			}
			seen[ipEndpoint{ns, q}] = true
			path = append(path, ns.crossing(br, dev, q))
			if wire(ns, q) {
				return true
			}
			path = path[:len(path)-1]
		}
		return false
	}
	wire = func(ns *nodeState, dev string) bool {
		for _, p := range e.peers(ns, dev) {
			if pn := e.nodes[p.Node]; pn != nil && enter(pn, p.Iface) {
				return true
			}
		}
		return false
	}
	if from.ns.isBridge(from.dev) {
		for _, p := range from.ns.ports[from.dev] {
			seen[ipEndpoint{from.ns, p}] = true
			if wire(from.ns, p) {
				break
			}
		}
	} else {
		wire(from.ns, from.dev)
	}
	return found
}

// crossing describes a frame bridged by br from port in to port out.
func (ns *nodeState) crossing(br, in, out string) crossing {
	c := crossing{ns: ns, br: br, in: in, out: out}
	const key = "net.bridge.bridge-nf-call-ip6tables"
	if v, ok := ns.sysctl(key); ok {
		c.ip6tables = v.Value == "1"
	} else if ns.nf6 != nil && ns.nf6.HasTable("filter") {
		c.unknown = key
	}
	return c
}

// bridged walks a neighbour discovery message through the ip6tables of
// every bridge on its way that hands bridged IPv6 to it (PREROUTING,
// FORWARD, POSTROUTING, with -i/-o the bridge and physdev the ports), in
// order, or in reverse for the answer. unsure is set when a REJECT stops
// it (its error is not followed).
func (w *ndpWalk) bridged(path []crossing, p *packet.Packet, what string, back bool) (why string, unsure bool) {
	for i := range path {
		c := path[i]
		if back {
			c = path[len(path)-1-i]
			c.in, c.out = c.out, c.in
		}
		if !c.ip6tables || c.ns.nf6 == nil {
			continue
		}
		ctx := &netfilter.Ctx{Pkt: p, State: netfilter.CTUntracked, AddrType: c.ns.addrTypeFn,
			InIface: c.br, OutIface: c.br, PhysIn: c.in, PhysOut: c.out, Bridged: true}
		for _, hk := range [...]struct {
			h      netfilter.Hook
			tables []string
		}{{netfilter.PreRouting, []string{"raw", "mangle"}}, {netfilter.Forward, []string{"mangle", "filter", "security"}}, {netfilter.PostRouting, []string{"mangle"}}} {
			for _, t := range hk.tables {
				if !c.ns.nf6.HasTable(t) {
					continue
				}
				res := w.run(c.ns.nf6, t, hk.h, ctx)
				if res.Verdict != netfilter.Drop && res.Verdict != netfilter.Reject {
					continue
				}
				return ndpStopped(c.ns, res, what, p, " it bridges from "+c.in+" to "+c.out+",", "net.bridge.bridge-nf-call-ip6tables = 1; ", t, hk.h), res.Verdict == netfilter.Reject
			}
		}
	}
	return "", false
}

// verdict walks a neighbour discovery message through the tables of one
// hook on a node, quietly, and returns the first verdict that stops it
// with its table.
func (w *ndpWalk) verdict(ns *nodeState, p *packet.Packet, h netfilter.Hook, tables []string, dev string, out bool) (netfilter.Result, string) {
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
		res := w.run(nf, t, h, ctx)
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
