package engine

import (
	"os"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// The conformance reproduction's topology (checked against the kernel by
// internal/conformance's TestEngineBugRepros); here the reasons the
// engine gives are checked.
func TestNDPThroughIP6tables(t *testing.T) {
	y, err := os.ReadFile("../conformance/testdata/engine-bugs/ipv6-ndp-firewall/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := loadYAML(t, string(y))
	for _, tc := range []struct {
		name, from, dst string
		proto           uint8
		verdict         string
		reason          []string // in the verdict's reason or the trace's events
	}{
		{"solicitation dropped", "a", "2001:db8:1::1", packet.ICMP, trace.Dropped,
			[]string{"r drops the neighbor solicitation 2001:db8:1::2 > ff02::1:ff00:1 in filter INPUT", "untracked"}},
		{"advertisement dropped", "r", "2001:db8:1::2", packet.ICMP, trace.Dropped,
			[]string{"r drops the neighbor advertisement 2001:db8:1::2 > 2001:db8:1::1 in filter INPUT"}},
		{"IPv4 unaffected", "a", "10.0.1.1", packet.ICMP, trace.Answered, []string{"ARP: 10.0.1.1 is r eth0"}},
		{"error through the learned entry", "b", "2001:db8:2::1", packet.ICMP, trace.Rejected,
			[]string{"NDP: 2001:db8:2::1 is r eth1", "known from neighbor discovery earlier in this trace"}},
		{"REJECT's own error lost", "r", "2001:db8:2::2", packet.ICMP, trace.Dropped,
			[]string{"r rejects the neighbor advertisement", "the ICMPv6 error the REJECT sends back is lost the same way"}},
		{"ICMPv6 accepted", "c", "2001:db8:3::1", packet.ICMP, trace.Answered, []string{"NDP: 2001:db8:3::1 is r eth2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := e.Trace(Probe{From: tc.from, Proto: tc.proto, Dst: ip(tc.dst), ICMPID: 1, ICMPSeq: 1})
			if tr.Verdict != tc.verdict {
				t.Errorf("verdict %s (%s), want %s", tr.Verdict, tr.Reason, tc.verdict)
			}
			var all strings.Builder
			all.WriteString(tr.Reason)
			for _, h := range tr.Hops {
				all.WriteString("\n" + h.Message)
			}
			for _, want := range tc.reason {
				if !strings.Contains(all.String(), want) {
					t.Errorf("no %q in\n%s", want, all.String())
				}
			}
			if len(tr.Uncertain) > 0 {
				t.Errorf("uncertain: %v", tr.Uncertain)
			}
		})
	}
}

// Bridged neighbour discovery meets the bridge host's ip6tables FORWARD
// (kernel-checked in conformance's engine-bugs/ipv6-ndp-bridged).
func TestNDPBridged(t *testing.T) {
	y, err := os.ReadFile("../conformance/testdata/engine-bugs/ipv6-ndp-bridged/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := loadYAML(t, string(y))
	tr := e.Trace(Probe{From: "c1", Proto: packet.TCP, SPort: 40000, Dst: ip("2001:db8:88::3"), DPort: 80})
	if tr.Verdict != trace.Dropped || !strings.Contains(tr.Reason, "h drops the neighbor solicitation 2001:db8:88::2 > ff02::1:ff00:3 it bridges from veth1 to veth2, in filter FORWARD") {
		t.Errorf("%s: %s", tr.Verdict, tr.Reason)
	}
	if tr := e.Trace(Probe{From: "c1", Proto: packet.TCP, SPort: 40000, Dst: ip("2001:db8:88::4"), DPort: 80}); tr.Verdict != trace.Answered {
		t.Errorf("to c3, whose port passes ICMPv6: %s: %s", tr.Verdict, tr.Reason)
	}
	// Without the sysctl the bridge host's rules may or may not apply.
	e = loadYAML(t, strings.Replace(string(y), "sysctl: {net.bridge.bridge-nf-call-ip6tables: 1}", "", 1))
	if tr := e.Trace(Probe{From: "c1", Proto: packet.ICMP, Dst: ip("2001:db8:88::3"), ICMPID: 1, ICMPSeq: 1}); len(tr.Uncertain) == 0 {
		t.Errorf("no uncertainty without bridge-nf-call-ip6tables: %s: %s", tr.Verdict, tr.Reason)
	}
}

func TestNDPAddresses(t *testing.T) {
	if got := solicitedNode(ip("2001:db8::12:3456")); got != ip("ff02::1:ff12:3456") {
		t.Errorf("solicited-node address %s", got)
	}
	if got := linkLocal("52:54:00:12:34:56"); got != ip("fe80::5054:ff:fe12:3456") {
		t.Errorf("link-local %s", got)
	}
	if got := linkLocal(""); got != ip("fe80::1") {
		t.Errorf("link-local without a MAC %s", got)
	}
}

// A rule neighbour discovery meets that pktflow cannot evaluate makes the
// trace uncertain, as it would for the packet itself.
func TestNDPUncertainRule(t *testing.T) {
	e := loadYAML(t, `
nodes:
  a:
    interfaces: {eth0: {addrs: ["2001:db8:1::2/64"]}}
    routes: ["default via 2001:db8:1::1 dev eth0"]
  r:
    interfaces: {eth0: {addrs: ["2001:db8:1::1/64"]}}
    ip6tables: |
      *filter
      :INPUT ACCEPT [0:0]
      :FORWARD ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      -A INPUT -p ipv6-icmp -m nosuchmatch --whatever 1 -j DROP
      COMMIT
links:
  - veth: [a:eth0, r:eth0]
`)
	tr := e.Trace(Probe{From: "a", Proto: packet.ICMP, Dst: ip("2001:db8:1::1"), ICMPID: 1, ICMPSeq: 1})
	found := false
	for _, u := range tr.Uncertain {
		if strings.Contains(u, "neighbor discovery for 2001:db8:1::1") && strings.Contains(u, "nosuchmatch") {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: uncertain %q", tr.Verdict, tr.Uncertain)
	}
}
