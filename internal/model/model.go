// Package model holds pktflow's snapshot: plain data describing a set of
// Linux network namespaces (nodes), their interfaces, addresses, routes,
// netfilter rulesets and the wires between them.
//
// The model has no parsing and no behaviour. Ingest packages turn command
// outputs into these values; the route, netfilter, conntrack and engine
// packages give them Linux semantics. Every value that came from an input
// file carries an Origin so that the engine can say where a decision came
// from.
package model

import (
	"net/netip"
)

// Origin says where a fact came from: a file, a 1-based line and the line's
// text as written. Synthesized facts (filled in by pktflow, not read from a
// file) set Synthesized and explain themselves in Text.
type Origin struct {
	File        string `json:"file,omitempty"`
	Line        int    `json:"line,omitempty"`
	Text        string `json:"text,omitempty"`
	Synthesized bool   `json:"synthesized,omitempty"`
}

// NodeKind is what a node stands for. Only External changes behaviour: an
// external node stands for a network pktflow does not model in detail.
type NodeKind string

const (
	KindHost      NodeKind = "host"
	KindVM        NodeKind = "vm"
	KindContainer NodeKind = "container"
	KindRouter    NodeKind = "router"
	KindExternal  NodeKind = "external"
)

// Snapshot is a whole modelled network.
type Snapshot struct {
	// Dir is the folder the snapshot was loaded from, if any.
	Dir   string
	Nodes []*Node
	Links []*Link
	// Names resolves host names to addresses, like /etc/hosts or DNS would.
	Names map[string][]netip.Addr
	// Notes says what the loader filled in or set aside while reading the
	// inputs (synthesized rulesets, a real ruleset winning over a
	// synthesized one, inputs read but not used), one sentence each,
	// for the command line to print.
	Notes []string
}

