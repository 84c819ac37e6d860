package collect

import (
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pktflow/pktflow/internal/ingest/iproute"
	"github.com/pktflow/pktflow/internal/model"
)

var (
	mac = func(s string) []byte {
		b := make([]byte, 0, 6)
		for _, p := range strings.Split(s, ":") {
			var x byte
			for _, c := range p {
				x = x<<4 | byte(strings.IndexRune("0123456789abcdef", c))
			}
			b = append(b, x)
		}
		return b
	}
	bcast = mac("ff:ff:ff:ff:ff:ff")
	zero6 = mac("00:00:00:00:00:00")
	up    = uint32(unix.IFF_UP | unix.IFF_RUNNING | unix.IFF_LOWER_UP)
	a     = netip.MustParseAddr
)

// The expected texts are iproute2 6.1's output for the same state, as
// printed on a Docker host (trailing blanks included).
const wantAddr = `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
    inet6 ::1/128 scope host 
       valid_lft forever preferred_lft forever
4: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc pfifo_fast state UP group default qlen 1000
    link/ether 02:fc:00:00:00:01 brd ff:ff:ff:ff:ff:ff
    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0
       valid_lft forever preferred_lft forever
    inet6 fd00::2/64 scope global nodad 
       valid_lft forever preferred_lft forever
5: docker0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state DOWN group default 
    link/ether 02:42:96:53:00:a4 brd ff:ff:ff:ff:ff:ff
    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0
       valid_lft forever preferred_lft forever
7: veth1c2d3e4@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master docker0 state UP group default 
    link/ether 6a:3e:1c:9d:20:4b brd ff:ff:ff:ff:ff:ff link-netnsid 0
    inet6 fe80::683e:1cff:fe9d:204b/64 scope link dynamic 
       valid_lft 86390sec preferred_lft 14390sec
`

