package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pktflow/pktflow/internal/model"
)

// Options tune a lab.
type Options struct {
	// Prefix starts every namespace name. Empty means "pf" followed by a
	// random token, so that concurrent labs never collide. Up refuses to
	// reuse a namespace that already exists.
	Prefix string
	// Log receives every command the lab runs and every warning; nil
	// discards them.
	Log io.Writer
	// Timeout bounds each probe's wait for an answer (an echo reply, a
	// TCP handshake, a UDP reply). Zero means one second, like ping -W1.
	Timeout time.Duration
}

// ErrNoReply is wrapped by probe errors when nothing answered in time.
var ErrNoReply = errors.New("lab: no reply")

// Lab is a snapshot built as network namespaces. Its methods are safe for
// concurrent use.
type Lab struct {
	snap    *model.Snapshot
	opt     Options
	prefix  string
	timeout time.Duration

	nsOf  map[string]string          // node name → namespace name
	ifs   map[string][]string        // node name → interfaces created, in order
	v6    map[string]bool            // node name → IPv6 enabled
	hwOf  map[model.Endpoint]string  // endpoint → MAC read back after the build
	links map[model.Endpoint]linkEnd // endpoint → how it was wired
	upIfs map[model.Endpoint]bool    // devices the lab set administratively up

	used      map[string]map[int]bool // namespace → interface indexes taken
	nextIndex int
	noDummy   bool // the kernel has no dummy driver (see addDummy)
	stubs     int  // stub ports made by addDummy

	mu       sync.Mutex
	owned    []string // namespaces created, in creation order
	procs    map[*exec.Cmd]struct{}
	closers  map[io.Closer]struct{}
	warnings []string
	down     bool
}

// linkEnd records how an endpoint was wired, for documentation and logs.
type linkEnd struct {
	Peer model.Endpoint // the other end, or the segment port
	Seg  string         // the segment namespace, if any
}

// Up builds snap as namespaces: one per node, plus one hidden namespace
// per multi-ended segment. On any error it tears down everything it had
// created before returning.
func Up(ctx context.Context, snap *model.Snapshot, opt Options) (*Lab, error) {
	if snap == nil {
		return nil, errors.New("lab: nil snapshot")
	}
	if err := preflight(); err != nil {
		return nil, err
	}
	if err := validate(snap); err != nil {
		return nil, err
	}
	l := &Lab{
		snap:    snap,
		opt:     opt,
		prefix:  opt.Prefix,
		timeout: opt.Timeout,
		nsOf:    map[string]string{},
		ifs:     map[string][]string{},
		v6:      map[string]bool{},
		hwOf:    map[model.Endpoint]string{},
		links:   map[model.Endpoint]linkEnd{},
		upIfs:   map[model.Endpoint]bool{},
		procs:   map[*exec.Cmd]struct{}{},
		closers: map[io.Closer]struct{}{},
	}
	if l.prefix == "" {
		l.prefix = "pf" + token()
	}
	if l.timeout <= 0 {
		l.timeout = time.Second
	}
	if err := checkName(l.prefix); err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, n := range snap.Nodes {
		l.nsOf[n.Name] = nsName(l.prefix, n.Name, used)
		l.v6[n.Name] = wantsIPv6(n)
	}
	register(l)
	if err := l.build(ctx); err != nil {
		if derr := l.Down(); derr != nil {
			err = fmt.Errorf("%w (and tearing down: %v)", err, derr)
		}
		return nil, err
	}
	return l, nil
}

// preflight checks the tools the lab drives, so a missing one gives a
// clear message rather than a failure halfway through.
func preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("lab: needs root (network namespaces)")
	}
	for _, tool := range []string{"ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("lab: %s not found (apt-get install -y iproute2)", tool)
		}
	}
	return nil
}

