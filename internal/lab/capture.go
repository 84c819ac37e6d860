package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pktflow/pktflow/internal/model"
)

// DefaultSettle is how long Capture waits after send returns when settle
// is zero: long enough for replies crossing a few namespaces.
const DefaultSettle = 200 * time.Millisecond

// Capture records what interfaces see while send runs. ifaces nil means
// every interface the lab made (lo and the hidden segment switches
// excluded; so are devices the model has down, which see nothing); "lo"
// may be named explicitly. It starts two tcpdumps per
// interface (-Q in, -Q out), waits until each listens, calls send, waits
// settle (DefaultSettle when zero), stops them with SIGINT and returns the
// IPv4/IPv6 ICMP, TCP and UDP unicast datagrams seen, ordered by time,
// each with its direction and its Seq within its interface. ARP, neighbour
// discovery, MLD, IGMP and multicast/broadcast are left out (CaptureRaw
// keeps them). An error from send is returned, with the packets.
func (l *Lab) Capture(ctx context.Context, ifaces []model.Endpoint, send func() error, settle time.Duration) ([]Packet, error) {
	return l.capture(ctx, ifaces, send, settle, false)
}

// CaptureRaw is Capture without the noise filter: every frame is
// returned; Packet.IP says whether it was decoded as a datagram.
func (l *Lab) CaptureRaw(ctx context.Context, ifaces []model.Endpoint, send func() error, settle time.Duration) ([]Packet, error) {
	return l.capture(ctx, ifaces, send, settle, true)
}

// AllInterfaces lists every interface a capture with nil ifaces covers:
// those the lab made and set up (a down device sees nothing, and tcpdump
// refuses it), lo excluded.
func (l *Lab) AllInterfaces() []model.Endpoint {
	var eps []model.Endpoint
	for _, n := range l.snap.Nodes {
		for _, i := range l.ifs[n.Name] {
			if e := (model.Endpoint{Node: n.Name, Iface: i}); l.upIfs[e] {
				eps = append(eps, e)
			}
		}
	}
	return eps
}

// dumper is one running tcpdump.
type dumper struct {
	ep    model.Endpoint
	dir   string
	cmd   *exec.Cmd
	mu    sync.Mutex
	out   bytes.Buffer // guarded by mu while tcpdump runs
	errb  strings.Builder
	ready chan struct{} // closed on "listening on"
	done  chan struct{} // closed when stderr reaches EOF: tcpdump exited
}

// Write collects tcpdump's pcap output.
func (d *dumper) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.Write(p)
}

func (d *dumper) outLen() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.Len()
}

func (d *dumper) stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.TrimSpace(d.errb.String())
}

func (l *Lab) capture(ctx context.Context, ifaces []model.Endpoint, send func() error, settle time.Duration, raw bool) ([]Packet, error) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return nil, errors.New("lab: tcpdump not found (apt-get install -y tcpdump)")
	}
	if ifaces == nil {
		ifaces = l.AllInterfaces()
	}
	if settle <= 0 {
		settle = DefaultSettle
	}
	for _, ep := range ifaces {
		if _, err := l.nodeNS(ep.Node); err != nil {
			return nil, err
		}
		if ep.Iface != "lo" && !contains(l.ifs[ep.Node], ep.Iface) {
			return nil, fmt.Errorf("lab: capture: %s is not an interface of the lab", ep)
		}
	}
	var ds []*dumper
	for _, ep := range ifaces {
		if ep.Iface != "lo" && !l.upIfs[ep] {
			l.logf("capture: %s is down: nothing to capture there", ep)
			continue
		}
		for _, dir := range []string{"in", "out"} {
			ds = append(ds, &dumper{ep: ep, dir: dir, ready: make(chan struct{}), done: make(chan struct{})})
		}
	}
	// The tcpdumps are started from one locked OS thread that lives until
	// they have all exited: Pdeathsig is tied to the thread that forked,
	// and the runtime destroys threads that inNS used, which would
	// otherwise kill a capture at random. If this process dies, the
	// thread dies and so do the tcpdumps.
	startErr := make(chan error, 1)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		startErr <- l.startDumpers(ds)
		<-release
	}()
	if err := <-startErr; err != nil {
		l.stopDumpers(ds)
		close(release)
		return nil, err
	}
	defer close(release)
	defer l.stopDumpers(ds) // runs first: kills any tcpdump still running

	t0 := time.Now()
	if err := l.awaitListening(ctx, ds); err != nil {
		return nil, err
	}
	t1 := time.Now()
	sendErr := send()
	t2 := time.Now()
	select {
	case <-time.After(settle):
	case <-ctx.Done():
	}
	t3 := time.Now()
	l.awaitDrained(ds)
	t4 := time.Now()
	l.stopDumpers(ds)
	l.logf("capture: %d tcpdumps listening after %v, send %v, settle %v, drain %v, stop %v",
		len(ds), t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond),
		t3.Sub(t2).Round(time.Millisecond), t4.Sub(t3).Round(time.Millisecond), time.Since(t4).Round(time.Millisecond))

	var pkts []Packet
	var errs []error
	if sendErr != nil {
		errs = append(errs, fmt.Errorf("send: %w", sendErr))
	}
	byIface := map[model.Endpoint][]Packet{}
	for _, d := range ds {
		lt, recs, err := readPcap(&d.out)
		if err != nil && !(errors.Is(err, errEmptyPcap) && d.out.Len() == 0 && len(recs) == 0) {
			errs = append(errs, fmt.Errorf("lab: capture %s %s: %w (tcpdump: %s)", d.ep, d.dir, err, d.stderr()))
		}
		if len(recs) > 0 && lt != 1 {
			errs = append(errs, fmt.Errorf("lab: capture %s: link type %d, want Ethernet", d.ep, lt))
			continue
		}
		if s := d.stderr(); strings.Contains(s, "dropped by kernel") && !strings.Contains(s, "0 packets dropped by kernel") {
			l.warnf("capture %s %s: %s", d.ep, d.dir, s)
		}
		for _, r := range recs {
			p, _ := DecodeFrame(r.Data)
			p.Node, p.Iface, p.Dir, p.Time = d.ep.Node, d.ep.Iface, d.dir, r.Time
			byIface[d.ep] = append(byIface[d.ep], p)
		}
	}
	for _, ep := range ifaces {
		list := byIface[ep]
		sort.SliceStable(list, func(i, j int) bool {
			if !list[i].Time.Equal(list[j].Time) {
				return list[i].Time.Before(list[j].Time)
			}
			return list[i].Dir == "out" && list[j].Dir == "in"
		})
		seq := 0
		for _, p := range list {
			if !raw && noise(p) {
				continue
			}
			p.Seq = seq
			seq++
			pkts = append(pkts, p)
		}
		delete(byIface, ep) // an endpoint listed twice is reported once
	}
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].Time.Before(pkts[j].Time) })
	return pkts, errors.Join(errs...)
}

