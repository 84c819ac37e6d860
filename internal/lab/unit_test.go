package lab

// Tests of the pure parts: they need neither root nor namespaces.

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

func TestRouteArgs(t *testing.T) {
	for _, tc := range []struct {
		r    model.Route
		want string
	}{
		{via("0.0.0.0/0", "192.0.2.1", "eth0"), "-4 route add 0.0.0.0/0 via 192.0.2.1 dev eth0"},
		{model.Route{Table: 100, Dst: pfx("10.1.0.0/16"), Via: addr("192.0.2.254"), Dev: "eth1", Metric: 50, Proto: "static", Src: addr("192.0.2.10"), OnLink: true},
			"-4 route add 10.1.0.0/16 table 100 metric 50 proto static src 192.0.2.10 via 192.0.2.254 dev eth1 onlink"},
		{model.Route{Table: model.TableMain, Type: model.RouteBlackhole, Dst: pfx("198.51.100.0/24"), Dev: "lo"}, "-4 route add blackhole 198.51.100.0/24"},
		{model.Route{Table: 7, Type: model.RouteThrow, Dst: pfx("10.0.0.0/8")}, "-4 route add throw 10.0.0.0/8 table 7"},
		{model.Route{Table: model.TableMain, Dst: pfx("192.0.2.0/24"), Dev: "eth0", Proto: "kernel", Scope: "link", Src: addr("192.0.2.5")},
			"-4 route add 192.0.2.0/24 proto kernel scope link src 192.0.2.5 dev eth0"},
		{model.Route{Dst: pfx("0.0.0.0/0"), Nexthops: []model.Nexthop{{Via: addr("192.0.2.1"), Dev: "eth0", Weight: 1}, {Via: addr("198.51.100.1"), Dev: "eth1", Weight: 2}}},
			"-4 route add 0.0.0.0/0 nexthop via 192.0.2.1 dev eth0 weight 1 nexthop via 198.51.100.1 dev eth1 weight 2"},
		{model.Route{Table: model.TableMain, Dst: pfx("2001:db8::/32"), Via: addr("fe80::1"), Dev: "eth0", Metric: 1024, Proto: "bird"},
			"-6 route add 2001:db8::/32 metric 1024 via fe80::1 dev eth0"},
		{model.Route{Dst: pfx("203.0.113.0/24"), Via: addr("fe80::1"), Dev: "eth0"}, "-4 route add 203.0.113.0/24 via inet6 fe80::1 dev eth0"},
		{model.Route{Dst: pfx("10.0.0.5/8"), Dev: "eth0", MTU: 1400}, "-4 route add 10.0.0.0/8 mtu 1400 dev eth0"},
	} {
		got, err := routeArgs(tc.r)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("routeArgs(%+v) = %q, %v\nwant %q", tc.r, strings.Join(got, " "), err, tc.want)
		}
	}
	if _, err := routeArgs(model.Route{Dev: "eth0"}); err == nil {
		t.Error("routeArgs accepted a route without destination")
	}
}

func TestRuleArgs(t *testing.T) {
	for _, tc := range []struct {
		r    model.PolicyRule
		fam  []string
		want string
	}{
		{model.PolicyRule{Priority: 100, From: pfx("10.0.0.0/8"), Table: 100, Action: "lookup"}, []string{"-4"},
			"-4 rule add from 10.0.0.0/8 priority 100 table 100"},
		{model.PolicyRule{Priority: 200, Not: true, To: pfx("2001:db8::/32"), IIF: "eth0", HasMark: true, FwMark: 1, FwMask: 0xff, IPProto: 6, DPort: [2]uint16{80, 90}, SPort: [2]uint16{1000, 0}, Action: "unreachable"}, []string{"-6"},
			"-6 rule add not to 2001:db8::/32 iif eth0 fwmark 0x1/0xff ipproto 6 sport 1000 dport 80-90 priority 200 unreachable"},
		{model.PolicyRule{Priority: 300, OIF: "eth1", Action: "goto", Goto: 400}, []string{"-4"},
			"-4 rule add oif eth1 priority 300 goto 400"},
	} {
		fams := ruleFamilies(tc.r, false)
		if !cmp.Equal(fams, tc.fam) {
			t.Errorf("families %v, want %v", fams, tc.fam)
		}
		if got := strings.Join(ruleArgs(fams[0], tc.r), " "); got != tc.want {
			t.Errorf("ruleArgs = %q\nwant %q", got, tc.want)
		}
	}
	if f := ruleFamilies(model.PolicyRule{Priority: 5, Table: 9}, true); !cmp.Equal(f, []string{"-4", "-6"}) {
		t.Errorf("a rule without addresses on an IPv6 node goes to %v", f)
	}
	for _, r := range []model.PolicyRule{{Priority: 0, Table: 255}, {Priority: 32766, Table: 254, Action: "lookup"}, {Priority: 32767, Table: 253, From: pfx("0.0.0.0/0")}} {
		if !isDefaultRule(r) {
			t.Errorf("%+v is a default rule", r)
		}
	}
	for _, r := range []model.PolicyRule{{Priority: 0, Table: 254}, {Priority: 32766, Table: 254, From: pfx("10.0.0.0/8")}, {Priority: 32766, Table: 254, HasMark: true}} {
		if isDefaultRule(r) {
			t.Errorf("%+v is not a default rule", r)
		}
	}
}

