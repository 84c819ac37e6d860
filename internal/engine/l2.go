package engine

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/netfilter"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/route"
	"github.com/pktflow/pktflow/internal/trace"
)

// Layer 2: wires (veth pairs, taps, segments) and Linux bridges. A frame
// leaves a device toward a MAC; it crosses the wire, and a bridge it
// enters either takes it up to its own IP stack (the frame is for the
// bridge) or forwards it out of the port behind which that MAC lives.

const broadcastMAC = "ff:ff:ff:ff:ff:ff"

// ipEndpoint is a device that hands frames to an IP stack: not a bridge
// port (a port's frames belong to its bridge).
type ipEndpoint struct {
	ns  *nodeState
	dev string
}

// peers returns the endpoints at the other end(s) of dev's wire.
func (e *Engine) peers(ns *nodeState, dev string) []model.Endpoint {
	return *lazy(&ns.dev(dev).peers, func() []model.Endpoint { return e.walkPeers(ns, dev) })
}

func (e *Engine) walkPeers(ns *nodeState, dev string) []model.Endpoint {
	l := e.wire[model.Endpoint{Node: ns.n.Name, Iface: dev}]
	if l == nil {
		return nil
	}
	var out []model.Endpoint
	for _, ep := range l.Ends {
		if ep.Node != ns.n.Name || ep.Iface != dev {
			out = append(out, ep)
		}
	}
	return out
}

// l2walk returns domain or domainFromWire from the cache, walking the
// wires the first time.
func (e *Engine) l2walk(ns *nodeState, dev string, fromWire bool) []ipEndpoint {
	if fromWire {
		return *lazy(&ns.dev(dev).domain[1], func() []ipEndpoint { return e.walkDomainFromWire(ns, dev) })
	}
	return *lazy(&ns.dev(dev).domain[0], func() []ipEndpoint { return e.walkDomain(ns, dev) })
}

// maxARPCache bounds a device's cached ARP answers: beyond it, answers are
// worked out each time (a program tracing to ever new addresses).
const maxARPCache = 4096

// arpOwners lists the endpoints of dev's layer-2 domain that own addr and
// would answer an ARP request or neighbour solicitation for it (before
// arp_filter and rp_filter, which depend on the request's sender). It
// depends only on the snapshot, so it is cached: on a segment shared by a
// thousand hosts each lookup would otherwise scan them all.
func (e *Engine) arpOwners(ns *nodeState, dev string, addr netip.Addr) []ipEndpoint {
	d := ns.dev(dev)
	if m := d.arp.Load(); m != nil {
		if out, ok := (*m)[addr]; ok {
			return out
		}
	}
	var out []ipEndpoint
	for _, ep := range e.domain(ns, dev) {
		if ep.ns.isLocal(addr) && ep.ns.answersARP(ep.dev, addr) {
			out = append(out, ep)
		}
	}
	// The map is never written once published: a new answer publishes
	// a copy (a device sees few distinct next hops).
	for {
		old := d.arp.Load()
		m := make(map[netip.Addr][]ipEndpoint, 1)
		if old != nil {
			if len(*old) >= maxARPCache {
				return out
			}
			maps.Copy(m, *old)
		}
		m[addr] = out
		if d.arp.CompareAndSwap(old, &m) {
			return out
		}
	}
}

// domain lists the IP endpoints reachable at layer 2 from a device,
// without crossing any IP stack. For a bridge device, the search starts
// from all its ports.
func (e *Engine) domain(ns *nodeState, dev string) []ipEndpoint { return e.l2walk(ns, dev, false) }

func (e *Engine) walkDomain(ns *nodeState, dev string) []ipEndpoint {
	w := newL2Walker(e, ns, dev)
	if ns.isBridge(dev) {
		for _, p := range ns.ports[dev] {
			w.seen[model.Endpoint{Node: ns.n.Name, Iface: p}] = true
			w.wire(ns, p)
		}
	} else {
		w.wire(ns, dev)
	}
	return w.out
}

