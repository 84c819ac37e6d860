package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

const natTopo = `
nodes:
  client:
    interfaces: {eth0: {addrs: [10.0.0.2/24]}}
    routes: ["default via 10.0.0.1 dev eth0"]
  r:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces: {eth0: {addrs: [198.51.100.1/24]}, eth1: {addrs: [10.0.0.1/24]}}
    routes: ["default via 198.51.100.254 dev eth0"]
    iptables: |
      *nat
      :PREROUTING ACCEPT [0:0]
      :INPUT ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      :POSTROUTING ACCEPT [0:0]
      -A POSTROUTING -o eth0 -j MASQUERADE
      COMMIT
  net:
    kind: external
    owns: [203.0.113.0/24]
    interfaces: {eth0: {addrs: [198.51.100.254/24]}}
    listen: [udp/53]
links:
  - veth: [client:eth0, r:eth1]
  - veth: [r:eth0, net:eth0]
`

// MASQUERADE keeps the source port unless another connection already
// uses the same reply tuple, as an entry from `conntrack -L` says here.
func TestMasqueradePortClash(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "topology.yaml"), []byte(natTopo), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := Probe{From: "client", Proto: packet.UDP, SPort: 40000, Dst: ip("203.0.113.9"), DPort: 53}
	sport := func(tr *trace.Trace) uint16 {
		for _, c := range tr.Captures {
			if c.Node == "r" && c.Iface == "eth0" && c.Dir == "out" {
				return c.SPort
			}
		}
		t.Fatal("nothing left r eth0")
		return 0
	}
	e, _ := New(s)
	tr := e.Trace(p)
	if got := sport(tr); got != 40000 || len(tr.Uncertain) != 0 {
		t.Fatalf("without a clash the port stays 40000: got %d, uncertain %v", got, tr.Uncertain)
	}
	s.Node("r").Conntrack = []model.ConntrackEntry{{Proto: "udp",
		Orig:  model.Tuple{Src: ip("10.0.0.3"), Dst: ip("203.0.113.9"), SPort: 40000, DPort: 53},
		Reply: model.Tuple{Src: ip("203.0.113.9"), Dst: ip("198.51.100.1"), SPort: 53, DPort: 40000}}}
	e, _ = New(s)
	tr = e.Trace(p)
	if tr.Verdict != trace.Answered {
		t.Fatalf("verdict %s: %s", tr.Verdict, tr.Reason)
	}
	if got := sport(tr); got == 40000 {
		t.Fatal("MASQUERADE kept a port another connection uses")
	}
	if len(tr.Uncertain) != 1 || !strings.Contains(tr.Uncertain[0], "picks another free port") {
		t.Errorf("the kernel's random choice of port must be marked uncertain: %v", tr.Uncertain)
	}
}
