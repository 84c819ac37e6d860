// Package kernelcost measures what the Linux kernel itself spends on a
// ruleset, so that pktflow's own figures can be set beside the kernel's on
// the same machine in the same run: how long iptables-restore takes to
// check a ruleset, and how much CPU the kernel spends on each new
// connection that walks it.
//
// Everything happens in a network namespace made for the purpose and
// deleted by its exact name afterwards. The connections are TCP SYNs sent
// from a raw socket inside that namespace to a gateway whose neighbour
// entry is permanent, over a veth pair whose both ends live in the
// namespace: each SYN is a new conntrack entry and walks the nat and
// filter OUTPUT chains (where kube-proxy and Docker hook their service
// chains, as they do in PREROUTING and FORWARD for forwarded traffic),
// then leaves by the veth and is dropped by its peer, which owns no
// address. Nothing reaches the root namespace.
package kernelcost

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/pktflow/pktflow/internal/nsthread"
)

// Namespace is a network namespace this package made.
type Namespace struct {
	name  string
	once  sync.Once
	wired bool
}

// Create makes the namespace name; it must not exist. Only root can.
func Create(name string) (*Namespace, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("kernelcost: a network namespace needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("kernelcost: %w (apt-get install -y iproute2)", err)
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kernelcost: ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return &Namespace{name: name}, nil
}

// Name is the namespace's name.
func (n *Namespace) Name() string { return n.name }

// Delete removes the namespace, with its rules and conntrack entries; it
// may be called more than once.
func (n *Namespace) Delete() {
	n.once.Do(func() { exec.Command("ip", "netns", "delete", n.name).Run() })
}

// Variant says which iptables-restore is installed: "nf_tables" or
// "legacy".
func Variant() (string, error) {
	bin, err := exec.LookPath("iptables-restore")
	if err != nil {
		return "", fmt.Errorf("kernelcost: %w (apt-get install -y iptables)", err)
	}
	if v, err := exec.Command(bin, "--version").CombinedOutput(); err == nil && strings.Contains(string(v), "nf_tables") {
		return "nf_tables", nil
	}
	return "legacy", nil
}

// Restore runs iptables-restore in the namespace on the file and times
// it; with test set it only checks (--test) and the namespace's rules
// stay as they were.
func (n *Namespace) Restore(file string, test bool) (time.Duration, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return n.restore(f, test)
}

func (n *Namespace) restore(r io.Reader, test bool) (time.Duration, error) {
	argv := []string{"netns", "exec", n.name, "iptables-restore"}
	if test {
		argv = append(argv, "--test")
	}
	c := exec.Command("ip", argv...)
	c.Stdin = r
	var stderr bytes.Buffer
	c.Stderr = &stderr
	t0 := time.Now()
	err := c.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("kernelcost: iptables-restore: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return d, nil
}

// emptyTables replaces the nat and filter tables with empty ones whose
// chains accept: the hooks stay registered (conntrack and NAT still run),
// only the rules are gone.
const emptyTables = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
`

// Empty replaces the namespace's nat and filter rules with empty tables.
func (n *Namespace) Empty() error {
	_, err := n.restore(strings.NewReader(emptyTables), false)
	return err
}

// Flow is a new TCP connection to time.
type Flow struct {
	Src, Dst netip.Addr
	DPort    uint16
}

// The namespace's side of the wire the SYNs leave by: its address, and
// the gateway every destination is routed to (a permanent neighbour, so
// no ARP is ever sent). 198.51.100.0/24 is a documentation range.
const (
	wireAddr = "198.51.100.1/24"
	gateway  = "198.51.100.2"
	gwMAC    = "02:00:5e:00:53:02"
)

// wire gives the namespace a veth pair and a default route through it.
func (n *Namespace) wire() error {
	if n.wired {
		return nil
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "pfk0", "type", "veth", "peer", "name", "pfk1"},
		{"link", "set", "pfk0", "up"},
		{"link", "set", "pfk1", "up"},
		{"addr", "add", wireAddr, "dev", "pfk0"},
		{"neigh", "add", gateway, "lladdr", gwMAC, "dev", "pfk0", "nud", "permanent"},
		{"route", "add", "default", "via", gateway, "dev", "pfk0"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("kernelcost: ip -n %s %s: %v: %s", n.name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	n.wired = true
	return nil
}

// NewConnections sends count TCP SYNs from a raw socket in the
// namespace, cycling through flows, the i-th from source port
// sport+i (so that every one is a new connection), and returns the CPU
// time the sending thread spent in each send: the kernel's whole output
// path, netfilter hooks included. It fails if the kernel refuses a send
// (a rule dropped or rejected the SYN) or the source ports would wrap.
func (n *Namespace) NewConnections(flows []Flow, count int, sport uint16) ([]time.Duration, error) {
	if len(flows) == 0 || count <= 0 {
		return nil, errors.New("kernelcost: no flows to send")
	}
	if int(sport)+count > 65536 {
		return nil, fmt.Errorf("kernelcost: %d connections from source port %d would wrap", count, sport)
	}
	if err := n.wire(); err != nil {
		return nil, err
	}
	pkts := make([][]byte, count)
	dsts := make([]unix.SockaddrInet4, count)
	for i := range pkts {
		f := flows[i%len(flows)]
		if !f.Src.Is4() || !f.Dst.Is4() {
			return nil, fmt.Errorf("kernelcost: flow %s -> %s: only IPv4 is measured", f.Src, f.Dst)
		}
		p, err := syn(f.Src, f.Dst, sport+uint16(i), f.DPort)
		if err != nil {
			return nil, err
		}
		pkts[i], dsts[i] = p, unix.SockaddrInet4{Addr: f.Dst.As4()}
	}
	costs := make([]time.Duration, count)
	err := nsthread.InNamed(n.name, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("kernelcost: raw socket: %w", err)
		}
		defer unix.Close(fd)
		for i, p := range pkts {
			c0 := ThreadCPU()
			err := unix.Sendto(fd, p, 0, &dsts[i])
			costs[i] = ThreadCPU() - c0
			if err != nil {
				f := flows[i%len(flows)]
				return fmt.Errorf("kernelcost: SYN %s:%d -> %s:%d: %w (did a rule drop or reject it?)", f.Src, sport+uint16(i), f.Dst, f.DPort, err)
			}
		}
		return nil
	})
	return costs, err
}

// Connections counts the namespace's conntrack entries.
func (n *Namespace) Connections() (int, error) {
	count := 0
	err := nsthread.InNamed(n.name, func() error {
		// The count is per namespace, read through the namespace's own
		// view of the sysctl.
		b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
		if err != nil {
			return err
		}
		_, err = fmt.Sscan(string(b), &count)
		return err
	})
	return count, err
}

// syn is a TCP SYN from src:sport to dst:dport, IP header included.
func syn(src, dst netip.Addr, sport, dport uint16) ([]byte, error) {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1, SYN: true, Window: 64240}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ThreadCPU is the CPU time of the calling thread (lock the goroutine to
// its thread to time a span of work with it): it says what the work cost
// when it had a core, whatever else the machine runs.
func ThreadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