// l2Walker visits the devices a frame can reach without crossing an IP
// stack: across wires, and through bridges to all their ports.
type l2Walker struct {
	e    *Engine
	seen map[model.Endpoint]bool
	out  []ipEndpoint
}

func newL2Walker(e *Engine, ns *nodeState, dev string) *l2Walker {
	return &l2Walker{e: e, seen: map[model.Endpoint]bool{{Node: ns.n.Name, Iface: dev}: true}}
}

// wire follows dev's wire to the devices at its other ends.
func (w *l2Walker) wire(ns *nodeState, dev string) {
	for _, ep := range w.e.peers(ns, dev) {
		if pn := w.e.nodes[ep.Node]; pn != nil {
			w.enter(pn, ep.Iface)
		}
	}
}

// enter is a frame arriving on (ns, dev) from its wire: a bridge port
// hands it to the bridge (an IP endpoint) and to its other ports; any
// other device is an IP endpoint itself.
func (w *l2Walker) enter(ns *nodeState, dev string) {
	k := model.Endpoint{Node: ns.n.Name, Iface: dev}
	if w.seen[k] {
		return
	}
	w.seen[k] = true
	br := ns.bridgeOf(dev)
	if br == "" {
		w.out = append(w.out, ipEndpoint{ns, dev})
		return
	}
	if bk := (model.Endpoint{Node: ns.n.Name, Iface: br}); !w.seen[bk] {
		w.seen[bk] = true
		w.out = append(w.out, ipEndpoint{ns, br})
	}
	for _, p := range ns.ports[br] {
		if pk := (model.Endpoint{Node: ns.n.Name, Iface: p}); !w.seen[pk] {
			w.seen[pk] = true
			w.wire(ns, p)
		}
	}
}

// leadsTo reports whether a frame sent out of (ns, dev) onto its wire can
// reach a device with the given MAC.
func (e *Engine) leadsTo(ns *nodeState, dev, mac string) bool {
	for _, ep := range e.domainFromWire(ns, dev) {
		if ep.ns.mac(ep.dev) == mac || ep.ns.portHasMAC(ep.dev, mac) {
			return true
		}
	}
	return false
}

// domainFromWire is like domain but starts on dev's wire even when dev is
// a bridge port.
func (e *Engine) domainFromWire(ns *nodeState, dev string) []ipEndpoint {
	return e.l2walk(ns, dev, true)
}

func (e *Engine) walkDomainFromWire(ns *nodeState, dev string) []ipEndpoint {
	if ns.isBridge(dev) {
		return e.domain(ns, dev)
	}
	w := newL2Walker(e, ns, dev)
	if br := ns.bridgeOf(dev); br != "" {
		// Don't come back in through our own bridge.
		w.seen[model.Endpoint{Node: ns.n.Name, Iface: br}] = true
		for _, p := range ns.ports[br] {
			w.seen[model.Endpoint{Node: ns.n.Name, Iface: p}] = true
		}
	}
	w.wire(ns, dev)
	return w.out
}

// portHasMAC reports whether a bridge's port carries the MAC: the bridge
// treats frames to any of its ports' own addresses as its own.
func (ns *nodeState) portHasMAC(bridge, mac string) bool {
	for _, p := range ns.ports[bridge] {
		if ns.mac(p) == mac {
			return true
		}
	}
	return false
}

// resolve finds the MAC for a next hop on dev: from the neighbor table if
// it has a usable entry, else by the ARP answer Linux would get — from
// any host on the segment that has the address as a local address (the
// default arp_ignore=0 answers for every local address).
func (r *run) resolve(c *pctx, dev string, nh netip.Addr) (mac string, ok bool, why string) {
	ns := c.ns
	ev := trace.Event{Leg: c.leg, Node: ns.n.Name, Iface: dev, Kind: trace.EvNeighbor}
	for i := range ns.n.Neighbors {
		nb := &ns.n.Neighbors[i]
		if nb.Addr != nh || nb.Dev != dev {
			continue
		}
		st := strings.ToUpper(nb.State)
		if nb.MAC == "" || st == "FAILED" || st == "INCOMPLETE" {
			r.note(c.leg, ns, dev, fmt.Sprintf("neighbor entry for %s on %s is %s; the kernel resolves it again", nh, dev, st))
			break
		}
		mac := strings.ToLower(nb.MAC)
		o := nb.Origin
		if !r.e.leadsTo(ns, dev, mac) {
			ev.Kind = trace.EvDrop
			ev.Message = fmt.Sprintf("neighbor table maps %s to %s, but no device reachable from %s has that MAC", nh, mac, dev)
			ev.Origin = &o
			r.emit(ev)
			r.uncertain(ns, ev.Message)
			return "", false, ev.Message
		}
		ev.Message = fmt.Sprintf("%s is at %s (neighbor table, %s)", nh, mac, st)
		ev.Origin = &o
		r.emit(ev)
		return mac, true, ""
	}
	// The ARP request's sender address: with the default arp_announce=0
	// Linux uses the packet's own source when it is a local address,
	// otherwise the device's address for the target's subnet.
	sip := c.pkt.Src
	if !ns.isLocal(sip) {
		sip = ns.fib.DeviceSrc(dev, nh, route.ScopeLink)
	}
	var found []ipEndpoint
	var refused []string
	learned := false // an IPv6 neighbour known from earlier in the trace
	for _, ep := range r.e.arpOwners(ns, dev, nh) {
		if why := ep.ns.arpRPFilter(ep.dev, sip, nh); why != "" {
			refused = append(refused, fmt.Sprintf("%s %s ignores it: %s", ep.ns.n.Name, ep.dev, why))
			continue
		}
		if nh.Is6() && !r.ndpKnown(ns, dev, nh) {
			src := ns.ndpSource(dev, c.pkt.Src)
			why, solicited := r.ndpStop(ns, dev, src, ep, nh)
			if solicited {
				r.ndpLearn(ep.ns, ep.dev, src)
			}
			if why != "" {
				refused = append(refused, why)
				continue
			}
			r.ndpLearn(ns, dev, nh)
		} else if nh.Is6() {
			learned = true
		}
		found = append(found, ep)
	}
	if len(found) == 0 {
		ev.Message = fmt.Sprintf("%s for %s on %s (who-has %s tell %s) gets no answer: no host on the segment has that address", resolver(nh), nh, dev, nh, sip)
		if len(refused) > 0 {
			ev.Message = fmt.Sprintf("%s for %s on %s (who-has %s tell %s) gets no answer: %s", resolver(nh), nh, dev, nh, sip, strings.Join(refused, "; "))
		}
		r.emit(ev)
		return "", false, ev.Message
	}
	f := found[0]
	mac = f.ns.mac(f.dev)
	if mac == "" {
		mac = "(unknown MAC)"
		r.uncertain(ns, fmt.Sprintf("%s %s has no MAC in the snapshot", f.ns.n.Name, f.dev))
	}
	if len(found) == 1 {
		m := len(r.msg)
		r.msg = append(appendAddr(append(append(r.msg, resolverShort(nh)...), ": "...), nh), " is "...)
		r.msg = append(append(append(append(append(append(r.msg, f.ns.n.Name...), ' '), f.dev...), " ("...), mac...), ')')
		if learned {
			r.msg = append(r.msg, ", known from neighbor discovery earlier in this trace"...)
		}
		r.emitMsg(ev, m)
		return mac, true, ""
	}
	ev.Message = resolverShort(nh) + ": " + r.addr(nh) + " is " + f.ns.n.Name + " " + f.dev + " (" + mac + ")"
	if len(found) > 1 {
		var names []string
		for _, x := range found {
			names = append(names, x.ns.n.Name+" "+x.dev)
		}
		msg := fmt.Sprintf("several hosts answer ARP for %s on %s (%s): the first answer wins and pktflow cannot know which comes first", nh, dev, strings.Join(names, ", "))
		r.uncertain(ns, msg)
		ev.Message += "; " + msg
	}
	r.emit(ev)
	return mac, true, ""
}

