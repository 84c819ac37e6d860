package iprojson

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/ingest/iproute"
	"github.com/pktflow/pktflow/internal/model"
)

func open(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func td(name string) string { return filepath.Join("testdata", name) }

// seedText is a file of the seed example.
func seedText(node, file string) string {
	return filepath.Join("..", "..", "..", "examples", "seed", "nodes", node, file)
}

var ignoreOrigins = cmp.Options{
	cmpopts.IgnoreFields(model.Interface{}, "Origin"),
	cmpopts.IgnoreFields(model.IfAddr{}, "Origin"),
	cmpopts.IgnoreFields(model.Route{}, "Origin"),
	cmpopts.IgnoreFields(model.Neighbor{}, "Origin"),
	cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}),
	cmpopts.EquateEmpty(),
}

// ip -j addr of the seed's mayura gives the interfaces `ip addr show`
// gives (the JSON has no "@ifN" for mayura, and the same flags).
func TestAddrMatchesText(t *testing.T) {
	got, err := ParseAddr("mayura-ip-addr.json", open(t, td("mayura-ip-addr.json")))
	if err != nil {
		t.Fatal(err)
	}
	want, err := iproute.ParseAddr("ip-addr", open(t, seedText("mayura", "ip-addr")))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, ignoreOrigins); d != "" {
		t.Errorf("JSON and text differ (-text +json):\n%s", d)
	}
	if o := got[3].Origin; o.File != "mayura-ip-addr.json" || o.Line != 2 || !strings.HasPrefix(o.Text, "4: virbr0: <BROADCAST") {
		t.Errorf("origin %+v", o)
	}
	// Pretty-printed, with a veth in another namespace.
	got, err = ParseAddr("container-ip-addr.json", open(t, td("container-ip-addr.json")))
	if err != nil {
		t.Fatal(err)
	}
	eth0 := got[1]
	if eth0.Kind != model.IfVeth || eth0.PeerIndex != 7 || eth0.LinkNetns != "0" || eth0.Origin.Line != 30 ||
		eth0.Addrs[0].Prefix != netip.MustParsePrefix("172.17.0.2/16") || eth0.Addrs[0].Broadcast != netip.MustParseAddr("172.17.255.255") {
		t.Errorf("eth0 %+v", eth0)
	}
}

