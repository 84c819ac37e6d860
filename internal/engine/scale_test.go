package engine

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pktflow/pktflow/internal/gen"
)

// setIndexing turns the netfilter chain index on or off on every node.
func (e *Engine) setIndexing(on bool) {
	for _, ns := range e.nodes {
		ns.nf4.SetIndexing(on)
	}
}

// TestIndexedTracesIdentical traces the generated kube-proxy node, Docker
// host and fleet with the netfilter chain index on and off (rule-by-rule
// evaluation, as the kernel does) and requires identical traces, every
// branch, event, capture and message included; and a Tracer, which
// reuses memory from one trace to the next, gives the same traces too.
func TestIndexedTracesIdentical(t *testing.T) {
	services := 3000
	if testing.Short() {
		services = 500
	}
	fleet, err := gen.Fleet(gen.FleetOptions{Nodes: 150, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	kube := gen.Kube(gen.KubeOptions{Services: services, Endpoints: 3, Seed: 9})
	cases := []struct {
		name   string
		snap   *gen.Snapshot
		probes []gen.Probe
	}{
		{"kube", kube, append(append(kube.Probes, gen.KubeServiceProbes(kube, 200, false)...), gen.KubeServiceProbes(kube, 50, true)...)},
		{"docker", gen.Docker(gen.DockerOptions{Containers: 150, Seed: 9}), nil},
		{"fleet", fleet, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := writeAndLoad(t, c.snap, filepath.Join(t.TempDir(), c.name))
			probes := c.probes
			if probes == nil {
				probes = c.snap.Probes
			}
			tracer := e.NewTracer()
			for _, gp := range probes {
				p := genProbe(gp)
				e.setIndexing(true)
				a := e.Trace(p)
				e.setIndexing(false)
				b := e.Trace(p)
				e.setIndexing(true)
				ja, err := json.Marshal(a)
				if err != nil {
					t.Fatal(err)
				}
				jb, _ := json.Marshal(b)
				if string(ja) != string(jb) || !reflect.DeepEqual(a, b) {
					t.Fatalf("%s: indexed and rule-by-rule traces differ\nindexed: %s\nplain:   %s", gp, ja, jb)
				}
				// A Tracer, reusing the memory of every trace before,
				// gives the same trace.
				if jc, _ := json.Marshal(tracer.Trace(p)); string(jc) != string(ja) {
					t.Fatalf("%s: Tracer and Engine.Trace differ\nTracer: %s\nTrace:  %s", gp, jc, ja)
				}
				if a.Verdict != gp.Expect {
					t.Errorf("%s (%s): %s, want %s: %s", gp, gp.What, a.Verdict, gp.Expect, a.Reason)
				}
			}
		})
	}
}

// TestTracesKeepTheirMemory checks that a trace from Engine.Trace is its
// caller's for good: events, captures and messages live in blocks shared
// with later traces (see arena and shared.intern), which must never write
// over what an earlier trace holds.
func TestTracesKeepTheirMemory(t *testing.T) {
	kube := gen.Kube(gen.KubeOptions{Services: 200, Endpoints: 3, Seed: 3})
	e := writeAndLoad(t, kube, filepath.Join(t.TempDir(), "kube"))
	probes := append(kube.Probes, gen.KubeServiceProbes(kube, 100, false)...)
	var kept []string
	var traces []any
	for _, gp := range probes {
		tr := e.Trace(genProbe(gp))
		j, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		kept, traces = append(kept, string(j)), append(traces, tr)
	}
	// A Tracer on the same engine rewinds only its own memory.
	tracer := e.NewTracer()
	for _, gp := range probes {
		tracer.Trace(genProbe(gp))
	}
	for i, tr := range traces {
		j, _ := json.Marshal(tr)
		if string(j) != kept[i] {
			t.Fatalf("%s: the trace changed after later traces\nthen: %s\nnow:  %s", probes[i], kept[i], j)
		}
	}
}
