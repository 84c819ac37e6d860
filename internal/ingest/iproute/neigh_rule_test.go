package iproute

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pktflow/pktflow/internal/model"
)

// TestParseNeighSeed parses rhel8a's `ip neigh` from the ticket verbatim.
func TestParseNeighSeed(t *testing.T) {
	got, err := ParseNeigh("n", open(t, "rhel8a-ip-neigh.txt"))
	if err != nil {
		t.Fatal(err)
	}
	o := func(line int, text string) model.Origin { return model.Origin{File: "n", Line: line, Text: text} }
	want := []model.Neighbor{
		{Addr: addr("172.17.0.2"), Dev: "docker0", MAC: "02:42:ac:11:00:02", State: "STALE",
			Origin: o(2, "172.17.0.2 dev docker0 lladdr 02:42:ac:11:00:02 STALE")},
		{Addr: addr("192.168.122.1"), Dev: "enp1s0", MAC: "52:54:00:a8:d1:80", State: "REACHABLE",
			Origin: o(3, "192.168.122.1 dev enp1s0 lladdr 52:54:00:a8:d1:80 REACHABLE")},
		{Addr: addr("fe80::5054:ff:fea8:d180"), Dev: "enp1s0", MAC: "52:54:00:a8:d1:80", State: "STALE", Router: true,
			Origin: o(4, "fe80::5054:ff:fea8:d180 dev enp1s0 lladdr 52:54:00:a8:d1:80 router STALE")},
		{Addr: addr("2001:db8:ca2:3::1"), Dev: "enp1s0", MAC: "52:54:00:a8:d1:80", State: "STALE", Router: true,
			Origin: o(5, "2001:db8:ca2:3::1 dev enp1s0 lladdr 52:54:00:a8:d1:80 router STALE")},
	}
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("mismatch (-want +got):\n%s", d)
	}
}

func TestParseNeighForms(t *testing.T) {
	in := `10.0.0.9 dev eth0 FAILED
10.0.0.10 dev eth0 INCOMPLETE
10.0.0.11 dev eth0 lladdr 02:AA:BB:CC:DD:EE PERMANENT
10.0.0.12 dev eth0 lladdr 02:aa:bb:cc:dd:ef ref 1 used 10/10/3 probes 1 REACHABLE
10.0.0.13 dev gre1 lladdr 192.0.2.1 extern_learn NOARP
`
	got, err := ParseNeigh("n", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]string{{"10.0.0.9", "", "FAILED"}, {"10.0.0.10", "", "INCOMPLETE"},
		{"10.0.0.11", "02:aa:bb:cc:dd:ee", "PERMANENT"}, {"10.0.0.12", "02:aa:bb:cc:dd:ef", "REACHABLE"},
		{"10.0.0.13", "192.0.2.1", "NOARP"}}
	for i, n := range got {
		if g := [3]string{n.Addr.String(), n.MAC, n.State}; g != want[i] {
			t.Errorf("entry %d = %v, want %v", i, g, want[i])
		}
	}
}

func TestParseNeighErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		want     string
	}{
		{"no addr", "dev eth0 REACHABLE\n", 1, "not an address"},
		{"no dev", "10.0.0.1 lladdr 02:00:00:00:00:01 REACHABLE\n", 1, "without \"dev\""},
		{"proxy", "10.0.0.1 dev eth0 proxy\n", 1, "proxy"},
		{"unknown", "10.0.0.1 dev eth0 lladdr 02:00:00:00:00:01 GREAT\n", 1, "unknown neighbor keyword \"GREAT\""},
		{"missing", "10.0.0.1 dev eth0 lladdr\n", 1, "missing value after \"lladdr\""},
		{"indented", "10.0.0.1 dev eth0 FAILED\n  10.0.0.2 dev eth0 FAILED\n", 2, "indented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNeigh("f", strings.NewReader(tt.in))
			if got != nil {
				t.Errorf("partial result %v with error", got)
			}
			checkErr(t, err, tt.line, tt.want)
		})
	}
}

