// Package trace holds the result of tracing one packet: the events at each
// hop, the captures tcpdump would show, and the verdict with its reason.
// The engine writes traces; renderers read them. The JSON form of Trace is a
// documented contract (see README.md).
package trace

import (
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// Legs of a trace.
const (
	LegRequest = "request"
	LegReply   = "reply"
	LegError   = "error" // an ICMP error or TCP reset sent back toward the sender
	// LegRedirect is an ICMP redirect a router sends the sender on the
	// side while it forwards the request anyway.
	LegRedirect = "redirect"
	// LegStray is what the sender's kernel sends back when a reply
	// arrives that no socket takes (a reset, a port unreachable).
	LegStray = "stray"
)

// Verdicts of a trace.
const (
	// Answered: the request was delivered and its answer got back to the
	// sender. The only verdict with exit status 0.
	Answered = "answered"
	// Refused: delivered, but nothing listens; the destination's RST or
	// ICMP port-unreachable got back to the sender.
	Refused = "refused"
	// Rejected: a node on the way sent an ICMP error or reset back
	// (REJECT, unreachable route, TTL expiry, neighbor failure) and it got
	// back to the sender.
	Rejected = "rejected"
	// Dropped: the request or its reply was silently discarded.
	Dropped = "dropped"
	// Mixed: the path depends on a choice the kernel makes at random
	// (-m statistic, ECMP) and the branches end differently; see
	// Trace.Branches.
	Mixed = "mixed"
)

// Event kinds.
const (
	EvCapture   = "capture"   // the packet crossed an interface (see Captures)
	EvRoute     = "route"     // a routing decision
	EvRule      = "rule"      // a netfilter rule matched
	EvPolicy    = "policy"    // a built-in chain's policy decided
	EvNAT       = "nat"       // an address or port rewrite
	EvConntrack = "conntrack" // a connection tracking lookup or entry
	EvNeighbor  = "neighbor"  // link-layer resolution of the next hop
	EvBridge    = "bridge"    // forwarded by a bridge between its ports
	EvDeliver   = "deliver"   // handed to a local socket or answered
	EvDrop      = "drop"      // the packet ends here
	EvNote      = "note"      // anything else worth saying
)

// Event is one step of a packet's journey. Message says in words what
// happened and why; Origin says which input line made it happen.
type Event struct {
	Leg     string        `json:"leg"`
	Node    string        `json:"node"`
	Iface   string        `json:"iface,omitempty"`
	Kind    string        `json:"kind"`
	Hook    string        `json:"hook,omitempty"`
	Table   string        `json:"table,omitempty"`
	Chain   string        `json:"chain,omitempty"`
	Rule    int           `json:"rule,omitempty"` // 1-based position in Chain
	Target  string        `json:"target,omitempty"`
	Message string        `json:"message"`
	Before  *Header       `json:"before,omitempty"`
	After   *Header       `json:"after,omitempty"`
	Origin  *model.Origin `json:"origin,omitempty"`
}

// Header is the part of a packet an event reports.
type Header struct {
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Proto string `json:"proto"`
	SPort uint16 `json:"sport,omitempty"`
	DPort uint16 `json:"dport,omitempty"`
}

// Capture is what `tcpdump -nn -i IFACE` on Node would show for one packet.
type Capture struct {
	Leg      string `json:"leg"`
	Node     string `json:"node"`
	Iface    string `json:"iface"`
	Dir      string `json:"dir"` // "in" or "out"
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Proto    string `json:"proto"`
	SPort    uint16 `json:"sport"`
	DPort    uint16 `json:"dport"`
	TCPFlags string `json:"tcp_flags,omitempty"`
	ICMPType int    `json:"icmp_type"` // -1 when not ICMP
	ICMPCode int    `json:"icmp_code"` // -1 when not ICMP
	ICMPID   int    `json:"icmp_id"`   // -1 when not an echo
	TTL      int    `json:"ttl"`
	// Line is the tcpdump line, without its timestamp.
	Line string `json:"line"`
	// Packet is the full header, for renderers (pcap); not in JSON.
	Packet packet.Packet `json:"-"`
}

// Trace is the whole story of one probe.
type Trace struct {
	Probe     string    `json:"probe"`
	Verdict   string    `json:"verdict"`
	Reason    string    `json:"reason"`
	Uncertain []string  `json:"uncertain"`
	Hops      []Event   `json:"hops"`
	Captures  []Capture `json:"captures"`
	// Probability of this path, when a random choice decides the path
	// (1 otherwise), and the choices that led to it.
	Probability float64  `json:"probability"`
	Choices     []string `json:"choices,omitempty"`
	// Branches lists every possible path, each a whole trace, when the
	// kernel chooses at random between several; the top-level hops and
	// captures are then those of the first branch, and the verdict is
	// the branches' common verdict or "mixed".
	Branches []*Trace `json:"branches,omitempty"`
	// Families holds one whole trace per address family when the
	// destination was a name with both IPv4 and IPv6 addresses; the
	// top-level verdict is then "answered" only if both were.
	Families []*Trace `json:"families,omitempty"`
	// Notes are what loading the snapshot had to say (facts synthesized,
	// sources ignored in favour of others).
	Notes []string `json:"notes,omitempty"`
}