// resolverShort is resolver as an event's prefix: ARP or NDP.
func resolverShort(a netip.Addr) string {
	if a.Is6() {
		return "NDP"
	}
	return "ARP"
}

// resolver names the protocol that resolves a next hop.
func resolver(a netip.Addr) string {
	if a.Is6() {
		return "neighbor discovery"
	}
	return "ARP"
}

// arpRPFilter is the reverse-path check arp_process makes on a request's
// sender address before answering it: with rp_filter on, a request whose
// sender is not reachable back through the receiving device (strict) or
// not at all (loose) is ignored. It returns why, or "" when it answers.
func (ns *nodeState) arpRPFilter(dev string, sip, tip netip.Addr) string {
	mode, why := ns.rpFilterMode(dev)
	if mode == 0 || !sip.IsValid() || sip.Is6() {
		return ""
	}
	rev := ns.fib.Lookup(route.Query{Dst: sip, Src: tip})
	if rev.Err != "" || rev.Type != model.RouteUnicast {
		return fmt.Sprintf("reverse-path filter (%s): no route back to the sender %s", why, sip)
	}
	if mode == 1 && !usesDev(&rev, dev) {
		return fmt.Sprintf("reverse-path filter (%s, strict): the route back to the sender %s leaves by %s, not %s", why, sip, rev.Dev, dev)
	}
	return ""
}

// answersARP: with the default arp_ignore=0 a host answers for any of its
// local addresses on any device; arp_ignore=1 only for addresses
// configured on the receiving device.
func (ns *nodeState) answersARP(dev string, a netip.Addr) bool {
	v, ok := ns.sysctl("net.ipv4.conf." + dev + ".arp_ignore")
	if !ok {
		v, ok = ns.sysctl("net.ipv4.conf.all.arp_ignore")
	}
	if ok && v.Value == "1" {
		if i := ns.ifaces[dev]; i != nil {
			for _, ad := range i.Addrs {
				if ad.Prefix.Addr() == a {
					return true
				}
			}
		}
		return false
	}
	return true
}

// primaryAddr is the first IPv4 address of a device.
func (ns *nodeState) primaryAddr(dev string) netip.Addr {
	if i := ns.ifaces[dev]; i != nil {
		for _, a := range i.Addrs {
			if a.Prefix.Addr().Is4() && !a.Secondary {
				return a.Prefix.Addr()
			}
		}
	}
	return netip.Addr{}
}

// sendFrame puts the packet on dev toward mac; the "out" capture on dev
// has already been taken.
func (r *run) sendFrame(c *pctx, dev, mac string) {
	ns := c.ns
	if ns.isBridge(dev) {
		port := r.portToward(ns, dev, mac, "")
		if port == "" {
			r.drop(c, dev, fmt.Sprintf("bridge %s has no port leading to %s", dev, mac), nil)
			return
		}
		r.capture(c, port, "out")
		dev = port
	}
	r.crossWire(c, dev, mac)
}

// portToward picks the bridge port behind which mac lives (the port the
// bridge's forwarding database would name).
func (r *run) portToward(ns *nodeState, br, mac, except string) string {
	for _, p := range ns.ports[br] {
		if p != except && r.e.leadsTo(ns, p, mac) {
			return p
		}
	}
	return ""
}

func (r *run) crossWire(c *pctx, dev, mac string) {
	ps := r.e.peers(c.ns, dev)
	if len(ps) == 0 {
		r.drop(c, dev, fmt.Sprintf("%s is not wired to anything in topology.yaml", dev), nil)
		return
	}
	if len(ps) == 1 {
		if pn := r.e.nodes[ps[0].Node]; pn != nil {
			// Crossing into another namespace scrubs the packet mark.
			r.recvFrame(pn, ps[0].Iface, c.pkt, mac, c.leg)
			return
		}
	} else if i := r.e.segment(c.ns, dev).takes(r.e, mac); i >= 0 {
		r.recvFrame(r.e.nodes[ps[i].Node], ps[i].Iface, c.pkt, mac, c.leg)
		return
	}
	r.drop(c, dev, fmt.Sprintf("no device on %s's segment has MAC %s", dev, mac), nil)
}

