package route

import (
	"net/netip"
	"testing"

	"github.com/pktflow/pktflow/internal/model"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// seedMayura is the seed's bare-metal host: two uplinks with metrics 100
// and 101, a libvirt bridge, a static route.
func seedMayura() *model.Node {
	return &model.Node{
		Name: "mayura",
		Interfaces: []*model.Interface{
			{Name: "lo", Kind: model.IfLoopback, Up: true, Addrs: []model.IfAddr{{Prefix: pfx("127.0.0.1/8"), Scope: "host"}}},
			{Name: "enp7s0", Up: true, Addrs: []model.IfAddr{{Prefix: pfx("10.0.2.21/24"), Scope: "global", Flags: []string{"noprefixroute"}}}},
			{Name: "enp8s0", Up: true, Addrs: []model.IfAddr{{Prefix: pfx("192.168.2.21/24"), Scope: "global", Flags: []string{"noprefixroute"}}}},
			{Name: "virbr0", Up: true, Kind: model.IfBridge, Addrs: []model.IfAddr{{Prefix: pfx("192.168.122.1/24"), Scope: "global"}}},
		},
		Routes: []model.Route{
			{Table: model.TableMain, Dst: pfx("0.0.0.0/0"), Via: addr("10.0.2.1"), Dev: "enp7s0", Metric: 100, Type: model.RouteUnicast},
			{Table: model.TableMain, Dst: pfx("0.0.0.0/0"), Via: addr("192.168.2.1"), Dev: "enp8s0", Metric: 101, Type: model.RouteUnicast},
			{Table: model.TableMain, Dst: pfx("10.0.2.0/24"), Dev: "enp7s0", Src: addr("10.0.2.21"), Metric: 100, Scope: "link", Type: model.RouteUnicast},
			{Table: model.TableMain, Dst: pfx("192.168.2.0/24"), Dev: "enp8s0", Src: addr("192.168.2.21"), Metric: 101, Scope: "link", Type: model.RouteUnicast},
			{Table: model.TableMain, Dst: pfx("192.168.3.0/24"), Via: addr("192.168.2.1"), Dev: "enp8s0", Metric: 101, Type: model.RouteUnicast},
			{Table: model.TableMain, Dst: pfx("192.168.122.0/24"), Dev: "virbr0", Src: addr("192.168.122.1"), Scope: "link", Type: model.RouteUnicast},
			{Table: model.TableMain, Dst: pfx("198.51.100.0/24"), Type: model.RouteBlackhole},
			{Table: model.TableMain, Dst: pfx("198.51.100.64/26"), Type: model.RouteUnreachable},
			{Table: model.TableMain, Dst: pfx("203.0.113.0/24"), Type: model.RouteProhibit},
		},
	}
}

func TestLookup(t *testing.T) {
	f := New(seedMayura())
	tests := []struct {
		name     string
		q        Query
		typ      model.RouteType
		dev, via string
		src      string
		err      string
	}{
		{"lowest metric default wins", Query{Dst: addr("142.250.115.106")}, model.RouteUnicast, "enp7s0", "10.0.2.1", "10.0.2.21", ""},
		{"longest prefix beats default", Query{Dst: addr("192.168.3.7")}, model.RouteUnicast, "enp8s0", "192.168.2.1", "192.168.2.21", ""},
		{"on-link uses route src", Query{Dst: addr("192.168.122.120")}, model.RouteUnicast, "virbr0", "", "192.168.122.1", ""},
		{"local address", Query{Dst: addr("10.0.2.21")}, model.RouteLocal, "enp7s0", "", "10.0.2.21", ""},
		{"loopback /8 is local", Query{Dst: addr("127.0.0.53")}, model.RouteLocal, "lo", "", "127.0.0.1", ""},
		{"blackhole", Query{Dst: addr("198.51.100.7")}, model.RouteBlackhole, "", "", "", "blackhole"},
		{"more specific unreachable", Query{Dst: addr("198.51.100.70")}, model.RouteUnreachable, "", "", "", "unreachable"},
		{"prohibit", Query{Dst: addr("203.0.113.9")}, model.RouteProhibit, "", "", "", "prohibit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.Lookup(tc.q)
			if r.Type != tc.typ || r.Dev != tc.dev || r.Err != tc.err {
				t.Fatalf("got type=%s dev=%s err=%q (%s), want type=%s dev=%s err=%q", r.Type, r.Dev, r.Err, r.Explain(), tc.typ, tc.dev, tc.err)
			}
			if tc.via != "" && r.Via != addr(tc.via) {
				t.Errorf("via = %s, want %s", r.Via, tc.via)
			}
			if tc.src != "" && r.Src != addr(tc.src) {
				t.Errorf("src = %s, want %s", r.Src, tc.src)
			}
			if r.Explain() == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestNoRoute(t *testing.T) {
	n := &model.Node{Name: "x", Interfaces: []*model.Interface{{Name: "eth0", Up: true, Addrs: []model.IfAddr{{Prefix: pfx("10.1.0.2/24")}}}}}
	r := New(n).Lookup(Query{Dst: addr("192.0.2.1")})
	if r.Err != "unreachable" || r.Route != nil {
		t.Fatalf("got %+v, want unreachable with no route", r)
	}
	// The connected route is derived from the address, as the kernel adds it.
	r = New(n).Lookup(Query{Dst: addr("10.1.0.9")})
	if r.Dev != "eth0" || r.Src != addr("10.1.0.2") || !r.Route.Origin.Synthesized {
		t.Fatalf("connected route: got %+v", r)
	}
}

func TestDownDeviceRoutesAreDead(t *testing.T) {
	n := seedMayura()
	n.Interfaces[1].Up = false // enp7s0 down: its default route is dead
	r := New(n).Lookup(Query{Dst: addr("142.250.115.106")})
	if r.Dev != "enp8s0" {
		t.Fatalf("dev = %s, want enp8s0 (the metric 101 default)", r.Dev)
	}
}

func TestPolicyRules(t *testing.T) {
	n := seedMayura()
	n.Routes = append(n.Routes,
		model.Route{Table: 100, Dst: pfx("0.0.0.0/0"), Via: addr("192.168.2.1"), Dev: "enp8s0", Type: model.RouteUnicast},
		model.Route{Table: 101, Dst: pfx("10.0.0.0/8"), Type: model.RouteThrow},
	)
	n.Rules = append(DefaultRules(),
		model.PolicyRule{Priority: 100, From: pfx("192.168.2.21/32"), Table: 100, Action: "lookup"},
		model.PolicyRule{Priority: 110, HasMark: true, FwMark: 0x1, FwMask: 0xff, Table: 100, Action: "lookup"},
		model.PolicyRule{Priority: 120, To: pfx("10.9.0.0/16"), Table: 101, Action: "lookup"},
		model.PolicyRule{Priority: 130, To: pfx("198.18.0.0/15"), Action: "prohibit"},
	)
	f := New(n)
	if r := f.Lookup(Query{Dst: addr("142.250.115.106"), Src: addr("192.168.2.21")}); r.Dev != "enp8s0" || r.Table != 100 || r.Rule.Priority != 100 {
		t.Errorf("from rule: got dev=%s table=%d", r.Dev, r.Table)
	}
	if r := f.Lookup(Query{Dst: addr("142.250.115.106"), Mark: 0x301}); r.Table != 100 {
		t.Errorf("fwmark 0x1/0xff should match mark 0x301: table=%d", r.Table)
	}
	if r := f.Lookup(Query{Dst: addr("142.250.115.106"), Mark: 0x2}); r.Table != model.TableMain {
		t.Errorf("mark 0x2 should fall to main: table=%d", r.Table)
	}
	if r := f.Lookup(Query{Dst: addr("10.9.1.1")}); r.Table != model.TableMain || r.Dev != "enp7s0" {
		t.Errorf("throw must continue with the next rule: table=%d dev=%s", r.Table, r.Dev)
	}
	if r := f.Lookup(Query{Dst: addr("198.18.0.1")}); r.Err != "prohibit" {
		t.Errorf("prohibit rule: got %+v", r)
	}
}

func TestSourceSelectionPrefersSubnetOfNextHop(t *testing.T) {
	n := &model.Node{Name: "x", Interfaces: []*model.Interface{{Name: "eth0", Up: true, Addrs: []model.IfAddr{
		{Prefix: pfx("10.0.0.2/24"), Scope: "global"},
		{Prefix: pfx("10.0.1.2/24"), Scope: "global"},
	}}}, Routes: []model.Route{{Table: model.TableMain, Dst: pfx("0.0.0.0/0"), Via: addr("10.0.1.1"), Dev: "eth0", Type: model.RouteUnicast}}}
	r := New(n).Lookup(Query{Dst: addr("192.0.2.1")})
	if r.Src != addr("10.0.1.2") {
		t.Fatalf("src = %s, want 10.0.1.2 (same subnet as the gateway)", r.Src)
	}
}
