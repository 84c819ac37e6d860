// Package nsthread runs code inside a network namespace on a throwaway
// OS thread. A thread that joined another namespace is never handed back
// to the Go scheduler, even when switching back would fail: the thread
// stays locked and the runtime destroys it when the goroutine returns.
// Sockets opened inside stay in that namespace and may be used from any
// goroutine afterwards.
package nsthread

import (
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// Throwaway runs fn on a fresh OS thread that is destroyed when fn
// returns.
func Throwaway(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread, on purpose: the thread dies with the goroutine.
		errc <- fn()
	}()
	return <-errc
}

// InPath runs fn on a throwaway thread that joined the namespace at path
// (/proc/PID/ns/net, /run/netns/NAME): /proc/thread-self/net and
// /proc/sys/net then show that namespace.
func InPath(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer target.Close()
	return Throwaway(func() error {
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("enter namespace %s: %w", path, err)
		}
		return fn()
	})
}

// InNamed runs fn on a throwaway thread that joined the named namespace
// (ip netns add NAME).
func InNamed(name string, fn func() error) error {
	// Where ip netns (and netns.GetFromName) keeps it.
	return InPath(filepath.Join("/run/netns", name), fn)
}
