// Package engine walks a packet across the nodes and wires of a snapshot
// the way Linux moves it: the routing decision, each netfilter hook with
// its tables in kernel priority order, connection tracking and NAT,
// bridges, neighbor resolution, TTL — then the destination's answer back
// through the same conntrack state. Every step is recorded as a
// trace.Event with its reason and the input line that caused it.
//
// An Engine is built once from a snapshot and is immutable: traces run
// concurrently, each with its own per-node conntrack tables.
package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pktflow/pktflow/internal/conntrack"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/netfilter"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/route"
)

// Engine is a compiled snapshot, ready to trace packets.
type Engine struct {
	snap  *model.Snapshot
	nodes map[string]*nodeState
	// wire maps an endpoint to the link it is on.
	wire map[model.Endpoint]*model.Link
	// fault is a deliberately wrong behaviour, set only by tests that
	// prove the kernel conformance checks can fail (see InjectFault).
	fault string
}

// Faults InjectFault knows.
const (
	// FaultMasqueradeWrongAddr makes MASQUERADE take the input device's
	// address instead of the output device's.
	FaultMasqueradeWrongAddr = "masquerade-wrong-address"
	// FaultNoTTLDecrement forgets to decrement TTL when forwarding.
	FaultNoTTLDecrement = "no-ttl-decrement"
)

// InjectFault breaks the engine on purpose. It exists only so that tests
// can show the kernel conformance suite catches a wrong engine; never
// call it otherwise.
func (e *Engine) InjectFault(name string) { e.fault = name }

// nodeState is one node's immutable, compiled state.
type nodeState struct {
	n      *model.Node
	fib    *route.FIB
	nf4    *netfilter.Compiled
	nf6    *netfilter.Compiled
	ifaces map[string]*model.Interface
	// ports maps a bridge device name to its port devices.
	ports map[string][]string
	// external: the node stands for a network pktflow does not model in
	// detail (it owns prefixes, routes, answers).
	external bool
	// addrTypeFn is addrType as a func value, made once.
	addrTypeFn func(netip.Addr, string) netfilter.AddrType
	// where names the node and each hook, "NODE HOOK", for the
	// conntrack entries it creates.
	where [netfilter.PostRouting + 1]string
	// macs holds each device's MAC in lower case, as frames carry them.
	macs map[string]string
	// devs holds what the engine works out about each device.
	devs map[string]*devCache
}

// devCache holds what the engine works out about one device of a node,
// made on first use and never changed after (the wiring and sysctls are
// fixed once New returns): a map lookup by device name and an atomic
// load per packet, where a sync.Map keyed by node and device hashed both
// names. For a device the snapshot does not list, the answers are worked
// out each time.
type devCache struct {
	peers   atomic.Pointer[[]model.Endpoint]
	domain  [2]atomic.Pointer[[]ipEndpoint] // [0]: domain, [1]: domainFromWire
	segment atomic.Pointer[segmentView]
	rpf     atomic.Pointer[rpfAnswer]
	fwd     [2]atomic.Pointer[fwdAnswer] // [0]: IPv4, [1]: IPv6
	arp     atomic.Pointer[map[netip.Addr][]ipEndpoint]
}

// dev returns the cache of a device. A device the snapshot does not list
// gets a fresh one each time, so its answers are worked out each time.
func (ns *nodeState) dev(name string) *devCache {
	if d := ns.devs[name]; d != nil {
		return d
	}
	return new(devCache)
}

// lazy returns the value in slot, computing and publishing it the first
// time. Two goroutines may both compute it; they compute the same value.
func lazy[T any](slot *atomic.Pointer[T], compute func() T) *T {
	if v := slot.Load(); v != nil {
		return v
	}
	v := compute()
	slot.Store(&v)
	return &v
}

// rpfAnswer is a device's effective rp_filter mode and why.
type rpfAnswer struct {
	mode int
	why  string
}

