// Package conntrack models one node's connection tracking table: how the
// kernel recognises a packet as the first of a connection (NEW), as part
// of it in either direction (ESTABLISHED), or as an ICMP error about it
// (RELATED), and how the NAT bindings chosen for the first packet are
// applied to every later packet of the connection, in both directions.
package conntrack

import (
	"net/netip"
	"strconv"

	"github.com/pktflow/pktflow/internal/packet"
)

// Tuple identifies one direction of a connection. For ICMP echo, both
// ports hold the echo identifier so that inverting a tuple keeps it.
type Tuple struct {
	Src, Dst     netip.Addr
	Proto        uint8
	SPort, DPort uint16
}

func (t Tuple) String() string {
	var buf [128]byte
	return string(t.AppendTo(buf[:0]))
}

// AppendTo appends what String returns, "tcp src=A dst=B sport=P dport=Q"
// (for ICMP echo "icmp src=A dst=B id=I"), without fmt: traces print
// tuples at every conntrack step.
func (t Tuple) AppendTo(b []byte) []byte {
	b = append(append(b, packet.ProtoName(t.Proto)...), " src="...)
	b = append(appendAddr(b, t.Src), " dst="...)
	b = appendAddr(b, t.Dst)
	if t.Proto == packet.ICMP || t.Proto == packet.ICMPv6 {
		return strconv.AppendUint(append(b, " id="...), uint64(t.SPort), 10)
	}
	b = strconv.AppendUint(append(b, " sport="...), uint64(t.SPort), 10)
	return strconv.AppendUint(append(b, " dport="...), uint64(t.DPort), 10)
}

// appendAddr appends an address as fmt's %s prints it.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "invalid IP"...)
	}
	return a.AppendTo(b)
}

// Invert returns the tuple of the other direction, before any NAT.
func (t Tuple) Invert() Tuple {
	return Tuple{Src: t.Dst, Dst: t.Src, Proto: t.Proto, SPort: t.DPort, DPort: t.SPort}
}

// TupleOf returns the tuple a packet belongs to, and false for packets the
// kernel does not track as connections of their own (ICMP errors, which
// are looked up through their inner datagram instead).
func TupleOf(p *packet.Packet) (Tuple, bool) {
	t := Tuple{Src: p.Src, Dst: p.Dst, Proto: p.Proto}
	switch p.Proto {
	case packet.TCP, packet.UDP:
		t.SPort, t.DPort = p.SPort, p.DPort
	case packet.ICMP, packet.ICMPv6:
		if p.IsICMPError() {
			return t, false
		}
		t.SPort, t.DPort = p.ICMPID, p.ICMPID
	}
	return t, true
}

// Entry is one tracked connection: the tuple of its first packet (Orig)
// and the tuple its replies will carry (Reply), which differs from
// Orig.Invert() exactly when NAT was applied.
type Entry struct {
	Orig, Reply Tuple
	// SrcNAT / DstNAT say whether the source / destination of the
	// original direction is translated (the kernel's IPS_SRC_NAT and
	// IPS_DST_NAT).
	SrcNAT, DstNAT bool
	// SrcDone / DstDone say whether the binding for each manipulation
	// type has been decided (IPS_SRC_NAT_DONE / IPS_DST_NAT_DONE).
	SrcDone, DstDone bool
	// Confirmed is set once the first packet left the node or was
	// delivered (the kernel confirms at the last hook).
	Confirmed bool
	// SeenReply is set once a reply passed (IPS_SEEN_REPLY).
	SeenReply bool
	Mark      uint32
	// Where says where the entry was created, for the trace.
	Where string
	// Preexisting marks entries read from the snapshot (conntrack -L).
	Preexisting bool
}

// Table is one node's connection table.
type Table struct {
	byTuple map[Tuple]*Entry
	entries []*Entry
	// slab hands out the entries New makes, a few at a time; Reset
	// reuses it.
	slab []Entry
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{byTuple: map[Tuple]*Entry{}} }

// Reset empties the table for reuse, keeping its memory. Entries it
// held must no longer be used: New hands their memory out again.
func (t *Table) Reset() {
	clear(t.byTuple)
	clear(t.entries)
	t.entries = t.entries[:0]
	clear(t.slab)
	t.slab = t.slab[:0]
}

// alloc returns a zero entry from the slab.
func (t *Table) alloc() *Entry {
	if len(t.slab) == cap(t.slab) {
		// A new block; entries already handed out keep the old one.
		t.slab = make([]Entry, 0, 4)
	}
	t.slab = t.slab[:len(t.slab)+1]
	return &t.slab[len(t.slab)-1]
}

// Clone returns an independent copy, for exploring alternative branches.
func (t *Table) Clone() *Table {
	c := &Table{byTuple: make(map[Tuple]*Entry, len(t.byTuple)), entries: make([]*Entry, 0, len(t.entries))}
	m := map[*Entry]*Entry{}
	for _, e := range t.entries {
		ne := *e
		m[e] = &ne
		c.entries = append(c.entries, &ne)
	}
	for k, e := range t.byTuple {
		c.byTuple[k] = m[e]
	}
	return c
}

// Entries returns the entries in creation order.
func (t *Table) Entries() []*Entry { return t.entries }

// Find returns the entry a tuple belongs to and whether the tuple is the
// reply direction.
func (t *Table) Find(k Tuple) (*Entry, bool) {
	e := t.byTuple[k]
	if e == nil {
		return nil, false
	}
	return e, e.Reply == k && e.Orig != k
}

// New creates an unconfirmed entry for the first packet of a connection.
// The reply tuple starts as the inverse; NAT bindings change it.
func (t *Table) New(orig Tuple, where string) *Entry {
	e := t.alloc()
	*e = Entry{Orig: orig, Reply: replyTuple(orig), Where: where}
	t.entries = append(t.entries, e)
	t.byTuple[orig] = e
	return e
}

// replyTuple inverts orig; for ICMP the reply keeps the echo id.
func replyTuple(orig Tuple) Tuple { return orig.Invert() }

// Confirm inserts the entry's reply tuple so replies find it. The kernel
// does this when the first packet passes its last hook (POSTROUTING or
// INPUT): a packet dropped before then leaves no entry behind.
func (t *Table) Confirm(e *Entry) {
	if e.Confirmed {
		return
	}
	e.Confirmed = true
	t.byTuple[e.Orig] = e
	t.byTuple[e.Reply] = e
}

// Forget removes an unconfirmed entry (its packet was dropped).
func (t *Table) Forget(e *Entry) {
	if e.Confirmed {
		return
	}
	delete(t.byTuple, e.Orig)
	for i, x := range t.entries {
		if x == e {
			t.entries = append(t.entries[:i], t.entries[i+1:]...)
			break
		}
	}
}

// AddCopy inserts a copy of a pre-existing entry, confirmed, and returns
// the copy.
func (t *Table) AddCopy(e Entry) *Entry {
	c := t.alloc()
	*c = e
	t.Add(c)
	return c
}

// Add inserts a pre-existing, confirmed entry.
func (t *Table) Add(e *Entry) {
	e.Confirmed = true
	t.entries = append(t.entries, e)
	t.byTuple[e.Orig] = e
	t.byTuple[e.Reply] = e
}

// ReplyTaken reports whether a candidate reply tuple is already used by a
// confirmed connection other than e, which is how the kernel decides
// that a NAT binding clashes (nf_nat_used_tuple) and picks another port.
func (t *Table) ReplyTaken(reply Tuple, e *Entry) bool {
	x := t.byTuple[reply]
	return x != nil && x != e && x.Confirmed
}
