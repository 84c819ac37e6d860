// Package gcpause holds off garbage collection while a big input is read
// into data that stays live.
//
// Loading a kube-proxy node builds 100 MB of rules and compiled chains
// from an 18 MB iptables-save, nearly all of which stays live: under the
// default GOGC the collector runs several times as the heap doubles, each
// time marking everything built so far, finding little garbage, and
// slowing every pointer store with write barriers while it marks. A hold
// raises the collector's target for the time of such a phase, so that it
// runs once the structure is built rather than at every doubling. The
// setting in force before is restored when the last hold ends; a memory
// limit (GOMEMLIMIT) still applies throughout, and GOGC=off stays off.
package gcpause

import (
	"runtime/debug"
	"sync"
)

// holdPercent is the GOGC value during a hold: the heap may grow to about
// a hundred times what was live at the last collection before one runs.
const holdPercent = 10000

var (
	mu    sync.Mutex
	holds int
	// saved is the setting to restore; raised says whether the hold
	// changed it.
	saved  int
	raised bool
)

// Hold starts a hold and returns the function that ends it (once; later
// calls do nothing). Holds may overlap, from any goroutine.
func Hold() (release func()) {
	mu.Lock()
	if holds == 0 {
		saved = debug.SetGCPercent(holdPercent)
		raised = saved >= 0 && saved < holdPercent
		if !raised {
			debug.SetGCPercent(saved)
		}
	}
	holds++
	mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			holds--
			if holds == 0 && raised {
				debug.SetGCPercent(saved)
			}
		})
	}
}
