package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

func loadSeed(t testing.TB) *Engine {
	t.Helper()
	s, err := snapshot.Load("../../examples/seed")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func capLines(tr *trace.Trace) []string {
	var out []string
	for _, c := range tr.Captures {
		out = append(out, c.Node+" "+c.Iface+" "+c.Dir+" "+c.Line)
	}
	return out
}

func mustContainInOrder(t *testing.T, got []string, want ...string) {
	t.Helper()
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("captures lack %q (in order); got:\n  %s", want[i], strings.Join(got, "\n  "))
	}
}

func dump(t *testing.T, tr *trace.Trace) {
	t.Helper()
	for _, h := range tr.Hops {
		t.Logf("%s %s %s %s: %s", h.Leg, h.Node, h.Iface, h.Kind, h.Message)
	}
	t.Logf("verdict %s: %s; uncertain %v", tr.Verdict, tr.Reason, tr.Uncertain)
}

// Acceptance 1: the seed's ping from the container to www.google.com.
func TestSeedPingGoogle(t *testing.T) {
	e := loadSeed(t)
	tr := e.Trace(Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: netip.MustParseAddr("142.250.115.106"), DstName: "www.google.com", ICMPID: 55, ICMPSeq: 1})
	if tr.Verdict != trace.Answered {
		dump(t, tr)
		t.Fatalf("verdict %s: %s", tr.Verdict, tr.Reason)
	}
	if len(tr.Uncertain) != 0 {
		t.Errorf("uncertain: %v", tr.Uncertain)
	}
	got := capLines(tr)
	mustContainInOrder(t, got,
		// The seed's captures, line for line.
		"0d1b1ae40269 eth0 out IP 172.17.0.2 > 142.250.115.106: ICMP echo request, id 55, seq 1, length 64",
		"rhel8a vethf274fbd in IP 172.17.0.2 > 142.250.115.106: ICMP echo request, id 55, seq 1, length 64",
		"rhel8a enp1s0 out IP 192.168.122.120 > 142.250.115.106: ICMP echo request, id 55, seq 1, length 64",
		"mayura vnet0 in IP 192.168.122.120 > 142.250.115.106: ICMP echo request, id 55, seq 1, length 64",
		// metric 100 beats 101: out enp7s0, masqueraded to 10.0.2.21.
		"mayura enp7s0 out IP 10.0.2.21 > 142.250.115.106: ICMP echo request, id 55, seq 1, length 64",
		"router eth0 out IP 203.0.113.2 > 142.250.115.106: ICMP echo request, id 55, seq 1, length 64",
		"internet eth0 in IP 203.0.113.2 > 142.250.115.106: ICMP echo request, id 55, seq 1, length 64",
		"internet eth0 out IP 142.250.115.106 > 203.0.113.2: ICMP echo reply, id 55, seq 1, length 64",
		"router eth1 out IP 142.250.115.106 > 10.0.2.21: ICMP echo reply, id 55, seq 1, length 64",
		"mayura vnet0 out IP 142.250.115.106 > 192.168.122.120: ICMP echo reply, id 55, seq 1, length 64",
		"rhel8a vethf274fbd out IP 142.250.115.106 > 172.17.0.2: ICMP echo reply, id 55, seq 1, length 64",
		"0d1b1ae40269 eth0 in IP 142.250.115.106 > 172.17.0.2: ICMP echo reply, id 55, seq 1, length 64",
	)
	last := tr.Captures[len(tr.Captures)-1]
	if last.TTL != 103 {
		t.Errorf("reply reaches the container with ttl %d, the seed's ping says 103", last.TTL)
	}
}

// Acceptance 2: the seed's tracepath: rhel8a itself, one hop, no NAT.
func TestSeedContainerToVM(t *testing.T) {
	e := loadSeed(t)
	tr := e.Trace(Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: netip.MustParseAddr("192.168.122.120"), ICMPID: 1, ICMPSeq: 1})
	if tr.Verdict != trace.Answered {
		dump(t, tr)
		t.Fatalf("verdict %s: %s", tr.Verdict, tr.Reason)
	}
	for _, h := range tr.Hops {
		if h.Kind == trace.EvNAT {
			t.Errorf("unexpected NAT: %s", h.Message)
		}
	}
	nodes := map[string]bool{}
	for _, c := range tr.Captures {
		nodes[c.Node] = true
	}
	if len(nodes) != 2 || !nodes["rhel8a"] {
		t.Errorf("the packet should only touch the container and rhel8a: %v", nodes)
	}
}

// Acceptance 3: a published port, DNATed in rhel8a's DOCKER chain.
func TestSeedPublishedPort(t *testing.T) {
	e := loadSeed(t)
	tr := e.Trace(Probe{From: "mayura", Proto: packet.TCP, Dst: netip.MustParseAddr("192.168.122.120"), DPort: 1443, SPort: 40000})
	if tr.Verdict != trace.Answered {
		dump(t, tr)
		t.Fatalf("verdict %s: %s", tr.Verdict, tr.Reason)
	}
	mustContainInOrder(t, capLines(tr),
		"mayura virbr0 out IP 192.168.122.1.40000 > 192.168.122.120.1443: Flags [S], length 0",
		"rhel8a enp1s0 in IP 192.168.122.1.40000 > 192.168.122.120.1443: Flags [S], length 0",
		"rhel8a vethf274fbd out IP 192.168.122.1.40000 > 172.17.0.2.443: Flags [S], length 0",
		"0d1b1ae40269 eth0 in IP 192.168.122.1.40000 > 172.17.0.2.443: Flags [S], length 0",
		"0d1b1ae40269 eth0 out IP 172.17.0.2.443 > 192.168.122.1.40000: Flags [S.], length 0",
		"rhel8a enp1s0 out IP 192.168.122.120.1443 > 192.168.122.1.40000: Flags [S.], length 0",
		"mayura virbr0 in IP 192.168.122.120.1443 > 192.168.122.1.40000: Flags [S.], length 0",
	)
	var dnat bool
	for _, h := range tr.Hops {
		if h.Kind == trace.EvRule && h.Node == "rhel8a" && h.Chain == "DOCKER" && h.Target == "DNAT" {
			dnat = h.Origin != nil && strings.Contains(h.Origin.Text, "--dport 1443")
		}
	}
	if !dnat {
		dump(t, tr)
		t.Error("the trace does not name rhel8a's DOCKER DNAT rule")
	}
}

// Acceptance 4: a drop is explained.
func TestSeedDropAtRouter(t *testing.T) {
	e := loadSeed(t)
	tr := e.Trace(Probe{From: "internet", Proto: packet.TCP, Src: netip.MustParseAddr("142.250.115.106"), Dst: netip.MustParseAddr("203.0.113.2"), DPort: 1443, SPort: 40000})
	if tr.Verdict != trace.Dropped {
		dump(t, tr)
		t.Fatalf("verdict %s: %s", tr.Verdict, tr.Reason)
	}
	if !strings.Contains(tr.Reason, "router") || !strings.Contains(tr.Reason, "INPUT") || !strings.Contains(tr.Reason, "policy DROP") {
		t.Errorf("reason does not name the router's INPUT policy: %s", tr.Reason)
	}
}

func BenchmarkSeedPing(b *testing.B) {
	e := loadSeed(b)
	p := Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: netip.MustParseAddr("142.250.115.106"), ICMPID: 55, ICMPSeq: 1}
	b.ReportAllocs()
	for b.Loop() {
		if tr := e.Trace(p); tr.Verdict != trace.Answered {
			b.Fatal(tr.Reason)
		}
	}
}
