package engine

import (
	"math"
	"testing"

	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// A kube-proxy-style service: three endpoints chosen by -m statistic.
const kubeTopo = `
nodes:
  client:
    interfaces: {eth0: {addrs: [10.0.0.2/24]}}
    routes: ["default via 10.0.0.1 dev eth0"]
  lb:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces:
      eth0: {addrs: [10.0.0.1/24]}
      eth1: {addrs: [10.1.0.1/24]}
    iptables: |
      *nat
      :PREROUTING ACCEPT [0:0]
      :INPUT ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      :POSTROUTING ACCEPT [0:0]
      :KUBE-SVC-X - [0:0]
      :KUBE-SEP-1 - [0:0]
      :KUBE-SEP-2 - [0:0]
      :KUBE-SEP-3 - [0:0]
      -A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X
      -A KUBE-SVC-X -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-1
      -A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-2
      -A KUBE-SVC-X -j KUBE-SEP-3
      -A KUBE-SEP-1 -p tcp -m tcp -j DNAT --to-destination 10.1.0.11:8080
      -A KUBE-SEP-2 -p tcp -m tcp -j DNAT --to-destination 10.1.0.12:8080
      -A KUBE-SEP-3 -p tcp -m tcp -j DNAT --to-destination 10.1.0.13:8080
      COMMIT
  ep1: {interfaces: {eth0: {addrs: [10.1.0.11/24]}}, routes: ["default via 10.1.0.1 dev eth0"], listen: [tcp/8080]}
  ep2: {interfaces: {eth0: {addrs: [10.1.0.12/24]}}, routes: ["default via 10.1.0.1 dev eth0"], listen: [tcp/8080]}
  ep3: {interfaces: {eth0: {addrs: [10.1.0.13/24]}}, routes: ["default via 10.1.0.1 dev eth0"]}
links:
  - segment: [client:eth0, lb:eth0]
  - segment: [lb:eth1, ep1:eth0, ep2:eth0, ep3:eth0]
`

func TestStatisticBranches(t *testing.T) {
	e := loadYAML(t, kubeTopo)
	tr := e.Trace(Probe{From: "client", Proto: packet.TCP, Dst: ip("10.96.0.10"), DPort: 80, SPort: 40000})
	if len(tr.Branches) != 3 {
		t.Fatalf("%d branches, want 3: %s", len(tr.Branches), tr.Reason)
	}
	want := []struct {
		ep      string
		verdict string
	}{{"ep1", trace.Answered}, {"ep2", trace.Answered}, {"ep3", trace.Refused}}
	sum := 0.0
	for i, b := range tr.Branches {
		if math.Abs(b.Probability-1.0/3) > 1e-6 {
			t.Errorf("branch %d probability %v, want 1/3", i, b.Probability)
		}
		sum += b.Probability
		if b.Verdict != want[i].verdict {
			t.Errorf("branch %d verdict %s, want %s", i, b.Verdict, want[i].verdict)
		}
		delivered := false
		for _, c := range b.Captures {
			if c.Node == want[i].ep && c.Dir == "in" && c.DPort == 8080 {
				delivered = true
			}
		}
		if !delivered {
			t.Errorf("branch %d does not reach %s", i, want[i].ep)
		}
		if len(b.Uncertain) != 0 {
			t.Errorf("branch %d uncertain: %v", i, b.Uncertain)
		}
	}
	if math.Abs(sum-1) > 1e-6 {
		t.Errorf("probabilities sum to %v", sum)
	}
	if tr.Verdict != trace.Mixed {
		t.Errorf("verdict %s, want mixed", tr.Verdict)
	}
}

func TestMultipathBranches(t *testing.T) {
	e := loadYAML(t, `
nodes:
  a:
    interfaces: {eth0: {addrs: [10.0.0.2/24]}, eth1: {addrs: [10.0.1.2/24]}}
    routes:
      - default proto static
        nexthop via 10.0.0.1 dev eth0 weight 1
        nexthop via 10.0.1.1 dev eth1 weight 3
  net:
    kind: external
    owns: [198.51.100.0/24]
    interfaces: {eth0: {addrs: [10.0.0.1/24]}, eth1: {addrs: [10.0.1.1/24]}}
links:
  - segment: [a:eth0, net:eth0]
  - segment: [a:eth1, net:eth1]
`)
	tr := e.Trace(Probe{From: "a", Proto: packet.ICMP, Dst: ip("198.51.100.7"), ICMPID: 1, ICMPSeq: 1})
	if len(tr.Branches) != 2 || tr.Verdict != trace.Answered {
		t.Fatalf("branches %d verdict %s: %s", len(tr.Branches), tr.Verdict, tr.Reason)
	}
	if p := tr.Branches[0].Probability; math.Abs(p-0.25) > 1e-9 {
		t.Errorf("first path probability %v, want 0.25", p)
	}
	if c := tr.Branches[1].Captures[0]; c.Iface != "eth1" || c.Src != "10.0.1.2" {
		t.Errorf("second path leaves %s from %s, want eth1 from 10.0.1.2", c.Iface, c.Src)
	}
}
