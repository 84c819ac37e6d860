package snapshot

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

func TestLoadValid(t *testing.T) {
	s, err := Load("testdata/valid")
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != "testdata/valid" {
		t.Errorf("Dir = %q", s.Dir)
	}
	var names []string
	for _, n := range s.Nodes {
		names = append(names, n.Name+"/"+string(n.Kind))
	}
	// topology.yaml order, not alphabetical.
	if d := cmp.Diff([]string{"mayura/host", "rhel8a/vm", "0d1b1ae40269/container", "router/router", "internet/external"}, names); d != "" {
		t.Errorf("nodes (-want +got):\n%s", d)
	}

	mayura := s.Node("mayura")
	if got := len(mayura.Interfaces); got != 6 {
		t.Errorf("mayura has %d interfaces, want the 6 of the ticket", got)
	}
	if o := mayura.Iface("enp7s0").Origin; o.File != "nodes/mayura/ip-addr.txt" || o.Line != 8 {
		t.Errorf("enp7s0 origin = %+v", o)
	}
	if r := mayura.Routes[0]; r.Via != netip.MustParseAddr("10.0.2.1") || r.Origin.File != "nodes/mayura/ip-route" || r.Origin.Line != 2 {
		t.Errorf("mayura default route = %+v", r)
	}
	if sc := mayura.Sysctls["net.ipv4.ip_forward"]; sc.Value != "1" || sc.Origin.File != "nodes/mayura/sysctl" || sc.Origin.Line != 4 {
		t.Errorf("mayura ip_forward = %+v", sc)
	}
	if len(mayura.Sysctls) != 3 {
		t.Errorf("mayura sysctls = %v, want 3 (prompt and sysctl: complaints skipped)", mayura.Sysctls)
	}
	if mayura.IPv4.Table("nat").Chain("LIBVIRT_PRT") == nil || mayura.IPv6 != nil {
		t.Errorf("mayura rulesets: v4 %v v6 %v", mayura.IPv4, mayura.IPv6)
	}
	wantL := []model.Listener{{Proto: "tcp", Port: 22}, {Proto: "udp", Addr: netip.MustParseAddr("192.168.122.1"), Port: 53}}
	for i := range mayura.Listeners {
		mayura.Listeners[i].Origin = model.Origin{}
	}
	if d := cmp.Diff(wantL, mayura.Listeners, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("listeners (-want +got):\n%s", d)
	}

	rhel := s.Node("rhel8a")
	if sc := rhel.Sysctls["net.ipv4.conf.all.rp_filter"]; sc.Value != "1" || sc.Origin.File != "topology.yaml" || sc.Origin.Line != 10 {
		t.Errorf("rp_filter: true = %+v, want value 1 from topology.yaml:10", sc)
	}
	if len(rhel.Neighbors) != 4 || rhel.Neighbors[0].Origin.File != "nodes/rhel8a/ip-neigh" {
		t.Errorf("rhel8a neighbors = %+v", rhel.Neighbors)
	}
	// A veth link makes both ends veths; a tap link makes the host end a tap.
	if k := rhel.Iface("enp1s0").Kind; k != model.IfEthernet {
		t.Errorf("guest end of a tap link: kind %q, want ether", k)
	}
	if k := mayura.Iface("vnet0").Kind; k != model.IfTap {
		t.Errorf("host end of a tap link: kind %q, want tap", k)
	}

	ctr := s.Node("0d1b1ae40269")
	if lo := ctr.Interfaces[0]; lo.Name != "lo" || !lo.Origin.Synthesized || lo.Index != 1 || len(lo.Addrs) != 2 {
		t.Errorf("implicit lo = %+v", lo)
	}
	eth0 := ctr.Iface("eth0")
	if eth0.Kind != model.IfVeth || eth0.MAC != "02:42:ac:11:00:02" || eth0.Origin.Synthesized || eth0.MTU != 1500 || !eth0.Up {
		t.Errorf("container eth0 = %+v", eth0)
	}
	if a := eth0.Addrs[0]; a.Broadcast != netip.MustParseAddr("172.17.255.255") || a.Scope != "global" {
		t.Errorf("container eth0 address = %+v", a)
	}
	if r := ctr.Routes[1]; r.Origin.Line != 17 || r.Src != netip.MustParseAddr("172.17.0.2") {
		t.Errorf("inline route = %+v", r)
	}

	router := s.Node("router")
	e0 := router.Iface("eth0")
	if !e0.Origin.Synthesized || !strings.HasPrefix(e0.MAC, "02:") || e0.Origin.Line != 22 {
		t.Errorf("router eth0 (generated mac) = %+v", e0)
	}
	if e0.MAC != synthMAC("router", "eth0") || e0.MAC == synthMAC("internet", "eth0") {
		t.Errorf("generated MACs are not per node and interface: %s", e0.MAC)
	}
	if k := router.Iface("br0").Kind; k != model.IfBridge {
		t.Errorf("br0 is eth2's master, kind %q, want bridge", k)
	}
	if m := router.Iface("eth1").MTU; m != 9000 {
		t.Errorf("eth1 mtu %d", m)
	}
	// Routes from a literal block keep topology.yaml line numbers,
	// including a multipath continuation line.
	if r := router.Routes[1]; r.Origin.Line != 28 || len(r.Nexthops) != 1 || r.Nexthops[0].Dev != "eth1" {
		t.Errorf("block route = %+v", r)
	}
	if n := router.Neighbors[0]; n.Origin.Line != 30 || n.Origin.File != "topology.yaml" {
		t.Errorf("inline neighbor origin = %+v", n.Origin)
	}
	if len(router.Rules) != 2 || router.Rules[1].Origin.Line != 33 || router.Rules[1].Table != model.TableMain {
		t.Errorf("inline rules = %+v", router.Rules)
	}
	post := router.IPv4.Table("nat").Chain("POSTROUTING")
	if o := post.Rules[0].Origin; o.File != "topology.yaml" || o.Line != 40 || o.Text != "-A POSTROUTING -o eth0 -j MASQUERADE" {
		t.Errorf("inline iptables rule origin = %+v", o)
	}

	inet := s.Node("internet")
	if inet.InitialTTL != 110 || len(inet.Owns) != 2 || inet.Owns[1] != netip.MustParsePrefix("0.0.0.0/0") {
		t.Errorf("internet = ttl %d owns %v", inet.InitialTTL, inet.Owns)
	}

	wantLinks := []string{"veth 0d1b1ae40269:eth0 rhel8a:vethf274fbd @49", "tap mayura:vnet0 rhel8a:enp1s0 @50",
		"segment mayura:enp7s0 router:eth1 @51", "segment router:eth0 internet:eth0 @52"}
	var gotLinks []string
	for _, l := range s.Links {
		g := string(l.Kind)
		for _, e := range l.Ends {
			g += " " + e.String()
		}
		gotLinks = append(gotLinks, g+" @"+itoa(l.Origin.Line))
	}
	if d := cmp.Diff(wantLinks, gotLinks); d != "" {
		t.Errorf("links (-want +got):\n%s", d)
	}
	if got := s.Names["dual"]; len(got) != 2 || got[1] != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("names = %v", s.Names)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLoadInvalid loads each broken snapshot under testdata/invalid and
// checks that the error names the file and line and says what is wrong.
func TestLoadInvalid(t *testing.T) {
	tests := map[string][]string{
		"bad-addr-file":       {"nodes/a/ip-addr:3: ", `"10.0.0.1/33" is not an inet address`},
		"bad-iface-key":       {"topology.yaml:4: ", `unknown key "address" in interface eth0`},
		"bad-listen":          {"topology.yaml:5: ", `listen "tcp/abc"`, `listen "sctp/5"`},
		"bad-mac":             {"topology.yaml:4: ", `mac "zz:zz"`},
		"bad-node-name":       {"topology.yaml:2: ", `node name "a:b"`},
		"bad-prefix":          {"topology.yaml:4: ", `"10.0.0.300/24" is not an address`},
		"bad-route-file":      {"nodes/a/ip-route:2: ", `unknown routing table name "vpn"`},
		"bad-sysctl-file":     {"nodes/a/sysctl:2: ", "expected a sysctl line"},
		"bad-ttl":             {"topology.yaml:4: ", `ttl "300"`},
		"bad-yaml":            {"topology.yaml:2: ", "did not find expected"},
		"both-txt":            {"nodes/a/ip-addr.txt: ", "keep one"},
		"duplicate-node":      {"topology.yaml:5: ", `"a" appears twice in nodes (first at line 2)`},
		"empty":               {"topology.yaml: ", "empty topology"},
		"file-and-inline":     {"topology.yaml:5: ", "node a has both nodes/a/ip-route and inline routes"},
		"iface-kinds-unknown": {"topology.yaml:5: ", "iface_kinds names eth7", "(it has: lo, eth0)"},
		"iptables-inline":     {"topology.yaml:8: ", "NOPE"},
		"iptables-not-block":  {"topology.yaml:5: ", "literal block"},
		"link-bad-end":        {"topology.yaml:6: ", `link end "a": expected NODE:INTERFACE`},
		"link-two-links":      {"topology.yaml:9: ", "interface a:eth0 is already wired by the link at line 8"},
		"link-unknown-iface":  {"topology.yaml:7: ", "node a has no interface eth9 (it has: lo, eth0)"},
		"link-unknown-kind":   {"topology.yaml:6: ", `unknown link kind "cable"`},
		"link-unknown-node":   {"topology.yaml:6: ", "unknown node zz (nodes: a)"},
		"link-veth-three":     {"topology.yaml:8: ", "a veth link joins exactly 2 interfaces, this one lists 3"},
		"listen-not-local":    {"topology.yaml:5: ", "10.0.0.9 is not an address of node a"},
		"many-errors": {"topology.yaml:3: ", `unknown kind "server"`, "topology.yaml:4: ", `"nope"`,
			"topology.yaml:6: ", "unknown node b", "topology.yaml:8: ", `"y" is not an IP address`},
		"master-missing":    {"topology.yaml:4: ", "master br9: node a has no such interface", `(in "eth0: {master: br9}")`},
		"names-not-address": {"topology.yaml:6: ", `"example.com" is not an IP address`},
		"neighbor-inline":   {"topology.yaml:7: ", `without "dev"`},
		"no-state":          {"topology.yaml:5: ", "node b has no state"},
		"no-topology":       {"topology.yaml: ", "no such file"},
		"owns-bad":          {"topology.yaml:4: ", "did you mean 10.0.0.0/8"},
		"owns-on-host":      {"topology.yaml:5: ", "owns is for external nodes"},
		"route-block":       {"topology.yaml:8: ", `gateway "10.0.0.300"`},
		"route-dev-missing": {"topology.yaml:5: ", "route dev eth5: node a has no such interface"},
		"route-inline":      {"topology.yaml:7: ", `unknown route keyword "frob"`},
		"stray-file":        {"nodes/ip-addr: ", "unexpected file"},
		"sysctl-nested":     {"topology.yaml:6: ", "write names flat"},
		"undeclared-folder": {"nodes/ghost: ", `folder for node "ghost", which topology.yaml does not declare (it declares: a)`},
		"unknown-file":      {"nodes/a/ip-links: ", "unexpected file in a node folder"},
		// Two sources for one fact, and errors inside the new formats.
		"conflict-json-text":    {"nodes/a/ip-addr.json: ", "both nodes/a/ip-addr and nodes/a/ip-addr.json give the node's interfaces; keep one"},
		"conflict-save-listing": {"nodes/a/iptables-save: ", "both nodes/a/iptables-L-nat and nodes/a/iptables-save give the node's iptables rules"},
		"listing-table-twice":   {"nodes/a/iptables-L-nat:1: ", "table nat is listed here and in nodes/a/iptables-L"},
		"links-mismatch":        {"nodes/a/ip-link:3: ", "has MAC 52:54:00:01:1a:ff here but 52:54:00:01:1a:a2"},
		"bad-json":              {"nodes/a/ip-route.json:2: ", "malformed JSON"},
		"bad-xml":               {"nodes/a/virsh-net-dumpxml.xml:5: ", "</network> closes <ip>"},
		"ss-and-listen":         {"topology.yaml:4: ", "node a has both nodes/a/ss and inline listen"},
		"unknown-kind":          {"topology.yaml:3: ", `unknown kind "server"`},
		"unknown-node-key":      {"topology.yaml:5: ", `unknown key "interface" in node a`},
		"unknown-top-key":       {"topology.yaml:5: ", `unknown top-level key "nodez"`},
	}
	dirs, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, ok := tests[d.Name()]; !ok {
			t.Errorf("testdata/invalid/%s has no expectation", d.Name())
		}
	}
	for name, wants := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "invalid", name)
			s, err := Load(dir)
			if err == nil {
				t.Fatalf("loaded without error")
			}
			if s != nil {
				t.Errorf("partial snapshot with error")
			}
			var ie *ingest.Error
			if !errors.As(err, &ie) {
				t.Fatalf("error %v is not an *ingest.Error", err)
			}
			if !strings.HasPrefix(ie.File, dir) {
				t.Errorf("error file %q is not under %s", ie.File, dir)
			}
			msg := err.Error()
			for _, w := range wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not mention %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestYamlErr(t *testing.T) {
	for in, want := range map[string]struct {
		line int
		msg  string
	}{
		"yaml: line 3: did not find expected key":  {3, "did not find expected key"},
		"yaml: control characters are not allowed": {0, "control characters are not allowed"},
		"yaml: line x: odd":                        {0, "line x: odd"},
	} {
		if l, m := yamlErr(in); l != want.line || m != want.msg {
			t.Errorf("yamlErr(%q) = %d %q", in, l, m)
		}
	}
}

func TestParseListen(t *testing.T) {
	for in, want := range map[string]string{
		"tcp/22": "tcp invalid IP 22", "UDP/53": "udp invalid IP 53", "tcp/0.0.0.0:80": "tcp invalid IP 80",
		"tcp/[::]:80": "tcp invalid IP 80", "udp/[2001:db8::1]:53": "udp 2001:db8::1 53", "tcp/192.168.122.1:8080": "tcp 192.168.122.1 8080",
	} {
		l, msg := parseListen(in)
		if msg != "" {
			t.Errorf("%q: %s", in, msg)
			continue
		}
		if got := l.Proto + " " + l.Addr.String() + " " + itoa(int(l.Port)); got != want {
			t.Errorf("%q = %s, want %s", in, got, want)
		}
	}
	for _, in := range []string{"tcp", "tcp/", "tcp/0", "tcp/65536", "icmp/1", "tcp/1.2.3.4", "tcp/[fe80::1%eth0]:22", "tcp/x:1"} {
		if _, msg := parseListen(in); msg == "" {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestNormSysctl(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_forward":              "net.ipv4.ip_forward",
		"net/ipv4/conf/eth0.100/rp_filter": "net.ipv4.conf.eth0/100.rp_filter",
		"/proc/sys/net/ipv4/ip_forward":    "net.ipv4.ip_forward",
		"net.ipv4.conf.eth0/100.rp_filter": "net.ipv4.conf.eth0/100.rp_filter",
	} {
		if got := normSysctl(in); got != want {
			t.Errorf("normSysctl(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzLoadTopology fuzzes topology.yaml: Load must never panic, and a
// failure must be an *ingest.Error (or several joined).
func FuzzLoadTopology(f *testing.F) {
	valid, err := os.ReadFile("testdata/valid/topology.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(valid))
	dirs, _ := os.ReadDir("testdata/invalid")
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join("testdata", "invalid", d.Name(), TopologyFile)); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("nodes:\n  a: &x\n    interfaces: *x\n")
	f.Add("nodes: &n {a: *n}\nlinks: &l [*l]\n")
	f.Fuzz(func(t *testing.T, topo string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, TopologyFile), []byte(topo), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Load(dir)
		if err != nil {
			if s != nil {
				t.Fatalf("partial snapshot with error %v", err)
			}
			var ie *ingest.Error
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T) is not an *ingest.Error", err, err)
			}
			return
		}
		for _, n := range s.Nodes {
			if n.Iface("lo") == nil {
				t.Fatalf("node %s without lo", n.Name)
			}
		}
	})
}