// segmentView indexes the far ends of a shared wire (a segment with many
// hosts) by MAC, so a frame finds its receiver without asking every host.
type segmentView struct {
	peers []model.Endpoint
	nodes []*nodeState // peers' nodes, nil when not in the snapshot
	// byMAC is the first peer whose own device has the MAC.
	byMAC map[string]int
	// ports are the peers that are bridge ports, in order: a frame for a
	// MAC behind their bridge enters there.
	ports []int
}

// segment returns the segment view of dev's wire, made on first use.
func (e *Engine) segment(ns *nodeState, dev string) *segmentView {
	return lazy(&ns.dev(dev).segment, func() segmentView { return e.newSegmentView(ns, dev) })
}

func (e *Engine) newSegmentView(ns *nodeState, dev string) segmentView {
	sv := segmentView{peers: e.peers(ns, dev), byMAC: map[string]int{}}
	for i, ep := range sv.peers {
		pn := e.nodes[ep.Node]
		sv.nodes = append(sv.nodes, pn)
		if pn == nil {
			continue
		}
		if m := pn.mac(ep.Iface); m != "" {
			if _, dup := sv.byMAC[m]; !dup {
				sv.byMAC[m] = i
			}
		}
		if pn.bridgeOf(ep.Iface) != "" {
			sv.ports = append(sv.ports, i)
		}
	}
	return sv
}

// takes returns the first peer (in wire order) that takes a frame for
// mac: the device with that MAC, or a bridge port from which the MAC can
// be reached; -1 if none.
func (sv *segmentView) takes(e *Engine, mac string) int {
	first, ok := sv.byMAC[mac]
	if !ok {
		first = len(sv.peers)
	}
	if mac == "" {
		// A device without a MAC matches a frame for no MAC.
		for i, pn := range sv.nodes {
			if pn != nil && pn.mac(sv.peers[i].Iface) == "" {
				first = i
				break
			}
		}
	}
	for _, i := range sv.ports {
		if i >= first {
			break
		}
		if e.leadsToFrom(sv.nodes[i], sv.peers[i].Iface, mac) {
			return i
		}
	}
	if first == len(sv.peers) {
		return -1
	}
	return first
}

// leadsToFrom: entering a bridge port at (ns, dev), can the frame reach mac?
func (e *Engine) leadsToFrom(ns *nodeState, dev, mac string) bool {
	br := ns.bridgeOf(dev)
	if ns.mac(br) == mac || ns.portHasMAC(br, mac) {
		return true
	}
	for _, p := range ns.ports[br] {
		if p != dev && e.leadsTo(ns, p, mac) {
			return true
		}
	}
	return false
}

// brNF reports whether bridged frames of the packet's family go through
// the firewall on this node (br_netfilter's bridge-nf-call-ip(6)tables),
// and the sysctl's name.
func (ns *nodeState) brNF(p *packet.Packet) (bool, string) {
	key := "net.bridge.bridge-nf-call-iptables"
	if p.Is6() {
		key = "net.bridge.bridge-nf-call-ip6tables"
	}
	v, ok := ns.sysctl(key)
	return ok && v.Value == "1", key
}

