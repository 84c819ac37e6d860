package snapshot

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// seedTopology is the seed's IPv4 topology (examples/seed/topology.yaml)
// without what --synthesize should fill in for mayura: its sysctls.
const seedTopology = `nodes:
  0d1b1ae40269:
    kind: container
    listen: [tcp/443, tcp/80]
  rhel8a:
    kind: vm
    sysctl: {net.ipv4.ip_forward: 1}
    listen: [tcp/22]
  mayura:
    kind: host
  router:
    kind: router
    sysctl: {net.ipv4.ip_forward: 1}
  internet:
    kind: external
    owns: [142.250.115.106/32]
    ttl: 106
    listen: [tcp/443, tcp/80, udp/53]
    interfaces:
      eth0: {addrs: [203.0.113.1/24], mac: "02:00:cb:00:71:01"}
    routes:
      - 203.0.113.0/24 dev eth0 proto kernel scope link src 203.0.113.1
links:
  - veth: [0d1b1ae40269:eth0, rhel8a:vethf274fbd]
  - tap: [mayura:vnet0, rhel8a:enp1s0]
  - segment: [mayura:enp7s0, router:eth1]
  - segment: [mayura:enp8s0, router:eth2]
  - segment: [router:eth0, internet:eth0]
`

// buildSnapshot writes a snapshot folder: topology.yaml and files copied
// from the given sources (destination relative to the folder).
func buildSnapshot(t *testing.T, topo string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TopologyFile), []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	for dst, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(dst))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func seedFile(node, name string) string {
	return filepath.Join("..", "..", "examples", "seed", "nodes", node, name)
}

// The seed's mayura reduced to `ip addr`, `ip route` and `virsh
// net-dumpxml default`: with --synthesize, 192.168.122.120 leaves mayura
// as 10.0.2.21, as the seed shows, through the MASQUERADE rule libvirt
// installs.
func TestSynthesizeSeedMasquerade(t *testing.T) {
	dir := buildSnapshot(t, seedTopology, map[string]string{
		"nodes/mayura/ip-addr":               seedFile("mayura", "ip-addr"),
		"nodes/mayura/ip-route":              seedFile("mayura", "ip-route"),
		"nodes/mayura/virsh-net-dumpxml.xml": filepath.Join("testdata", "synth", "seed-virsh-net-dumpxml.xml"),
		"nodes/rhel8a/ip-addr":               seedFile("rhel8a", "ip-addr"),
		"nodes/rhel8a/ip-route":              seedFile("rhel8a", "ip-route"),
		"nodes/rhel8a/ip-neigh":              seedFile("rhel8a", "ip-neigh"),
		"nodes/rhel8a/iptables-save":         seedFile("rhel8a", "iptables-save"),
		"nodes/0d1b1ae40269/ip-addr":         seedFile("0d1b1ae40269", "ip-addr"),
		"nodes/0d1b1ae40269/ip-route":        seedFile("0d1b1ae40269", "ip-route"),
		"nodes/router/ip-addr":               seedFile("router", "ip-addr"),
		"nodes/router/ip-route":              seedFile("router", "ip-route"),
		"nodes/router/iptables-save":         seedFile("router", "iptables-save"),
	})
	ping := func(s *model.Snapshot, from string) *trace.Trace {
		t.Helper()
		e, err := engine.New(s)
		if err != nil {
			t.Fatal(err)
		}
		return e.Trace(engine.Probe{From: from, Proto: packet.ICMP, Dst: netip.MustParseAddr("142.250.115.106"), ICMPID: 55, ICMPSeq: 1})
	}

	// Without --synthesize the XML is read, but mayura has no rules and
	// forwarding is off (Linux's default): the ping dies there.
	plain, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := plain.Node("mayura"); m.IPv4 != nil || m.Sysctls["net.ipv4.ip_forward"].Value != "" {
		t.Fatalf("without --synthesize: rules %v, ip_forward %+v", m.IPv4, m.Sysctls)
	}
	if !hasNote(plain, "read but not used") {
		t.Errorf("notes %q", plain.Notes)
	}
	if tr := ping(plain, "rhel8a"); tr.Verdict == trace.Answered {
		t.Fatalf("answered without the synthesized rules and sysctl: %s", tr.Reason)
	}

	s, err := LoadWith(dir, LoadOptions{Synthesize: true})
	if err != nil {
		t.Fatal(err)
	}
	m := s.Node("mayura")
	if sc := m.Sysctls["net.ipv4.ip_forward"]; sc.Value != "1" || !sc.Origin.Synthesized {
		t.Errorf("ip_forward %+v", sc)
	}
	if m.IPv4 == nil || m.IPv4.Table("nat").Chain("LIBVIRT_PRT") == nil {
		t.Fatalf("no synthesized nat table")
	}
	for _, want := range []string{"iptables rules synthesized from nodes/mayura/virsh-net-dumpxml.xml", "net.ipv4.ip_forward = 1 synthesized"} {
		if !hasNote(s, want) {
			t.Errorf("notes lack %q: %q", want, s.Notes)
		}
	}

	for _, from := range []string{"rhel8a", "0d1b1ae40269"} {
		tr := ping(s, from)
		if tr.Verdict != trace.Answered {
			for _, h := range tr.Hops {
				t.Logf("%s %s %s %s: %s", h.Leg, h.Node, h.Iface, h.Kind, h.Message)
			}
			t.Fatalf("from %s: %s: %s", from, tr.Verdict, tr.Reason)
		}
		var out, masq bool
		for _, c := range tr.Captures {
			if c.Leg == trace.LegRequest && c.Node == "mayura" && c.Iface == "enp7s0" && c.Dir == "out" {
				out = c.Src == "10.0.2.21"
				if !out {
					t.Errorf("from %s: leaves mayura as %s", from, c.Src)
				}
			}
		}
		for _, h := range tr.Hops {
			if h.Node == "mayura" && h.Kind == trace.EvRule && h.Target == "MASQUERADE" {
				masq = h.Origin != nil && h.Origin.Synthesized && h.Origin.File == "synthesized from nodes/mayura/virsh-net-dumpxml.xml" &&
					strings.HasPrefix(h.Origin.Text, "-A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24")
			}
		}
		if !out || !masq {
			t.Errorf("from %s: left mayura as 10.0.2.21 %v, through the synthesized MASQUERADE %v", from, out, masq)
		}
		if len(tr.Uncertain) != 0 {
			t.Errorf("from %s: uncertain %q", from, tr.Uncertain)
		}
	}
}