// Node returns the node with the given name, or nil.
func (s *Snapshot) Node(name string) *Node {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Node is one network namespace: a host, VM, container, router or an
// external network.
type Node struct {
	Name       string
	Kind       NodeKind
	Interfaces []*Interface
	// Routes holds routes of every table (Route.Table says which). The
	// local table may be absent from an input; the route package derives
	// it from interface addresses as the kernel does.
	Routes    []Route
	Rules     []PolicyRule
	Neighbors []Neighbor
	// Sysctls maps sysctl names (net.ipv4.ip_forward, net.ipv4.conf.eth0.rp_filter)
	// to values as strings, with where each came from.
	Sysctls map[string]Sysctl
	// IPv4 and IPv6 are the iptables and ip6tables rulesets; nil means the
	// input had none (no rules loaded: every hook accepts).
	IPv4 *Ruleset
	IPv6 *Ruleset
	// Listeners are the sockets that answer on this node.
	Listeners []Listener
	// Conntrack holds pre-existing connection tracking entries.
	Conntrack []ConntrackEntry
	// FDB holds the bridge forwarding database entries the input gave.
	FDB []FDBEntry
	// Leases are the DHCP leases this node's DHCP servers handed out.
	Leases []DHCPLease
	// Owns lists the prefixes an external node answers for, beyond its
	// interface addresses.
	Owns []netip.Prefix
	// InitialTTL is the TTL this node puts on packets it originates
	// (Linux: 64). Zero means 64.
	InitialTTL int
	// Origin is where the node was declared.
	Origin Origin
}

// Iface returns the interface with the given name, or nil.
func (n *Node) Iface(name string) *Interface {
	for _, i := range n.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// Sysctl is one sysctl value with its origin.
type Sysctl struct {
	Value  string
	Origin Origin
}

// InterfaceKind is the link type as `ip -d link` would name it.
type InterfaceKind string

const (
	IfUnknown  InterfaceKind = ""
	IfLoopback InterfaceKind = "loopback"
	IfEthernet InterfaceKind = "ether"  // a physical NIC or a guest NIC
	IfVeth     InterfaceKind = "veth"   // one end of a veth pair
	IfBridge   InterfaceKind = "bridge" // a Linux bridge device
	IfTap      InterfaceKind = "tun"    // a tap carrying a VM's NIC
	IfDummy    InterfaceKind = "dummy"
)

// Interface is one network device of a node.
type Interface struct {
	Name  string
	Index int
	Kind  InterfaceKind
	// MAC is the link-layer address in canonical lower-case colon form.
	MAC string
	MTU int
	// Up is the administrative and carrier state: false when the device is
	// down or has NO-CARRIER.
	Up bool
	// Flags as printed between < > by ip addr (BROADCAST, UP, LOWER_UP...).
	Flags []string
	// Master is the bridge this device is a port of, if any.
	Master string
	// Hairpin is a bridge port's hairpin mode (whether the bridge may
	// send a frame back out of the port it came in by); nil when the
	// input does not say. The kernel's default is off.
	Hairpin *bool
	Addrs   []IfAddr
	Origin  Origin

	// PeerIndex is the interface index of a veth's peer (the N of
	// "eth0@ifN", ip -j's link_index); zero when unknown. LinkNetns is the
	// peer's namespace id as this namespace numbers it ("0" for
	// link-netnsid 0), empty when the peer is in the same namespace or
	// unknown.
	PeerIndex int
	LinkNetns string
	// PortState is a bridge port's STP state as `bridge link` prints it
	// (forwarding, blocking, listening, learning, disabled); empty when
	// unknown or not a bridge port.
	PortState string
}

// IfAddr is an address assigned to an interface.
type IfAddr struct {
	// Prefix is the address with its prefix length (10.0.2.21/24).
	Prefix    netip.Prefix
	Peer      netip.Prefix // point-to-point peer, if any
	Broadcast netip.Addr
	Scope     string // global, link, host, site
	Secondary bool
	Flags     []string // noprefixroute, dynamic, ...
	Origin    Origin
}

// RouteType is the kind of a route, as ip route prints it.
type RouteType string

const (
	RouteUnicast     RouteType = "unicast"
	RouteLocal       RouteType = "local"
	RouteBroadcast   RouteType = "broadcast"
	RouteMulticast   RouteType = "multicast"
	RouteBlackhole   RouteType = "blackhole"
	RouteUnreachable RouteType = "unreachable"
	RouteProhibit    RouteType = "prohibit"
	RouteThrow       RouteType = "throw"
)

// Well-known routing table numbers.
const (
	TableDefault = 253
	TableMain    = 254
	TableLocal   = 255
)

// Route is one entry of a routing table.
type Route struct {
	Table  int
	Type   RouteType
	Dst    netip.Prefix
	Via    netip.Addr // gateway; invalid for on-link routes
	Dev    string
	Src    netip.Addr // preferred source
	Metric int
	Scope  string // global, link, host
	Proto  string // kernel, static, boot, dhcp ...
	OnLink bool
	// Nexthops lists the paths of a multipath (ECMP) route; empty for a
	// single-path route, which uses Via and Dev.
	Nexthops []Nexthop
	MTU      int
	Origin   Origin
}

// Nexthop is one path of a multipath route.
type Nexthop struct {
	Via    netip.Addr
	Dev    string
	Weight int
}

// PolicyRule is one `ip rule` entry.
type PolicyRule struct {
	Priority int
	Not      bool
	From     netip.Prefix // invalid means all
	To       netip.Prefix
	IIF      string
	OIF      string
	FwMark   uint32
	FwMask   uint32
	HasMark  bool
	IPProto  int
	DPort    [2]uint16 // range; zero means any
	SPort    [2]uint16
	Table    int
	Action   string // lookup, blackhole, unreachable, prohibit, goto
	Goto     int
	Origin   Origin
}

// Neighbor is one neighbor (ARP/NDP) table entry.
type Neighbor struct {
	Addr   netip.Addr
	Dev    string
	MAC    string // empty when the entry has no link-layer address
	State  string // REACHABLE, STALE, FAILED, INCOMPLETE, PERMANENT ...
	Router bool
	Origin Origin
}

// Listener is a socket that answers: proto is tcp or udp; an invalid Addr
// means any local address.
type Listener struct {
	Proto  string
	Addr   netip.Addr
	Port   uint16
	Origin Origin
	// Dev is the device the socket is bound to (ss prints "0.0.0.0%virbr0:67"),
	// empty when not bound to one.
	Dev string
	// Process is what ss -p says owns the socket (users:(("sshd",pid=1,fd=3))),
	// empty when unknown.
	Process string
}

// ConntrackEntry is a connection already tracked before the trace, as
// `conntrack -L` shows it: the original and reply tuples.
type ConntrackEntry struct {
	Proto  string
	Orig   Tuple
	Reply  Tuple
	Origin Origin
	// Family is 4 or 6 (0 when the input did not say; the tuples' addresses
	// do).
	Family int
	// State is the TCP state (ESTABLISHED, TIME_WAIT ...), empty for other
	// protocols. Timeout is the seconds left before the entry expires.
	State   string
	Timeout int
	// Flags are the bracketed status words: ASSURED, UNREPLIED, OFFLOAD ...
	Flags []string
	Mark  uint32
	Zone  int
}

// FDBEntry is one bridge forwarding database entry (`bridge fdb`).
type FDBEntry struct {
	MAC string
	// Dev is the port the MAC is reached through; Master the bridge.
	Dev    string
	Master string
	VLAN   int
	// State is permanent, static or empty (learned, dynamic); Self is
	// set for entries of the device's own table rather than the bridge's.
	State  string
	Self   bool
	Origin Origin
}

// DHCPLease is one lease a DHCP server handed out (`virsh net-dhcp-leases`).
type DHCPLease struct {
	Network  string // the libvirt network, when known
	Expiry   string // as printed: "2021-11-15 17:09:48"
	MAC      string
	Prefix   netip.Prefix // the leased address with its prefix length
	Hostname string       // empty when the client sent none ("-")
	ClientID string
	Origin   Origin
}

// Tuple is a connection tuple; for ICMP, ports hold the echo id.
type Tuple struct {
	Src, Dst     netip.Addr
	SPort, DPort uint16
}

// LinkKind says what kind of wire joins interfaces.
type LinkKind string

const (
	// LinkVeth joins the two ends of a veth pair.
	LinkVeth LinkKind = "veth"
	// LinkTap joins a host tap device to the guest NIC it carries.
	LinkTap LinkKind = "tap"
	// LinkSegment joins several interfaces on one broadcast segment (a
	// switch, a cable, a provider network).
	LinkSegment LinkKind = "segment"
)

// Link is a wire: every endpoint's frames reach every other endpoint.
type Link struct {
	Kind   LinkKind
	Ends   []Endpoint
	Origin Origin
}

// Endpoint names one interface of one node.
type Endpoint struct {
	Node  string
	Iface string
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }
