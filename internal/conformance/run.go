package conformance

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/verify"
)

// Options tune a conformance run.
type Options struct {
	// Seeds are the scenarios to check.
	Seeds []int64
	// FailDir is where scenarios with a disagreement are saved (one
	// folder per seed); empty means $TMPDIR/pktflow-conformance-failures.
	FailDir string
	// Fault, when set, is injected into every engine (engine.InjectFault):
	// only for tests proving that the suite catches a wrong engine.
	Fault string
	// Parallel is how many labs run at once (default 1).
	Parallel int
	// Probe, when set, keeps only the probes it accepts.
	Probe func(sc *Scenario, probe string) bool
	// Log receives a line per scenario as it completes; nil discards.
	Log io.Writer
}

// DefaultFailDir is where failing scenarios go by default.
func DefaultFailDir() string { return filepath.Join(os.TempDir(), "pktflow-conformance-failures") }

// ScenarioResult is one scenario's tally.
type ScenarioResult struct {
	Seed     int64    `json:"seed"`
	Nodes    int      `json:"nodes"`
	Features []string `json:"features"`
	Probes   int      `json:"probes"`
	// Agreed, Disagreed and Uncertain count probes (see verify.Assess);
	// Errors counts probes that could not be checked.
	Agreed    int `json:"agreed"`
	Disagreed int `json:"disagreed"`
	Uncertain int `json:"uncertain"`
	Errors    int `json:"errors"`
	// Failures are the probes that disagreed or could not be checked.
	Failures []verify.ProbeReport `json:"failures,omitempty"`
	// Saved is the folder the scenario was saved to, if it failed.
	Saved string `json:"saved,omitempty"`
	// Err is set when the scenario could not be run at all (the
	// generator or the lab failed).
	Err     string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Failed reports whether the scenario has a certain disagreement or
// could not be fully checked.
func (r *ScenarioResult) Failed() bool { return r.Disagreed > 0 || r.Errors > 0 || r.Err != "" }

// Line is a one-line account of the scenario.
func (r *ScenarioResult) Line() string {
	if r.Err != "" {
		return fmt.Sprintf("seed %d: ERROR %s", r.Seed, r.Err)
	}
	s := fmt.Sprintf("seed %d: %d nodes, %d probes: %d agreed, %d disagreed, %d uncertain", r.Seed, r.Nodes, r.Probes, r.Agreed, r.Disagreed, r.Uncertain)
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d unchecked", r.Errors)
	}
	s += fmt.Sprintf(" (%.1fs)", r.Seconds)
	if r.Saved != "" {
		s += "; saved to " + r.Saved
	}
	return s
}

// Summary is a whole run.
type Summary struct {
	Scenarios []*ScenarioResult `json:"scenarios"`
	Probes    int               `json:"probes"`
	Agreed    int               `json:"agreed"`
	Disagreed int               `json:"disagreed"`
	Uncertain int               `json:"uncertain"`
	Errors    int               `json:"errors"`
	// Broken counts scenarios that could not be run at all.
	Broken  int     `json:"broken"`
	Seconds float64 `json:"seconds"`
}

// OK reports whether the run found no certain disagreement and checked
// everything it set out to.
func (s *Summary) OK() bool { return s.Disagreed == 0 && s.Errors == 0 && s.Broken == 0 }

// Agreement is the share of certain probes that agreed (uncertain ones
// are not counted either way).
func (s *Summary) Agreement() float64 {
	if s.Agreed+s.Disagreed == 0 {
		return 1
	}
	return float64(s.Agreed) / float64(s.Agreed+s.Disagreed)
}

// String is the closing line of a run.
func (s *Summary) String() string {
	str := fmt.Sprintf("conformance: %d scenarios, %d probes: %d agreed, %d disagreed, %d uncertain; agreement %.1f%% of certain probes",
		len(s.Scenarios), s.Probes, s.Agreed, s.Disagreed, s.Uncertain, 100*s.Agreement())
	if s.Errors > 0 {
		str += fmt.Sprintf("; %d probes unchecked", s.Errors)
	}
	if s.Broken > 0 {
		str += fmt.Sprintf("; %d scenarios could not be built", s.Broken)
	}
	return str + fmt.Sprintf(" (%.0fs)", s.Seconds)
}

// FailedSeeds lists the seeds of failed scenarios.
func (s *Summary) FailedSeeds() []int64 {
	var out []int64
	for _, r := range s.Scenarios {
		if r.Failed() {
			out = append(out, r.Seed)
		}
	}
	return out
}