func TestAddrArgs(t *testing.T) {
	for _, tc := range []struct {
		a    model.IfAddr
		want string
	}{
		{model.IfAddr{Prefix: pfx("192.0.2.5/24"), Broadcast: addr("192.0.2.255"), Flags: []string{"dynamic", "noprefixroute", "nodad"}},
			"addr add 192.0.2.5/24 broadcast 192.0.2.255 dev eth0 noprefixroute"},
		{model.IfAddr{Prefix: pfx("10.0.0.1/32"), Peer: pfx("10.0.0.2/32"), Scope: "global"}, "addr add 10.0.0.1 peer 10.0.0.2/32 scope global dev eth0"},
		{model.IfAddr{Prefix: pfx("2001:db8::5/64"), Flags: []string{"nodad", "mngtmpaddr"}}, "addr add 2001:db8::5/64 dev eth0 nodad mngtmpaddr"},
	} {
		if got := strings.Join(addrArgs("eth0", tc.a), " "); got != tc.want {
			t.Errorf("addrArgs = %q\nwant %q", got, tc.want)
		}
	}
	got := orderAddrs([]model.IfAddr{{Prefix: pfx("192.0.2.6/24"), Secondary: true}, {Prefix: pfx("192.0.2.5/24")}})
	if got[0].Secondary {
		t.Errorf("secondary address first: %+v", got)
	}
}