// bridgedDNAT follows a packet that came up from a bridge port with
// br_netfilter on and was DNATed in PREROUTING to an address behind the
// same bridge: the kernel bridges it (br_nf_pre_routing_finish_bridge) —
// no routing, no TTL decrement — and a bridge never sends a frame back out
// of the port it came in by unless that port has hairpin mode.
func (r *run) bridgedDNAT(c *pctx, br string) {
	ns := c.ns
	r.note(c.leg, ns, br, fmt.Sprintf("br_netfilter: DNAT to %s, an address behind %s itself: the kernel bridges the frame instead of routing it", c.pkt.Dst, br))
	// br_nf_pre_routing_finish_bridge: with a neighbour entry already
	// used in this exchange (connected, its header cached) the frame goes
	// straight to the bridge's forwarding; otherwise it goes out through
	// the neighbour code on the bridge device, where tcpdump sees it.
	// Observed on the kernel: an entry the snapshot already has in a
	// connected state (permanent, reachable) is fast once this exchange
	// has used it; one learned during the exchange is not yet.
	connected := ""
	for _, nb := range ns.n.Neighbors {
		if st := strings.ToUpper(nb.State); nb.Addr == c.pkt.Dst && nb.Dev == br && (st == "PERMANENT" || st == "REACHABLE" || st == "NOARP") {
			connected = st
		}
	}
	fast := connected != "" && r.neighCached(ns, br, c.pkt.Dst)
	mac, ok, why := r.resolve(c, br, c.pkt.Dst)
	if !ok {
		r.drop(c, br, why, nil)
		return
	}
	if !fast {
		if connected != "" {
			r.uncertain(ns, fmt.Sprintf("the neighbor entry for %s on %s is %s: if earlier traffic already cached its header, the kernel bridges the DNATed frame directly and tcpdump on %s does not see it; pktflow assumes it has not", c.pkt.Dst, br, connected, br))
		}
		r.capture(c, br, "out")
		r.neighUsed(ns, br, c.pkt.Dst)
	}
	out := r.portToward(ns, br, mac, "")
	if out == "" {
		r.drop(c, br, fmt.Sprintf("bridge %s has no port leading to %s", br, mac), nil)
		return
	}
	if out == c.physIn {
		hp := ns.ifaces[out].Hairpin
		if hp == nil {
			r.uncertain(ns, fmt.Sprintf("hairpin mode of %s is not in the snapshot: pktflow assumes off, the kernel's default (Docker turns it on when userland-proxy is false)", out))
		}
		if hp == nil || !*hp {
			r.drop(c, br, fmt.Sprintf("bridge %s does not send the frame back out of %s, the port it came in by, without hairpin mode", br, out), nil)
			return
		}
		r.note(c.leg, ns, out, fmt.Sprintf("%s has hairpin mode on: the bridge sends the frame back out of it", out))
	}
	c.oif, c.physOut, c.bridged = br, out, true
	if !r.hook(c, netfilter.Forward, nil) || !r.hook(c, netfilter.PostRouting, nil) {
		return
	}
	r.capture(c, out, "out")
	r.crossWire(c, out, mac)
}

// neighKey names a neighbour entry a run has used.
type neighKey struct {
	node, dev string
	addr      netip.Addr
}

// neighUsed records that the node sent to addr through dev: from then on
// the kernel's neighbour entry is resolved and its header cached (the
// snapshot's own entries are taken as not yet used, as after a fresh
// start of the flow).
func (r *run) neighUsed(ns *nodeState, dev string, addr netip.Addr) {
	if r.neigh == nil {
		r.neigh = map[neighKey]bool{}
	}
	r.neigh[neighKey{ns.n.Name, dev, addr}] = true
}

func (r *run) neighCached(ns *nodeState, dev string, addr netip.Addr) bool {
	return r.neigh[neighKey{ns.n.Name, dev, addr}]
}

