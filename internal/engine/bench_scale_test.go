package engine

// Benchmarks at real scale (issue 5), on snapshots written by
// internal/gen and loaded from disk as `pktflow trace` loads them:
//
//	go test ./internal/engine/ -run XXX -bench Scale -benchmem
//
// Kube1k/10k/100k are kube-proxy nodes with 100, 1,000 and 10,000
// services of 3 endpoints (the rules metric gives the exact count); a
// trace is a new TCP connection from a pod to a cluster IP and its answer,
// every -m statistic branch enumerated (3 runs of the path per trace).

import (
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktflow/pktflow/internal/gen"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

// scaleSnap is a generated snapshot loaded into an engine.
type scaleSnap struct {
	gen    *gen.Snapshot
	e      *Engine
	probes []Probe
}

var (
	scaleMu    sync.Mutex
	scaleCache = map[string]*scaleSnap{}
)

// genProbe turns a generator probe into an engine probe.
func genProbe(p gen.Probe) Probe {
	ep := Probe{From: p.From, Dst: p.Dst, DPort: p.DPort, ICMPID: 1, ICMPSeq: 1}
	switch p.Proto {
	case "tcp":
		ep.Proto, ep.SPort = packet.TCP, DefaultSPort
	case "udp":
		ep.Proto, ep.SPort = packet.UDP, DefaultSPort
	default:
		ep.Proto = packet.ICMP
	}
	return ep
}

// writeAndLoad writes s under dir and loads it like pktflow trace.
func writeAndLoad(tb testing.TB, s *gen.Snapshot, dir string) *Engine {
	tb.Helper()
	if err := s.Write(dir); err != nil {
		tb.Fatal(err)
	}
	snap, err := snapshot.Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := New(snap)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// scaleKube returns (once per size) a loaded kube node and pod-to-service
// probes spread over its KUBE-SERVICES chain.
func scaleKube(tb testing.TB, services int) *scaleSnap {
	key := fmt.Sprintf("kube-%d", services)
	scaleMu.Lock()
	defer scaleMu.Unlock()
	if s := scaleCache[key]; s != nil {
		return s
	}
	g := gen.Kube(gen.KubeOptions{Services: services, Endpoints: 3, Seed: 1})
	s := &scaleSnap{gen: g, e: writeAndLoad(tb, g, filepath.Join(tb.TempDir(), key))}
	for _, p := range gen.KubeServiceProbes(g, 64, false) {
		s.probes = append(s.probes, genProbe(p))
	}
	scaleCache[key] = s
	return s
}

// scaleFleet returns (once) a loaded fleet and its probes.
func scaleFleet(tb testing.TB, nodes int) *scaleSnap {
	key := fmt.Sprintf("fleet-%d", nodes)
	scaleMu.Lock()
	defer scaleMu.Unlock()
	if s := scaleCache[key]; s != nil {
		return s
	}
	g, err := gen.Fleet(gen.FleetOptions{Nodes: nodes, Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	s := &scaleSnap{gen: g, e: writeAndLoad(tb, g, filepath.Join(tb.TempDir(), key))}
	for _, p := range g.Probes {
		s.probes = append(s.probes, genProbe(p))
	}
	scaleCache[key] = s
	return s
}

// BenchmarkScaleLoadKube100k is the load of the 100k-rule node: reading
// and parsing every file, compiling the rulesets, building the engine.
func BenchmarkScaleLoadKube100k(b *testing.B) { benchLoadKube(b, 10_000) }
func BenchmarkScaleLoadKube10k(b *testing.B)  { benchLoadKube(b, 1_000) }

func benchLoadKube(b *testing.B, services int) {
	g := gen.Kube(gen.KubeOptions{Services: services, Endpoints: 3, Seed: 1})
	dir := filepath.Join(b.TempDir(), "kube")
	if err := g.Write(dir); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		snap, err := snapshot.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := New(snap); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(g.Rules), "rules")
}

// BenchmarkScaleTraceKube* trace a new TCP connection from a pod to a
// cluster IP, request and reply, every endpoint branch enumerated.
func BenchmarkScaleTraceKube1k(b *testing.B)   { benchTraceKube(b, 100, true) }
func BenchmarkScaleTraceKube10k(b *testing.B)  { benchTraceKube(b, 1_000, true) }
func BenchmarkScaleTraceKube100k(b *testing.B) { benchTraceKube(b, 10_000, true) }

// BenchmarkScaleTraceKube100kTracer is the 100k-rule trace with a Tracer,
// each trace's memory reused by the next.
func BenchmarkScaleTraceKube100kTracer(b *testing.B) { benchTraceKubeWith(b, 10_000, true, true) }
func BenchmarkScaleTraceKube1kTracer(b *testing.B)   { benchTraceKubeWith(b, 100, true, true) }

// The same traces with the netfilter chain index off (every rule walked,
// as the kernel does), for comparison.
func BenchmarkScaleTraceKubePlain1k(b *testing.B)   { benchTraceKube(b, 100, false) }
func BenchmarkScaleTraceKubePlain10k(b *testing.B)  { benchTraceKube(b, 1_000, false) }
func BenchmarkScaleTraceKubePlain100k(b *testing.B) { benchTraceKube(b, 10_000, false) }

func benchTraceKube(b *testing.B, services int, indexed bool) {
	benchTraceKubeWith(b, services, indexed, false)
}

func benchTraceKubeWith(b *testing.B, services int, indexed, reuse bool) {
	s := scaleKube(b, services)
	s.e.setIndexing(indexed)
	defer s.e.setIndexing(true)
	for _, p := range s.probes {
		if tr := s.e.Trace(p); tr.Verdict != trace.Answered {
			b.Fatalf("%s: %s: %s", p.String(), tr.Verdict, tr.Reason)
		}
	}
	b.ReportAllocs()
	tr := s.e.Trace
	if reuse {
		tr = s.e.NewTracer().Trace
	}
	cpu := startCPU(b)
	i := 0
	for b.Loop() {
		tr(s.probes[i%len(s.probes)])
		i++
	}
	cpu.report()
	b.ReportMetric(float64(s.gen.Rules), "rules")
}

// cpuClock reports the process's CPU time (every thread's, the garbage
// collector's included) per operation as "cpu-ns/op": on a machine shared
// with other work, wall time per operation moves with the neighbours'
// load while CPU time moves far less.
type cpuClock struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) cpuClock { return cpuClock{b, processCPU()} }

func (c cpuClock) report() {
	if c.b.N > 0 {
		c.b.ReportMetric(float64(processCPU()-c.start)/float64(c.b.N), "cpu-ns/op")
	}
}

// processCPU is the user and system time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScaleLoadFleet1000 loads the 1,000-node fleet.
func BenchmarkScaleLoadFleet1000(b *testing.B) {
	g, err := gen.Fleet(gen.FleetOptions{Nodes: 1000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "fleet")
	if err := g.Write(dir); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		snap, err := snapshot.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := New(snap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleTraceFleet1000 runs the fleet's probes (containers to the
// internet through two NATs, the internet to containers through a port
// forward and Docker's DNAT, hosts to their neighbours' published ports)
// on every core; traces/s is the throughput.
func BenchmarkScaleTraceFleet1000(b *testing.B) { benchTraceFleet(b, false) }

// BenchmarkScaleTraceFleet1000Tracer is the same with a Tracer per
// goroutine, each trace's memory reused by the next (bulk work).
func BenchmarkScaleTraceFleet1000Tracer(b *testing.B) { benchTraceFleet(b, true) }

func benchTraceFleet(b *testing.B, reuse bool) {
	s := scaleFleet(b, 1000)
	for _, p := range s.probes[:min(len(s.probes), 20)] {
		if tr := s.e.Trace(p); tr.Verdict != trace.Answered {
			b.Fatalf("%s: %s: %s", p.String(), tr.Verdict, tr.Reason)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	var mu sync.Mutex
	next := 0
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		i := next * 7919
		next++
		mu.Unlock()
		tr := s.e.Trace
		if reuse {
			tr = s.e.NewTracer().Trace
		}
		for pb.Next() {
			tr(s.probes[i%len(s.probes)])
			i++
		}
	})
	cpu.report()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "traces/s")
}