func TestRenderAddrShow(t *testing.T) {
	links := []linkInfo{
		{Index: 1, Name: "lo", Flags: up | unix.IFF_LOOPBACK, Type: unix.ARPHRD_LOOPBACK, MTU: 65536, HasMTU: true, Qdisc: "noqueue",
			Oper: 0, Group: 0, TxQLen: 1000, Addr: zero6, Brd: zero6},
		{Index: 4, Name: "eth0", Flags: up | unix.IFF_BROADCAST | unix.IFF_MULTICAST, Type: unix.ARPHRD_ETHER, MTU: 1400, HasMTU: true,
			Qdisc: "pfifo_fast", Oper: 6, Group: 0, TxQLen: 1000, Addr: mac("02:fc:00:00:00:01"), Brd: bcast},
		{Index: 5, Name: "docker0", Flags: unix.IFF_UP | unix.IFF_BROADCAST | unix.IFF_MULTICAST, Type: unix.ARPHRD_ETHER, MTU: 1500, HasMTU: true,
			Qdisc: "noqueue", Oper: 2, Group: 0, TxQLen: 0, Addr: mac("02:42:96:53:00:a4"), Brd: bcast, Kind: "bridge"},
		{Index: 7, Name: "veth1c2d3e4", Flags: up | unix.IFF_BROADCAST | unix.IFF_MULTICAST, Type: unix.ARPHRD_ETHER, MTU: 1500, HasMTU: true,
			Qdisc: "noqueue", Master: 5, Oper: 6, Group: 0, TxQLen: 0, HasLink: true, Link: 6, HasNSID: true, NSID: 0,
			Addr: mac("6a:3e:1c:9d:20:4b"), Brd: bcast, Kind: "veth"},
	}
	forever := uint32(0xFFFFFFFF)
	perm := uint32(unix.IFA_F_PERMANENT)
	addrs := []addrInfo{
		{Family: unix.AF_INET, Index: 1, PrefixLen: 8, Local: a("127.0.0.1"), Address: a("127.0.0.1"), Scope: unix.RT_SCOPE_HOST, Flags: perm, Label: "lo", Valid: forever, Preferred: forever, HasCache: true},
		{Family: unix.AF_INET, Index: 4, PrefixLen: 24, Local: a("192.0.2.2"), Address: a("192.0.2.2"), Brd: a("192.0.2.255"), Flags: perm, Label: "eth0", Valid: forever, Preferred: forever, HasCache: true},
		{Family: unix.AF_INET, Index: 5, PrefixLen: 16, Local: a("172.17.0.1"), Brd: a("172.17.255.255"), Flags: perm, Label: "docker0", Valid: forever, Preferred: forever, HasCache: true},
		{Family: unix.AF_INET6, Index: 1, PrefixLen: 128, Local: a("::1"), Scope: unix.RT_SCOPE_HOST, Flags: perm, Valid: forever, Preferred: forever, HasCache: true},
		{Family: unix.AF_INET6, Index: 4, PrefixLen: 64, Local: a("fd00::2"), Flags: perm | unix.IFA_F_NODAD, Valid: forever, Preferred: forever, HasCache: true},
		{Family: unix.AF_INET6, Index: 7, PrefixLen: 64, Local: a("fe80::683e:1cff:fe9d:204b"), Scope: unix.RT_SCOPE_LINK, Valid: 86390, Preferred: 14390, HasCache: true},
	}
	got := renderAddrShow(links, addrs, nil)
	if got != wantAddr {
		t.Errorf("got\n%s\nwant\n%s", got, wantAddr)
	}
	ifs, err := iproute.ParseAddr("ip-addr", strings.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if ifs[3].Master != "docker0" || ifs[3].Kind != model.IfVeth || !ifs[2].Addrs[0].Prefix.IsValid() {
		t.Errorf("parsed back: %+v", ifs[3])
	}
	// A named peer namespace prints as link-netns.
	if s := renderAddrShow(links[3:], nil, func(int) string { return "ns1" }); !strings.Contains(s, " link-netns ns1\n") {
		t.Errorf("no link-netns in %q", s)
	}
}

func TestRenderRoutesRulesNeigh(t *testing.T) {
	routes := []routeInfo{
		{Family: unix.AF_INET, Type: unix.RTN_UNICAST, Gw: a("192.0.2.1"), Dev: "eth0", Table: 254, Protocol: unix.RTPROT_BOOT},
		{Family: unix.AF_INET, Type: unix.RTN_UNICAST, Dst: netip.MustParsePrefix("172.17.0.0/16"), HasDst: true, Dev: "docker0", Table: 254,
			Protocol: unix.RTPROT_KERNEL, Scope: unix.RT_SCOPE_LINK, PrefSrc: a("172.17.0.1"), Flags: unix.RTNH_F_LINKDOWN},
		{Family: unix.AF_INET, Type: unix.RTN_LOCAL, Dst: netip.MustParsePrefix("127.0.0.1/32"), HasDst: true, Dev: "lo", Table: 255,
			Protocol: unix.RTPROT_KERNEL, Scope: unix.RT_SCOPE_HOST, PrefSrc: a("127.0.0.1")},
		{Family: unix.AF_INET, Type: unix.RTN_UNICAST, Dst: netip.MustParsePrefix("10.0.0.0/8"), HasDst: true, Table: 100, Protocol: unix.RTPROT_STATIC,
			Metric: 10, HasPrio: true, Nexthops: []nexthopInfo{{Gw: a("192.0.2.1"), Dev: "eth0", Weight: 1}, {Gw: a("192.0.2.3"), Dev: "eth0", Weight: 2}}},
		{Family: unix.AF_INET6, Type: unix.RTN_UNICAST, Gw: a("fd00::1"), Dev: "eth0", Table: 254, Protocol: unix.RTPROT_BOOT, Metric: 1024, HasPrio: true, Pref: "medium"},
		{Family: unix.AF_INET6, Type: unix.RTN_UNREACHABLE, Dev: "lo", Table: 0, Protocol: unix.RTPROT_KERNEL, Metric: 4294967295, HasPrio: true, Pref: "medium"},
	}
	want := []string{
		"default via 192.0.2.1 dev eth0 \n",
		"172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown \n",
		"local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 \n",
		"10.0.0.0/8 table 100 proto static metric 10 \n\tnexthop via 192.0.2.1 dev eth0 weight 1 \n\tnexthop via 192.0.2.3 dev eth0 weight 2 \n",
		"default via fd00::1 dev eth0 metric 1024 pref medium\n",
		"unreachable default dev lo proto kernel metric 4294967295 pref medium\n",
	}
	var v4, v6 strings.Builder
	for i, r := range routes {
		got := renderRoute(r)
		if got != want[i] {
			t.Errorf("route %d: got %q, want %q", i, got, want[i])
		}
		if r.Family == unix.AF_INET6 {
			v6.WriteString(got)
		} else {
			v4.WriteString(got)
		}
	}
	for _, text := range []string{v4.String(), v6.String()} {
		if _, err := iproute.ParseRoutes("ip-route", strings.NewReader(text), model.TableMain); err != nil {
			t.Errorf("routes do not parse back: %v", err)
		}
	}

	rules := []ruleInfo{
		{Family: unix.AF_INET, Priority: 0, Table: 255, Action: unix.FR_ACT_TO_TBL, SupPfx: -1, SupGroup: -1},
		{Family: unix.AF_INET, Priority: 100, Invert: true, Src: netip.MustParsePrefix("10.0.0.0/8"), HasSrc: true, Mark: 1, Mask: 0xff, HasMark: true, HasMask: true,
			IIF: "eth0", IPProto: 6, DPort: [2]uint16{1000, 2000}, Table: 100, Action: unix.FR_ACT_TO_TBL, SupPfx: -1, SupGroup: -1},
		{Family: unix.AF_INET, Priority: 300, Src: netip.MustParsePrefix("192.0.2.7/32"), HasSrc: true, Action: unix.RTN_BLACKHOLE, SupPfx: -1, SupGroup: -1},
		{Family: unix.AF_INET, Priority: 200, Action: unix.FR_ACT_GOTO, Goto: 300, HasGoto: true, SupPfx: -1, SupGroup: -1},
	}
	wantRules := "0:\tfrom all lookup local\n" +
		"100:\tnot from 10.0.0.0/8 fwmark 0x1/0xff iif eth0 ipproto tcp dport 1000-2000 lookup 100\n" +
		"300:\tfrom 192.0.2.7 blackhole\n" +
		"200:\tfrom all goto 300\n"
	var rs strings.Builder
	for _, r := range rules {
		rs.WriteString(renderRule(r))
	}
	if rs.String() != wantRules {
		t.Errorf("rules:\n%s\nwant\n%s", rs.String(), wantRules)
	}
	if _, err := iproute.ParseRules("ip-rule", strings.NewReader(rs.String())); err != nil {
		t.Errorf("rules do not parse back: %v", err)
	}

	neigh := renderNeigh(neighInfo{Family: unix.AF_INET, Addr: a("172.17.0.2"), Dev: "docker0", LLAddr: mac("02:42:ac:11:00:02"), LLType: unix.ARPHRD_ETHER, State: unix.NUD_STALE}) +
		renderNeigh(neighInfo{Family: unix.AF_INET6, Addr: a("fe80::1"), Dev: "eth0", LLAddr: mac("52:54:00:a8:d1:80"), State: unix.NUD_REACHABLE, Flags: unix.NTF_ROUTER}) +
		renderNeigh(neighInfo{Family: unix.AF_INET, Addr: a("10.0.0.9"), Dev: "eth0", State: unix.NUD_FAILED})
	wantNeigh := "172.17.0.2 dev docker0 lladdr 02:42:ac:11:00:02 STALE \n" +
		"fe80::1 dev eth0 lladdr 52:54:00:a8:d1:80 router REACHABLE \n" +
		"10.0.0.9 dev eth0 FAILED \n"
	if neigh != wantNeigh {
		t.Errorf("neighbors:\n%q\nwant\n%q", neigh, wantNeigh)
	}
	if _, err := iproute.ParseNeigh("ip-neigh", strings.NewReader(neigh)); err != nil {
		t.Errorf("neighbors do not parse back: %v", err)
	}
	if showNeigh(neighInfo{State: unix.NUD_NOARP}) || !showNeigh(neighInfo{State: unix.NUD_PERMANENT}) {
		t.Error("ip neigh's default filter: NOARP hidden, PERMANENT shown")
	}
}

func TestParseProcNet(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1608 1 0 100 0 0 10 0
   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1609 1 0 100 0 0 10 0
   2: 0200000A:0016 0100000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 1610 1 0 100 0 0 10 0
`
	got, err := parseProcNet([]byte(tcp), "tcp", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].String() != "tcp/22" || got[1].String() != "tcp/127.0.0.1:631" {
		t.Errorf("tcp: %v", got)
	}
	udp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0
  2: 000080FE00000000FF00FC00010000FE:0222 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0
  3: 0000000000000000FFFF00000100007F:0223 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0
`
	got, err = parseProcNet([]byte(udp6), "udp", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"udp/53", "udp/[fe80::fc:ff:fe00:1]:546", "udp/127.0.0.1:547"}
	if len(got) != 3 {
		t.Fatalf("udp6: %v", got)
	}
	for i, w := range want {
		if got[i].String() != w {
			t.Errorf("udp6 %d: %s, want %s", i, got[i], w)
		}
	}
	d := dedupListen([]listenSock{{"tcp", a("10.0.0.1"), 80}, {"tcp", netip.Addr{}, 80}, {"tcp", netip.Addr{}, 80}, {"udp", netip.Addr{}, 53}})
	if len(d) != 2 || d[0].String() != "tcp/80" || d[1].String() != "udp/53" {
		t.Errorf("dedup: %v", d)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"net/ipv4/conf/eth0.100/rp_filter": "net.ipv4.conf.eth0/100.rp_filter",
		"net/ipv4/ip_forward":              "net.ipv4.ip_forward",
	} {
		if got := sysctlName(in); got != want {
			t.Errorf("sysctlName(%s) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"/web": "web", "my host": "my_host", "-x": "_-x", "": "_"} {
		if got := cleanName(in); got != want {
			t.Errorf("cleanName(%q) = %q, want %q", in, got, want)
		}
	}
	if !defaultRules([]ruleInfo{{Priority: 0, Table: 255, Action: unix.FR_ACT_TO_TBL}, {Priority: 32766, Table: 254, Action: unix.FR_ACT_TO_TBL}}) {
		t.Error("IPv6's two default rules are defaults")
	}
}