// Run checks every seed's scenario against the kernel. It needs root
// (see lab.Available). It returns an error only when the run itself
// cannot proceed (the context ended); failing scenarios are in the
// summary.
func Run(ctx context.Context, opt Options) (*Summary, error) {
	if opt.Parallel <= 0 {
		opt.Parallel = 1
	}
	if opt.FailDir == "" {
		opt.FailDir = DefaultFailDir()
	}
	t0 := time.Now()
	sum := &Summary{}
	results := make([]*ScenarioResult, len(opt.Seeds))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, opt.Parallel)
	for i, seed := range opt.Seeds {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := runScenario(ctx, seed, opt)
			mu.Lock()
			results[i] = r
			if opt.Log != nil {
				fmt.Fprintln(opt.Log, r.Line())
				for _, f := range r.Failures {
					fmt.Fprint(opt.Log, indent(f.Details(), "    "))
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r == nil {
			continue
		}
		sum.Scenarios = append(sum.Scenarios, r)
		sum.Probes += r.Probes
		sum.Agreed += r.Agreed
		sum.Disagreed += r.Disagreed
		sum.Uncertain += r.Uncertain
		sum.Errors += r.Errors
		if r.Err != "" {
			sum.Broken++
		}
	}
	sum.Seconds = time.Since(t0).Seconds()
	return sum, ctx.Err()
}

func indent(s, pfx string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pfx + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func runScenario(ctx context.Context, seed int64, opt Options) *ScenarioResult {
	t0 := time.Now()
	r := &ScenarioResult{Seed: seed}
	defer func() { r.Seconds = time.Since(t0).Seconds() }()
	sc, err := Generate(seed)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.Nodes, r.Features = len(sc.Snap.Nodes), sc.Features
	if opt.Probe != nil {
		var keep []string
		for _, p := range sc.Probes {
			if opt.Probe(sc, p) {
				keep = append(keep, p)
			}
		}
		sc.Probes = keep
	}
	probes, err := sc.EngineProbes()
	if err != nil {
		r.Err = err.Error()
		return r
	}
	e, err := engine.New(sc.Snap)
	if err != nil {
		r.Err = fmt.Sprintf("engine: %v", err)
		return r
	}
	if opt.Fault != "" {
		e.InjectFault(opt.Fault)
	}
	l, err := lab.Up(ctx, sc.Snap, lab.Options{})
	if err != nil {
		r.Err = fmt.Sprintf("lab: %v", err)
		if ctx.Err() == nil {
			r.Saved, _ = Save(sc, opt.FailDir, nil, r.Err)
		}
		return r
	}
	rep := verify.Run(ctx, l, e, probes, nil)
	if err := l.Down(); err != nil && r.Err == "" {
		r.Err = fmt.Sprintf("lab down: %v", err)
	}
	r.Probes = len(rep.Probes)
	r.Agreed, r.Disagreed, r.Uncertain, r.Errors = rep.Agreed, rep.Disagreed, rep.Uncertain, rep.Errors
	for _, p := range rep.Probes {
		if p.Result == verify.Disagreed || p.Error != "" {
			r.Failures = append(r.Failures, p)
		}
	}
	if len(r.Failures) > 0 {
		dir, err := Save(sc, opt.FailDir, r.Failures, "")
		if err != nil {
			r.Err = fmt.Sprintf("saving the failure: %v", err)
		}
		r.Saved = dir
	}
	return r
}

// Save writes a scenario as a snapshot folder DIR/seed-N (topology.yaml
// with inline state) with PROBES (every probe of the scenario, one a
// line) and FAILURES.txt (what differed and the commands that reproduce
// it). It returns the folder.
func Save(sc *Scenario, dir string, failures []verify.ProbeReport, note string) (string, error) {
	d := filepath.Join(dir, sc.Name())
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(d, "topology.yaml"), sc.YAML, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(d, "PROBES"), []byte(strings.Join(sc.Probes, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pktflow conformance, seed %d\nfeatures: %s\n\n", sc.Seed, strings.Join(sc.Features, ", "))
	if note != "" {
		fmt.Fprintf(&b, "%s\n\n", note)
	}
	if len(failures) > 0 {
		b.WriteString("Reproduce each disagreement alone:\n")
		sorted := append([]verify.ProbeReport(nil), failures...)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Probe < sorted[j].Probe })
		for _, f := range sorted {
			fmt.Fprintf(&b, "  pktflow verify --snapshot %s %q\n", d, f.Probe)
		}
		fmt.Fprintf(&b, "or every probe of the scenario, in order:\n  xargs -d '\\n' -a %s/PROBES pktflow verify --snapshot %s\n\n", d, d)
		for _, f := range failures {
			b.WriteString(f.Details())
			b.WriteString("\n")
		}
	}
	if err := os.WriteFile(filepath.Join(d, "FAILURES.txt"), []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	return d, nil
}