// Available reports why the lab cannot run here, or nil when it can:
// tests use it to skip with a clear message.
func Available() error {
	if err := preflight(); err != nil {
		return err
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Errorf("lab: `ip netns` unavailable: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// token returns a short random hex string for namespace names.
func token() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		// Fall back on the pid: still unique among live processes.
		return fmt.Sprintf("%06x", os.Getpid()&0xffffff)
	}
	return hex.EncodeToString(b[:])
}

// maxNSName bounds namespace names; the kernel allows 255 but short names
// keep `ip netns list` and logs readable.
const maxNSName = 48

// nsName makes the namespace name of a node: the prefix, a dash and the
// node name with characters outside [A-Za-z0-9_.-] replaced, truncated,
// and made unique among the names already used.
func nsName(prefix, node string, used map[string]bool) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '_'
	}, node)
	base := prefix + "-" + clean
	if len(base) > maxNSName {
		base = base[:maxNSName]
	}
	name := base
	for i := 2; used[name]; i++ {
		suf := fmt.Sprintf("~%d", i)
		if len(base)+len(suf) > maxNSName {
			name = base[:maxNSName-len(suf)] + suf
		} else {
			name = base + suf
		}
	}
	used[name] = true
	return name
}

func checkName(prefix string) error {
	if prefix == "" || len(prefix) > 24 || strings.ContainsAny(prefix, "/ \t\n") || prefix[0] == '.' {
		return fmt.Errorf("lab: bad namespace prefix %q", prefix)
	}
	return nil
}

// NS returns the namespace name of a node, or "" for an unknown node.
func (l *Lab) NS(node string) string { return l.nsOf[node] }

// Prefix returns the prefix of every namespace this lab made.
func (l *Lab) Prefix() string { return l.prefix }

// Namespaces lists every namespace this lab created and still owns,
// hidden segment namespaces included.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.owned...)
}

// Warnings returns what the build skipped or could not apply exactly.
func (l *Lab) Warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.warnings...)
}

// Snapshot returns the snapshot the lab was built from.
func (l *Lab) Snapshot() *model.Snapshot { return l.snap }

// Interfaces returns the interfaces the lab made in a node's namespace
// (implicit bridges included, lo excluded), in creation order.
func (l *Lab) Interfaces(node string) []string {
	return append([]string(nil), l.ifs[node]...)
}

// MAC returns the link-layer address an interface has in the lab (the
// model's, or the kernel's random one when the model had none).
func (l *Lab) MAC(ep model.Endpoint) string { return l.hwOf[ep] }

// Down removes exactly what Up made: it closes listener sockets, kills
// child processes and deletes the lab's namespaces by exact name. It is
// safe to call more than once.
func (l *Lab) Down() error {
	l.mu.Lock()
	l.down = true
	closers := l.closers
	l.closers = map[io.Closer]struct{}{}
	procs := l.procs
	l.procs = map[*exec.Cmd]struct{}{}
	owned := l.owned
	l.mu.Unlock()

	for c := range closers {
		c.Close()
	}
	for cmd := range procs {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	}
	var errs []error
	var kept []string
	// Delete in reverse creation order: segment namespaces and nodes
	// alike; veth pairs vanish with their namespaces.
	for i := len(owned) - 1; i >= 0; i-- {
		ns := owned[i]
		out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput()
		l.logf("+ ip netns delete %s", ns)
		if err != nil && nsExists(ns) {
			errs = append(errs, fmt.Errorf("ip netns delete %s: %v: %s", ns, err, bytes.TrimSpace(out)))
			kept = append(kept, ns)
		}
	}
	l.mu.Lock()
	l.owned = kept
	l.mu.Unlock()
	if len(kept) == 0 {
		unregister(l)
	}
	return errors.Join(errs...)
}

// nsExists reports whether a named namespace exists (its bind mount).
func nsExists(ns string) bool {
	_, err := os.Stat("/run/netns/" + ns)
	return err == nil
}

func (l *Lab) logf(format string, args ...any) {
	if l.opt.Log == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.opt.Log, format+"\n", args...)
}

func (l *Lab) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.logf("warning: %s", msg)
	l.mu.Lock()
	l.warnings = append(l.warnings, msg)
	l.mu.Unlock()
}

// owns reports whether ns is one of this lab's namespaces.
func (l *Lab) owns(ns string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.owned {
		if o == ns {
			return true
		}
	}
	return false
}

// addNS creates a namespace and records it as ours only once it exists
// because we made it: `ip netns add` fails on an existing name, so a
// namespace we did not create is never recorded, and never deleted.
func (l *Lab) addNS(ctx context.Context, ns string) error {
	if _, err := l.run(ctx, "", "ip", "netns", "add", ns); err != nil {
		return err
	}
	l.mu.Lock()
	l.owned = append(l.owned, ns)
	l.mu.Unlock()
	return nil
}