func TestDetailedLink(t *testing.T) {
	got, err := ParseAddr("rhel8a-ip-d-link.json", open(t, td("rhel8a-ip-d-link.json")))
	if err != nil {
		t.Fatal(err)
	}
	type sum struct {
		name   string
		kind   model.InterfaceKind
		master string
		peer   int
		netns  string
		state  string
		up     bool
	}
	var s []sum
	for _, i := range got {
		s = append(s, sum{i.Name, i.Kind, i.Master, i.PeerIndex, i.LinkNetns, i.PortState, i.Up})
		if len(i.Addrs) != 0 {
			t.Errorf("%s has addresses", i.Name)
		}
		if (i.Master != "") != (i.Hairpin != nil) {
			t.Errorf("%s: hairpin %v", i.Name, i.Hairpin)
		}
	}
	want := []sum{
		{"lo", model.IfLoopback, "", 0, "", "", true},
		{"enp1s0", model.IfEthernet, "", 0, "", "", true},
		{"docker0", model.IfBridge, "", 0, "", "", true},
		{"vethf274fbd", model.IfVeth, "docker0", 6, "0", "forwarding", true},
		{"tun0", model.IfUnknown, "", 0, "", "", true},
	}
	if !slices.Equal(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestRoutes(t *testing.T) {
	got, err := ParseRoutes("mayura-ip-route.json", open(t, td("mayura-ip-route.json")), model.TableMain)
	if err != nil {
		t.Fatal(err)
	}
	want, err := iproute.ParseRoutes("ip-route", open(t, seedText("mayura", "ip-route")), model.TableMain)
	if err != nil {
		t.Fatal(err)
	}
	// The main table of the JSON is the seed's text table.
	if d := cmp.Diff(want, got[:len(want)], ignoreOrigins); d != "" {
		t.Errorf("main table (-text +json):\n%s", d)
	}
	if len(got) != 18 {
		t.Fatalf("%d routes, want 13 IPv4 and 5 IPv6", len(got))
	}
	if r := got[6]; r.Table != model.TableLocal || r.Type != model.RouteLocal || r.Dst != netip.MustParsePrefix("10.0.2.21/32") {
		t.Errorf("local route %+v", r)
	}
	if o := got[14].Origin; o.Line != 3 || o.Text != "2001:db8:ca2:3::/64 dev virbr0 proto kernel metric 256 pref medium" {
		t.Errorf("ipv6 route origin %+v", o)
	}
	mp, err := ParseRoutes("router-multipath-route.json", open(t, td("router-multipath-route.json")), model.TableMain)
	if err != nil {
		t.Fatal(err)
	}
	if len(mp[0].Nexthops) != 2 || mp[0].Nexthops[1].Weight != 2 || mp[0].Nexthops[1].Dev != "eth1" {
		t.Errorf("multipath %+v", mp[0])
	}
	if mp[1].Type != model.RouteBlackhole || !mp[2].OnLink || mp[2].MTU != 1400 || mp[3].Table != 100 || mp[3].Type != model.RouteUnreachable {
		t.Errorf("routes %+v", mp[1:])
	}
}

func TestNeighAndRules(t *testing.T) {
	got, err := ParseNeigh("rhel8a-ip-neigh.json", open(t, td("rhel8a-ip-neigh.json")))
	if err != nil {
		t.Fatal(err)
	}
	want, err := iproute.ParseNeigh("ip-neigh", open(t, seedText("rhel8a", "ip-neigh")))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got[:4], ignoreOrigins); d != "" {
		t.Errorf("neighbors (-text +json):\n%s", d)
	}
	if n := got[4]; n.State != "FAILED" || n.MAC != "" {
		t.Errorf("failed neighbor %+v", n)
	}
	rules, err := ParseRules("router-ip-rule.json", open(t, td("router-ip-rule.json")))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 7 {
		t.Fatalf("%d rules", len(rules))
	}
	if r := rules[1]; r.Priority != 100 || r.From != netip.MustParsePrefix("10.8.0.0/16") || r.Table != 100 {
		t.Errorf("rule 100 %+v", r)
	}
	if r := rules[2]; !r.HasMark || r.FwMark != 1 || r.FwMask != 0xff || r.Table != 200 {
		t.Errorf("rule 110 %+v", r)
	}
	if r := rules[3]; !r.Not || r.IIF != "eth1" || r.Table != model.TableMain {
		t.Errorf("rule 120 %+v", r)
	}
	if r := rules[4]; r.Action != "blackhole" || r.To != netip.MustParsePrefix("10.99.0.0/16") {
		t.Errorf("rule 130 %+v", r)
	}
	if o := rules[1].Origin; o.Text != "100: from 10.8.0.0/16 lookup 100" {
		t.Errorf("origin %+v", o)
	}
}

func TestBridge(t *testing.T) {
	fdb, err := ParseFDB("mayura-bridge-fdb.json", open(t, td("mayura-bridge-fdb.json")))
	if err != nil {
		t.Fatal(err)
	}
	if len(fdb) != 8 {
		t.Fatalf("%d entries", len(fdb))
	}
	if f := fdb[4]; f.MAC != "52:54:00:01:1a:a2" || f.Dev != "vnet0" || f.Master != "virbr0" || f.State != "" || f.Self {
		t.Errorf("learned entry %+v", f)
	}
	if f := fdb[0]; !f.Self || f.State != "permanent" || f.Origin.Text != "01:00:5e:00:00:01 dev enp7s0 self permanent" {
		t.Errorf("self entry %+v", f)
	}
	ports, err := ParseBridgeLink("mayura-bridge-link.json", open(t, td("mayura-bridge-link.json")))
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || ports[0].State != "disabled" || ports[1].Dev != "vnet0" || ports[1].Master != "virbr0" {
		t.Errorf("%+v", ports)
	}
}

func TestErrors(t *testing.T) {
	type parse func(string) error
	addr := func(s string) error { _, err := ParseAddr("t", strings.NewReader(s)); return err }
	route := func(s string) error { _, err := ParseRoutes("t", strings.NewReader(s), model.TableMain); return err }
	neigh := func(s string) error { _, err := ParseNeigh("t", strings.NewReader(s)); return err }
	rule := func(s string) error { _, err := ParseRules("t", strings.NewReader(s)); return err }
	fdb := func(s string) error { _, err := ParseFDB("t", strings.NewReader(s)); return err }
	blink := func(s string) error { _, err := ParseBridgeLink("t", strings.NewReader(s)); return err }
	for _, tc := range []struct {
		p    parse
		text string
		line int
		want string
	}{
		{addr, `[{"ifindex":1}]`, 1, "ifindex and ifname"},
		{addr, "[\n{\"ifindex\":2,\"ifname\":\"eth0\",\"link_type\":\"ether\",\"address\":\"zz\"}]", 2, "not a MAC"},
		{addr, "[{\"ifindex\":2,\"ifname\":\"a\"},\n{\"ifindex\":3,\"ifname\":\"a\"}]", 2, "listed twice"},
		{addr, `[{"ifindex":2,"ifname":"a","addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":40}]}]`, 1, "prefixlen"},
		{addr, `[{"ifindex":2,"ifname":"a","addr_info":[{"family":"inet","local":"fe80::1","prefixlen":64}]}]`, 1, "not an inet address"},
		{addr, `[{"ifindex":"x"}]`, 1, "is a JSON string"},
		{addr, "[\n{\"ifindex\":2,", 2, "ends early"},
		{addr, `{"ifindex":2}`, 1, "JSON array"},
		{route, `[{"dev":"eth0"}]`, 1, "without dst"},
		{route, "[\n{\"dst\":\"10.0.0.0/8\",\"dev\":\"eth0\",\"tos\":\"0x10\"}]", 2, `read as "10.0.0.0/8 dev eth0 tos 0x10"`},
		{route, `[{"dst":"2001:db8::/64","dev":"eth0","src":"2001:db8:1::/48"}]`, 1, "from 2001:db8:1::/48"},
		{route, `[{"dst":"10.0.0.300","dev":"eth0"}]`, 1, "read as"},
		{neigh, `[{"dst":"10.0.0.1"}]`, 1, "without dev"},
		{neigh, `[{"dst":"10.0.0.1","dev":"eth0","state":"STALE"}]`, 1, "state: expected a list"},
		{rule, `[{"src":"all","table":"main"}]`, 1, "without priority"},
		{rule, `[{"priority":5,"src":"all","uidrange":"1000-2000","table":"main"}]`, 1, "uidrange"},
		{fdb, `[{"mac":"x","ifname":"eth0"}]`, 1, "expected a MAC address"},
		{blink, `[{"ifname":"vnet0","master":"virbr0","state":"dancing"}]`, 1, "state \"dancing\""},
		{blink, `[{"ifname":"vnet0"}]`, 1, "without ifname or master"},
	} {
		err := tc.p(tc.text)
		var ie *ingest.Error
		if !errors.As(err, &ie) {
			t.Errorf("%s: error %v (%T)", tc.text, err, err)
			continue
		}
		if ie.Line != tc.line || !strings.Contains(ie.Error(), tc.want) {
			t.Errorf("%s: got %v, want line %d and %q", tc.text, err, tc.line, tc.want)
		}
	}
	for _, p := range []parse{addr, route, neigh, rule, fdb, blink} {
		if err := p(""); err != nil {
			t.Errorf("empty input: %v", err)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(td("*.json"))
	for i, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), uint8(i))
	}
	f.Fuzz(func(t *testing.T, text string, which uint8) {
		var err error
		r := strings.NewReader(text)
		switch which % 6 {
		case 0:
			_, err = ParseAddr("fuzz", r)
		case 1:
			_, err = ParseRoutes("fuzz", r, model.TableMain)
		case 2:
			_, err = ParseNeigh("fuzz", r)
		case 3:
			_, err = ParseRules("fuzz", r)
		case 4:
			_, err = ParseFDB("fuzz", r)
		case 5:
			_, err = ParseBridgeLink("fuzz", r)
		}
		if err == nil {
			return
		}
		var ie *ingest.Error
		if !errors.As(err, &ie) {
			t.Fatalf("%T %v", err, err)
		}
		if n := strings.Count(text, "\n") + 1; ie.Line < 0 || ie.Line > n {
			t.Fatalf("line %d of %d: %v", ie.Line, n, err)
		}
	})
}