// New compiles a snapshot. It fails only when the snapshot cannot be given
// meaning at all (a ruleset iptables-restore would reject).
func New(s *model.Snapshot) (*Engine, error) {
	e := &Engine{snap: s, nodes: map[string]*nodeState{}, wire: map[model.Endpoint]*model.Link{}}
	for _, n := range s.Nodes {
		ns := &nodeState{n: n, fib: route.New(n), ifaces: map[string]*model.Interface{}, ports: map[string][]string{},
			external: n.Kind == model.KindExternal, macs: make(map[string]string, len(n.Interfaces)),
			devs: make(map[string]*devCache, len(n.Interfaces))}
		ns.addrTypeFn = ns.addrType
		for h := netfilter.PreRouting; h <= netfilter.PostRouting; h++ {
			ns.where[h] = n.Name + " " + h.String()
		}
		for _, ifc := range n.Interfaces {
			ns.ifaces[ifc.Name] = ifc
			ns.macs[ifc.Name] = strings.ToLower(ifc.MAC)
			ns.devs[ifc.Name] = new(devCache)
			if ifc.Master != "" {
				ns.ports[ifc.Master] = append(ns.ports[ifc.Master], ifc.Name)
			}
		}
		nf, err := netfilter.Compile(n.IPv4)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		ns.nf4 = nf
		if ns.nf6, err = netfilter.Compile(n.IPv6); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		e.nodes[n.Name] = ns
	}
	for _, l := range s.Links {
		for _, ep := range l.Ends {
			e.wire[ep] = l
		}
	}
	return e, nil
}

// Snapshot returns the snapshot the engine was built from.
func (e *Engine) Snapshot() *model.Snapshot { return e.snap }

// Probe is what to trace: a packet a node sends (From), or a packet that
// arrives on one of its interfaces from outside the snapshot (FromIface).
type Probe struct {
	From      string
	FromIface string
	// Src is the source address; invalid means chosen by the route
	// lookup (or, for an injected packet, required).
	Src   netip.Addr
	SPort uint16
	Proto uint8
	Dst   netip.Addr
	DPort uint16
	// DstName is the name Dst was resolved from, for the trace's words.
	DstName string
	TTL     int
	ICMPID  uint16
	ICMPSeq uint16
	// Len is the length tcpdump prints (ICMP message or payload length).
	Len int
}

// Defaults for fields a probe leaves empty, chosen to look like the
// commands people run: ping's 56 data bytes (ICMP length 64), id 1, seq 1;
// an ephemeral source port from Linux's default ip_local_port_range.
const (
	DefaultICMPLen = 64
	DefaultSPort   = 40000
	DefaultUDPLen  = 32
)

func (p *Probe) String() string { return string(p.appendTo(nil)) }

// appendTo appends what String returns.
func (p *Probe) appendTo(b []byte) []byte {
	b = append(append(append(b, packet.ProtoName(p.Proto)...), " from "...), p.From...)
	if p.FromIface != "" {
		b = append(append(b, ':'), p.FromIface...)
	}
	b = append(b, " to "...)
	if p.DstName != "" {
		b = append(append(b, p.DstName...), " ("...)
	}
	b = appendAddr(b, p.Dst)
	if p.DstName != "" {
		b = append(b, ')')
	}
	if p.Proto == packet.TCP || p.Proto == packet.UDP {
		b = strconv.AppendUint(append(b, " port "...), uint64(p.DPort), 10)
	}
	return b
}

// ifaceMAC returns a device's MAC, or "" if unknown.
func (ns *nodeState) mac(dev string) string { return ns.macs[dev] }