// startDumpers starts every tcpdump; the caller's thread is locked.
func (l *Lab) startDumpers(ds []*dumper) error {
	for _, d := range ds {
		ns := l.nsOf[d.ep.Node]
		argv := []string{"ip", "netns", "exec", ns, "tcpdump", "-nn", "-p", "-U", "--immediate-mode",
			"--time-stamp-precision=nano", "-Q", d.dir, "-i", d.ep.Iface, "-w", "-"}
		l.logf("+ %s", strings.Join(argv, " "))
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout = d
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		errp, err := cmd.StderrPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("lab: start tcpdump on %s: %w", d.ep, err)
		}
		d.cmd = cmd
		l.track(cmd)
		go func(d *dumper) {
			sc := bufio.NewScanner(errp)
			signalled := false
			for sc.Scan() {
				line := sc.Text()
				d.mu.Lock()
				d.errb.WriteString(line + "\n")
				d.mu.Unlock()
				if !signalled && strings.Contains(line, "listening on") {
					close(d.ready)
					signalled = true
				}
			}
			close(d.done)
		}(d)
	}
	return nil
}

// awaitListening waits until every tcpdump has bound its socket.
func (l *Lab) awaitListening(ctx context.Context, ds []*dumper) error {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for _, d := range ds {
		select {
		case <-d.ready:
		case <-d.done:
			// Exited before listening: give the scanner's last line a
			// chance to be the reason.
			return fmt.Errorf("lab: tcpdump on %s exited: %s", d.ep, d.stderr())
		case <-timeout.C:
			return fmt.Errorf("lab: tcpdump on %s not listening after 10s: %s", d.ep, d.stderr())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// awaitDrained waits until every tcpdump has written out all it
// captured, before they are interrupted: on SIGINT libpcap breaks its loop
// before reading frames still waiting in its ring, so a tcpdump that the
// scheduler had not run yet (a loaded machine) would lose the last
// packets. A tcpdump is drained when it sleeps (state S: blocked in poll
// on an empty ring, since in immediate mode any frame wakes it) and its
// output has stopped growing, seen twice in a row. After two seconds the
// capture goes on with a warning.
func (l *Lab) awaitDrained(ds []*dumper) {
	deadline := time.Now().Add(2 * time.Second)
	sizes := make([]int, len(ds))
	quiet := 0
	for quiet < 2 {
		if time.Now().After(deadline) {
			l.warnf("capture: tcpdumps still busy after 2s; the last packets may be missing")
			return
		}
		time.Sleep(10 * time.Millisecond)
		ok := true
		for i, d := range ds {
			n := d.outLen()
			if n != sizes[i] || !sleeping(d.cmd.Process.Pid) {
				ok = false
			}
			sizes[i] = n
		}
		if ok {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// sleeping reports whether a process is in interruptible sleep (or gone).
func sleeping(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] == 'S'
}

// stopDumpers interrupts every tcpdump (which flushes its output and
// exits), kills those that do not exit within five seconds, and reaps
// them all. Calling it again is harmless.
func (l *Lab) stopDumpers(ds []*dumper) {
	for _, d := range ds {
		if d.cmd != nil && d.cmd.ProcessState == nil {
			d.cmd.Process.Signal(os.Interrupt)
		}
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	expired := false
	for _, d := range ds {
		if d.cmd == nil || d.cmd.ProcessState != nil {
			continue
		}
		if !expired {
			select {
			case <-d.done:
			case <-deadline.C:
				expired = true
			}
		}
		if expired {
			select {
			case <-d.done:
			default:
				d.cmd.Process.Kill()
				<-d.done
			}
		}
		d.cmd.Wait()
		l.untrack(d.cmd)
	}
}
