package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCollectCLI collects the current namespace (which needs no
// privilege) and traces through it; a non-empty output folder and an
// unknown namespace are usage errors.
func TestCollectCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	code, out, errs := runCLI("collect", "--output", dir)
	if code != 0 {
		t.Fatalf("collect: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "wrote "+dir+": 1 node(s)") {
		t.Errorf("collect said %q", out)
	}
	nodes, err := os.ReadDir(filepath.Join(dir, "nodes"))
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes/: %v %v\n%s", nodes, err, out)
	}
	node := nodes[0].Name()
	if _, err := os.Stat(filepath.Join(dir, "nodes", node, "ip-addr")); err != nil {
		t.Fatalf("no ip-addr for the host: %v\n%s", err, out)
	}
	if code, out, errs := runCLI("trace", "--snapshot", dir, "--from", node, "icmp", "127.0.0.1"); code != 0 {
		t.Errorf("trace through the collected snapshot: exit %d: %s%s", code, out, errs)
	}
	if code, _, errs := runCLI("collect", "--output", dir); code != 2 || !strings.Contains(errs, "not empty") {
		t.Errorf("collect into a non-empty folder: exit %d, %q", code, errs)
	}
	if os.Geteuid() == 0 {
		if code, _, errs := runCLI("collect", "--output", t.TempDir(), "--netns", "pfcol-no-such-ns"); code != 2 || !strings.Contains(errs, "pfcol-no-such-ns") {
			t.Errorf("collect --netns of a missing namespace: exit %d, %q", code, errs)
		}
	}
}

// TestSnapshotMergeCLI merges the seed with nothing else (a copy that
// loads) and with itself (a clash naming both).
func TestSnapshotMergeCLI(t *testing.T) {
	out := filepath.Join(t.TempDir(), "merged")
	code, stdout, errs := runCLI("snapshot", "merge", "--output", out, "../../examples/seed")
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, errs)
	}
	if !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("merge said %q", stdout)
	}
	if code, o, e := runCLI("trace", "--snapshot", out, "--from", "0d1b1ae40269", "icmp", "www.google.com"); code != 0 {
		t.Errorf("trace through the merged seed: exit %d: %s%s", code, o, e)
	}
	code, _, errs = runCLI("snapshot", "merge", "--output", filepath.Join(t.TempDir(), "m2"), "../../examples/seed", "../../examples/seed")
	if code != 2 || !strings.Contains(errs, "node mayura is in both") {
		t.Errorf("merging the seed with itself: exit %d, %q", code, errs)
	}
	if code, _, _ := runCLI("snapshot", "merge", "--output", out); code != 2 {
		t.Errorf("merge without snapshots: exit %d, want 2", code)
	}
	if code, _, _ := runCLI("snapshot"); code != 2 {
		t.Errorf("snapshot without a subcommand: exit %d, want 2", code)
	}
}
