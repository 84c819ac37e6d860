package iproute

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pktflow/pktflow/internal/model"
)

// TestParseRoutesSeed parses the user's `ip route show` verbatim.
func TestParseRoutesSeed(t *testing.T) {
	got, err := ParseRoutes("mayura", open(t, "mayura-ip-route.txt"), model.TableMain)
	if err != nil {
		t.Fatal(err)
	}
	o := func(line int, text string) model.Origin { return model.Origin{File: "mayura", Line: line, Text: text} }
	u, m := model.RouteUnicast, model.TableMain
	want := []model.Route{
		{Table: m, Type: u, Dst: pfx("0.0.0.0/0"), Via: addr("10.0.2.1"), Dev: "enp7s0", Proto: "static", Metric: 100,
			Origin: o(2, "default via 10.0.2.1 dev enp7s0 proto static metric 100")},
		{Table: m, Type: u, Dst: pfx("0.0.0.0/0"), Via: addr("192.168.2.1"), Dev: "enp8s0", Proto: "static", Metric: 101,
			Origin: o(3, "default via 192.168.2.1 dev enp8s0 proto static metric 101")},
		{Table: m, Type: u, Dst: pfx("10.0.2.0/24"), Dev: "enp7s0", Proto: "kernel", Scope: "link", Src: addr("10.0.2.21"), Metric: 100,
			Origin: o(4, "10.0.2.0/24 dev enp7s0 proto kernel scope link src 10.0.2.21 metric 100")},
		{Table: m, Type: u, Dst: pfx("192.168.2.0/24"), Dev: "enp8s0", Proto: "kernel", Scope: "link", Src: addr("192.168.2.21"), Metric: 101,
			Origin: o(5, "192.168.2.0/24 dev enp8s0 proto kernel scope link src 192.168.2.21 metric 101")},
		{Table: m, Type: u, Dst: pfx("192.168.3.0/24"), Via: addr("192.168.2.1"), Dev: "enp8s0", Proto: "static", Metric: 101,
			Origin: o(6, "192.168.3.0/24 via 192.168.2.1 dev enp8s0 proto static metric 101")},
		{Table: m, Type: u, Dst: pfx("192.168.122.0/24"), Dev: "virbr0", Proto: "kernel", Scope: "link", Src: addr("192.168.122.1"),
			Origin: o(7, "192.168.122.0/24 dev virbr0 proto kernel scope link src 192.168.122.1")},
	}
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("mismatch (-want +got):\n%s", d)
	}
}

