package snapshot

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// testdata/formats is the seed described in every other format pktflow
// reads. It loads into the same network: the seed's ping takes the same
// path, with no uncertainty (the listings show every chain), and the tap
// is wired from mayura's `virsh dumpxml rhel8a`.
func TestFormatsSnapshot(t *testing.T) {
	s, err := Load("testdata/formats")
	if err != nil {
		t.Fatal(err)
	}
	m, r, c := s.Node("mayura"), s.Node("rhel8a"), s.Node("0d1b1ae40269")

	// ip -j addr, bridge -j link, bridge -j fdb.
	if v := m.Iface("virbr0"); v == nil || v.Kind != model.IfBridge || len(v.Addrs) != 3 || v.Origin.File != "nodes/mayura/ip-addr.json" {
		t.Errorf("virbr0 %+v", v)
	}
	if v := m.Iface("vnet0"); v.Kind != model.IfTap || v.PortState != "forwarding" || v.Master != "virbr0" {
		t.Errorf("vnet0 %+v", v)
	}
	if v := m.Iface("virbr0-nic"); v.PortState != "disabled" {
		t.Errorf("virbr0-nic %+v", v)
	}
	if len(m.FDB) != 8 || len(m.Leases) != 2 || len(m.Conntrack) != 5 || len(m.Listeners) != 12 || len(m.Routes) != 18 {
		t.Errorf("mayura: %d fdb, %d leases, %d conntrack, %d listeners, %d routes", len(m.FDB), len(m.Leases), len(m.Conntrack), len(m.Listeners), len(m.Routes))
	}
	if m.Leases[0].Network != "default" || m.Leases[0].Prefix != netip.MustParsePrefix("192.168.122.120/24") {
		t.Errorf("lease %+v", m.Leases[0])
	}
	if m.Sysctls["net.ipv4.ip_forward"].Value != "1" || m.Sysctls["net.ipv4.conf.all.rp_filter"].Value != "1" {
		t.Errorf("sysctls %+v", m.Sysctls)
	}
	// ip -d link refines ip addr: the veth's peer and namespace.
	if v := r.Iface("vethf274fbd"); v.PeerIndex != 6 || v.LinkNetns != "0" || v.PortState != "forwarding" || v.Hairpin == nil || *v.Hairpin {
		t.Errorf("vethf274fbd %+v", v)
	}
	if e := c.Iface("eth0"); e.Kind != model.IfVeth || e.PeerIndex != 7 || e.LinkNetns != "0" {
		t.Errorf("container eth0 %+v", e)
	}
	// iptables -L listings: every chain listed, no notes left once the
	// node's interfaces settle the glued "!".
	for _, n := range []*model.Node{m, r} {
		for _, tb := range n.IPv4.Tables {
			for _, ch := range tb.Chains {
				if ch.Origin.Synthesized {
					t.Errorf("%s: placeholder %s %s", n.Name, tb.Name, ch.Name)
				}
				for _, rule := range ch.Rules {
					if len(rule.Lossy) != 0 {
						t.Errorf("%s: %s: %q", n.Name, rule.Origin.Text, rule.Lossy)
					}
				}
			}
		}
	}
	if len(r.IPv4.Tables) != 2 || r.IPv4.Table("nat").Chain("DOCKER") == nil || r.IPv4.Table("filter").Chain("FORWARD").Policy != "DROP" {
		t.Errorf("rhel8a tables %+v", r.IPv4.Tables)
	}
	// The tap comes from virsh dumpxml.
	var tap *model.Link
	for _, l := range s.Links {
		if l.Kind == model.LinkTap {
			tap = l
		}
	}
	if tap == nil || tap.Ends[0] != (model.Endpoint{Node: "mayura", Iface: "vnet0"}) || tap.Ends[1] != (model.Endpoint{Node: "rhel8a", Iface: "enp1s0"}) ||
		!tap.Origin.Synthesized || tap.Origin.File != "synthesized from nodes/mayura/virsh-dumpxml-rhel8a.xml" {
		t.Fatalf("tap link %+v", tap)
	}
	for _, want := range []string{"vnet1, which node mayura does not have", "docker-network-inspect.json read but not used", "read back from `iptables -L`"} {
		if !hasNote(s, want) {
			t.Errorf("notes lack %q: %q", want, s.Notes)
		}
	}

	e, err := engine.New(s)
	if err != nil {
		t.Fatal(err)
	}
	tr := e.Trace(engine.Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: netip.MustParseAddr("142.250.115.106"), ICMPID: 56, ICMPSeq: 1})
	if tr.Verdict != trace.Answered || len(tr.Uncertain) != 0 {
		for _, h := range tr.Hops {
			t.Logf("%s %s %s %s: %s", h.Leg, h.Node, h.Iface, h.Kind, h.Message)
		}
		t.Fatalf("%s: %s; uncertain %q", tr.Verdict, tr.Reason, tr.Uncertain)
	}
	var got []string
	for _, cp := range tr.Captures {
		got = append(got, cp.Node+" "+cp.Iface+" "+cp.Dir+" "+cp.Line)
	}
	for _, want := range []string{
		"rhel8a enp1s0 out IP 192.168.122.120 > 142.250.115.106: ICMP echo request, id 56, seq 1, length 64",
		"mayura enp7s0 out IP 10.0.2.21 > 142.250.115.106: ICMP echo request, id 56, seq 1, length 64",
		"0d1b1ae40269 eth0 in IP 142.250.115.106 > 172.17.0.2: ICMP echo reply, id 56, seq 1, length 64",
	} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("captures lack %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	// The DNAT of rhel8a's listing, read back from `tcp dpt:1443 to:...`.
	tr = e.Trace(engine.Probe{From: "mayura", Proto: packet.TCP, Dst: netip.MustParseAddr("192.168.122.120"), DPort: 1443, SPort: 40000})
	if tr.Verdict != trace.Answered {
		t.Fatalf("published port: %s: %s", tr.Verdict, tr.Reason)
	}
	var dnat bool
	for _, h := range tr.Hops {
		if h.Node == "rhel8a" && h.Target == "DNAT" && h.Origin != nil {
			dnat = h.Origin.File == "nodes/rhel8a/iptables-L-nat" && strings.Contains(h.Origin.Text, "tcp dpt:1443 to:172.17.0.2:443")
		}
	}
	if !dnat {
		t.Error("the DNAT is not the listing's line")
	}

	// With --synthesize the real listings win over what the XML and the
	// docker inspect would install.
	s, err = LoadWith("testdata/formats", LoadOptions{Synthesize: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mayura: the real iptables ruleset (nodes/mayura/iptables-L) wins", "rhel8a: the real iptables ruleset (nodes/rhel8a/iptables-L-filter, nodes/rhel8a/iptables-L-nat) wins"} {
		if !hasNote(s, want) {
			t.Errorf("notes lack %q: %q", want, s.Notes)
		}
	}
}

// A listing that shows only some chains leaves the rest unknown: a trace
// through them says so.
func TestPartialListingIsUncertain(t *testing.T) {
	// rhel8a's rules: only the seed's POSTROUTING and DOCKER listings.
	dir := buildSnapshot(t, seedTopology, map[string]string{
		"nodes/mayura/ip-addr":        seedFile("mayura", "ip-addr"),
		"nodes/mayura/ip-route":       seedFile("mayura", "ip-route"),
		"nodes/mayura/iptables-save":  seedFile("mayura", "iptables-save"),
		"nodes/rhel8a/ip-addr":        seedFile("rhel8a", "ip-addr"),
		"nodes/rhel8a/ip-route":       seedFile("rhel8a", "ip-route"),
		"nodes/rhel8a/iptables-L":     "../ingest/iptlist/testdata/seed-nat.txt",
		"nodes/0d1b1ae40269/ip-addr":  seedFile("0d1b1ae40269", "ip-addr"),
		"nodes/0d1b1ae40269/ip-route": seedFile("0d1b1ae40269", "ip-route"),
		"nodes/router/ip-addr":        seedFile("router", "ip-addr"),
		"nodes/router/ip-route":       seedFile("router", "ip-route"),
		"nodes/router/iptables-save":  seedFile("router", "iptables-save"),
	})
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// seedTopology leaves mayura's forwarding to --synthesize.
	s.Node("mayura").Sysctls = map[string]model.Sysctl{"net.ipv4.ip_forward": {Value: "1"}}
	e, err := engine.New(s)
	if err != nil {
		t.Fatal(err)
	}
	tr := e.Trace(engine.Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: netip.MustParseAddr("142.250.115.106"), ICMPID: 55, ICMPSeq: 1})
	if tr.Verdict != trace.Answered {
		t.Fatalf("%s: %s", tr.Verdict, tr.Reason)
	}
	joined := strings.Join(tr.Uncertain, "\n")
	for _, want := range []string{
		"table filter is not in the iptables -L listing",
		"chain PREROUTING of table nat is not in the iptables -L listing",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("uncertain lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "glues !") {
		t.Errorf("the glued ! is settled by rhel8a's interfaces:\n%s", joined)
	}
}
