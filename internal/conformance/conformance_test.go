package conformance

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/verify"
)

var (
	seedsFlag  = flag.Int("seeds", 0, "number of scenarios to check (default: the CI set)")
	startFlag  = flag.Int64("start", 1, "first seed with -seeds")
	engineBugs = flag.Bool("engine-bugs", false, "also run the seeds listed in knownEngineBugs (they fail until the engine is fixed)")
	failDir    = flag.String("fail-dir", "", "where failing scenarios are saved (default $TMPDIR/pktflow-conformance-failures)")
)

// ciSeeds is the fixed set TestConformance checks in CI: several hundred
// probes in a few minutes on two cores.
func ciSeeds() []int64 {
	var s []int64
	for i := int64(1); i <= 16; i++ {
		s = append(s, i)
	}
	return s
}

// knownEngineBugs lists CI seeds whose scenarios disagree with the kernel
// because of an engine bug that has been reported and not fixed yet, with
// the bug. TestConformance skips them, saying so, unless -engine-bugs is
// given (`go test ./internal/conformance -run Conformance -engine-bugs`
// runs them, and fails until the engine is fixed). Remove a seed as soon
// as it passes. Empty: every bug the suite has found so far is fixed (see
// testdata/engine-bugs).
var knownEngineBugs = map[int64]string{}

// knownBuggyRepros are the reproductions under testdata/engine-bugs of
// bugs not fixed yet: TestEngineBugRepros skips them unless -engine-bugs
// is given.
var knownBuggyRepros = map[string]string{}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	lab.Teardown()
	os.Exit(code)
}

func needLab(t *testing.T) {
	t.Helper()
	if err := lab.Available(); err != nil {
		t.Skipf("kernel conformance skipped: %v", err)
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("kernel conformance skipped: tcpdump not found")
	}
}

// TestConformance checks generated scenarios against the kernel and fails
// on any certain disagreement. -seeds N [-start S] runs other seeds.
func TestConformance(t *testing.T) {
	needLab(t)
	seeds := ciSeeds()
	if *seedsFlag > 0 {
		seeds = nil
		for i := 0; i < *seedsFlag; i++ {
			seeds = append(seeds, *startFlag+int64(i))
		}
	}
	var run, skipped []int64
	for _, s := range seeds {
		if why, ok := knownEngineBugs[s]; ok && !*engineBugs {
			t.Logf("seed %d skipped: known engine bug (%s); -engine-bugs runs it", s, why)
			skipped = append(skipped, s)
			continue
		}
		run = append(run, s)
	}
	var log bytes.Buffer
	sum, err := Run(context.Background(), Options{Seeds: run, Parallel: 2, FailDir: *failDir, Log: &log})
	for _, line := range strings.Split(strings.TrimRight(log.String(), "\n"), "\n") {
		t.Log(line)
	}
	if err != nil {
		t.Fatal(err)
	}
	var features []string
	for _, r := range sum.Scenarios {
		for _, f := range r.Features {
			if !slices.Contains(features, f) {
				features = append(features, f)
			}
		}
	}
	slices.Sort(features)
	t.Logf("features covered: %s", strings.Join(features, "; "))
	if len(skipped) > 0 {
		t.Logf("%d seeds skipped for known engine bugs: %v", len(skipped), skipped)
	}
	t.Log(sum.String())
	if !sum.OK() {
		t.Fatalf("the engine disagrees with the kernel (or a scenario could not be checked) in seeds %v; each is saved under %s with FAILURES.txt saying how to reproduce it",
			sum.FailedSeeds(), dirOrDefault(*failDir))
	}
}

func dirOrDefault(d string) string {
	if d == "" {
		return DefaultFailDir()
	}
	return d
}

// TestConformanceCatchesFaults proves the suite can fail: an engine with
// a deliberately wrong MASQUERADE, and one that forgets to decrement the
// TTL, must each be caught.
func TestConformanceCatchesFaults(t *testing.T) {
	needLab(t)
	// Probes from behind the router to the internet: every one crosses
	// the router's MASQUERADE or SNAT and decrements the TTL on the way.
	toInternet := func(sc *Scenario, p string) bool {
		f := strings.Fields(p)
		if len(f) < 3 || f[1] != "icmp" || slices.Contains(f, "ttl=1") {
			return false
		}
		for _, o := range sc.Snap.Nodes {
			if o.Kind != "external" {
				continue
			}
			for _, a := range verify.Addresses(o) {
				if strings.HasPrefix(f[2], a.String()) && f[0] != o.Name {
					return true
				}
			}
		}
		return false
	}
	for _, fault := range []string{engine.FaultMasqueradeWrongAddr, engine.FaultNoTTLDecrement} {
		t.Run(fault, func(t *testing.T) {
			seed := seedWith(t, "router MASQUERADE")
			sum, err := Run(context.Background(), Options{Seeds: []int64{seed}, Fault: fault, FailDir: t.TempDir(), Probe: toInternet})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(sum.String())
			if sum.Probes == 0 {
				t.Fatalf("seed %d has no probe to the internet", seed)
			}
			if sum.Disagreed == 0 {
				t.Fatalf("with %s the suite reports no disagreement: it cannot catch a wrong engine", fault)
			}
			if r := sum.Scenarios[0]; r.Saved == "" {
				t.Errorf("the failing scenario was not saved")
			}
		})
	}
}

