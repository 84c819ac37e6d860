package iproute

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pktflow/pktflow/internal/model"
)

var cmpOpts = []cmp.Option{cmp.Comparer(func(a, b interface{ String() string }) bool { return a.String() == b.String() }), cmpopts.EquateEmpty()}

// TestParseAddrSeed parses the user's `ip addr show` from the original
// ticket verbatim, prompt line included.
func TestParseAddrSeed(t *testing.T) {
	got, err := ParseAddr("mayura", open(t, "mayura-ip-addr.txt"))
	if err != nil {
		t.Fatal(err)
	}
	o := func(line int, text string) model.Origin { return model.Origin{File: "mayura", Line: line, Text: text} }
	up := []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}
	want := []*model.Interface{
		{Name: "lo", Index: 1, Kind: model.IfLoopback, MAC: "00:00:00:00:00:00", MTU: 65536, Up: true,
			Flags: []string{"LOOPBACK", "UP", "LOWER_UP"},
			Addrs: []model.IfAddr{
				{Prefix: pfx("127.0.0.1/8"), Scope: "host", Origin: o(4, "inet 127.0.0.1/8 scope host lo")},
				{Prefix: pfx("::1/128"), Scope: "host", Origin: o(6, "inet6 ::1/128 scope host")},
			},
			Origin: o(2, "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000")},
		{Name: "enp7s0", Index: 2, Kind: model.IfEthernet, MAC: "00:1f:bc:02:6f:10", MTU: 1500, Up: true, Flags: up,
			Addrs: []model.IfAddr{
				{Prefix: pfx("10.0.2.21/24"), Broadcast: addr("10.0.2.255"), Scope: "global", Flags: []string{"noprefixroute"},
					Origin: o(10, "inet 10.0.2.21/24 brd 10.0.2.255 scope global noprefixroute enp7s0")},
				{Prefix: pfx("fe80::33b3:7332:5e0e:a98a/64"), Scope: "link", Flags: []string{"noprefixroute"},
					Origin: o(12, "inet6 fe80::33b3:7332:5e0e:a98a/64 scope link noprefixroute")},
			},
			Origin: o(8, "2: enp7s0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000")},
		{Name: "enp8s0", Index: 3, Kind: model.IfEthernet, MAC: "00:1f:bc:02:6f:11", MTU: 1500, Up: true, Flags: up,
			Addrs: []model.IfAddr{
				{Prefix: pfx("192.168.2.21/24"), Broadcast: addr("192.168.2.255"), Scope: "global", Flags: []string{"noprefixroute"},
					Origin: o(16, "inet 192.168.2.21/24 brd 192.168.2.255 scope global noprefixroute enp8s0")},
				{Prefix: pfx("fe80::dcda:53b1:87fe:e92b/64"), Scope: "link", Flags: []string{"noprefixroute"},
					Origin: o(18, "inet6 fe80::dcda:53b1:87fe:e92b/64 scope link noprefixroute")},
			},
			Origin: o(14, "3: enp8s0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000")},
		{Name: "virbr0", Index: 4, Kind: model.IfBridge, MAC: "52:54:00:a8:d1:80", MTU: 1500, Up: true, Flags: up,
			Addrs: []model.IfAddr{
				{Prefix: pfx("192.168.122.1/24"), Broadcast: addr("192.168.122.255"), Scope: "global",
					Origin: o(22, "inet 192.168.122.1/24 brd 192.168.122.255 scope global virbr0")},
				{Prefix: pfx("2001:db8:ca2:3::1/64"), Scope: "global", Origin: o(24, "inet6 2001:db8:ca2:3::1/64 scope global")},
				{Prefix: pfx("fe80::5054:ff:fea8:d180/64"), Scope: "link", Origin: o(26, "inet6 fe80::5054:ff:fea8:d180/64 scope link")},
			},
			Origin: o(20, "4: virbr0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000")},
		{Name: "virbr0-nic", Index: 5, Kind: model.IfEthernet, MAC: "52:54:00:a8:d1:80", MTU: 1500, Up: false,
			Flags: []string{"BROADCAST", "MULTICAST"}, Master: "virbr0",
			Origin: o(28, "5: virbr0-nic: <BROADCAST,MULTICAST> mtu 1500 qdisc fq_codel master virbr0 state DOWN group default qlen 1000")},
		{Name: "vnet0", Index: 6, Kind: model.IfTap, MAC: "fe:54:00:01:1a:a2", MTU: 1500, Up: true, Flags: up, Master: "virbr0",
			Addrs: []model.IfAddr{
				{Prefix: pfx("fe80::fc54:ff:fe01:1aa2/64"), Scope: "link", Origin: o(32, "inet6 fe80::fc54:ff:fe01:1aa2/64 scope link")},
			},
			Origin: o(30, "6: vnet0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel master virbr0 state UNKNOWN group default qlen 1000")},
	}
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("ParseAddr mismatch (-want +got):\n%s", d)
	}
}

