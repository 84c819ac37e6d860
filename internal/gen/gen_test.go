package gen_test

import (
	"bytes"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/gen"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

// load writes a generated snapshot and loads it as pktflow trace would.
func load(t *testing.T, s *gen.Snapshot) (*engine.Engine, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "snap")
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	snap, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(snap)
	if err != nil {
		t.Fatal(err)
	}
	return e, dir
}

func probe(p gen.Probe) engine.Probe {
	ep := engine.Probe{From: p.From, Dst: p.Dst, DPort: p.DPort, ICMPID: 1, ICMPSeq: 1}
	switch p.Proto {
	case "tcp":
		ep.Proto, ep.SPort = packet.TCP, engine.DefaultSPort
	case "udp":
		ep.Proto, ep.SPort = packet.UDP, engine.DefaultSPort
	default:
		ep.Proto = packet.ICMP
	}
	return ep
}

func dump(t *testing.T, tr *trace.Trace) {
	t.Helper()
	for _, h := range tr.Hops {
		t.Logf("  %s %s %s %s: %s", h.Leg, h.Node, h.Iface, h.Kind, h.Message)
	}
	t.Logf("  verdict %s: %s; uncertain %v", tr.Verdict, tr.Reason, tr.Uncertain)
}

// runProbes traces every probe and checks its verdict.
func runProbes(t *testing.T, e *engine.Engine, probes []gen.Probe) []*trace.Trace {
	t.Helper()
	if len(probes) == 0 {
		t.Fatal("the generator made no probes")
	}
	var out []*trace.Trace
	for _, p := range probes {
		tr := e.Trace(probe(p))
		if tr.Verdict != p.Expect {
			t.Errorf("%s (%s): verdict %s, want %s: %s", p.What, p, tr.Verdict, p.Expect, tr.Reason)
			dump(t, tr)
		}
		out = append(out, tr)
	}
	return out
}

func TestKubeTracesReachEndpoints(t *testing.T) {
	s := gen.Kube(gen.KubeOptions{Services: 300, Endpoints: 3, Seed: 7})
	e, _ := load(t, s)
	trs := runProbes(t, e, s.Probes)
	probes := append(gen.KubeServiceProbes(s, 20, false), gen.KubeServiceProbes(s, 5, true)...)
	trs = append(trs, runProbes(t, e, probes)...)
	probes = append(s.Probes, probes...)
	for i, tr := range trs {
		p := probes[i]
		if p.Expect != trace.Answered {
			continue
		}
		// The request is DNATed on the node to an endpoint, which the
		// cluster node receives, and the answer is un-DNATed back.
		var dnat, atEndpoint bool
		for _, h := range tr.Hops {
			if h.Kind == trace.EvNAT && h.Node == gen.KubeNode && h.Leg == trace.LegRequest && h.Before.Dst == p.Dst.String() {
				dnat = netip.MustParsePrefix("10.244.0.0/16").Contains(netip.MustParseAddr(h.After.Dst))
			}
		}
		for _, c := range tr.Captures {
			if c.Leg == trace.LegRequest && c.Node == gen.KubeCluster && c.Dir == "in" && strings.HasPrefix(c.Dst, "10.244.") {
				atEndpoint = true
			}
		}
		// The answer's source is the cluster IP again once the node
		// reverses the DNAT.
		undone := ""
		for _, h := range tr.Hops {
			if h.Kind == trace.EvNAT && h.Node == gen.KubeNode && h.Leg == trace.LegReply {
				undone = h.After.Src
			}
		}
		if !dnat || !atEndpoint || undone != p.Dst.String() {
			t.Errorf("%s: dnat %v, reached an endpoint %v, answer from %q", p, dnat, atEndpoint, undone)
			dump(t, tr)
		}
	}
}

func TestDockerTraces(t *testing.T) {
	s := gen.Docker(gen.DockerOptions{Containers: 60, Seed: 3})
	if s.Rules < 200 {
		t.Errorf("only %d rules for 60 containers", s.Rules)
	}
	e, _ := load(t, s)
	runProbes(t, e, s.Probes)
}

func TestFleetTraces(t *testing.T) {
	s, err := gen.Fleet(gen.FleetOptions{Nodes: 230, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Nodes) != 230 {
		t.Fatalf("%d nodes, want 230", len(s.Nodes))
	}
	e, _ := load(t, s)
	if n := len(e.NodeNames()); n != 230 {
		t.Fatalf("loaded %d nodes", n)
	}
	runProbes(t, e, s.Probes)
}

func TestFleetSizes(t *testing.T) {
	for _, n := range []int{4, 5, 101, 102, 1000} {
		s, err := gen.Fleet(gen.FleetOptions{Nodes: n})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Nodes) != n {
			t.Errorf("asked for %d nodes, got %d", n, len(s.Nodes))
		}
	}
	if _, err := gen.Fleet(gen.FleetOptions{Nodes: 3}); err == nil {
		t.Error("3 nodes: no error")
	}
}

// readTree returns every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	mk := map[string]func(seed uint64) *gen.Snapshot{
		"kube":   func(seed uint64) *gen.Snapshot { return gen.Kube(gen.KubeOptions{Services: 50, Seed: seed}) },
		"docker": func(seed uint64) *gen.Snapshot { return gen.Docker(gen.DockerOptions{Containers: 20, Seed: seed}) },
		"fleet": func(seed uint64) *gen.Snapshot {
			s, _ := gen.Fleet(gen.FleetOptions{Nodes: 60, Seed: seed})
			return s
		},
	}
	for name, f := range mk {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			write := func(sub string, seed uint64) map[string][]byte {
				d := filepath.Join(base, sub)
				if err := f(seed).Write(d); err != nil {
					t.Fatal(err)
				}
				return readTree(t, d)
			}
			a, b, c := write("a", 1), write("b", 1), write("c", 2)
			if len(a) != len(b) {
				t.Fatalf("%d files, then %d", len(a), len(b))
			}
			for p, da := range a {
				if !bytes.Equal(da, b[p]) {
					t.Errorf("%s differs between two runs with the same seed", p)
				}
			}
			same := len(a) == len(c)
			for p, da := range a {
				same = same && bytes.Equal(da, c[p])
			}
			if same {
				t.Error("seeds 1 and 2 wrote the same snapshot")
			}
		})
	}
}

// Write replaces only folders it wrote.
func TestWriteRefusesForeignFolders(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := gen.Docker(gen.DockerOptions{Containers: 2})
	if err := s.Write(dir); err == nil {
		t.Fatal("wrote over a folder it did not create")
	}
	out := filepath.Join(t.TempDir(), "g")
	if err := s.Write(out); err != nil {
		t.Fatal(err)
	}
	if err := gen.Kube(gen.KubeOptions{Services: 5}).Write(out); err != nil {
		t.Fatalf("rewriting a generated folder: %v", err)
	}
	if _, err := snapshot.Load(out); err != nil {
		t.Fatalf("rewritten folder does not load: %v", err)
	}
}
