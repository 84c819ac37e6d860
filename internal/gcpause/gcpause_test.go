package gcpause

import (
	"runtime/debug"
	"sync"
	"testing"
)

func percent() int {
	p := debug.SetGCPercent(0)
	debug.SetGCPercent(p)
	return p
}

func TestHold(t *testing.T) {
	prev := debug.SetGCPercent(150)
	defer debug.SetGCPercent(prev)
	a := Hold()
	if p := percent(); p != holdPercent {
		t.Fatalf("during a hold: GOGC %d", p)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { Hold()() })
	}
	wg.Wait()
	b := Hold()
	a()
	a() // a second call does nothing
	if p := percent(); p != holdPercent {
		t.Fatalf("with one hold left: GOGC %d", p)
	}
	b()
	if p := percent(); p != 150 {
		t.Fatalf("after the holds: GOGC %d, want 150", p)
	}
	// GOGC=off stays off, and a higher setting stays.
	for _, set := range []int{-1, 2 * holdPercent} {
		debug.SetGCPercent(set)
		h := Hold()
		if p := percent(); p != set {
			t.Errorf("hold with GOGC %d: %d", set, p)
		}
		h()
		if p := percent(); p != set {
			t.Errorf("after a hold with GOGC %d: %d", set, p)
		}
	}
}