// brNetfilter runs iptables on a frame the bridge forwards between two of
// its ports, which the kernel does only when br_netfilter is loaded and
// net.bridge.bridge-nf-call-iptables is 1 (Docker sets it): PREROUTING,
// FORWARD and POSTROUTING, with -i and -o seeing the bridge device and
// -m physdev the ports.
func (r *run) brNetfilter(c *pctx, br, in, out string) bool {
	ns := c.ns
	key := "net.bridge.bridge-nf-call-iptables"
	if c.pkt.Is6() {
		key = "net.bridge.bridge-nf-call-ip6tables"
	}
	v, ok := ns.sysctl(key)
	if !ok {
		if ns.nf(&c.pkt).HasTable("filter") || ns.nf(&c.pkt).HasTable("nat") {
			r.uncertain(ns, fmt.Sprintf("%s is not in the snapshot: pktflow assumes 0, so traffic bridged on %s skips the firewall (Docker hosts usually have 1)", key, br))
		}
		return true
	}
	if v.Value != "1" {
		return true
	}
	r.note(c.leg, ns, in, fmt.Sprintf("%s = 1%s: the bridged frame traverses the firewall with -i/-o %s and physdev %s → %s", key, originSuffix(v.Origin), br, in, out))
	c.iif, c.oif, c.physIn, c.physOut, c.bridged = br, br, in, out, true
	before := c.pkt
	if !r.hook(c, netfilter.PreRouting, nil) {
		return false
	}
	if c.pkt.Dst != before.Dst {
		r.uncertain(ns, fmt.Sprintf("DNAT of a bridged frame on %s: the kernel may route it instead of bridging it, which pktflow does not model", br))
	}
	if !r.hook(c, netfilter.Forward, nil) {
		return false
	}
	return r.hook(c, netfilter.PostRouting, nil)
}

// recvFrame is a frame arriving on a device from its wire.
func (r *run) recvFrame(ns *nodeState, dev string, p packet.Packet, mac string, leg trace.Leg) {
	c := r.newCtx()
	*c = pctx{ns: ns, pkt: p, leg: leg, iif: dev}
	if !r.step(c) {
		return
	}
	ifc := ns.ifaces[dev]
	if ifc != nil && !ifc.Up {
		r.drop(c, dev, fmt.Sprintf("%s is down (%s)", dev, strings.Join(ifc.Flags, ",")), &ifc.Origin)
		return
	}
	r.capture(c, dev, "in")
	if br := ns.bridgeOf(dev); br != "" {
		if ns.mac(br) == mac || ns.portHasMAC(br, mac) || mac == broadcastMAC {
			m := len(r.msg)
			r.msg = append(append(append(append(r.msg, "bridge "...), br...), ": frame for "...), mac...)
			r.msg = append(r.msg, " is for the bridge itself, up to its IP stack"...)
			r.emitMsg(trace.Event{Leg: leg, Node: ns.n.Name, Iface: dev, Kind: trace.EvBridge}, m)
			c.iif = br
			if on, _ := ns.brNF(&c.pkt); on {
				// br_netfilter runs PREROUTING at the bridge, before the
				// frame reaches the bridge device (tcpdump on it sees the
				// packet only afterwards); the packet keeps its port for
				// -m physdev, and DNAT to an address on this bridge is
				// bridged, not routed.
				c.physIn, c.viaBridgeNF = dev, true
			} else {
				r.capture(c, br, "in")
			}
			r.ipRcv(c)
			return
		}
		out := r.portToward(ns, br, mac, dev)
		if out == "" {
			r.drop(c, dev, fmt.Sprintf("bridge %s has no port leading to %s", br, mac), nil)
			return
		}
		r.emit(trace.Event{Leg: leg, Node: ns.n.Name, Iface: dev, Kind: trace.EvBridge,
			Message: fmt.Sprintf("bridge %s forwards the frame for %s from %s to %s", br, mac, dev, out)})
		if !r.brNetfilter(c, br, dev, out) {
			return
		}
		r.capture(c, out, "out")
		r.crossWire(c, out, mac)
		return
	}
	if mac != "" && ns.mac(dev) != "" && mac != ns.mac(dev) && mac != broadcastMAC {
		r.drop(c, dev, fmt.Sprintf("frame is for %s, not %s's MAC %s", mac, dev, ns.mac(dev)), nil)
		return
	}
	r.ipRcv(c)
}
