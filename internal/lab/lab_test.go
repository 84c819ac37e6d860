package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// TestMain tears down every lab still up when the run ends or is
// interrupted, so no namespace outlives the test binary.
func TestMain(m *testing.M) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		Teardown()
		os.Exit(2)
	}()
	code := m.Run()
	if err := Teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "teardown:", err)
		code = 1
	}
	os.Exit(code)
}

// needLab skips a test that needs root, ip netns and tcpdump.
func needLab(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipping lab test: %v", err)
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("skipping lab test: tcpdump not installed (apt-get install -y tcpdump)")
	}
}

// syncBuffer is a log sink safe for the lab's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ourNamespaces lists the machine's namespaces that start with prefix.
func ourNamespaces(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var ours []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			ours = append(ours, f[0])
		}
	}
	return ours
}

// up builds a lab for a test and registers its teardown, checking that
// it leaves no namespace behind.
func up(t *testing.T, snap *model.Snapshot) *Lab {
	t.Helper()
	log := &syncBuffer{}
	var sink io.Writer = log
	if os.Getenv("LAB_LOG") != "" { // stream the lab's commands and timings
		sink = io.MultiWriter(log, os.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	l, err := Up(ctx, snap, Options{Log: sink})
	if err != nil {
		t.Fatalf("Up: %v\nlog:\n%s", err, log)
	}
	t.Logf("Up took %v (%d namespaces)", time.Since(start).Round(time.Millisecond), len(l.Namespaces()))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab log:\n%s", log)
		}
		if err := l.Down(); err != nil {
			t.Errorf("Down: %v", err)
		}
		if left := ourNamespaces(t, l.Prefix()); len(left) > 0 {
			t.Errorf("namespaces left after Down: %v", left)
		}
	})
	for _, w := range l.Warnings() {
		t.Logf("warning: %s", w)
	}
	return l
}

// Model builders, to keep the scenarios readable.

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func iface(name, mac string, addrs ...string) *model.Interface {
	i := &model.Interface{Name: name, MAC: mac, Up: true, Kind: model.IfVeth}
	for _, a := range addrs {
		i.Addrs = append(i.Addrs, model.IfAddr{Prefix: pfx(a)})
	}
	return i
}

func node(name string, ifs ...*model.Interface) *model.Node {
	return &model.Node{Name: name, Kind: model.KindHost, Interfaces: ifs, Sysctls: map[string]model.Sysctl{}}
}

func via(dst, gw, dev string) model.Route {
	r := model.Route{Table: model.TableMain, Type: model.RouteUnicast, Dst: pfx(dst), Dev: dev}
	if gw != "" {
		r.Via = addr(gw)
	}
	return r
}

func ep(s string) model.Endpoint {
	n, i, _ := strings.Cut(s, ":")
	return model.Endpoint{Node: n, Iface: i}
}

func link(kind model.LinkKind, ends ...string) *model.Link {
	lk := &model.Link{Kind: kind}
	for _, e := range ends {
		lk.Ends = append(lk.Ends, ep(e))
	}
	return lk
}

// ruleset builds an iptables ruleset from iptables-save-like lines: only
// "*table", ":CHAIN POLICY" and "-A" lines, as Origin texts.
func ruleset(lines ...string) *model.Ruleset {
	rs := &model.Ruleset{Family: 4}
	var t *model.Table
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "*"):
			t = &model.Table{Name: line[1:]}
			rs.Tables = append(rs.Tables, t)
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			t.Chains = append(t.Chains, &model.Chain{Name: f[0], Policy: f[1], Builtin: f[1] != "-"})
		case strings.HasPrefix(line, "-A "):
			name := strings.Fields(line)[1]
			c := t.Chain(name)
			c.Rules = append(c.Rules, &model.Rule{Chain: name, Pos: len(c.Rules) + 1, Origin: model.Origin{Text: line}})
		}
	}
	return rs
}