// isLocal reports whether addr is local to the node: an address of one of
// its devices, or (for an external node) inside a prefix it owns.
func (ns *nodeState) isLocal(a netip.Addr) bool {
	if _, ok := ns.fib.IsLocal(a); ok {
		return true
	}
	for _, p := range ns.n.Owns {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hasIfAddr reports whether a is configured on one of the node's devices.
func (ns *nodeState) hasIfAddr(a netip.Addr) bool {
	for _, i := range ns.n.Interfaces {
		for _, ad := range i.Addrs {
			if ad.Prefix.Addr() == a {
				return true
			}
		}
	}
	return false
}

// sysctl returns a sysctl value and whether the snapshot set it.
func (ns *nodeState) sysctl(key string) (model.Sysctl, bool) {
	v, ok := ns.n.Sysctls[key]
	return v, ok
}

// nf returns the ruleset for the packet's family: iptables or ip6tables.
func (ns *nodeState) nf(p *packet.Packet) *netfilter.Compiled {
	if p.Is6() {
		return ns.nf6
	}
	return ns.nf4
}

// forwarding reports whether the node forwards packets arriving on iif,
// and why. IPv4: the per-device conf value if given, else ip_forward
// (which the kernel copies into every device's value), else the Linux
// default 0. IPv6: net.ipv6.conf.all.forwarding, which ip6_forward checks.
func (ns *nodeState) forwarding(iif string, v6 bool) (bool, string) {
	fam := 0
	if v6 {
		fam = 1
	}
	a := lazy(&ns.dev(iif).fwd[fam], func() fwdAnswer {
		on, why := ns.forwardingOf(iif, v6)
		return fwdAnswer{on, why}
	})
	return a.on, a.why
}

// fwdAnswer is forwarding's answer, cached per device: a node's sysctls
// never change after New.
type fwdAnswer struct {
	on  bool
	why string
}

// forwardingOf reads the forwarding switch that applies to packets
// arriving on iif. An external node stands for networks that route: it
// forwards unless its snapshot says otherwise (the lab sets it up the
// same way).
func (ns *nodeState) forwardingOf(iif string, v6 bool) (bool, string) {
	keys := []string{"net.ipv4.conf." + iif + ".forwarding", "net.ipv4.conf.all.forwarding", "net.ipv4.ip_forward"}
	if v6 {
		keys = []string{"net.ipv6.conf.all.forwarding"}
	}
	for _, k := range keys {
		if v, ok := ns.sysctl(k); ok {
			return v.Value == "1", fmt.Sprintf("%s = %s%s", k, v.Value, originSuffix(v.Origin))
		}
	}
	if ns.external {
		return true, "external nodes stand for networks that route"
	}
	return false, keys[len(keys)-1] + " is not set in the snapshot; Linux's default is 0"
}

func originSuffix(o model.Origin) string {
	if o.File == "" {
		return ""
	}
	if o.Line > 0 {
		return fmt.Sprintf(" (%s:%d)", o.File, o.Line)
	}
	return " (" + o.File + ")"
}

// sysctlInt reads an integer sysctl; ok is false when the snapshot lacks it.
func (ns *nodeState) sysctlInt(key string) (int, model.Sysctl, bool) {
	v, ok := ns.sysctl(key)
	if !ok {
		return 0, v, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v.Value))
	if err != nil {
		return 0, v, false
	}
	return n, v, true
}

// rpFilterMode is the effective rp_filter of a device: the larger of
// conf.all.rp_filter and conf.DEV.rp_filter (Linux's default is 0 for
// both; distributions often set 1 or 2).
func (ns *nodeState) rpFilterMode(dev string) (int, string) {
	a := lazy(&ns.dev(dev).rpf, func() rpfAnswer {
		mode, why := ns.readRPFilter(dev)
		return rpfAnswer{mode, why}
	})
	return a.mode, a.why
}

func (ns *nodeState) readRPFilter(dev string) (int, string) {
	all, av, aok := ns.sysctlInt("net.ipv4.conf.all.rp_filter")
	d, dv, dok := ns.sysctlInt("net.ipv4.conf." + dev + ".rp_filter")
	switch {
	case !aok && !dok:
		return 0, ""
	case dok && d >= all:
		return d, fmt.Sprintf("net.ipv4.conf.%s.rp_filter = %d%s", dev, d, originSuffix(dv.Origin))
	}
	return all, fmt.Sprintf("net.ipv4.conf.all.rp_filter = %d%s", all, originSuffix(av.Origin))
}

// mtu is the MTU a routed packet must fit: the route's mtu if it has one,
// else the output device's (1500 when the snapshot does not say).
func (ns *nodeState) mtu(res *route.Result) (int, string) {
	if res.Route != nil && res.Route.MTU > 0 {
		return res.Route.MTU, "route mtu"
	}
	if i := ns.ifaces[res.Dev]; i != nil && i.MTU > 0 {
		return i.MTU, "device mtu"
	}
	return 1500, "default device mtu"
}

func (ns *nodeState) initialTTL(v6 bool) uint8 {
	if v6 {
		if v, ok := ns.sysctl("net.ipv6.conf.all.hop_limit"); ok && ns.n.InitialTTL == 0 {
			var t int
			if _, err := fmt.Sscan(v.Value, &t); err == nil && t > 0 && t < 256 {
				return uint8(t)
			}
		}
	}
	if ns.n.InitialTTL > 0 {
		return uint8(ns.n.InitialTTL)
	}
	if v, ok := ns.sysctl("net.ipv4.ip_default_ttl"); ok && !v6 {
		var t int
		if _, err := fmt.Sscan(v.Value, &t); err == nil && t > 0 && t < 256 {
			return uint8(t)
		}
	}
	return 64
}

// listener finds the socket that would receive a packet, if any.
//
// A socket bound to 0.0.0.0 takes IPv4 only; one bound to :: takes both
// families (Linux's default bindv6only=0); a socket bound to a device
// (ss's "%dev") takes only what arrived on it.
func (ns *nodeState) listener(p *packet.Packet, iif string) *model.Listener {
	proto := packet.ProtoName(p.Proto)
	for i := range ns.n.Listeners {
		l := &ns.n.Listeners[i]
		if l.Proto != proto || l.Port != p.DPort {
			continue
		}
		if l.Dev != "" && l.Dev != iif {
			continue
		}
		switch {
		case !l.Addr.IsValid():
		case l.Addr == netip.IPv4Unspecified():
			if p.Is6() {
				continue
			}
		case l.Addr.IsUnspecified():
		case l.Addr != p.Dst:
			continue
		}
		return l
	}
	return nil
}

// addrType answers the addrtype match from the node's routing state.
func (ns *nodeState) addrType(a netip.Addr, dev string) netfilter.AddrType {
	if !a.IsValid() || a.IsUnspecified() {
		return netfilter.AddrUnspec
	}
	if dev != "" {
		if i := ns.ifaces[dev]; i != nil {
			for _, ad := range i.Addrs {
				if ad.Prefix.Addr() == a {
					return netfilter.AddrLocal
				}
			}
		}
	} else if ns.isLocal(a) {
		return netfilter.AddrLocal
	}
	switch ns.fib.AddrKind(a) {
	case model.RouteBroadcast:
		return netfilter.AddrBroadcast
	case model.RouteMulticast:
		return netfilter.AddrMulticast
	case model.RouteBlackhole:
		return netfilter.AddrBlackhole
	case model.RouteUnreachable:
		return netfilter.AddrUnreachable
	case model.RouteProhibit:
		return netfilter.AddrProhibit
	}
	return netfilter.AddrUnicast
}

// bridgeOf returns the bridge a device is a port of, or "".
func (ns *nodeState) bridgeOf(dev string) string {
	if i := ns.ifaces[dev]; i != nil {
		return i.Master
	}
	return ""
}

func (ns *nodeState) isBridge(dev string) bool {
	if i := ns.ifaces[dev]; i != nil && i.Kind == model.IfBridge {
		return true
	}
	return len(ns.ports[dev]) > 0
}

// newTable makes a fresh conntrack table of a node for a trace, holding
// the snapshot's pre-existing entries. Traces make them on first use (see
// run.table): most traces touch a few nodes of a large snapshot.
func (ns *nodeState) newTable() *conntrack.Table {
	t := conntrack.NewTable()
	ns.fillTable(t)
	return t
}

// fillTable puts the snapshot's pre-existing entries in an empty table.
func (ns *nodeState) fillTable(t *conntrack.Table) {
	for _, c := range ns.n.Conntrack {
		proto := uint8(0)
		switch c.Proto {
		case "tcp":
			proto = packet.TCP
		case "udp":
			proto = packet.UDP
		case "icmp":
			proto = packet.ICMP
		case "icmpv6", "ipv6-icmp":
			proto = packet.ICMPv6
		default:
			// Other protocols (sctp, gre ...) cannot clash with the
			// TCP, UDP and ICMP flows the engine traces.
			continue
		}
		t.AddCopy(conntrack.Entry{
			Orig:        conntrack.Tuple{Src: c.Orig.Src, Dst: c.Orig.Dst, Proto: proto, SPort: c.Orig.SPort, DPort: c.Orig.DPort},
			Reply:       conntrack.Tuple{Src: c.Reply.Src, Dst: c.Reply.Dst, Proto: proto, SPort: c.Reply.SPort, DPort: c.Reply.DPort},
			SrcNAT:      c.Reply.Dst != c.Orig.Src || c.Reply.DPort != c.Orig.SPort,
			DstNAT:      c.Reply.Src != c.Orig.Dst || c.Reply.SPort != c.Orig.DPort,
			SrcDone:     true,
			DstDone:     true,
			Preexisting: true,
			Where:       "conntrack -L" + originSuffix(c.Origin),
		})
	}
}

// NodeNames returns the node names in snapshot order.
func (e *Engine) NodeNames() []string {
	var s []string
	for _, n := range e.snap.Nodes {
		s = append(s, n.Name)
	}
	return s
}

// hasNode reports whether a node exists.
func (e *Engine) hasNode(name string) bool { _, ok := e.nodes[name]; return ok }

var _ = slices.Contains[[]string]
