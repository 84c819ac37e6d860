package engine

import (
	"path/filepath"
	"testing"

	"github.com/pktflow/pktflow/internal/gen"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/snapshot"
)

// TestSegmentTakesFirstReceiver checks the MAC index of shared wires
// (segmentView.takes) against asking every peer in wire order, as a
// frame crossing a segment did before the index: on the examples and a
// generated fleet (a thousand-host segment), for every wire with several
// far ends, and every MAC in the snapshot, no MAC and broadcast.
func TestSegmentTakesFirstReceiver(t *testing.T) {
	fleet, err := gen.Fleet(gen.FleetOptions{Nodes: 60, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	engines := map[string]*Engine{
		"fleet": writeAndLoad(t, fleet, filepath.Join(t.TempDir(), "fleet")),
		// A segment whose middle end is a bridge port: a frame for c's
		// MAC enters sw there, one for b's goes to b.
		"bridged segment": loadYAML(t, `
nodes:
  a: {interfaces: {eth0: {addrs: [10.9.0.1/24], mac: "02:00:00:00:0a:01"}}}
  b: {interfaces: {eth0: {addrs: [10.9.0.2/24], mac: "02:00:00:00:0b:01"}}}
  c: {interfaces: {eth0: {addrs: [10.9.0.3/24], mac: "02:00:00:00:0c:01"}}}
  sw:
    interfaces:
      br0: {kind: bridge, addrs: [10.9.0.4/24], mac: "02:00:00:00:0d:01"}
      p0: {master: br0, mac: "02:00:00:00:0d:02"}
      p1: {master: br0, mac: "02:00:00:00:0d:03"}
links:
  - segment: [a:eth0, sw:p0, b:eth0]
  - veth: [sw:p1, c:eth0]
`),
	}
	for _, ex := range []string{"seed", "bridge", "multihomed", "kube-service", "firewall"} {
		s, err := snapshot.Load(filepath.Join("..", "..", "examples", ex))
		if err != nil {
			t.Fatal(err)
		}
		if engines[ex], err = New(s); err != nil {
			t.Fatal(err)
		}
	}
	for name, e := range engines {
		macs := []string{"", broadcastMAC, "02:00:00:00:00:99"}
		for _, ns := range e.nodes {
			for _, m := range ns.macs {
				macs = append(macs, m)
			}
		}
		wires := 0
		for _, ns := range e.nodes {
			for _, ifc := range ns.n.Interfaces {
				ps := e.peers(ns, ifc.Name)
				if len(ps) < 2 {
					continue
				}
				wires++
				sv := e.segment(ns, ifc.Name)
				for _, mac := range macs {
					want := -1
					for i, ep := range ps {
						pn := e.nodes[ep.Node]
						if pn != nil && (pn.mac(ep.Iface) == mac || (pn.bridgeOf(ep.Iface) != "" && e.leadsToFrom(pn, ep.Iface, mac))) {
							want = i
							break
						}
					}
					if got := sv.takes(e, mac); got != want {
						t.Errorf("%s: %s %s, frame for %q: peer %d takes it, want %d (%v)", name, ns.n.Name, ifc.Name, mac, got, want, endpoints(ps, got, want))
					}
				}
			}
		}
		if (name == "fleet" || name == "bridged segment") && wires == 0 {
			t.Fatalf("%s has no shared wire: the test checks nothing", name)
		}
	}
}

func endpoints(ps []model.Endpoint, i, j int) []model.Endpoint {
	var out []model.Endpoint
	for _, k := range []int{i, j} {
		if k >= 0 {
			out = append(out, ps[k])
		}
	}
	return out
}
