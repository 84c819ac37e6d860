package engine

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/pktflow/pktflow/internal/netfilter"
	"github.com/pktflow/pktflow/internal/snapshot"
)

// loadYAML builds an engine from an inline topology.yaml.
func loadYAML(t testing.TB, topo string) *Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "topology.yaml"), []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// A trace names a netfilter hook as netfilter does.
func TestHookNames(t *testing.T) {
	for h := netfilter.PreRouting; h <= netfilter.PostRouting; h++ {
		if got := hookOf(h).String(); got != h.String() {
			t.Errorf("hook %s is %s in a trace", h, got)
		}
	}
}
