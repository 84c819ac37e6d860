package conntrack

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/pktflow/pktflow/internal/packet"
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestLifecycle(t *testing.T) {
	tab := NewTable()
	orig := Tuple{Src: a("172.17.0.2"), Dst: a("142.250.115.106"), Proto: packet.ICMP, SPort: 55, DPort: 55}
	e := tab.New(orig, "test")
	if got, _ := tab.Find(orig.Invert()); got != nil {
		t.Fatal("an unconfirmed connection must not be found by its reply")
	}
	// MASQUERADE to 192.168.122.120.
	e.Reply = Tuple{Src: a("142.250.115.106"), Dst: a("192.168.122.120"), Proto: packet.ICMP, SPort: 55, DPort: 55}
	e.SrcNAT = true
	tab.Confirm(e)
	got, reply := tab.Find(e.Reply)
	if got != e || !reply {
		t.Fatalf("reply lookup: got %v reply=%v", got, reply)
	}
	got, reply = tab.Find(orig)
	if got != e || reply {
		t.Fatalf("original lookup: got %v reply=%v", got, reply)
	}
	if !tab.ReplyTaken(e.Reply, nil) || tab.ReplyTaken(e.Reply, e) {
		t.Fatal("ReplyTaken must see other connections' reply tuples only")
	}
}

func TestForgetUnconfirmed(t *testing.T) {
	tab := NewTable()
	orig := Tuple{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), Proto: packet.TCP, SPort: 40000, DPort: 80}
	e := tab.New(orig, "test")
	tab.Forget(e)
	if got, _ := tab.Find(orig); got != nil || len(tab.Entries()) != 0 {
		t.Fatal("a dropped first packet leaves no connection")
	}
}

func TestTupleOf(t *testing.T) {
	p := packet.Packet{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), Proto: packet.ICMP, ICMPType: packet.ICMPEchoRequest, ICMPID: 7}
	tu, ok := TupleOf(&p)
	if !ok || tu.SPort != 7 || tu.DPort != 7 {
		t.Fatalf("echo tuple: %v %v", tu, ok)
	}
	p.ICMPType = packet.ICMPTimeExceeded
	if _, ok := TupleOf(&p); ok {
		t.Fatal("ICMP errors are not connections of their own")
	}
}

func TestClone(t *testing.T) {
	tab := NewTable()
	e := tab.New(Tuple{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), Proto: packet.UDP, SPort: 1, DPort: 2}, "x")
	tab.Confirm(e)
	c := tab.Clone()
	ce, _ := c.Find(e.Orig)
	ce.Mark = 9
	if e.Mark == 9 {
		t.Fatal("clone shares entries")
	}
}

func TestTupleStringMatchesFmt(t *testing.T) {
	for _, tu := range []Tuple{
		{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: packet.TCP, SPort: 40000, DPort: 80},
		{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("::ffff:1.2.3.4"), Proto: packet.UDP, SPort: 0, DPort: 65535},
		{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: packet.ICMP, SPort: 7, DPort: 7},
		{Src: netip.MustParseAddr("fe80::1%eth0"), Proto: packet.ICMPv6, SPort: 1},
		{Proto: 47},
	} {
		var want string
		if tu.Proto == packet.ICMP || tu.Proto == packet.ICMPv6 {
			want = fmt.Sprintf("%s src=%s dst=%s id=%d", packet.ProtoName(tu.Proto), tu.Src, tu.Dst, tu.SPort)
		} else {
			want = fmt.Sprintf("%s src=%s dst=%s sport=%d dport=%d", packet.ProtoName(tu.Proto), tu.Src, tu.Dst, tu.SPort, tu.DPort)
		}
		if got := tu.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