func hasNote(s *model.Snapshot, sub string) bool {
	for _, n := range s.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// Everything libvirt and Docker set up, from their descriptions alone:
// mayura without virbr0 in its `ip addr` (the bridge, its addresses and
// route come from the network XML) and rhel8a with only `docker inspect`
// and `docker network inspect` for its rules and forwarding. The seed's
// ping and published port still work, and the real ruleset wins where
// one is given.
func TestSynthesizeBridgesAndDocker(t *testing.T) {
	topo := strings.Replace(seedTopology, "    sysctl: {net.ipv4.ip_forward: 1}\n    listen: [tcp/22]\n", "    listen: [tcp/22]\n", 1)
	files := map[string]string{
		"nodes/mayura/ip-addr":                     filepath.Join("testdata", "synth", "mayura-ip-addr-no-bridge"),
		"nodes/mayura/ip-route":                    filepath.Join("testdata", "synth", "mayura-ip-route-no-bridge"),
		"nodes/mayura/virsh-net-dumpxml.xml":       filepath.Join("testdata", "synth", "seed-virsh-net-dumpxml.xml"),
		"nodes/rhel8a/ip-addr":                     seedFile("rhel8a", "ip-addr"),
		"nodes/rhel8a/ip-route":                    seedFile("rhel8a", "ip-route"),
		"nodes/rhel8a/docker-inspect.json":         filepath.Join("testdata", "synth", "seed-docker-inspect.json"),
		"nodes/rhel8a/docker-network-inspect.json": filepath.Join("testdata", "synth", "seed-docker-network-inspect.json"),
		"nodes/0d1b1ae40269/ip-addr":               seedFile("0d1b1ae40269", "ip-addr"),
		"nodes/0d1b1ae40269/ip-route":              seedFile("0d1b1ae40269", "ip-route"),
		"nodes/router/ip-addr":                     seedFile("router", "ip-addr"),
		"nodes/router/ip-route":                    seedFile("router", "ip-route"),
		"nodes/router/iptables-save":               seedFile("router", "iptables-save"),
	}
	s, err := LoadWith(buildSnapshot(t, topo, files), LoadOptions{Synthesize: true})
	if err != nil {
		t.Fatal(err)
	}
	m := s.Node("mayura")
	br := m.Iface("virbr0")
	if br == nil || br.Kind != model.IfBridge || br.MAC != "52:54:00:a8:d1:80" || !br.Origin.Synthesized || len(br.Addrs) != 2 ||
		br.Addrs[0].Prefix != netip.MustParsePrefix("192.168.122.1/24") || br.Addrs[0].Broadcast != netip.MustParseAddr("192.168.122.255") {
		t.Fatalf("virbr0 %+v", br)
	}
	if m.Sysctls["net.ipv6.conf.all.forwarding"].Value != "1" {
		t.Errorf("ipv6 forwarding %+v", m.Sysctls)
	}
	// mayura has no listener information: dnsmasq's are synthesized.
	var dns bool
	for _, l := range m.Listeners {
		dns = dns || (l.Proto == "udp" && l.Port == 53 && l.Addr == netip.MustParseAddr("192.168.122.1"))
	}
	if !dns {
		t.Errorf("mayura listeners %+v", m.Listeners)
	}
	r := s.Node("rhel8a")
	if r.IPv4 == nil || r.IPv4.Table("filter").Chain("FORWARD").Policy != "DROP" || r.Sysctls["net.ipv4.ip_forward"].Value != "1" {
		t.Fatalf("rhel8a: rules %v sysctls %+v", r.IPv4, r.Sysctls)
	}
	if !hasNote(s, "the node's own listeners are used") {
		t.Errorf("notes %q", s.Notes)
	}
	e, err := engine.New(s)
	if err != nil {
		t.Fatal(err)
	}
	tr := e.Trace(engine.Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: netip.MustParseAddr("142.250.115.106"), ICMPID: 55, ICMPSeq: 1})
	if tr.Verdict != trace.Answered {
		for _, h := range tr.Hops {
			t.Logf("%s %s %s %s: %s", h.Leg, h.Node, h.Iface, h.Kind, h.Message)
		}
		t.Fatalf("ping: %s: %s", tr.Verdict, tr.Reason)
	}
	tr = e.Trace(engine.Probe{From: "mayura", Proto: packet.TCP, Dst: netip.MustParseAddr("192.168.122.120"), DPort: 1443, SPort: 40000})
	if tr.Verdict != trace.Answered {
		for _, h := range tr.Hops {
			t.Logf("%s %s %s %s: %s", h.Leg, h.Node, h.Iface, h.Kind, h.Message)
		}
		t.Fatalf("published port: %s: %s", tr.Verdict, tr.Reason)
	}
	var dnat bool
	for _, h := range tr.Hops {
		if h.Node == "rhel8a" && h.Target == "DNAT" && h.Origin != nil && h.Origin.Synthesized {
			dnat = h.Origin.Text == "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 1443 -j DNAT --to-destination 172.17.0.2:443"
		}
	}
	if !dnat {
		t.Error("the published port does not go through the synthesized DNAT rule")
	}

	// A real iptables-save wins over the synthesized rules.
	files["nodes/rhel8a/iptables-save"] = seedFile("rhel8a", "iptables-save")
	s, err = LoadWith(buildSnapshot(t, topo, files), LoadOptions{Synthesize: true})
	if err != nil {
		t.Fatal(err)
	}
	if o := s.Node("rhel8a").IPv4.Table("nat").Origin; o.Synthesized || o.File != "nodes/rhel8a/iptables-save" {
		t.Errorf("rhel8a nat origin %+v", o)
	}
	if !hasNote(s, "the real iptables ruleset (nodes/rhel8a/iptables-save) wins") {
		t.Errorf("notes %q", s.Notes)
	}
}