// ifSummary is the part of an interface most samples are checked on.
type ifSummary struct {
	Name   string
	Index  int
	Kind   model.InterfaceKind
	Up     bool
	Master string
	Addrs  []string
}

func summarize(ifs []*model.Interface) []ifSummary {
	var out []ifSummary
	for _, i := range ifs {
		s := ifSummary{Name: i.Name, Index: i.Index, Kind: i.Kind, Up: i.Up, Master: i.Master}
		for _, a := range i.Addrs {
			t := a.Prefix.String()
			if a.Peer.IsValid() {
				t += " peer " + a.Peer.String()
			}
			if a.Secondary {
				t += " secondary"
			}
			if len(a.Flags) > 0 {
				t += " " + strings.Join(a.Flags, ",")
			}
			s.Addrs = append(s.Addrs, t)
		}
		out = append(out, s)
	}
	return out
}

func TestParseAddrSamples(t *testing.T) {
	tests := []struct {
		file string
		want []ifSummary
	}{
		{"dockerhost-ip-addr.txt", []ifSummary{
			{"lo", 1, model.IfLoopback, true, "", []string{"127.0.0.1/8", "::1/128 noprefixroute"}},
			{"ens3", 2, model.IfEthernet, true, "", []string{"192.0.2.10/24 dynamic", "192.0.2.11/24 secondary",
				"2001:db8:1::10/64 dynamic,mngtmpaddr,noprefixroute", "fe80::5054:ff:fe12:3456/64"}},
			{"docker0", 3, model.IfBridge, true, "", []string{"172.17.0.1/16", "fe80::42:5fff:fe1c:9a3b/64"}},
			// NO-CARRIER and state DOWN: a bridge with no ports is not up.
			{"br-4f1e2d3c4b5a", 4, model.IfBridge, false, "", []string{"172.18.0.1/16"}},
			{"veth3a1b2c4", 6, model.IfVeth, true, "docker0", []string{"fe80::9c8f:11ff:fe22:3344/64"}},
			{"tun0", 7, model.IfUnknown, true, "", []string{"10.8.0.1/32 peer 10.8.0.2/32"}},
		}},
		{"container-ip-addr.txt", []ifSummary{
			{"lo", 1, model.IfLoopback, true, "", []string{"127.0.0.1/8"}},
			{"eth0", 5, model.IfVeth, true, "", []string{"172.17.0.2/16"}},
		}},
		{"vm-ip-addr.txt", []ifSummary{
			{"lo", 1, model.IfLoopback, true, "", []string{"127.0.0.1/8", "::1/128"}},
			{"enp1s0", 2, model.IfEthernet, true, "", []string{"192.168.122.120/24 dynamic,noprefixroute",
				"2001:db8:ca2:3:1::c2/128 dynamic,noprefixroute", "fe80::5054:ff:fe01:1aa2/64 noprefixroute"}},
			{"docker0", 3, model.IfBridge, true, "", []string{"172.17.0.1/16"}},
			{"vethf274fbd", 7, model.IfVeth, true, "docker0", []string{"fe80::58e1:52ff:fe7f:2bd0/64"}},
			{"veth0", 8, model.IfVeth, false, "", nil},
		}},
		{"detail-ip-addr.txt", []ifSummary{
			{"lo", 1, model.IfLoopback, true, "", []string{"127.0.0.1/8"}},
			// ip -d says bond: being a master does not make it a bridge.
			{"bond0", 4, model.IfEthernet, true, "", []string{"198.51.100.5/24"}},
			{"eth5", 5, model.IfEthernet, true, "bond0", nil},
			// ip -d says bridge although the name says nothing.
			{"lan", 6, model.IfBridge, true, "", []string{"10.9.0.1/24"}},
			// "tun ... type tap" beats the eth name.
			{"eth7", 7, model.IfTap, true, "lan", nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseAddr(tt.file, open(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, summarize(got), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseAddrHeuristics(t *testing.T) {
	in := `1: br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP
    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff
2: tap3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master sw state UP
    link/ether 02:00:00:00:00:02 brd ff:ff:ff:ff:ff:ff
3: sw: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP
    link/ether 02:00:00:00:00:03 brd ff:ff:ff:ff:ff:ff
4: dummy0: <BROADCAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc noqueue state UNKNOWN
    link/ether 02:00:00:00:00:04 brd ff:ff:ff:ff:ff:ff
5: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN
    link/none
6: eth1@if9: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master br0 state LOWERLAYERDOWN
    link/ether 02:00:00:00:00:06 brd ff:ff:ff:ff:ff:ff
`
	got, err := ParseAddr("x", strings.NewReader(in+`7: eth7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP mode DEFAULT group default qlen 1000
    link/ether 02:00:00:00:00:07 brd ff:ff:ff:ff:ff:ff
    RX:  bytes packets errors dropped  missed   mcast
     123 4 0 0 0 0
    RX errors:  length    crc  frame   fifo overrun
                     0      0      0      0       0
    vf 0     link/ether 00:00:00:00:00:00 brd ff:ff:ff:ff:ff:ff, spoof checking on, link-state auto, trust off
    alias uplink to the core
    altname enp0s7
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]model.InterfaceKind{"eth7": model.IfEthernet, "br0": model.IfBridge, "tap3": model.IfTap, "sw": model.IfBridge,
		"dummy0": model.IfDummy, "wg0": model.IfUnknown, "eth1": model.IfVeth}
	for _, i := range got {
		if i.Kind != want[i.Name] {
			t.Errorf("%s: kind %q, want %q", i.Name, i.Kind, want[i.Name])
		}
	}
	if got[5].Up {
		t.Errorf("eth1 in state LOWERLAYERDOWN must not be up")
	}
}

func TestParseAddrErrors(t *testing.T) {
	hdr := "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP\n"
	tests := []struct {
		name, in string
		line     int
		want     string
	}{
		{"no header", "    inet 10.0.0.1/24 scope global eth0\n", 1, "before any interface header"},
		{"garbage header", "hello world\n", 1, "expected an interface header"},
		{"brief", "lo               UNKNOWN        127.0.0.1/8 ::1/128\n", 1, "ip -brief"},
		{"index zero", "0: eth0: <UP> mtu 1500\n", 1, "positive number"},
		{"no colon after name", "2: eth0 <UP> mtu 1500\n", 1, "interface name followed by ':'"},
		{"no flags", "2: eth0: mtu 1500\n", 1, "flag list"},
		{"bad flags", "2: eth0: <UP,LOWER_UP mtu 1500\n", 1, "unterminated flag list"},
		{"bad mtu", "2: eth0: <UP> mtu big\n", 1, "mtu"},
		{"mtu at end", "2: eth0: <UP> mtu\n", 1, "missing value after \"mtu\""},
		{"dup name", hdr + "3: eth0: <UP> mtu 1500\n", 2, "listed twice"},
		{"dup index", hdr + "2: eth1: <UP> mtu 1500\n", 2, "index 2 is listed twice"},
		{"bad mac", hdr + "    link/ether zz:00 brd ff:ff:ff:ff:ff:ff\n", 2, "not a MAC"},
		{"missing mac", hdr + "    link/ether\n", 2, "missing MAC"},
		{"two link lines", hdr + "    link/none\n    link/none\n", 3, "second link/"},
		{"bad inet", hdr + "    inet 10.0.0.300/24 scope global eth0\n", 2, "not an inet address"},
		{"v6 on inet", hdr + "    inet 2001:db8::1/64 scope global eth0\n", 2, "not an inet address"},
		{"v4 on inet6", hdr + "    inet6 10.0.0.1/24 scope global\n", 2, "not an inet6 address"},
		{"zone", hdr + "    inet6 fe80::1%eth0/64 scope link\n", 2, "not an inet6 address"},
		{"bad brd", hdr + "    inet 10.0.0.1/24 brd x scope global eth0\n", 2, "brd"},
		{"bad peer", hdr + "    inet 10.0.0.1 peer 10.0.0.2 scope global eth0\n", 2, "peer"},
		{"prefix and peer", hdr + "    inet 10.0.0.1/24 peer 10.0.0.2/32 scope global eth0\n", 2, "both a prefix length and a peer"},
		{"unknown addr keyword", hdr + "    inet 10.0.0.1/24 bogus global eth0\n", 2, "unknown keyword \"bogus\""},
		{"label of other dev", hdr + "    inet 10.0.0.1/24 scope global eth1\n", 2, "unknown keyword \"eth1\""},
		{"scope at end", hdr + "    inet 10.0.0.1/24 scope\n", 2, "missing value after \"scope\""},
		{"unknown detail", hdr + "    frobnicate 1 2\n", 2, "unrecognised line"},
		{"inet alone", hdr + "    inet\n", 2, "missing address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAddr("f", strings.NewReader(tt.in))
			if got != nil {
				t.Errorf("partial result %v with error", got)
			}
			checkErr(t, err, tt.line, tt.want)
		})
	}
}

func TestSkippableLines(t *testing.T) {
	for _, s := range []string{"[root@mayura ~]# ip addr show", "root@host:~# ip a", "me@box:/tmp$ ip r", "$ ip route",
		"# ip rule", "```", "```text", "[root@x /]#"} {
		if !skippable(s) {
			t.Errorf("%q should be skipped", s)
		}
	}
	for _, s := range []string{"1: lo: <LOOPBACK> mtu 65536", "default via 10.0.0.1 dev eth0", "[detached]",
		"0:\tfrom all lookup local", "10.0.0.1 dev eth0 lladdr 02:00:00:00:00:01 REACHABLE"} {
		if skippable(s) {
			t.Errorf("%q should not be skipped", s)
		}
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, n := range []string{"mayura-ip-addr.txt", "dockerhost-ip-addr.txt", "container-ip-addr.txt", "vm-ip-addr.txt", "detail-ip-addr.txt"} {
		b, err := testdataBytes(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("1: x@: <> mtu 1\n link/ether 0:0:0:0:0:0\n inet 1.2.3.4 peer 1.2.3.5/32 x\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseAddr("fuzz", strings.NewReader(in))
		if err != nil {
			if got != nil {
				t.Fatalf("partial result with error %v", err)
			}
			checkFuzzErr(t, in, err)
			return
		}
		for _, i := range got {
			if i.Name == "" || i.Origin.Line < 1 {
				t.Fatalf("interface without name or origin: %+v", i)
			}
			for _, a := range i.Addrs {
				if !a.Prefix.IsValid() {
					t.Fatalf("invalid prefix in %+v", a)
				}
			}
		}
	})
}