func TestParseRules(t *testing.T) {
	got, err := ParseRules("r", open(t, "ip-rule.txt"))
	if err != nil {
		t.Fatal(err)
	}
	o := func(line int, text string) model.Origin { return model.Origin{File: "r", Line: line, Text: text} }
	want := []model.PolicyRule{
		{Priority: 0, Table: model.TableLocal, Action: "lookup", Origin: o(2, "0:\tfrom all lookup local")},
		{Priority: 100, From: pfx("10.0.0.0/8"), FwMark: 1, FwMask: 0xff, HasMark: true, IIF: "eth0", Table: 100, Action: "lookup",
			Origin: o(3, "100:\tfrom 10.0.0.0/8 fwmark 0x1/0xff iif eth0 lookup 100")},
		{Priority: 110, Not: true, From: pfx("192.0.2.0/24"), Table: model.TableMain, Action: "lookup",
			Origin: o(4, "110:\tnot from 192.0.2.0/24 lookup main")},
		{Priority: 120, To: pfx("198.51.100.7/32"), IPProto: 6, DPort: [2]uint16{1000, 2000}, SPort: [2]uint16{80, 80}, Table: 200, Action: "lookup",
			Origin: o(5, "120:\tfrom all to 198.51.100.7 ipproto tcp dport 1000-2000 sport 80 lookup 200 proto static")},
		{Priority: 130, FwMark: 0xca6c, FwMask: 0xffffffff, HasMark: true, Action: "goto", Goto: 32766,
			Origin: o(6, "130:\tfrom all fwmark 0xca6c goto 32766")},
		{Priority: 140, From: pfx("203.0.113.0/24"), Action: "blackhole", Origin: o(7, "140:\tfrom 203.0.113.0/24 blackhole")},
		{Priority: 150, From: pfx("203.0.114.0/24"), Action: "unreachable", Origin: o(8, "150:\tfrom 203.0.114.0/24 unreachable")},
		{Priority: 160, From: pfx("203.0.115.0/24"), Action: "prohibit", Origin: o(9, "160:\tfrom 203.0.115.0/24 prohibit")},
		{Priority: 170, OIF: "wg0", Table: model.TableDefault, Action: "lookup", Origin: o(10, "170:\tfrom all oif wg0 [detached] lookup default")},
		{Priority: 32766, Table: model.TableMain, Action: "lookup", Origin: o(11, "32766:\tfrom all lookup main")},
		{Priority: 32767, Table: model.TableDefault, Action: "lookup", Origin: o(12, "32767:\tfrom all lookup default")},
	}
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("mismatch (-want +got):\n%s", d)
	}
}

func TestParseRulesForms(t *testing.T) {
	got, err := ParseRules("r", strings.NewReader("5: from all ipproto 17 dport 53 lookup 7\n6: from 2001:db8::/32 ipproto ipv6-icmp nop\n7: from all ipproto ipproto-132 lookup 9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].IPProto != 17 || got[0].DPort != [2]uint16{53, 53} || got[1].IPProto != 58 || got[1].Action != "nop" || got[2].IPProto != 132 {
		t.Errorf("got %+v", got)
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		want     string
	}{
		{"no prio", "from all lookup main\n", 1, "starting with its priority"},
		{"bad prio", "x: from all lookup main\n", 1, "priority \"x\""},
		{"no action", "10: from all\n", 1, "no action"},
		{"two actions", "10: from all lookup main blackhole\n", 1, "two actions"},
		{"unknown table", "10: from all lookup vpn\n", 1, "unknown routing table name \"vpn\""},
		{"suppress", "10: from all lookup main suppress_prefixlength 0\n", 1, "suppress_prefixlength"},
		{"uidrange", "10: from all uidrange 1000-1000 lookup main\n", 1, "uidrange"},
		{"bad from", "10: from 10.0.0.1/8 lookup main\n", 1, "did you mean 10.0.0.0/8"},
		{"bad mark", "10: from all fwmark 0xzz lookup main\n", 1, "fwmark"},
		{"bad port", "10: from all dport 2000-1000 lookup main\n", 1, "dport"},
		{"bad proto", "10: from all ipproto foo lookup main\n", 1, "ipproto"},
		{"unknown", "10: from all frob lookup main\n", 1, "unknown rule keyword \"frob\""},
		{"missing", "10: from all lookup\n", 1, "missing value after \"lookup\""},
		{"families", "10: from 10.0.0.0/8 to 2001:db8::/32 lookup main\n", 1, "different address families"},
		{"second line", "0: from all lookup local\n1: from all goto x\n", 2, "goto \"x\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRules("f", strings.NewReader(tt.in))
			if got != nil {
				t.Errorf("partial result %v with error", got)
			}
			checkErr(t, err, tt.line, tt.want)
		})
	}
}

func FuzzParseNeigh(f *testing.F) {
	b, err := testdataBytes("rhel8a-ip-neigh.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("10.0.0.12 dev eth0 lladdr 02:aa:bb:cc:dd:ef ref 1 used 10/10/3 probes 1 REACHABLE\n10.0.0.9 dev eth0 FAILED\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseNeigh("fuzz", strings.NewReader(in))
		if err != nil {
			if got != nil {
				t.Fatalf("partial result with error %v", err)
			}
			checkFuzzErr(t, in, err)
			return
		}
		for _, n := range got {
			if !n.Addr.IsValid() || n.Dev == "" {
				t.Fatalf("incomplete neighbor %+v", n)
			}
		}
	})
}

func FuzzParseRules(f *testing.F) {
	b, err := testdataBytes("ip-rule.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("5: not from all to 10.0.0.0/8 ipproto 17 sport 1-2 dport 53 fwmark 1/2 iif a oif b pref 3 table 7\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseRules("fuzz", strings.NewReader(in))
		if err != nil {
			if got != nil {
				t.Fatalf("partial result with error %v", err)
			}
			checkFuzzErr(t, in, err)
			return
		}
		for _, r := range got {
			if r.Action == "" {
				t.Fatalf("rule without action %+v", r)
			}
		}
	})
}

func TestParseRulesL3mdev(t *testing.T) {
	_, err := ParseRules("r", strings.NewReader("1000:\tfrom all lookup [l3mdev-table]\n"))
	checkErr(t, err, 1, "l3mdev (VRF) table lookups are not modelled; remove the line")
}