func dump(pkts []Packet) string {
	var b strings.Builder
	for _, p := range pkts {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// on returns the packets captured on one interface, in order.
func on(pkts []Packet, e string) []Packet {
	var out []Packet
	for _, p := range pkts {
		if p.Node+":"+p.Iface == e {
			out = append(out, p)
		}
	}
	return out
}

// find returns the first packet on interface e in direction dir that
// satisfies match, failing the test when there is none.
func find(t *testing.T, pkts []Packet, e, dir string, what string, match func(p *packet.Packet) bool) Packet {
	t.Helper()
	for _, p := range on(pkts, e) {
		if p.Dir == dir && match(&p.Pkt) {
			return p
		}
	}
	t.Fatalf("no %s packet on %s (%s); captured:\n%s", dir, e, what, dump(pkts))
	return Packet{}
}

func isEcho(typ uint8, src, dst string) func(p *packet.Packet) bool {
	return func(p *packet.Packet) bool {
		return p.Proto == packet.ICMP && p.ICMPType == typ && p.Src == addr(src) && p.Dst == addr(dst)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestVethPing: two namespaces joined by a veth; one ping is captured on
// both ends, with each end's TTL and the kernel's directions.
func TestVethPing(t *testing.T) {
	needLab(t)
	a := node("a", iface("eth0", "02:00:00:00:00:0a", "192.0.2.1/24"))
	b := node("b", iface("eth0", "02:00:00:00:00:0b", "192.0.2.2/24"))
	b.InitialTTL = 77
	l := up(t, &model.Snapshot{Nodes: []*model.Node{a, b}, Links: []*model.Link{link(model.LinkVeth, "a:eth0", "b:eth0")}})
	c := ctx(t)

	// The baseline, not the machine's root namespace, decides sysctls.
	for _, chk := range []struct{ node, key, want string }{
		{"a", "net.ipv4.ip_forward", "0"},
		{"b", "net.ipv4.ip_default_ttl", "77"},
		{"a", "net.ipv4.conf.all.rp_filter", "0"},
		{"a", "net.ipv6.conf.all.disable_ipv6", "1"},
	} {
		out, err := l.Exec(c, chk.node, "cat", "/proc/sys/"+strings.ReplaceAll(chk.key, ".", "/"))
		if err != nil || strings.TrimSpace(string(out)) != chk.want {
			t.Errorf("%s: %s = %q (%v), want %s", chk.node, chk.key, out, err, chk.want)
		}
	}

	var answers []packet.Packet
	pkts, err := l.Capture(c, nil, func() error {
		var err error
		answers, err = l.Ping(c, "a", addr("192.0.2.2"), 64, 1)
		return err
	}, 0)
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	if len(answers) != 1 || answers[0].ICMPType != packet.ICMPEchoReply || answers[0].TTL != 77 {
		t.Fatalf("answers = %+v, want one echo reply with TTL 77", answers)
	}
	if len(pkts) != 4 {
		t.Fatalf("captured %d packets, want 4:\n%s", len(pkts), dump(pkts))
	}
	want := []struct {
		e, dir string
		typ    uint8
		ttl    uint8
		src    string
		smac   string
	}{
		{"a:eth0", "out", packet.ICMPEchoRequest, 64, "192.0.2.1", "02:00:00:00:00:0a"},
		{"b:eth0", "in", packet.ICMPEchoRequest, 64, "192.0.2.1", "02:00:00:00:00:0a"},
		{"b:eth0", "out", packet.ICMPEchoReply, 77, "192.0.2.2", "02:00:00:00:00:0b"},
		{"a:eth0", "in", packet.ICMPEchoReply, 77, "192.0.2.2", "02:00:00:00:00:0b"},
	}
	for i, w := range want {
		p := pkts[i]
		if p.Node+":"+p.Iface != w.e || p.Dir != w.dir || p.Pkt.ICMPType != w.typ || p.Pkt.TTL != w.ttl ||
			p.Pkt.Src != addr(w.src) || p.SrcMAC != w.smac || p.Pkt.Len != 64 || p.Pkt.ICMPID != answers[0].ICMPID {
			t.Errorf("packet %d = %v (src mac %s), want %s %s type %d ttl %d from %s (%s) length 64", i, p, p.SrcMAC, w.e, w.dir, w.typ, w.ttl, w.src, w.smac)
		}
		// The kernel's direction agrees with the MAC rule on a plain veth.
		if mine := p.SrcMAC == l.MAC(model.Endpoint{Node: p.Node, Iface: p.Iface}); mine != (p.Dir == "out") {
			t.Errorf("packet %d: direction %s but source MAC %s vs own %s", i, p.Dir, p.SrcMAC, l.MAC(model.Endpoint{Node: p.Node, Iface: p.Iface}))
		}
	}
	if on(pkts, "a:eth0")[1].Seq != 1 || on(pkts, "b:eth0")[0].Seq != 0 {
		t.Errorf("Seq not per interface:\n%s", dump(pkts))
	}

	// Unfiltered, only ARP comes on top: IPv6 is off, so no ND or MLD.
	raw, err := l.CaptureRaw(c, []model.Endpoint{ep("a:eth0")}, func() error {
		_, err := l.Exec(c, "a", "ip", "neigh", "flush", "dev", "eth0")
		if err == nil {
			_, err = l.Ping(c, "a", addr("192.0.2.2"), 0, 1)
		}
		return err
	}, 0)
	if err != nil {
		t.Fatalf("CaptureRaw: %v", err)
	}
	var arp, ip int
	for _, p := range raw {
		switch {
		case p.EtherType == 0x0806:
			arp++
		case p.IP && p.Pkt.Src.Is4():
			ip++
		default:
			t.Errorf("unexpected frame %v", p)
		}
	}
	if arp == 0 || ip != 2 {
		t.Errorf("raw capture: %d ARP and %d IPv4 frames, want some ARP and 2 IPv4:\n%s", arp, ip, dump(raw))
	}
}

// natSnapshot is a container behind a Linux bridge on a host, behind a
// router that masquerades onto an external network owning 203.0.113.0/24.
// The host-router segment has a third end (a monitor node), so it is a
// hidden switch namespace.
func natSnapshot() *model.Snapshot {
	ctr := node("ctr", iface("eth0", "02:00:00:00:01:02", "10.88.0.2/24"))
	ctr.Kind = model.KindContainer
	ctr.Routes = []model.Route{via("0.0.0.0/0", "10.88.0.1", "eth0")}

	br := iface("br0", "02:00:00:00:02:01", "10.88.0.1/24")
	br.Kind = model.IfBridge
	port := iface("vethc", "02:00:00:00:02:02")
	port.Master = "br0"
	host := node("host", br, port, iface("eth0", "02:00:00:00:02:03", "192.168.50.2/24"))
	host.Routes = []model.Route{via("0.0.0.0/0", "192.168.50.1", "eth0")}
	host.Sysctls["net.ipv4.ip_forward"] = model.Sysctl{Value: "1"}

	rtr := node("router", iface("eth0", "02:00:00:00:03:01", "192.168.50.1/24"), iface("eth1", "02:00:00:00:03:02", "198.51.100.1/24"))
	rtr.Kind = model.KindRouter
	rtr.Routes = []model.Route{via("10.88.0.0/16", "192.168.50.2", "eth0"), via("0.0.0.0/0", "198.51.100.2", "eth1")}
	rtr.Sysctls["net.ipv4.ip_forward"] = model.Sysctl{Value: "1"}
	rtr.IPv4 = ruleset(
		"*nat", ":PREROUTING ACCEPT", ":INPUT ACCEPT", ":OUTPUT ACCEPT", ":POSTROUTING ACCEPT",
		"-A POSTROUTING -o eth1 -j MASQUERADE",
		"*filter", ":INPUT ACCEPT", ":FORWARD DROP", ":OUTPUT ACCEPT",
		"-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"-A FORWARD -i eth0 -o eth1 -j ACCEPT",
	)

	mon := node("mon", iface("eth0", "02:00:00:00:04:01", "192.168.50.9/24"))

	inet := node("inet", iface("eth0", "02:00:00:00:05:01", "198.51.100.2/24"))
	inet.Kind = model.KindExternal
	inet.Owns = []netip.Prefix{pfx("203.0.113.0/24")}
	inet.Listeners = []model.Listener{{Proto: "tcp", Port: 8080}, {Proto: "udp", Port: 7}}

	return &model.Snapshot{
		Nodes: []*model.Node{ctr, host, rtr, mon, inet},
		Links: []*model.Link{
			link(model.LinkVeth, "ctr:eth0", "host:vethc"),
			link(model.LinkSegment, "host:eth0", "router:eth0", "mon:eth0"),
			link(model.LinkSegment, "router:eth1", "inet:eth0"),
		},
	}
}

// TestMasquerade: ICMP, TCP and UDP from a container leave the router's
// outside interface with the router's address, and the replies are
// translated back by conntrack on the way in.
func TestMasquerade(t *testing.T) {
	needLab(t)
	l := up(t, natSnapshot())
	c := ctx(t)
	if n := len(l.Namespaces()); n != 6 {
		t.Errorf("%d namespaces, want 5 nodes and 1 segment: %v", n, l.Namespaces())
	}

	t.Run("icmp", func(t *testing.T) {
		var answers []packet.Packet
		pkts, err := l.Capture(c, nil, func() error {
			var err error
			answers, err = l.Ping(c, "ctr", addr("203.0.113.10"), 0, 1)
			return err
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(answers) != 1 || answers[0].ICMPType != packet.ICMPEchoReply || answers[0].Src != addr("203.0.113.10") || answers[0].TTL != 62 {
			t.Fatalf("answers = %+v, want an echo reply from 203.0.113.10 with TTL 62;\n%s", answers, dump(pkts))
		}
		req := find(t, pkts, "ctr:eth0", "out", "echo request", isEcho(8, "10.88.0.2", "203.0.113.10"))
		find(t, pkts, "host:br0", "in", "echo request to route", isEcho(8, "10.88.0.2", "203.0.113.10"))
		out := find(t, pkts, "router:eth1", "out", "masqueraded request", isEcho(8, "198.51.100.1", "203.0.113.10"))
		if out.Pkt.TTL != 62 || req.Pkt.TTL != 64 {
			t.Errorf("TTLs: %d at the container, %d leaving the router; want 64, 62", req.Pkt.TTL, out.Pkt.TTL)
		}
		find(t, pkts, "router:eth1", "in", "reply to the router's address", isEcho(0, "203.0.113.10", "198.51.100.1"))
		back := find(t, pkts, "router:eth0", "out", "reply translated back", isEcho(0, "203.0.113.10", "10.88.0.2"))
		if back.Pkt.TTL != 63 {
			t.Errorf("reply TTL leaving the router = %d, want 63", back.Pkt.TTL)
		}
		find(t, pkts, "ctr:eth0", "in", "reply", isEcho(0, "203.0.113.10", "10.88.0.2"))
		for _, p := range on(pkts, "router:eth1") {
			if p.Pkt.Src == addr("10.88.0.2") || p.Pkt.Dst == addr("10.88.0.2") {
				t.Errorf("untranslated packet outside: %v", p)
			}
		}
	})

	t.Run("tcp", func(t *testing.T) {
		src := netip.MustParseAddrPort("10.88.0.2:40001")
		pkts, err := l.Capture(c, nil, func() error {
			return l.TCPConnect(c, "ctr", src, netip.MustParseAddrPort("203.0.113.10:8080"))
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		syn := func(flags uint8, s, d string, sport, dport uint16) func(p *packet.Packet) bool {
			return func(p *packet.Packet) bool {
				return p.Proto == packet.TCP && p.TCPFlags&(packet.SYN|packet.ACK|packet.RST) == flags &&
					p.Src == addr(s) && p.Dst == addr(d) && (sport == 0 || p.SPort == sport) && p.DPort == dport
			}
		}
		find(t, pkts, "ctr:eth0", "out", "SYN", syn(packet.SYN, "10.88.0.2", "203.0.113.10", 40001, 8080))
		o := find(t, pkts, "router:eth1", "out", "masqueraded SYN", syn(packet.SYN, "198.51.100.1", "203.0.113.10", 0, 8080))
		find(t, pkts, "router:eth1", "in", "SYN-ACK to the router", syn(packet.SYN|packet.ACK, "203.0.113.10", "198.51.100.1", 8080, o.Pkt.SPort))
		find(t, pkts, "router:eth0", "out", "SYN-ACK translated back", syn(packet.SYN|packet.ACK, "203.0.113.10", "10.88.0.2", 8080, 40001))
		find(t, pkts, "ctr:eth0", "in", "SYN-ACK", syn(packet.SYN|packet.ACK, "203.0.113.10", "10.88.0.2", 8080, 40001))
		// The listener closes after the client: a FIN comes back.
		find(t, pkts, "ctr:eth0", "in", "FIN from the listener", func(p *packet.Packet) bool {
			return p.Proto == packet.TCP && p.TCPFlags&packet.FIN != 0 && p.Src == addr("203.0.113.10")
		})
	})

	t.Run("udp-owned-address", func(t *testing.T) {
		var reply []byte
		pkts, err := l.Capture(c, []model.Endpoint{ep("router:eth1"), ep("ctr:eth0")}, func() error {
			var err error
			reply, err = l.UDPSend(c, "ctr", netip.AddrPort{}, netip.MustParseAddrPort("203.0.113.77:7"), []byte("hello"))
			return err
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if string(reply) != "hello" {
			t.Errorf("reply %q, want the echo", reply)
		}
		// The external node answers from the owned address it was asked.
		r := find(t, pkts, "router:eth1", "in", "UDP reply", func(p *packet.Packet) bool {
			return p.Proto == packet.UDP && p.Src == addr("203.0.113.77") && p.SPort == 7 && p.Dst == addr("198.51.100.1")
		})
		if r.Pkt.Len != 5 {
			t.Errorf("UDP length %d, want 5", r.Pkt.Len)
		}
	})

	t.Run("ttl-exceeded", func(t *testing.T) {
		var answers []packet.Packet
		pkts, err := l.Capture(c, []model.Endpoint{ep("ctr:eth0")}, func() error {
			var err error
			answers, err = l.Ping(c, "ctr", addr("203.0.113.10"), 2, 1)
			return err
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		te := find(t, pkts, "ctr:eth0", "in", "time exceeded", func(p *packet.Packet) bool {
			return p.Proto == packet.ICMP && p.ICMPType == packet.ICMPTimeExceeded && p.Src == addr("192.168.50.1")
		})
		in := te.Pkt.Inner
		if in == nil || in.Src != addr("10.88.0.2") || in.Dst != addr("203.0.113.10") || in.Proto != packet.ICMP ||
			in.ICMPType != packet.ICMPEchoRequest || in.TTL != 1 || len(answers) != 1 || in.ICMPID != answers[0].Inner.ICMPID {
			t.Errorf("time exceeded %v, answers %v: want the quoted echo request with TTL 1", te, answers)
		}
	})
}

// TestUpFailsMidway: a route the kernel refuses fails Up after several
// namespaces exist; all of them are gone when Up returns, and a
// namespace that Up did not create is never deleted.
func TestUpFailsMidway(t *testing.T) {
	needLab(t)
	prefix := "pft" + token()
	a := node("a", iface("eth0", "", "192.0.2.1/24"))
	b := node("b", iface("eth0", "", "192.0.2.2/24"))
	b.Routes = []model.Route{via("10.9.0.0/16", "172.31.9.9", "eth0")} // gateway not on any link
	snap := &model.Snapshot{Nodes: []*model.Node{a, b}, Links: []*model.Link{link(model.LinkVeth, "a:eth0", "b:eth0")}}
	log := &syncBuffer{}
	l, err := Up(context.Background(), snap, Options{Prefix: prefix, Log: log})
	if err == nil {
		l.Down()
		t.Fatal("Up succeeded with an unreachable gateway")
	}
	t.Logf("Up: %v", err)
	if !strings.Contains(err.Error(), "10.9.0.0/16") || !strings.Contains(log.String(), "ip netns add "+prefix+"-b") {
		t.Errorf("error %q does not come from the route after the namespaces were made; log:\n%s", err, log)
	}
	if left := ourNamespaces(t, prefix); len(left) > 0 {
		t.Errorf("namespaces left after a failed Up: %v", left)
		for _, ns := range left {
			exec.Command("ip", "netns", "delete", ns).Run()
		}
	}

	// A name clash: Up must fail without deleting what it did not make.
	foreign := prefix + "-a"
	if out, err := exec.Command("ip", "netns", "add", foreign).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "delete", foreign).Run()
	b.Routes = nil
	if l, err := Up(context.Background(), snap, Options{Prefix: prefix}); err == nil {
		l.Down()
		t.Fatal("Up reused an existing namespace")
	}
	if left := ourNamespaces(t, prefix); len(left) != 1 || left[0] != foreign {
		t.Errorf("after a clash, namespaces %v, want only the foreign %s", left, foreign)
	}
}

// TestUDPPortUnreachable: a datagram to a closed port comes back as an
// ICMP port unreachable whose quoted header is decoded.
func TestUDPPortUnreachable(t *testing.T) {
	needLab(t)
	a := node("a", iface("eth0", "", "198.51.100.10/24"))
	b := node("b", iface("eth0", "", "198.51.100.20/24"))
	b.Listeners = []model.Listener{{Proto: "udp", Port: 7}} // not the port we send to
	l := up(t, &model.Snapshot{Nodes: []*model.Node{a, b}, Links: []*model.Link{link(model.LinkSegment, "a:eth0", "b:eth0")}})
	c := ctx(t)
	src := netip.MustParseAddrPort("198.51.100.10:33333")
	var sendErr error
	pkts, err := l.Capture(c, nil, func() error {
		_, sendErr = l.UDPSend(c, "a", src, netip.MustParseAddrPort("198.51.100.20:9"), []byte("ping!!"))
		return nil
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sendErr, syscall.ECONNREFUSED) {
		t.Errorf("UDPSend error = %v, want connection refused", sendErr)
	}
	isUnreach := func(p *packet.Packet) bool {
		return p.Proto == packet.ICMP && p.ICMPType == packet.ICMPDestUnreach && p.ICMPCode == packet.CodePortUnreach
	}
	find(t, pkts, "b:eth0", "out", "port unreachable", isUnreach)
	u := find(t, pkts, "a:eth0", "in", "port unreachable", isUnreach)
	want := packet.Packet{Src: addr("198.51.100.10"), Dst: addr("198.51.100.20"), Proto: packet.UDP, SPort: 33333, DPort: 9, TTL: 64, DF: true, Len: 6}
	if u.Pkt.Src != addr("198.51.100.20") || u.Pkt.Dst != addr("198.51.100.10") || u.Pkt.Inner == nil || *u.Pkt.Inner != want {
		t.Errorf("port unreachable = %v,\ninner %+v,\nwant inner %+v", u, u.Pkt.Inner, want)
	}
	if u.Pkt.Len != 8+20+8+6 {
		t.Errorf("ICMP length %d, want %d (header, quoted IP header, UDP header, payload)", u.Pkt.Len, 8+20+8+6)
	}
	find(t, pkts, "a:eth0", "out", "the datagram", func(p *packet.Packet) bool {
		return p.Proto == packet.UDP && p.DPort == 9 && p.SPort == 33333 && p.Len == 6
	})
}

// TestIPv6: IPv6 stays enabled where the model uses it, addresses are
// usable at once (no DAD), ND and MLD are filtered out, and listeners
// without an address answer on IPv6 too.
func TestIPv6(t *testing.T) {
	needLab(t)
	a := node("a", iface("eth0", "02:00:00:00:06:01", "2001:db8::1/64", "192.0.2.1/24"))
	b := node("b", iface("eth0", "02:00:00:00:06:02", "2001:db8::2/64"))
	b.Listeners = []model.Listener{{Proto: "tcp", Port: 80}, {Proto: "udp", Port: 53}}
	l := up(t, &model.Snapshot{Nodes: []*model.Node{a, b}, Links: []*model.Link{link(model.LinkVeth, "a:eth0", "b:eth0")}})
	c := ctx(t)
	var answers []packet.Packet
	var reply []byte
	pkts, err := l.Capture(c, nil, func() error {
		var err error
		if answers, err = l.Ping(c, "a", addr("2001:db8::2"), 0, 1); err != nil {
			return err
		}
		if err := l.TCPConnect(c, "a", netip.AddrPort{}, netip.MustParseAddrPort("[2001:db8::2]:80")); err != nil {
			return err
		}
		reply, err = l.UDPSend(c, "a", netip.AddrPort{}, netip.MustParseAddrPort("[2001:db8::2]:53"), []byte("q"))
		return err
	}, 0)
	if err != nil {
		t.Fatalf("Capture: %v\n%s", err, dump(pkts))
	}
	if len(answers) != 1 || answers[0].ICMPType != 129 || answers[0].Src != addr("2001:db8::2") || answers[0].Dst != addr("2001:db8::1") || answers[0].TTL != 64 {
		t.Errorf("answers %+v, want an echo reply from 2001:db8::2 with hop limit 64", answers)
	}
	if string(reply) != "q" {
		t.Errorf("UDP reply %q", reply)
	}
	for _, p := range pkts {
		if !p.Pkt.Is6() || p.Pkt.Proto == packet.ICMPv6 && p.Pkt.ICMPType != 128 && p.Pkt.ICMPType != 129 {
			t.Errorf("unexpected packet %v", p)
		}
	}
	find(t, pkts, "b:eth0", "in", "echo request", func(p *packet.Packet) bool {
		return p.Proto == packet.ICMPv6 && p.ICMPType == 128 && p.Len == 64 && p.TTL == 64
	})
	find(t, pkts, "a:eth0", "in", "SYN-ACK", func(p *packet.Packet) bool {
		return p.Proto == packet.TCP && p.TCPFlags&(packet.SYN|packet.ACK) == packet.SYN|packet.ACK && p.SPort == 80
	})
	find(t, pkts, "b:eth0", "out", "UDP reply", func(p *packet.Packet) bool {
		return p.Proto == packet.UDP && p.SPort == 53 && p.Len == 1
	})
}

// TestBuildShapes builds the less common shapes and checks the kernel
// took them: a one-ended segment, a dummy, an implicit bridge, a
// noprefixroute address with its kernel route, multipath, blackhole and
// policy routing, a permanent neighbour, per-device sysctls.
func TestBuildShapes(t *testing.T) {
	needLab(t)
	up1 := iface("eth0", "02:00:00:00:07:01", "192.0.2.1/24")
	np := iface("eth1", "02:00:00:00:07:02")
	np.Addrs = []model.IfAddr{{Prefix: pfx("198.51.100.1/24"), Flags: []string{"noprefixroute"}}}
	dum := iface("dummy0", "02:00:00:00:07:03", "203.0.113.1/32")
	dum.Kind = model.IfDummy
	port := iface("p1", "")
	port.Master = "brx" // not listed: an implicit bridge
	lo := iface("lo", "00:00:00:00:00:00", "127.0.0.1/8", "::1/128")
	lo.Kind, lo.MTU = model.IfLoopback, 65536
	docker0 := iface("docker0", "02:42:00:00:00:01", "172.17.0.1/16")
	docker0.Kind, docker0.Up, docker0.Flags = model.IfBridge, false, []string{"NO-CARRIER", "BROADCAST", "MULTICAST", "UP"}
	a := node("a", lo, up1, np, dum, port, docker0)
	a.Routes = []model.Route{
		{Table: model.TableMain, Dst: pfx("198.51.100.0/24"), Dev: "eth1", Proto: "kernel", Scope: "link", Src: addr("198.51.100.1"), Metric: 100},
		{Table: model.TableMain, Dst: pfx("10.0.0.0/8"), Nexthops: []model.Nexthop{{Via: addr("192.0.2.254"), Dev: "eth0", Weight: 1}, {Via: addr("198.51.100.254"), Dev: "eth1", Weight: 3}}},
		{Table: 100, Type: model.RouteBlackhole, Dst: pfx("0.0.0.0/0")},
		// Listed before the route it depends on: retried.
		{Table: model.TableMain, Dst: pfx("172.16.0.0/12"), Via: addr("10.1.2.3")},
		{Table: model.TableMain, Dst: pfx("10.1.2.0/24"), Dev: "eth0", Scope: "link"},
		via("10.200.0.0/16", "192.0.2.254", "eth0"),
	}
	a.Rules = []model.PolicyRule{
		{Priority: 0, Table: model.TableLocal}, {Priority: 32766, Table: model.TableMain}, {Priority: 32767, Table: model.TableDefault},
		{Priority: 1000, From: pfx("203.0.113.1/32"), Table: 100, Action: "lookup"},
	}
	a.Neighbors = []model.Neighbor{{Addr: addr("192.0.2.254"), Dev: "eth0", MAC: "02:00:00:00:07:fe", State: "REACHABLE"}}
	a.Sysctls["net.ipv4.conf.eth0.forwarding"] = model.Sysctl{Value: "1"}
	a.Sysctls["kernel.hostname"] = model.Sysctl{Value: "nope"}
	a.Sysctls["net.ipv4.conf.eth0.no_such_knob"] = model.Sysctl{Value: "1"}
	b := node("b", iface("eth0", "", "192.0.2.2/24"))
	l := up(t, &model.Snapshot{Nodes: []*model.Node{a, b}, Links: []*model.Link{
		link(model.LinkSegment, "a:eth0"),
		link(model.LinkTap, "a:p1", "b:eth0"),
		link(model.LinkSegment, "a:eth1"),
	}})
	c := ctx(t)
	show := func(argv ...string) string {
		out, err := l.Exec(c, "a", argv...)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	for _, chk := range []struct {
		argv []string
		want []string
	}{
		{[]string{"ip", "route", "show", "table", "all"}, []string{
			"198.51.100.0/24 dev eth1 proto kernel scope link src 198.51.100.1 metric 100",
			"nexthop via 192.0.2.254 dev eth0 weight 1",
			"nexthop via 198.51.100.254 dev eth1 weight 3",
			"blackhole default table 100",
			"172.16.0.0/12 via 10.1.2.3 dev eth0",
			"local 203.0.113.1 dev dummy0 table local",
		}},
		{[]string{"ip", "rule"}, []string{"1000:\tfrom 203.0.113.1 lookup 100"}},
		{[]string{"ip", "neigh"}, []string{"192.0.2.254 dev eth0 lladdr 02:00:00:00:07:fe PERMANENT"}},
		{[]string{"ip", "-d", "link", "show", "brx"}, []string{"bridge forward_delay 0", "stp_state 0"}},
		{[]string{"ip", "-d", "link", "show", "p1"}, []string{"master brx", "veth"}},
		{[]string{"ip", "-d", "link", "show", "dummy0"}, []string{"NOARP", "UP", "02:00:00:00:07:03"}}, // a dummy or its stand-in
		{[]string{"ip", "link", "show", "eth0"}, []string{"state UP", "02:00:00:00:07:01"}},
		{[]string{"ip", "link", "show", "docker0"}, []string{"NO-CARRIER", "UP", "state DOWN"}},
		{[]string{"ip", "addr", "show", "lo"}, []string{"127.0.0.1/8", "state UNKNOWN"}},
		{[]string{"cat", "/proc/sys/net/ipv4/conf/eth0/forwarding", "/proc/sys/net/ipv4/ip_forward"}, []string{"1\n0\n"}},
	} {
		out := show(chk.argv...)
		for _, w := range chk.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in:\n%s", strings.Join(chk.argv, " "), w, out)
			}
		}
	}
	if strings.Count(show("ip", "rule"), "lookup main") != 1 {
		t.Errorf("default rules duplicated:\n%s", show("ip", "rule"))
	}
	warned := strings.Join(l.Warnings(), "\n")
	if !strings.Contains(warned, "kernel.hostname") || !strings.Contains(warned, "no_such_knob") {
		t.Errorf("warnings %q should name the skipped sysctls", warned)
	}
	if n := len(l.Namespaces()); n != 4 && n != 5 {
		t.Errorf("namespaces %v, want 2 nodes, 2 one-ended segments and maybe a stub", l.Namespaces())
	}
	// The one-ended segment has carrier: a packet sent there leaves.
	pkts, err := l.Capture(c, []model.Endpoint{ep("a:eth0")}, func() error {
		conn, err := l.Dial(c, "a", "udp", netip.AddrPort{}, netip.MustParseAddrPort("10.200.0.9:9"))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write([]byte("x"))
		return err
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 1 || pkts[0].Dir != "out" || pkts[0].DstMAC != "02:00:00:00:07:fe" {
		t.Errorf("want one datagram out to the permanent neighbour:\n%s", dump(pkts))
	}
}
