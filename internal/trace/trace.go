// Package trace holds the result of tracing one packet: the events at each
// hop, the captures tcpdump would show, and the verdict with its reason.
// The engine writes traces; renderers read them. The JSON form of Trace is a
// documented contract (see README.md).
package trace

import (
	"fmt"
	"strconv"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// Leg says which packet of a trace an event or capture belongs to. It is
// a small number in memory (a trace holds hundreds of events) and its
// name in JSON and text.
type Leg uint8

// Legs of a trace.
const (
	LegRequest Leg = iota + 1
	LegReply
	LegError // an ICMP error or TCP reset sent back toward the sender
	// LegRedirect is an ICMP redirect a router sends the sender on the
	// side while it forwards the request anyway.
	LegRedirect
	// LegStray is what the sender's kernel sends back when a reply
	// arrives that no socket takes (a reset, a port unreachable).
	LegStray
)

var legNames = [...]string{"", "request", "reply", "error", "redirect", "stray"}

func (l Leg) String() string                   { return name(legNames[:], l) }
func (l Leg) MarshalText() ([]byte, error)     { return []byte(l.String()), nil }
func (l *Leg) UnmarshalText(text []byte) error { return parse(legNames[:], "leg", l, text) }

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

// Kind says what an event is.
type Kind uint8

// Event kinds.
const (
	EvCapture   Kind = iota + 1 // the packet crossed an interface (see Captures)
	EvRoute                     // a routing decision
	EvRule                      // a netfilter rule matched
	EvPolicy                    // a built-in chain's policy decided
	EvNAT                       // an address or port rewrite
	EvConntrack                 // a connection tracking lookup or entry
	EvNeighbor                  // link-layer resolution of the next hop
	EvBridge                    // forwarded by a bridge between its ports
	EvDeliver                   // handed to a local socket or answered
	EvDrop                      // the packet ends here
	EvNote                      // anything else worth saying
)

var kindNames = [...]string{"", "capture", "route", "rule", "policy", "nat", "conntrack", "neighbor", "bridge", "deliver", "drop", "note"}

func (k Kind) String() string                   { return name(kindNames[:], k) }
func (k Kind) MarshalText() ([]byte, error)     { return []byte(k.String()), nil }
func (k *Kind) UnmarshalText(text []byte) error { return parse(kindNames[:], "kind", k, text) }

// Hook is the netfilter hook an event happened in; zero for none.
type Hook uint8

// Hooks, in netfilter's order.
const (
	HookPreRouting Hook = iota + 1
	HookInput
	HookForward
	HookOutput
	HookPostRouting
)

var hookNames = [...]string{"", "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

func (h Hook) String() string                   { return name(hookNames[:], h) }
func (h Hook) MarshalText() ([]byte, error)     { return []byte(h.String()), nil }
func (h *Hook) UnmarshalText(text []byte) error { return parse(hookNames[:], "hook", h, text) }

func name[T ~uint8](names []string, v T) string {
	if int(v) < len(names) {
		return names[v]
	}
	return "invalid(" + strconv.Itoa(int(v)) + ")"
}

func parse[T ~uint8](names []string, what string, v *T, text []byte) error {
	for i, n := range names {
		if n == string(text) {
			*v = T(i)
			return nil
		}
	}
	return fmt.Errorf("trace: unknown %s %q", what, text)
}

// Event is one step of a packet's journey. Message says in words what
// happened and why; Origin says which input line made it happen.
//
// The fields are in the order of the JSON contract; Leg, Kind and Hook
// are small numbers that print as their names.
type Event struct {
	Leg     Leg           `json:"leg"`
	Node    string        `json:"node"`
	Iface   string        `json:"iface,omitempty"`
	Kind    Kind          `json:"kind"`
	Hook    Hook          `json:"hook,omitempty"`
	Table   string        `json:"table,omitempty"`
	Chain   string        `json:"chain,omitempty"`
	Rule    int32         `json:"rule,omitempty"` // 1-based position in Chain
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
	Leg      Leg    `json:"leg"`
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