// seedWith finds the first seed whose scenario has a feature.
func seedWith(t *testing.T, feature string) int64 {
	t.Helper()
	for s := int64(1); s < 200; s++ {
		sc, err := Generate(s)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(sc.Features, feature) {
			return s
		}
	}
	t.Fatalf("no seed below 200 has %q", feature)
	return 0
}

// TestGenerate checks the generator without a lab: scenarios are
// deterministic, load, compile, stay within the node budget, and their
// probes parse and have unique source ports.
func TestGenerate(t *testing.T) {
	seen := map[string]int{}
	for s := int64(1); s <= 150; s++ {
		sc, err := Generate(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Generate(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sc.YAML, again.YAML) || !slices.Equal(sc.Probes, again.Probes) {
			t.Fatalf("seed %d: two runs differ", s)
		}
		if n := len(sc.Snap.Nodes); n < 3 || n > maxNodes {
			t.Errorf("seed %d: %d nodes", s, n)
		}
		if _, err := engine.New(sc.Snap); err != nil {
			t.Errorf("seed %d: engine: %v", s, err)
		}
		ps, err := sc.EngineProbes()
		if err != nil {
			t.Fatalf("seed %d: %v", s, err)
		}
		if len(ps) < 10 || len(ps) > maxProbes {
			t.Errorf("seed %d: %d probes", s, len(ps))
		}
		ports := map[uint16]bool{}
		for _, p := range ps {
			if p.Proto != packet.ICMP {
				if ports[p.SPort] {
					t.Errorf("seed %d: source port %d used twice", s, p.SPort)
				}
				ports[p.SPort] = true
			}
		}
		for _, f := range sc.Features {
			seen[f]++
		}
	}
	for _, f := range []string{"docker published ports", "docker hairpin (userland-proxy=false)", "libvirt NAT network",
		"nested NAT (container in VM)", "multi-homed host with metrics", "policy routing (from)", "policy routing (fwmark)",
		"kube-proxy service chains", "kube-proxy statistic random", "conntrack state", "reject tcp-reset",
		"reject icmp-port-unreachable", "reject icmp-host-prohibited", "reject icmp-admin-prohibited", "hairpin NAT on the router",
		"blackhole route", "unreachable route", "prohibit route", "forwarding disabled", "TTL expiry"} {
		if seen[f] == 0 {
			t.Errorf("no scenario in 150 seeds has %q", f)
		}
	}
	var fs []string
	for f, n := range seen {
		fs = append(fs, fmt.Sprintf("%s %d", f, n))
	}
	slices.Sort(fs)
	t.Logf("features over 150 seeds: %s", strings.Join(fs, "; "))
}

// TestSave writes a scenario and loads it back as a snapshot folder.
func TestSave(t *testing.T) {
	sc, err := Generate(3)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := Save(sc, t.TempDir(), []verify.ProbeReport{{Probe: sc.Probes[0], Result: verify.Disagreed, Diffs: []string{"x"}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	back, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Nodes) != len(sc.Snap.Nodes) {
		t.Errorf("saved scenario has %d nodes, want %d", len(back.Nodes), len(sc.Snap.Nodes))
	}
	text, err := os.ReadFile(dir + "/FAILURES.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "pktflow verify --snapshot "+dir+" \""+sc.Probes[0]+"\"") {
		t.Errorf("FAILURES.txt lacks the reproduction command:\n%s", text)
	}
}

// TestEngineBugRepros replays the minimal reproductions of the engine
// bugs the conformance suite found (testdata/engine-bugs/NAME: a snapshot,
// the bug in its comments, and its PROBES), so that none comes back: each
// probe must agree with the kernel, or be one pktflow marks uncertain
// (a random NAT port, a neighbour cache it cannot know) — never a certain
// disagreement. Each is also `xargs -d '\n' -a
// internal/conformance/testdata/engine-bugs/NAME/PROBES pktflow verify
// --snapshot internal/conformance/testdata/engine-bugs/NAME`.
func TestEngineBugRepros(t *testing.T) {
	needLab(t)
	dirs, err := os.ReadDir("testdata/engine-bugs")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		t.Run(d.Name(), func(t *testing.T) {
			if why, ok := knownBuggyRepros[d.Name()]; ok && !*engineBugs {
				t.Skipf("known engine bug, not fixed yet (%s); -engine-bugs runs it", why)
			}
			dir := "testdata/engine-bugs/" + d.Name()
			snap, err := snapshot.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			text, err := os.ReadFile(dir + "/PROBES")
			if err != nil {
				t.Fatal(err)
			}
			var probes []engine.Probe
			for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
				p, err := verify.ParseProbe(snap, line)
				if err != nil {
					t.Fatal(err)
				}
				probes = append(probes, p)
			}
			verify.AssignPorts(probes)
			e, err := engine.New(snap)
			if err != nil {
				t.Fatal(err)
			}
			l, err := lab.Up(context.Background(), snap, lab.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Down()
			rep := verify.Run(context.Background(), l, e, probes, nil)
			for _, p := range rep.Probes {
				switch p.Result {
				case verify.Agreed:
				case verify.Uncertain:
					t.Logf("%s: uncertain (%s)", p.Probe, strings.Join(p.Uncertain, "; "))
				default:
					t.Errorf("%s", p.Details())
				}
			}
		})
	}
}
