// Package netfilter gives iptables rulesets their Linux meaning: it
// compiles the rules of a model.Ruleset into matchers and walks a table's
// chains for one packet at one hook, as the kernel's ip_tables does,
// recording every rule that matched and why.
//
// The package knows nothing about routing or connection tracking tables:
// the caller (the engine) passes the packet's context — interfaces, the
// conntrack state, marks, which addresses are local — and applies the NAT
// the verdict asks for.
package netfilter

import (
	"net/netip"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// Hook is a netfilter hook point.
type Hook int

const (
	PreRouting Hook = iota
	Input
	Forward
	Output
	PostRouting
)

// String returns the built-in chain name of the hook (PREROUTING ...).
func (h Hook) String() string {
	return [...]string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}[h]
}

// CTState is a conntrack state as the conntrack/state matches see it.
type CTState uint8

const (
	CTNew CTState = 1 << iota
	CTEstablished
	CTRelated
	CTInvalid
	CTUntracked
	// CTSNAT and CTDNAT are ctstate bits set when the connection's
	// original direction has its source/destination translated.
	CTSNAT
	CTDNAT
)

// AddrType is a bit set of the address types of the addrtype match.
type AddrType uint16

const (
	AddrUnspec AddrType = 1 << iota
	AddrUnicast
	AddrLocal
	AddrBroadcast
	AddrAnycast
	AddrMulticast
	AddrBlackhole
	AddrUnreachable
	AddrProhibit
	AddrThrow
	AddrNAT
	AddrXResolve
)

// Ctx is everything a rule may look at besides the packet itself.
type Ctx struct {
	Pkt *packet.Packet
	// InIface and OutIface are the devices as -i/-o see them; empty when
	// the hook has none (no -o at PREROUTING, no -i at OUTPUT).
	InIface, OutIface string
	// PhysIn and PhysOut are the bridge ports for -m physdev, when the
	// packet is bridged.
	PhysIn, PhysOut string
	Bridged         bool
	// State is the conntrack state; Reply is true for the reply direction.
	State CTState
	Reply bool
	// OrigSrc/OrigDst are the connection's original-direction addresses
	// (for --ctorigsrc/--ctorigdst); ReplySrc/ReplyDst the reply tuple's.
	OrigSrc, OrigDst     netip.Addr
	OrigSPort, OrigDPort uint16
	ReplySrc, ReplyDst   netip.Addr
	// Mark is the packet mark (skb->mark) and CTMark the connection's
	// mark; targets MARK and CONNMARK change them in place.
	Mark, CTMark uint32
	// AddrType classifies an address on this node (for -m addrtype):
	// the engine answers from the node's local routing table. dev, when
	// not empty, limits the answer to that device (--limit-iface-*).
	AddrType func(a netip.Addr, dev string) AddrType
	// Choose is asked at each non-deterministic point (-m statistic
	// --mode random): it returns whether the branch with probability p is
	// taken. what describes the choice for the trace. Nil means "not
	// enumerating": the match is then treated as uncertain.
	Choose func(what string, p float64) bool
	// Packets counts packets of this connection so far, for
	// --mode nth; zero-based.
	NthPacket uint64

	// The fields below were added after the first API draft; their zero
	// values keep the original behaviour.

	// ReplySPort and ReplyDPort are the reply tuple's ports (for
	// --ctreplsrcport/--ctrepldstport).
	ReplySPort, ReplyDPort uint16
	// CTProto is the connection's layer-4 protocol for --ctproto; zero
	// means "the packet's own protocol" (or, for an ICMP error related to
	// a connection, the protocol of the datagram it carries).
	CTProto uint8
	// Status is the conntrack entry's status bits for --ctstatus, valid
	// when HasStatus is set. Without it the match derives what it can from
	// State (a NEW connection is not yet CONFIRMED nor SEEN_REPLY) and
	// reports uncertainty for the rest.
	Status    CTStatus
	HasStatus bool
	// SrcMAC is the Ethernet source address of the frame that carried the
	// packet in, lower-case colon form, for -m mac; empty when unknown
	// (the match then reports uncertainty).
	SrcMAC string
}

// CTStatus holds conntrack status bits as --ctstatus names them.
type CTStatus uint8

const (
	CTStatusExpected CTStatus = 1 << iota
	CTStatusSeenReply
	CTStatusAssured
	CTStatusConfirmed
)

// Verdict is what a table decided for the packet.
type Verdict int

const (
	// Accept: the packet continues to the next table/hook.
	Accept Verdict = iota
	// Drop: the packet is silently discarded.
	Drop
	// Reject: the packet is discarded and Result.Reject says what error
	// the node sends back.
	Reject
)

func (v Verdict) String() string { return [...]string{"ACCEPT", "DROP", "REJECT"}[v] }

// NATKind is the kind of translation a nat-table target asked for.
type NATKind int

const (
	NoNAT NATKind = iota
	DNAT
	SNAT
	Masquerade
	Redirect
)

// NAT is a translation request. Addresses and ports are ranges; the
// engine picks within them as the kernel does (keep the original when it
// fits and is free, else the first free one).
type NAT struct {
	Kind             NATKind
	AddrMin, AddrMax netip.Addr // invalid for MASQUERADE/REDIRECT (engine picks)
	PortMin, PortMax uint16     // zero: keep ports
	Random           bool
	Persistent       bool
	// RandomFully is --random-fully: the source port is chosen by a
	// full random permutation rather than keeping the original.
	RandomFully bool
}

// RejectWith names the error a REJECT sends, as --reject-with spells it
// (icmp-port-unreachable, tcp-reset, icmp-host-prohibited ...).
type RejectWith string

// Step is one thing that happened while walking a table: a rule that
// matched (with its effect), a jump, a return, or a chain policy.
type Step struct {
	Table, Chain string
	Rule         *model.Rule // nil for a policy or an implicit return
	// What: "match" (a non-terminal rule matched, e.g. MARK or LOG),
	// "jump", "goto", "return", "verdict", "policy", "uncertain".
	What    string
	Message string
}

// Result is the outcome of walking one table at one hook.
type Result struct {
	Verdict Verdict
	Reject  RejectWith
	// NAT is set when a nat-table rule asked for a translation.
	NAT *NAT
	// Decider is the rule or policy that gave the verdict: the last step.
	Steps []Step
	// Uncertain lists what the walk met but could not evaluate (an
	// unknown match or target, a match on state the snapshot lacks).
	Uncertain []string
	// NoTrack is set by -j CT --notrack / NOTRACK in raw.
	NoTrack bool
}