func TestRestoreText(t *testing.T) {
	rs := ruleset("*nat", ":PREROUTING ACCEPT", ":POSTROUTING ACCEPT", ":DOCKER -",
		"-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
		"-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE")
	rs.Tables[0].Chains[0].Rules[0].Origin.Text = "[12:720] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"
	// A rule with no text is regenerated from its parts.
	rs.Tables[0].Chains[2].Rules = append(rs.Tables[0].Chains[2].Rules, &model.Rule{
		Chain: "DOCKER",
		Matches: []model.Match{
			{Options: []model.Option{{Name: "-i", Negate: true, Args: []string{"docker0"}}}},
			{Options: []model.Option{{Name: "-p", Args: []string{"tcp"}}}},
			{Module: "tcp", Options: []model.Option{{Name: "--dport", Args: []string{"8080"}}}},
			{Module: "comment", Options: []model.Option{{Name: "--comment", Args: []string{"web app"}}}},
		},
		Target: "DNAT", TargetOpts: []model.Option{{Name: "--to-destination", Args: []string{"172.17.0.2:80"}}},
	})
	rs.Tables = append(rs.Tables, &model.Table{Name: "filter", Chains: []*model.Chain{{Name: "FORWARD", Builtin: true}}})
	got, err := RestoreText(rs)
	if err != nil {
		t.Fatal(err)
	}
	want := `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -m comment --comment "web app" -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:FORWARD ACCEPT [0:0]
COMMIT
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RestoreText (-want +got):\n%s", diff)
	}
}

func TestSysctls(t *testing.T) {
	ifs := []string{"eth0", "eth0.100"}
	for _, tc := range []struct{ key, path, dev string }{
		{"net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward", ""},
		{"net.ipv4.conf.all.rp_filter", "/proc/sys/net/ipv4/conf/all/rp_filter", ""},
		{"net.ipv4.conf.eth0.rp_filter", "/proc/sys/net/ipv4/conf/eth0/rp_filter", "eth0"},
		{"net.ipv4.conf.eth0.100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter", "eth0.100"},
		{"net.ipv4.conf.eth0/100.forwarding", "/proc/sys/net/ipv4/conf/eth0.100/forwarding", "eth0.100"},
		{"net.ipv6.neigh.eth0.base_reachable_time_ms", "/proc/sys/net/ipv6/neigh/eth0/base_reachable_time_ms", "eth0"},
		{"net.ipv6.conf.default.accept_dad", "/proc/sys/net/ipv6/conf/default/accept_dad", ""},
		{"net.ipv4.conf.docker0.forwarding", "/proc/sys/net/ipv4/conf/docker0/forwarding", "docker0"},
	} {
		path, dev := sysctlPath(tc.key, ifs)
		if path != tc.path || dev != tc.dev {
			t.Errorf("sysctlPath(%s) = %s, %q; want %s, %q", tc.key, path, dev, tc.path, tc.dev)
		}
	}
	n := node("r")
	n.InitialTTL = 100
	n.Sysctls["net.ipv4.conf.all.forwarding"] = model.Sysctl{Value: "1"}
	n.Sysctls["net.ipv4.conf.all.rp_filter"] = model.Sysctl{Value: "2"}
	n.Sysctls["net.ipv4.ip_forward"] = model.Sysctl{Value: "1"}
	set := nodeSysctls(n, false)
	if set[0].Key != "net.ipv4.ip_forward" || set[0].Value != "1" || set[0].Baseline || set[1].Key != "net.ipv4.conf.all.forwarding" {
		t.Errorf("forwarding switches not first: %+v", set[:2])
	}
	vals := map[string]string{}
	for _, s := range set {
		vals[s.Key] = s.Value
	}
	if vals["net.ipv4.conf.all.rp_filter"] != "2" || vals["net.ipv4.conf.default.rp_filter"] != "0" ||
		vals["net.ipv4.ip_default_ttl"] != "100" || vals["net.ipv6.conf.all.disable_ipv6"] != "1" {
		t.Errorf("baseline/snapshot merge wrong: %v", vals)
	}
	if v := nodeSysctls(n, true); !containsSetting(v, "net.ipv6.conf.all.disable_ipv6", "0") {
		t.Errorf("IPv6 node keeps IPv6 disabled: %v", v)
	}
}

func containsSetting(set []setting, k, v string) bool {
	for _, s := range set {
		if s.Key == k && s.Value == v {
			return true
		}
	}
	return false
}

func TestNSName(t *testing.T) {
	used := map[string]bool{}
	if got := nsName("pfab12cd", "web-1", used); got != "pfab12cd-web-1" {
		t.Errorf("got %q", got)
	}
	if got := nsName("pfab12cd", "web/1", used); got != "pfab12cd-web_1" {
		t.Errorf("got %q", got)
	}
	if got := nsName("pfab12cd", "web:1", used); got != "pfab12cd-web_1~2" {
		t.Errorf("collision not made unique: %q", got)
	}
	long := strings.Repeat("x", 80)
	a, b := nsName("pf", long, used), nsName("pf", long+"y", used)
	if len(a) > maxNSName || len(b) > maxNSName || a == b {
		t.Errorf("long names %q %q", a, b)
	}
	if tok := token(); len(tok) != 6 || tok == token() {
		t.Errorf("token %q", tok)
	}
}

func TestValidate(t *testing.T) {
	base := func() *model.Snapshot {
		a := node("a", iface("eth0", ""), iface("br0", ""))
		a.Interfaces[1].Kind = model.IfBridge
		b := node("b", iface("eth0", ""))
		return &model.Snapshot{Nodes: []*model.Node{a, b}, Links: []*model.Link{link(model.LinkVeth, "a:eth0", "b:eth0")}}
	}
	if err := validate(base()); err != nil {
		t.Fatalf("valid snapshot: %v", err)
	}
	for name, mut := range map[string]func(s *model.Snapshot){
		"unknown node":  func(s *model.Snapshot) { s.Links[0].Ends[1].Node = "c" },
		"unknown iface": func(s *model.Snapshot) { s.Links[0].Ends[1].Iface = "eth9" },
		"two links": func(s *model.Snapshot) {
			s.Links = append(s.Links, link(model.LinkSegment, "a:eth0", "b:eth0", "b:eth0"))
		},
		"bridge end":      func(s *model.Snapshot) { s.Links[0].Ends[0].Iface = "br0" },
		"long name":       func(s *model.Snapshot) { s.Nodes[1].Interfaces[0].Name = "averyveryverylongname" },
		"duplicate node":  func(s *model.Snapshot) { s.Nodes[1].Name = "a" },
		"veth with 3":     func(s *model.Snapshot) { s.Links[0].Ends = append(s.Links[0].Ends, ep("a:br0")) },
		"duplicate iface": func(s *model.Snapshot) { s.Nodes[0].Interfaces[1].Name = "eth0" },
	} {
		s := base()
		mut(s)
		if err := validate(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// frame serializes layers into an Ethernet frame with lengths and
// checksums computed.
func frame(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func eth(t layers.EthernetType, dst string) *layers.Ethernet {
	d, _ := net.ParseMAC(dst)
	s, _ := net.ParseMAC("02:00:00:00:00:01")
	return &layers.Ethernet{SrcMAC: s, DstMAC: d, EthernetType: t}
}

func ip4(src, dst string, proto layers.IPProtocol, ttl uint8) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: proto, Flags: layers.IPv4DontFragment,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func TestDecodeFrame(t *testing.T) {
	const peer = "02:00:00:00:00:02"
	// A TCP SYN with options: length 0, as tcpdump prints it.
	i4 := ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP, 64)
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Window: 64240,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
	tcp.SetNetworkLayerForChecksum(i4)
	p, ok := DecodeFrame(frame(t, eth(layers.EthernetTypeIPv4, peer), i4, tcp))
	want := packet.Packet{Src: addr("192.0.2.1"), Dst: addr("192.0.2.2"), Proto: packet.TCP, SPort: 40000, DPort: 80, TCPFlags: packet.SYN, TTL: 64, DF: true}
	if !ok || p.Pkt != want || p.SrcMAC != "02:00:00:00:00:01" || p.DstMAC != peer || p.EtherType != 0x0800 {
		t.Errorf("TCP SYN: ok=%v %+v\nwant %+v", ok, p, want)
	}

	// An ICMP port unreachable quoting a whole UDP datagram, as Linux
	// does (up to 576 bytes in all).
	inner := ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolUDP, 63)
	udp := &layers.UDP{SrcPort: 33333, DstPort: 9}
	udp.SetNetworkLayerForChecksum(inner)
	quoted := frame(t, inner, udp, gopacket.Payload("ping!!"))
	outer := ip4("192.0.2.2", "192.0.2.1", layers.IPProtocolICMPv4, 64)
	outer.Flags = 0
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}
	p, ok = DecodeFrame(frame(t, eth(layers.EthernetTypeIPv4, peer), outer, icmp, gopacket.Payload(quoted)))
	wantInner := packet.Packet{Src: addr("192.0.2.1"), Dst: addr("192.0.2.2"), Proto: packet.UDP, SPort: 33333, DPort: 9, TTL: 63, DF: true, Len: 6}
	if !ok || p.Pkt.ICMPType != 3 || p.Pkt.ICMPCode != 3 || p.Pkt.Len != 8+len(quoted) || p.Pkt.Inner == nil || *p.Pkt.Inner != wantInner {
		t.Errorf("port unreachable: %+v inner %+v", p.Pkt, p.Pkt.Inner)
	}
	// Only the IP header and 8 bytes quoted (as RFC 792 requires).
	p, ok = DecodeFrame(frame(t, eth(layers.EthernetTypeIPv4, peer), outer, icmp, gopacket.Payload(quoted[:28])))
	if !ok || p.Pkt.Inner == nil || p.Pkt.Inner.DPort != 9 || p.Pkt.Inner.Len != 6 {
		t.Errorf("short quote: %+v inner %+v", p.Pkt, p.Pkt.Inner)
	}

	// Fragmentation needed carries the next-hop MTU.
	icmp = &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400}
	p, _ = DecodeFrame(frame(t, eth(layers.EthernetTypeIPv4, peer), outer, icmp, gopacket.Payload(quoted)))
	if p.Pkt.ICMPMTU != 1400 {
		t.Errorf("frag needed MTU %d", p.Pkt.ICMPMTU)
	}

	// ICMPv6 echo request behind a VLAN tag.
	i6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
	e6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
	e6.SetNetworkLayerForChecksum(i6)
	echo := make([]byte, 4+56)
	binary.BigEndian.PutUint16(echo[0:], 77)
	binary.BigEndian.PutUint16(echo[2:], 3)
	tagged := eth(layers.EthernetTypeDot1Q, peer)
	p, ok = DecodeFrame(frame(t, tagged, &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv6}, i6, e6, gopacket.Payload(echo)))
	want6 := packet.Packet{Src: addr("2001:db8::1"), Dst: addr("2001:db8::2"), Proto: packet.ICMPv6, ICMPType: 128, ICMPID: 77, ICMPSeq: 3, TTL: 255, Len: 64}
	if !ok || p.Pkt != want6 || noise(p) {
		t.Errorf("ICMPv6 echo: %+v\nwant %+v", p.Pkt, want6)
	}

	// Noise: ARP, neighbour solicitation, IGMP, multicast and broadcast.
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
		SourceHwAddress: make([]byte, 6), SourceProtAddress: []byte{192, 0, 2, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 2}}
	ns := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}
	ns.SetNetworkLayerForChecksum(i6)
	igmp := ip4("192.0.2.1", "224.0.0.22", layers.IPProtocolIGMP, 1)
	mc := ip4("192.0.2.1", "239.1.1.1", layers.IPProtocolUDP, 1)
	bc := ip4("192.0.2.1", "192.0.2.255", layers.IPProtocolUDP, 64)
	for name, f := range map[string][]byte{
		"arp":       frame(t, eth(layers.EthernetTypeARP, "ff:ff:ff:ff:ff:ff"), arp),
		"ns":        frame(t, eth(layers.EthernetTypeIPv6, "33:33:ff:00:00:02"), i6, ns, gopacket.Payload(make([]byte, 20))),
		"igmp":      frame(t, eth(layers.EthernetTypeIPv4, "01:00:5e:00:00:16"), igmp, gopacket.Payload(make([]byte, 8))),
		"multicast": frame(t, eth(layers.EthernetTypeIPv4, "01:00:5e:01:01:01"), mc, udpOver(mc)),
		"broadcast": frame(t, eth(layers.EthernetTypeIPv4, "ff:ff:ff:ff:ff:ff"), bc, udpOver(bc)),
	} {
		p, _ := DecodeFrame(f)
		if !noise(p) {
			t.Errorf("%s is not noise: %+v", name, p)
		}
	}
}

func udpOver(ip *layers.IPv4) *layers.UDP {
	u := &layers.UDP{SrcPort: 1, DstPort: 2}
	u.SetNetworkLayerForChecksum(ip)
	return u
}

func TestReadPcap(t *testing.T) {
	frames := [][]byte{[]byte("first frame"), []byte("second")}
	for _, tc := range []struct {
		magic uint32
		bo    binary.ByteOrder
		nano  bool
	}{{0xa1b2c3d4, binary.LittleEndian, false}, {0xa1b23c4d, binary.BigEndian, true}} {
		var b bytes.Buffer
		hdr := make([]byte, 24)
		tc.bo.PutUint32(hdr[0:], tc.magic)
		tc.bo.PutUint16(hdr[4:], 2)
		tc.bo.PutUint16(hdr[6:], 4)
		tc.bo.PutUint32(hdr[16:], 262144)
		tc.bo.PutUint32(hdr[20:], 1)
		b.Write(hdr)
		for i, f := range frames {
			rh := make([]byte, 16)
			tc.bo.PutUint32(rh[0:], 1700000000+uint32(i))
			frac := uint32(123456)
			if tc.nano {
				frac = 123456789
			}
			tc.bo.PutUint32(rh[4:], frac)
			tc.bo.PutUint32(rh[8:], uint32(len(f)))
			tc.bo.PutUint32(rh[12:], uint32(len(f)))
			b.Write(rh)
			b.Write(f)
		}
		full := b.Len()
		lt, recs, err := readPcap(bytes.NewReader(b.Bytes()))
		if err != nil || lt != 1 || len(recs) != 2 || string(recs[1].Data) != "second" {
			t.Fatalf("readPcap: %d %v %v", lt, recs, err)
		}
		wantNs := 123456000
		if tc.nano {
			wantNs = 123456789
		}
		if !recs[0].Time.Equal(time.Unix(1700000000, int64(wantNs))) {
			t.Errorf("time %v", recs[0].Time)
		}
		// A record cut short (tcpdump killed mid-write) keeps the others.
		_, recs, err = readPcap(bytes.NewReader(b.Bytes()[:full-2]))
		if err == nil || len(recs) != 1 {
			t.Errorf("truncated: %d records, %v", len(recs), err)
		}
	}
	if _, _, err := readPcap(bytes.NewReader(nil)); err != errEmptyPcap {
		t.Errorf("empty: %v", err)
	}
}

func TestAnswersEcho(t *testing.T) {
	reply := packet.Packet{Proto: packet.ICMP, ICMPType: 0, ICMPID: 9, ICMPSeq: 2}
	te := packet.Packet{Proto: packet.ICMP, ICMPType: 11, Inner: &packet.Packet{Proto: packet.ICMP, ICMPType: 8, ICMPID: 9, ICMPSeq: 2}}
	if !answersEcho(&reply, 9, 2) || !answersEcho(&te, 9, 2) || answersEcho(&reply, 9, 3) || answersEcho(&te, 8, 2) {
		t.Error("answersEcho")
	}
	if checksum([]byte{0x08, 0, 0, 0, 0, 1, 0, 1}) != 0xf7fd {
		t.Errorf("checksum %#x", checksum([]byte{0x08, 0, 0, 0, 0, 1, 0, 1}))
	}
}
