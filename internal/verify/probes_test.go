package verify

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

func TestParseProbe(t *testing.T) {
	s, err := snapshot.Load(seedDir())
	if err != nil {
		t.Fatal(err)
	}
	good := []struct {
		in   string
		want engine.Probe
		out  string
	}{
		{"mayura tcp 192.168.122.120:1443", engine.Probe{From: "mayura", Proto: packet.TCP, Dst: addr("192.168.122.120"), DPort: 1443}, ""},
		{"0d1b1ae40269 icmp www.google.com ttl=2", engine.Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: addr("142.250.115.106"), DstName: "www.google.com", TTL: 2},
			"0d1b1ae40269 icmp 142.250.115.106 ttl=2"},
		{"  router   UDP 203.0.113.1:53 sport=5000 ", engine.Probe{From: "router", Proto: packet.UDP, Dst: addr("203.0.113.1"), DPort: 53, SPort: 5000},
			"router udp 203.0.113.1:53 sport=5000"},
		{"rhel8a icmp 2001:db8:ffff::1 ttl=3", engine.Probe{From: "rhel8a", Proto: packet.ICMP, Dst: addr("2001:db8:ffff::1"), TTL: 3}, ""},
		{"rhel8a tcp [2001:db8:ca2:3::1]:22", engine.Probe{From: "rhel8a", Proto: packet.TCP, Dst: addr("2001:db8:ca2:3::1"), DPort: 22}, ""},
		{"rhel8a icmp [2001:db8:ffff::1]", engine.Probe{From: "rhel8a", Proto: packet.ICMP, Dst: addr("2001:db8:ffff::1")}, "rhel8a icmp 2001:db8:ffff::1"},
	}
	for _, tc := range good {
		p, err := ParseProbe(s, tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if p != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, p, tc.want)
		}
		out := tc.out
		if out == "" {
			out = tc.in
		}
		if got := ProbeString(p); got != out {
			t.Errorf("ProbeString(%q) = %q, want %q", tc.in, got, out)
		}
	}
	for _, bad := range []string{"", "mayura tcp", "nosuch icmp 1.2.3.4", "mayura sctp 1.2.3.4:1", "mayura tcp 1.2.3.4",
		"mayura icmp 1.2.3.4:80", "mayura icmp nowhere", "mayura tcp 1.2.3.4:0", "mayura icmp 1.2.3.4 ttl=0",
		"mayura icmp 1.2.3.4 sport=3", "mayura icmp 1.2.3.4 ttl", "mayura tcp 1.2.3.4:80 ttl=3",
		"mayura tcp 2001:db8::1:80", "mayura tcp [2001:db8::1]80", "mayura tcp [2001:db8::1:80", "mayura icmp [2001:db8::1]:80",
		"mayura icmp fe80::1%eth0"} {
		if _, err := ParseProbe(s, bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDefaultProbes(t *testing.T) {
	s, err := snapshot.Load(seedDir())
	if err != nil {
		t.Fatal(err)
	}
	ps := DefaultProbes(s)
	var lines []string
	ports := map[uint16]bool{}
	for _, p := range ps {
		lines = append(lines, ProbeString(p))
		if p.Proto != packet.ICMP {
			if p.SPort == 0 || ports[p.SPort] {
				t.Errorf("%s: source port not unique", ProbeString(p))
			}
			ports[p.SPort] = true
		}
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"0d1b1ae40269 icmp 142.250.115.106",            // an external node's owned address
		"0d1b1ae40269 icmp 10.0.2.21",                  // every other node's addresses
		"mayura tcp 172.17.0.2:443 sport=",             // a listener
		"internet tcp 203.0.113.2:22 sport=",           // ... on no node? (not expected: see below)
		"mayura tcp 192.168.122.120:1443 sport=",       // published port
		"0d1b1ae40269 tcp 192.168.122.120:1443 sport=", // hairpin
		"router udp 142.250.115.106:53 sport=",         // external listener on its owned address
		"rhel8a icmp 2001:db8:ffff::2",                 // IPv6, from a node that has it
		"router tcp [2001:db8:f00d::1]:443 sport=",     // ... to an owned IPv6 range
	} {
		if want == "internet tcp 203.0.113.2:22 sport=" {
			if strings.Contains(all, want) {
				t.Errorf("probe to a port nothing declares: %s", want)
			}
			continue
		}
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
	for _, p := range ps {
		if n := s.Node(p.From); local(n, p.Dst) {
			t.Errorf("%s: probes an address of its own sender", ProbeString(p))
		}
		if !p.Dst.IsValid() || p.Dst.Is4In6() || p.Dst.IsLoopback() || p.Dst.IsLinkLocalUnicast() || p.Dst.IsMulticast() {
			t.Errorf("%s: not a checkable destination", ProbeString(p))
		}
		if p.Dst.Is6() && !hasIPv6(s.Node(p.From)) {
			t.Errorf("%s: IPv6 from a node without IPv6", ProbeString(p))
		}
		if p.Dst.Is6() && p.Proto != packet.ICMP && !strings.Contains(ProbeString(p), "]:") {
			t.Errorf("%s: IPv6 destination and port not bracketed", ProbeString(p))
		}
		if back, err := ParseProbe(s, ProbeString(p)); err != nil || back != p {
			t.Errorf("%s does not read back: %+v, %v", ProbeString(p), back, err)
		}
	}
	if len(ps) < 50 || len(ps) > 300 {
		t.Errorf("%d default probes for the seed", len(ps))
	}
}

func TestPublished(t *testing.T) {
	s, err := snapshot.Load(seedDir())
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(Published(s, s.Node("rhel8a")))
	if !strings.Contains(got, "172.17.0.2:443") || !strings.Contains(got, "1443") || !strings.Contains(got, "172.17.0.2:80") {
		t.Errorf("rhel8a publishes %s", got)
	}
	if p := Published(s, s.Node("router")); len(p) != 0 {
		t.Errorf("router publishes %v", p)
	}
}

func TestAssess(t *testing.T) {
	tr := func(verdict string, unc ...string) *trace.Trace {
		return &trace.Trace{Verdict: verdict, Uncertain: unc}
	}
	cases := []struct {
		r    Result
		want string
	}{
		{Result{Trace: tr(trace.Answered), Outcome: OutcomeAnswered}, Agreed},
		{Result{Trace: tr(trace.Dropped), Outcome: OutcomeNoReply}, Agreed},
		{Result{Trace: tr(trace.Refused), Outcome: OutcomeRefused}, Agreed},
		{Result{Trace: tr(trace.Answered), Outcome: OutcomeNoReply}, Disagreed},
		{Result{Trace: tr(trace.Dropped), Outcome: OutcomeAnswered}, Disagreed},
		{Result{Trace: tr(trace.Answered), Outcome: OutcomeAnswered, Diffs: []string{"x"}}, Disagreed},
		{Result{Trace: tr(trace.Answered, "random"), Outcome: OutcomeNoReply}, Uncertain},
		{Result{Trace: tr(trace.Answered, "random"), Outcome: OutcomeAnswered}, Uncertain},
	}
	for i, tc := range cases {
		if got := Assess(&tc.r); got.Class != tc.want {
			t.Errorf("case %d: %s, want %s (%v)", i, got.Class, tc.want, got.Diffs)
		}
	}
	if got := sockOutcome(fmt.Errorf("x: %w", syscall.ECONNREFUSED)); got != OutcomeRefused {
		t.Errorf("ECONNREFUSED: %s", got)
	}
	if got := sockOutcome(fmt.Errorf("x: %w", lab.ErrNoReply)); got != OutcomeNoReply {
		t.Errorf("no reply: %s", got)
	}
	if got := sockOutcome(fmt.Errorf("x: %w", syscall.EHOSTUNREACH)); got != "no route to host" {
		t.Errorf("EHOSTUNREACH: %s", got)
	}
	if got := sockOutcome(errors.New("x")); got != OutcomeNotSent {
		t.Errorf("other: %s", got)
	}
	echo := packet.Packet{Proto: packet.ICMP, ICMPType: packet.ICMPEchoReply}
	unreach := packet.Packet{Proto: packet.ICMP, ICMPType: packet.ICMPDestUnreach, ICMPCode: packet.CodeHostProhibited}
	if got := pingOutcome([]packet.Packet{echo}, nil); got != OutcomeAnswered {
		t.Errorf("echo: %s", got)
	}
	if got := pingOutcome([]packet.Packet{unreach}, nil); got != "ICMP host prohibited" {
		t.Errorf("unreachable: %s", got)
	}
	if got := pingOutcome(nil, nil); got != OutcomeNoReply {
		t.Errorf("nothing: %s", got)
	}
}

func TestComparePaths(t *testing.T) {
	cap := func(node, dst string) trace.Capture {
		return trace.Capture{Node: node, Iface: "eth0", Dir: "out", Packet: packet.Packet{Src: addr("10.0.0.1"), Dst: addr(dst), Proto: packet.TCP, SPort: 1, DPort: 2, TCPFlags: packet.SYN, TTL: 64}}
	}
	kpkt := func(node, dst string) lab.Packet {
		c := cap(node, dst)
		return lab.Packet{Node: c.Node, Iface: c.Iface, Dir: c.Dir, IP: true, Pkt: c.Packet}
	}
	b1 := &trace.Trace{Verdict: trace.Answered, Captures: []trace.Capture{cap("n", "10.0.0.2")}, Choices: []string{"first endpoint"}}
	b2 := &trace.Trace{Verdict: trace.Answered, Captures: []trace.Capture{cap("n", "10.0.0.3")}, Choices: []string{"second endpoint"}}
	tr := &trace.Trace{Verdict: trace.Answered, Captures: b1.Captures, Branches: []*trace.Trace{b1, b2}}
	if p, d := comparePaths(tr, []lab.Packet{kpkt("n", "10.0.0.3")}); p != b2 || len(d) != 0 {
		t.Errorf("kernel took the second branch: got %v %v", p.Choices, d)
	}
	if p, d := comparePaths(tr, []lab.Packet{kpkt("n", "10.0.0.9")}); len(d) < 2 || !strings.Contains(d[0], "matches none of the 2 paths") || p == nil {
		t.Errorf("kernel took no branch: %v", d)
	}
	plain := &trace.Trace{Verdict: trace.Answered, Captures: b1.Captures}
	if p, d := comparePaths(plain, []lab.Packet{kpkt("n", "10.0.0.2")}); p != plain || len(d) != 0 {
		t.Errorf("no branches: %v", d)
	}
}

func TestDropEarlier(t *testing.T) {
	syn := packet.Packet{Src: addr("10.0.0.1"), Dst: addr("10.0.0.2"), Proto: packet.TCP, SPort: 41000, DPort: 22, TCPFlags: packet.SYN, TTL: 64}
	synack := packet.Packet{Src: addr("10.0.0.2"), Dst: addr("10.0.0.1"), Proto: packet.TCP, SPort: 22, DPort: 41000, TCPFlags: packet.SYN | packet.ACK, TTL: 64}
	echo := packet.Packet{Src: addr("10.0.0.1"), Dst: addr("10.0.0.3"), Proto: packet.ICMP, ICMPType: packet.ICMPEchoRequest, ICMPID: 7, TTL: 64}
	k := func(p packet.Packet) lab.Packet {
		return lab.Packet{Node: "a", Iface: "eth0", Dir: "out", IP: true, Pkt: p}
	}
	earlier := map[string]bool{}
	first := &Result{Trace: &trace.Trace{}, Kernel: []lab.Packet{k(syn)}}
	dropEarlier(first, earlier)
	// The next probe sees the server's retransmitted SYN-ACK of the first.
	second := &Result{Trace: &trace.Trace{Captures: []trace.Capture{{Node: "a", Iface: "eth0", Dir: "out", Packet: echo}}},
		Kernel: []lab.Packet{k(synack), k(echo)}, Diffs: []string{"stale"}}
	dropEarlier(second, earlier)
	if len(second.Kernel) != 1 || second.Kernel[0].Pkt.Proto != packet.ICMP || len(second.Diffs) != 0 || !second.Agreed {
		t.Errorf("the first probe's SYN-ACK was not set aside: %v %v", second.Kernel, second.Diffs)
	}
}

func TestRedirectPacer(t *testing.T) {
	h := addr("10.0.0.3")
	redirect := lab.Packet{IP: true, Pkt: packet.Packet{Src: addr("10.0.0.1"), Dst: h, Proto: packet.ICMP, ICMPType: packet.ICMPRedirect, ICMPCode: 1,
		Inner: &packet.Packet{Src: h, Dst: addr("10.0.0.2"), Proto: packet.ICMP}}}
	rp := redirectPacer{}
	if w := rp.wait([]netip.Addr{h}); w != 0 {
		t.Errorf("first redirect: wait %v", w)
	}
	for i := 0; i < 6; i++ {
		rp.saw([]lab.Packet{redirect, redirect}) // seen on two interfaces: one redirect
	}
	if st := rp[h]; st.n != 6 {
		t.Fatalf("counted %d redirects, want 6", st.n)
	}
	if w := rp.wait([]netip.Addr{h}); w < 1200*time.Millisecond || w > 1400*time.Millisecond {
		t.Errorf("7th redirect: wait %v, want about 20ms<<6", w)
	}
	rp[h].n = redirectNumber
	if w := rp.wait([]netip.Addr{h}); w < redirectSilence {
		t.Errorf("after %d redirects: wait %v, want the 20 s silence", redirectNumber, w)
	}
	if w := rp.wait([]netip.Addr{addr("10.0.0.9")}); w != 0 {
		t.Errorf("another host: wait %v", w)
	}
}