// routeLine renders the modelled parts of a route compactly for tests.
func routeLine(r model.Route) string {
	var b strings.Builder
	b.WriteString(string(r.Type) + " " + r.Dst.String())
	if r.Via.IsValid() {
		b.WriteString(" via " + r.Via.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	b.WriteString(" table " + itoa(r.Table))
	if r.Proto != "" {
		b.WriteString(" proto " + r.Proto)
	}
	if r.Scope != "" {
		b.WriteString(" scope " + r.Scope)
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	b.WriteString(" metric " + itoa(r.Metric))
	if r.OnLink {
		b.WriteString(" onlink")
	}
	if r.MTU != 0 {
		b.WriteString(" mtu " + itoa(r.MTU))
	}
	for _, nh := range r.Nexthops {
		b.WriteString(" nexthop")
		if nh.Via.IsValid() {
			b.WriteString(" via " + nh.Via.String())
		}
		if nh.Dev != "" {
			b.WriteString(" dev " + nh.Dev)
		}
		b.WriteString(" weight " + itoa(nh.Weight))
	}
	b.WriteString(" @" + itoa(r.Origin.Line))
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseRoutesSamples(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"table-all-ip-route.txt", []string{
			"unicast 0.0.0.0/0 via 10.0.2.1 dev enp7s0 table 254 proto static metric 100 @2",
			"unicast 10.0.2.0/24 dev enp7s0 table 254 proto kernel scope link src 10.0.2.21 metric 100 @3",
			"unicast 192.168.122.0/24 dev virbr0 table 254 proto kernel scope link src 192.168.122.1 metric 0 @4",
			"unicast 10.50.0.0/16 via 10.0.2.254 dev enp7s0 table 100 proto static metric 0 onlink mtu 1400 @5",
			"blackhole 10.66.0.0/16 table 254 proto static metric 0 @6",
			"unreachable 10.67.0.0/16 table 254 metric 0 @7",
			"prohibit 10.68.0.0/16 table 254 metric 10 @8",
			"throw 10.69.0.0/16 table 100 metric 0 @9",
			"broadcast 10.0.2.0/32 dev enp7s0 table 255 proto kernel scope link src 10.0.2.21 metric 0 @10",
			"local 10.0.2.21/32 dev enp7s0 table 255 proto kernel scope host src 10.0.2.21 metric 0 @11",
			"broadcast 10.0.2.255/32 dev enp7s0 table 255 proto kernel scope link src 10.0.2.21 metric 0 @12",
			"local 127.0.0.0/8 dev lo table 255 proto kernel scope host src 127.0.0.1 metric 0 @13",
			"local 127.0.0.1/32 dev lo table 255 proto kernel scope host src 127.0.0.1 metric 0 @14",
			"broadcast 127.255.255.255/32 dev lo table 255 proto kernel scope host src 127.0.0.1 metric 0 @15",
			"local 192.168.122.1/32 dev virbr0 table 255 proto kernel scope host src 192.168.122.1 metric 0 @16",
			"broadcast 192.168.122.255/32 dev virbr0 table 255 proto kernel scope link src 192.168.122.1 metric 0 @17",
		}},
		{"table-all-ip6-route.txt", []string{
			"unicast ::1/128 dev lo table 254 proto kernel metric 256 @2",
			"unicast 2001:db8:ca2:3::/64 dev virbr0 table 254 proto kernel metric 256 @3",
			"unicast fe80::/64 dev enp7s0 table 254 proto kernel metric 100 @4",
			"unicast ::/0 via fe80::1 dev enp7s0 table 254 proto ra metric 100 @5",
			"unreachable 2001:db8:dead::/48 dev lo table 254 metric 1024 @6",
			"local ::1/128 dev lo table 255 proto kernel metric 0 @7",
			"anycast 2001:db8:ca2:3::/128 dev virbr0 table 255 proto kernel metric 0 @8",
			"local 2001:db8:ca2:3::1/128 dev virbr0 table 255 proto kernel metric 0 @9",
			"anycast fe80::/128 dev enp7s0 table 255 proto kernel metric 0 @10",
			"local fe80::33b3:7332:5e0e:a98a/128 dev enp7s0 table 255 proto kernel metric 0 @11",
			"multicast ff00::/8 dev enp7s0 table 255 proto kernel metric 256 @12",
		}},
		{"multipath-ip-route.txt", []string{
			"unicast 0.0.0.0/0 table 254 proto static metric 100 nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via 10.0.1.1 dev eth1 weight 3 @1",
			"unicast 10.0.0.0/24 dev eth0 table 254 proto kernel scope link src 10.0.0.5 metric 0 @4",
			"unicast 10.0.1.0/24 dev eth1 table 254 proto kernel scope link src 10.0.1.5 metric 0 @5",
			"unicast 10.20.0.0/16 table 254 proto zebra metric 20 nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via 10.0.1.1 dev eth1 weight 1 @6",
			"unicast 10.30.0.5/32 via 10.0.0.9 dev eth0 table 254 metric 0 @9",
		}},
		// "default dev wg0" has no address: the file's family (IPv6) decides.
		{"ip6-route.txt", []string{
			"unicast ::1/128 dev lo table 254 proto kernel metric 256 @2",
			"unicast 2001:db8:1::/64 dev ens3 table 254 proto ra metric 100 @3",
			"unicast 2001:db8:2::7/128 via 2001:db8:1::1 dev ens3 table 254 metric 1024 @4",
			"unicast fe80::/64 dev ens3 table 254 proto kernel metric 256 @5",
			"unicast ::/0 table 254 proto static metric 1024 nexthop via fe80::1 dev ens3 weight 1 nexthop via fe80::2 dev ens3 weight 1 @6",
			"unicast ::/0 dev wg0 table 254 metric 2048 @9",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseRoutes(tt.file, open(t, tt.file), model.TableMain)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, r := range got {
				lines = append(lines, routeLine(r))
			}
			if d := cmp.Diff(tt.want, lines); d != "" {
				t.Errorf("mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseRoutesMultipathOrigin(t *testing.T) {
	got, err := ParseRoutes("f", open(t, "multipath-ip-route.txt"), model.TableMain)
	if err != nil {
		t.Fatal(err)
	}
	want := "default proto static metric 100\nnexthop via 10.0.0.1 dev eth0 weight 1\nnexthop via 10.0.1.1 dev eth1 weight 3 onlink"
	if got[0].Origin.Text != want || got[0].Origin.Line != 1 {
		t.Errorf("origin = %d %q, want line 1 %q", got[0].Origin.Line, got[0].Origin.Text, want)
	}
}

func TestParseRoutesDefaultTable(t *testing.T) {
	got, err := ParseRoutes("f", strings.NewReader("10.0.0.0/8 dev eth0\n10.1.0.0/16 dev eth0 table main\n"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Table != 100 || got[1].Table != model.TableMain {
		t.Errorf("tables = %d, %d; want 100, 254", got[0].Table, got[1].Table)
	}
}

func TestParseRouteLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"default via 203.0.113.1 dev eth0", "unicast 0.0.0.0/0 via 203.0.113.1 dev eth0 table 254 metric 0 @7"},
		{"default dev wg0", "unicast 0.0.0.0/0 dev wg0 table 254 metric 0 @7"},
		{"default via 2001:db8::1 dev eth0", "unicast ::/0 via 2001:db8::1 dev eth0 table 254 metric 0 @7"},
		{"  10.0.0.5 dev eth0  ", "unicast 10.0.0.5/32 dev eth0 table 254 metric 0 @7"},
		{"2001:db8::5 dev eth0", "unicast 2001:db8::5/128 dev eth0 table 254 metric 0 @7"},
		{"10.9.0.0/16 via 10.0.0.1", "unicast 10.9.0.0/16 via 10.0.0.1 table 254 metric 0 @7"},
		{"default nexthop via 10.0.0.1 dev eth0 weight 2 nexthop via 10.0.1.1 dev eth1",
			"unicast 0.0.0.0/0 table 254 metric 0 nexthop via 10.0.0.1 dev eth0 weight 2 nexthop via 10.0.1.1 dev eth1 weight 1 @7"},
		{"10.0.0.0/8 via inet6 fe80::1 dev eth0", "unicast 10.0.0.0/8 via fe80::1 dev eth0 table 254 metric 0 @7"},
		{"blackhole 10.0.0.0/8 table local", "blackhole 10.0.0.0/8 table 255 metric 0 @7"},
		{"unreachable default dev lo table unspec proto kernel metric 4294967295 error -101 pref medium", "unreachable 0.0.0.0/0 dev lo table 0 proto kernel metric 4294967295 @7"},
		{"10.0.0.0/8 dev eth0 mtu 1400 advmss lock 1360 rtt 3 pref high expires 30sec", "unicast 10.0.0.0/8 dev eth0 table 254 metric 0 mtu 1400 @7"},
		{"10.0.0.0/8 dev eth0 preference 5", "unicast 10.0.0.0/8 dev eth0 table 254 metric 5 @7"},
	}
	for _, tt := range tests {
		r, err := ParseRouteLine("topology.yaml", 7, tt.in, model.TableMain)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got := routeLine(r); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

func TestParseRoutesErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		want     string
	}{
		{"bad dst", "10.0.0.300/8 dev eth0\n", 1, "route destination"},
		{"host bits", "10.0.0.1/8 dev eth0\n", 1, "did you mean 10.0.0.0/8"},
		{"type only", "local\n", 1, "missing destination"},
		{"unknown keyword", "10.0.0.0/8 dev eth0 frob 1\n", 1, "unknown route keyword \"frob\""},
		{"from", "2001:db8::/64 from 2001:db8:1::/64 dev eth0\n", 1, "source-specific routes (from PREFIX) are not modelled; remove the line"},
		{"encap", "10.0.0.0/8 encap mpls 100 via 10.1.1.1 dev eth0\n", 1, "encap"},
		{"tos", "10.0.0.0/8 tos 0x10 dev eth0\n", 1, "TOS"},
		{"nat type", "nat 10.0.0.1 via 10.0.0.2\n", 1, "nat"},
		{"unknown table", "10.0.0.0/8 dev eth0 table vpn\n", 1, "unknown routing table name \"vpn\""},
		{"missing value", "10.0.0.0/8 dev\n", 1, "missing value after \"dev\""},
		{"mtu lock end", "10.0.0.0/8 dev eth0 mtu lock\n", 1, "missing value after \"mtu lock\""},
		{"bad metric", "10.0.0.0/8 dev eth0 metric x\n", 1, "metric"},
		{"bad via", "10.0.0.0/8 via gw dev eth0\n", 1, "gateway \"gw\""},
		{"family mismatch", "10.0.0.0/8 via 2001:db8::1 dev eth0\n", 1, "IPv6 but the route is IPv4"},
		{"src mismatch", "2001:db8::/64 dev eth0 src 10.0.0.1\n", 1, "IPv4 but the route is IPv6"},
		{"two gateways", "10.0.0.0/8 via 10.0.0.1 via 10.0.0.2\n", 1, "two gateways"},
		{"nowhere", "10.0.0.0/8 proto static\n", 1, "neither via, dev nor nexthop"},
		{"stray indent", "10.0.0.0/8 dev eth0\n    cache expires 3sec\n", 2, "only \"nexthop ...\""},
		{"indent first", "\tnexthop via 10.0.0.1 dev eth0\n", 1, "only \"nexthop ...\""},
		{"bad nexthop", "default proto static\n\tnexthop via 10.0.0.1 dev eth0 weight 0\n", 2, "weight"},
		{"nexthop keyword", "default proto static\n\tnexthop via 10.0.0.1 bogus\n", 2, "unknown nexthop keyword"},
		{"empty nexthop", "default proto static\n\tnexthop weight 2\n", 2, "neither via nor dev"},
		{"nexthop family", "default proto static\n\tnexthop via 10.0.0.1 dev eth0\n\tnexthop via fe80::1 dev eth0\n", 3, "IPv6 but the route is IPv4"},
		{"nexthop on blackhole", "blackhole default nexthop via 10.0.0.1\n", 1, "only unicast routes can have nexthops"},
		{"mixed default", "10.0.0.0/8 dev eth0\n2001:db8::/64 dev eth0\ndefault dev wg0\n", 3, "ambiguous"},
		{"zone via", "default via fe80::1%eth0 dev eth0\n", 1, "gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRoutes("f", strings.NewReader(tt.in), model.TableMain)
			if got != nil {
				t.Errorf("partial result %v with error", got)
			}
			checkErr(t, err, tt.line, tt.want)
		})
	}
	if _, err := ParseRouteLine("t", 9, "   ", model.TableMain); err == nil {
		t.Error("empty route line accepted")
	} else {
		checkErr(t, err, 9, "empty route")
	}
	_, err := ParseRouteLine("t", 9, "10.0.0.0/8 dev eth0 bogus", model.TableMain)
	checkErr(t, err, 9, "bogus")
}

func FuzzParseRoutes(f *testing.F) {
	for _, n := range []string{"mayura-ip-route.txt", "table-all-ip-route.txt", "table-all-ip6-route.txt", "multipath-ip-route.txt", "ip6-route.txt"} {
		b, err := testdataBytes(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("default via inet6 fe80::1 dev eth0 mtu lock 1 nexthop dev x nexthop via 1.1.1.1\n\tnexthop dev y\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseRoutes("fuzz", strings.NewReader(in), model.TableMain)
		if err != nil {
			if got != nil {
				t.Fatalf("partial result with error %v", err)
			}
			checkFuzzErr(t, in, err)
			return
		}
		for _, r := range got {
			if !r.Dst.IsValid() || r.Origin.Line < 1 {
				t.Fatalf("route without destination or origin: %+v", r)
			}
		}
		// Each line on its own must not panic either.
		for i, l := range strings.Split(in, "\n") {
			if _, err := ParseRouteLine("fuzz", i+1, l, model.TableMain); err != nil {
				checkFuzzErr(t, in, err)
			}
		}
	})
}
