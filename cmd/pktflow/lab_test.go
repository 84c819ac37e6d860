package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/lab"
)

// TestMain lets the test binary stand in for pktflow itself: `lab up`
// starts os.Executable() as `pktflow lab serve`, which in a test is this
// binary.
func TestMain(m *testing.M) {
	if os.Getenv("PKTFLOW_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	lab.Teardown()
	os.Exit(code)
}

func needLab(t *testing.T) {
	t.Helper()
	if err := lab.Available(); err != nil {
		t.Skipf("kernel check skipped: %v", err)
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("kernel check skipped: no tcpdump")
	}
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestLabUpExecDown(t *testing.T) {
	needLab(t)
	t.Setenv("PKTFLOW_TEST_AS_MAIN", "1") // for the lab server this starts
	old := labRunDir
	labRunDir = t.TempDir()
	t.Setenv("PKTFLOW_RUN_DIR", labRunDir)
	defer func() { labRunDir = old }()
	prefix := fmt.Sprintf("pft%d", os.Getpid()%100000)

	code, out, errs := runCLI("lab", "up", "--snapshot", "../../examples/seed", "--prefix", prefix)
	if code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errs)
	}
	t.Cleanup(func() { runCLI("lab", "down", "--prefix", prefix) })
	if !strings.Contains(out, prefix+"-rhel8a") {
		t.Errorf("lab up output lacks the namespaces:\n%s", out)
	}
	var st labState
	data, err := os.ReadFile(filepath.Join(labRunDir, prefix+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if !serverAlive(st.PID, prefix) {
		t.Fatalf("lab server %d is not running after lab up returned", st.PID)
	}
	for _, ns := range st.Namespaces {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			t.Errorf("namespace %s recorded but missing: %v", ns, err)
		}
	}

	// A second up with the same prefix is refused.
	if code, _, errs := runCLI("lab", "up", "--snapshot", "../../examples/seed", "--prefix", prefix); code != exitUsage || !strings.Contains(errs, "already up") {
		t.Errorf("second lab up: exit %d, %s", code, errs)
	}
	// exec runs in the node and passes the exit status through; the
	// listeners keep answering after lab up has returned.
	code, out, errs = runCLI("lab", "exec", "--prefix", prefix, "rhel8a", "--", "ip", "-4", "-o", "addr", "show", "dev", "docker0")
	if code != 0 || !strings.Contains(out, "172.17.0.1/16") {
		t.Errorf("lab exec ip addr: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := runCLI("lab", "exec", "--prefix", prefix, "mayura", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("lab exec exit status %d, want 7", code)
	}
	code, out, errs = runCLI("lab", "exec", "--prefix", prefix, "mayura", "--",
		"timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/192.168.122.120/1443 && echo connected")
	if code != 0 || !strings.Contains(out, "connected") {
		t.Errorf("published port through the lab's listeners: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCLI("lab", "exec", "--prefix", prefix, "nosuch", "--", "true"); code != exitUsage || !strings.Contains(errs, "no node") {
		t.Errorf("lab exec unknown node: exit %d, %s", code, errs)
	}

	code, out, errs = runCLI("lab", "down", "--prefix", prefix)
	if code != 0 {
		t.Fatalf("lab down: exit %d\n%s%s", code, out, errs)
	}
	for _, ns := range st.Namespaces {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("namespace %s still exists after lab down", ns)
		}
	}
	if serverAlive(st.PID, prefix) {
		t.Errorf("lab server %d still running after lab down", st.PID)
	}
	if code, _, _ := runCLI("lab", "down", "--prefix", prefix); code != exitUsage {
		t.Errorf("lab down twice: exit %d, want %d", code, exitUsage)
	}
}

func TestLabUsage(t *testing.T) {
	for _, args := range [][]string{
		{"lab", "up"},
		{"lab", "up", "--snapshot", "../../examples/seed", "--prefix", "a/b"},
		{"lab", "up", "--snapshot", "/nonexistent"},
		{"lab", "exec", "mayura"},
		{"lab", "down", "--prefix", ""},
		{"verify"},
		{"verify", "--snapshot", "../../examples/seed", "--format", "xml"},
		{"verify", "--snapshot", "../../examples/seed", "mayura icmp"},
		{"verify", "--snapshot", "../../examples/seed", "nosuch icmp 10.0.2.1"},
		{"conformance", "--seeds", "0"},
		{"conformance", "--format", "yaml"},
	} {
		if code, out, errs := runCLI(args...); code != exitUsage || errs == "" {
			t.Errorf("%q: exit %d, want %d with a message\n%s%s", args, code, exitUsage, out, errs)
		}
	}
}

func TestVerifySeedProbes(t *testing.T) {
	needLab(t)
	probes := []string{
		"0d1b1ae40269 icmp www.google.com",
		"mayura tcp 192.168.122.120:1443",
		"0d1b1ae40269 udp 142.250.115.106:53",
		"mayura udp 192.168.122.120:5353",
		"0d1b1ae40269 icmp 142.250.115.106 ttl=2",
	}
	code, out, errs := runCLI(append([]string{"verify", "--snapshot", "../../examples/seed", "--format", "json"}, probes...)...)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
	var rep struct {
		Probes []struct {
			Probe, Verdict, Result string
			Diffs                  []string
		}
		Agreed, Disagreed, Uncertain int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Agreed != len(probes) || len(rep.Probes) != len(probes) {
		t.Fatalf("want %d agreed:\n%s", len(probes), out)
	}
	wantVerdicts := []string{"answered", "answered", "answered", "refused", "rejected"}
	for i, p := range rep.Probes {
		if p.Verdict != wantVerdicts[i] {
			t.Errorf("%s: verdict %s, want %s", p.Probe, p.Verdict, wantVerdicts[i])
		}
	}

	// The text table names every probe, and a summary closes it.
	code, out, errs = runCLI("verify", "--snapshot", "../../examples/seed", probes[1])
	if code != 0 || !strings.Contains(out, "mayura tcp 192.168.122.120:1443") || !strings.Contains(out, "1 probe: 1 agreed") {
		t.Errorf("verify text: exit %d\n%s%s", code, out, errs)
	}
}