// cmdError is a failed command with its output.
type cmdError struct {
	Argv []string
	Err  error
	Out  string
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Argv, " "), e.Err, e.Out)
}

func (e *cmdError) Unwrap() error { return e.Err }

// exists reports whether a failed command failed only because what it
// adds is already there (a kernel-derived route, 127.0.0.1 on lo...).
func exists(err error) bool {
	var ce *cmdError
	if !errors.As(err, &ce) {
		return false
	}
	return strings.Contains(ce.Out, "File exists") || strings.Contains(ce.Out, "already assigned")
}

// run runs a command in the root namespace's context (ip -n, ip netns
// exec and iptables-restore switch namespaces themselves), logging it.
func (l *Lab) run(ctx context.Context, stdin string, argv ...string) ([]byte, error) {
	l.logf("+ %s", strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, &cmdError{Argv: argv, Err: err, Out: string(bytes.TrimSpace(out))}
	}
	return out, nil
}

// ipn runs `ip -n NS args...`, refusing any namespace that is not ours:
// every device the lab makes is made through here, so none can land in
// the root namespace.
func (l *Lab) ipn(ctx context.Context, ns string, args ...string) error {
	if ns == "" || !l.owns(ns) {
		return fmt.Errorf("lab: refusing to run ip in namespace %q: not one of ours", ns)
	}
	_, err := l.run(ctx, "", append([]string{"ip", "-n", ns}, args...)...)
	return err
}

// Exec runs a command inside a node's namespace (ip netns exec) and
// returns its combined output.
func (l *Lab) Exec(ctx context.Context, node string, argv ...string) ([]byte, error) {
	ns, err := l.nodeNS(node)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("lab: Exec: empty command")
	}
	return l.run(ctx, "", append([]string{"ip", "netns", "exec", ns}, argv...)...)
}

func (l *Lab) nodeNS(node string) (string, error) {
	ns := l.nsOf[node]
	if ns == "" {
		return "", fmt.Errorf("lab: unknown node %q", node)
	}
	l.mu.Lock()
	down := l.down
	l.mu.Unlock()
	if down {
		return "", errors.New("lab: already down")
	}
	return ns, nil
}

// track registers a child process so Down can kill it.
func (l *Lab) track(cmd *exec.Cmd) {
	l.mu.Lock()
	l.procs[cmd] = struct{}{}
	l.mu.Unlock()
}

func (l *Lab) untrack(cmd *exec.Cmd) {
	l.mu.Lock()
	delete(l.procs, cmd)
	l.mu.Unlock()
}

// keep registers a socket so Down closes it; it fails once the lab is
// down, so a late listener cannot outlive it.
func (l *Lab) keep(c io.Closer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		c.Close()
		return errors.New("lab: already down")
	}
	l.closers[c] = struct{}{}
	return nil
}

func (l *Lab) drop(c io.Closer) {
	l.mu.Lock()
	delete(l.closers, c)
	l.mu.Unlock()
}

// live records labs that are up, so a test binary interrupted by a
// signal can still tear them down (see Teardown).
var live = struct {
	sync.Mutex
	m map[*Lab]struct{}
}{m: map[*Lab]struct{}{}}

func register(l *Lab) {
	live.Lock()
	live.m[l] = struct{}{}
	live.Unlock()
}

func unregister(l *Lab) {
	live.Lock()
	delete(live.m, l)
	live.Unlock()
}

// Teardown calls Down on every lab of this process that is still up. A
// TestMain or a signal handler calls it so that an interrupted run leaves
// no namespace behind.
func Teardown() error {
	live.Lock()
	labs := make([]*Lab, 0, len(live.m))
	for l := range live.m {
		labs = append(labs, l)
	}
	live.Unlock()
	sort.Slice(labs, func(i, j int) bool { return labs[i].prefix < labs[j].prefix })
	var errs []error
	for _, l := range labs {
		errs = append(errs, l.Down())
	}
	return errors.Join(errs...)
}

// isTimeout reports whether err is a socket timeout.
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded)
}
