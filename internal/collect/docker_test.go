package collect

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/nsthread"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
	"github.com/pktflow/pktflow/internal/verify"
)

// serverSrc is the containers' only program: it answers TCP on :80 (echo)
// and UDP on :53 (echo), so the image needs nothing else and no registry.
const serverSrc = `package main

import "net"

func main() {
	go func() {
		pc, err := net.ListenPacket("udp", ":53")
		if err != nil {
			panic(err)
		}
		buf := make([]byte, 2048)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err == nil {
				pc.WriteTo(buf[:n], a)
			}
		}
	}()
	ln, err := net.Listen("tcp", ":80")
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 2048)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				c.Write(buf[:n])
			}
		}()
	}
}
`

// made records the containers and images this binary created, so that
// TestMain removes them even after an interrupt.
var made struct {
	sync.Mutex
	containers, images []string
}

func dockerTeardown() {
	made.Lock()
	defer made.Unlock()
	if len(made.containers) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, made.containers...)...).Run()
		made.containers = nil
	}
	for _, img := range made.images {
		exec.Command("docker", "rmi", "-f", img).Run()
	}
	made.images = nil
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// needDocker skips when no Docker engine answers.
func needDocker(t *testing.T) {
	t.Helper()
	needLab(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("skipping the Docker test: no docker command (no Docker engine on this machine)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("skipping the Docker test: no Docker engine is running (docker info: %v: %s)", err, bytes.TrimSpace(out))
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping the Docker test: the go command is needed to build the container's program")
	}
}

// buildImage builds a one-binary image from a static Go program with
// `docker import`: no registry is needed.
func buildImage(t *testing.T, name string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(serverSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module pfcolserver\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "server")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the container's program: %v\n%s", err, out)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, d := range []string{"etc/", "proc/", "sys/", "dev/", "tmp/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	tw.WriteHeader(&tar.Header{Name: "server", Mode: 0o755, Size: int64(len(prog)), Typeflag: tar.TypeReg})
	tw.Write(prog)
	tw.Close()
	tarball := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(tarball, tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	made.Lock()
	made.images = append(made.images, name)
	made.Unlock()
	docker(t, "import", "--change", `CMD ["/server"]`, tarball, name)
}

// runContainer starts a container and returns its first process's PID.
func runContainer(t *testing.T, name, image string, args ...string) int {
	t.Helper()
	made.Lock()
	made.containers = append(made.containers, name)
	made.Unlock()
	docker(t, append(append([]string{"run", "-d", "--name", name}, args...), image)...)
	for i := 0; i < 50; i++ {
		var pid int
		fmt.Sscan(docker(t, "inspect", "-f", "{{.State.Pid}}", name), &pid)
		if pid > 0 {
			return pid
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("container %s did not start", name)
	return 0
}

// capIface is an interface to capture on: which node, and the namespace
// to run tcpdump in ("" for the current one).
type capIface struct {
	node, iface, ns string
}

// capture runs tcpdump -Q in and -Q out on each interface while send
// runs, as the lab does for its own namespaces, and returns the IPv4
// unicast packets seen, ordered by time.
func capture(t *testing.T, ifs []capIface, send func() error) ([]lab.Packet, error) {
	t.Helper()
	type dump struct {
		ci   capIface
		dir  string
		cmd  *exec.Cmd
		out  bytes.Buffer
		errb *bufio.Reader
		ok   chan error
	}
	var ds []*dump
	defer func() {
		for _, d := range ds {
			if d.cmd.Process != nil {
				d.cmd.Process.Kill()
			}
		}
	}()
	for _, ci := range ifs {
		for _, dir := range []string{"in", "out"} {
			argv := []string{"tcpdump", "-i", ci.iface, "-Q", dir, "-p", "-nn", "-U", "--immediate-mode", "-w", "-"}
			if ci.ns != "" {
				argv = append([]string{"nsenter", "--net=" + ci.ns}, argv...)
			}
			d := &dump{ci: ci, dir: dir, ok: make(chan error, 1)}
			d.cmd = exec.Command(argv[0], argv[1:]...)
			d.cmd.Stdout = &d.out
			pr, pw := io.Pipe()
			d.cmd.Stderr = pw
			if err := d.cmd.Start(); err != nil {
				return nil, err
			}
			go func() {
				sc := bufio.NewScanner(pr)
				signalled := false
				for sc.Scan() {
					if !signalled && strings.Contains(sc.Text(), "listening on") {
						d.ok <- nil
						signalled = true
					}
				}
				if !signalled {
					d.ok <- fmt.Errorf("tcpdump on %s:%s did not start", ci.node, ci.iface)
				}
			}()
			go func() { d.cmd.Wait(); pw.Close() }()
			ds = append(ds, d)
		}
	}
	for _, d := range ds {
		select {
		case err := <-d.ok:
			if err != nil {
				return nil, err
			}
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("tcpdump on %s:%s: no \"listening on\"", d.ci.node, d.ci.iface)
		}
	}
	sendErr := send()
	time.Sleep(verify.Settle)
	for _, d := range ds {
		d.cmd.Process.Signal(syscall.SIGINT)
	}
	var pkts []lab.Packet
	for _, d := range ds {
		deadline := time.Now().Add(5 * time.Second)
		for d.cmd.ProcessState == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		recs, err := readPcap(d.out.Bytes())
		if err != nil {
			return nil, fmt.Errorf("capture %s:%s %s: %w", d.ci.node, d.ci.iface, d.dir, err)
		}
		for _, r := range recs {
			p, ok := lab.DecodeFrame(r.data)
			if !ok || !p.IP || !p.Pkt.Dst.Is4() || p.Pkt.Dst.IsMulticast() || p.Pkt.Dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
				continue
			}
			p.Node, p.Iface, p.Dir, p.Time = d.ci.node, d.ci.iface, d.dir, r.time
			pkts = append(pkts, p)
		}
	}
	sortByTime(pkts)
	return pkts, sendErr
}

func sortByTime(p []lab.Packet) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && (p[j].Time.Before(p[j-1].Time) || p[j].Time.Equal(p[j-1].Time) && p[j].Dir == "out" && p[j-1].Dir == "in"); j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

type pcapRec struct {
	time time.Time
	data []byte
}

// readPcap reads a classic pcap stream (microsecond or nanosecond,
// either byte order).
func readPcap(b []byte) ([]pcapRec, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 24 {
		return nil, errors.New("short pcap header")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	magic := bo.Uint32(b)
	nano := false
	switch magic {
	case 0xa1b2c3d4:
	case 0xa1b23c4d:
		nano = true
	default:
		bo = binary.BigEndian
		switch bo.Uint32(b) {
		case 0xa1b2c3d4:
		case 0xa1b23c4d:
			nano = true
		default:
			return nil, fmt.Errorf("not a pcap stream (magic %#x)", magic)
		}
	}
	var out []pcapRec
	for off := 24; off+16 <= len(b); {
		sec, frac, incl := bo.Uint32(b[off:]), bo.Uint32(b[off+4:]), int(bo.Uint32(b[off+8:]))
		off += 16
		if off+incl > len(b) {
			break // cut short by the signal
		}
		ns := int64(frac) * 1000
		if nano {
			ns = int64(frac)
		}
		out = append(out, pcapRec{time.Unix(int64(sec), ns), b[off : off+incl]})
		off += incl
	}
	return out, nil
}

// relevant keeps the probe's own packets: its ICMP echo id, or TCP/UDP
// segments with its source port on either side (a proxy's own
// connection does not count), the first segment of each way of a TCP
// handshake, each once per interface and direction.
func relevant(pkts []lab.Packet, p engine.Probe) []lab.Packet {
	var out []lab.Packet
	seen := map[string]bool{}
	for _, k := range pkts {
		q := &k.Pkt
		switch p.Proto {
		case packet.ICMP:
			if q.Proto != packet.ICMP || (!q.IsICMPError() && q.ICMPID != p.ICMPID) {
				continue
			}
		default:
			if q.Proto == packet.ICMP && q.IsICMPError() && q.Inner != nil && (q.Inner.SPort == p.SPort || q.Inner.DPort == p.SPort) {
				break
			}
			if q.Proto != p.Proto || (q.SPort != p.SPort && q.DPort != p.SPort) {
				continue
			}
			if q.Proto == packet.TCP && q.TCPFlags&(packet.SYN|packet.RST) == 0 {
				continue
			}
		}
		key := k.Node + "|" + k.Iface + "|" + k.Dir + "|" + lab.FormatPacket(q)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, k)
	}
	return out
}

// ping sends one ICMP echo request from the namespace at nsPath ("" for
// the current one) and waits for the reply.
func ping(nsPath string, dst netip.Addr, id uint16) error {
	var fd int
	open := func() error {
		var err error
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
		return err
	}
	var err error
	if nsPath == "" {
		err = open()
	} else {
		err = nsthread.InPath(nsPath, open)
	}
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	msg := make([]byte, 64)
	msg[0] = 8
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], 1)
	var sum uint32
	for i := 0; i < len(msg); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(msg[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(msg[2:], ^uint16(sum))
	if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return err
	}
	tv := syscall.NsecToTimeval(int64(time.Second))
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		if n >= 28 {
			ihl := int(buf[0]&0xf) * 4
			if n >= ihl+8 && buf[ihl] == 0 && binary.BigEndian.Uint16(buf[ihl+4:]) == id {
				return nil
			}
		}
	}
	return errors.New("no echo reply")
}

// dial opens a TCP connection or sends one UDP datagram and reads the
// answer, from the namespace at nsPath ("" for the current one).
func dial(nsPath, network string, sport uint16, dst netip.AddrPort) error {
	var conn net.Conn
	do := func() error {
		// SO_REUSEADDR: the same source port may be in TIME_WAIT from
		// an earlier run.
		d := net.Dialer{Timeout: time.Second, Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}}
		if network == "tcp" {
			d.LocalAddr = &net.TCPAddr{Port: int(sport)}
		} else {
			d.LocalAddr = &net.UDPAddr{Port: int(sport)}
		}
		var err error
		conn, err = d.Dial(network, dst.String())
		return err
	}
	var err error
	if nsPath == "" {
		err = do()
	} else {
		err = nsthread.InPath(nsPath, do)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if network == "udp" {
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write(make([]byte, engine.DefaultUDPLen)); err != nil {
			return err
		}
		buf := make([]byte, 100)
		_, err := conn.Read(buf)
		return err
	}
	return nil
}

// TestCollectDocker runs two containers of a locally built image, one
// publishing ports, collects --all-netns, and checks pktflow's traces
// of container → host (the outside, here: this test never adds an
// interface to the machine's own namespace) and host → published ports
// against tcpdump on the containers' and the host's interfaces.
func TestCollectDocker(t *testing.T) {
	needDocker(t)
	prefix := labPrefix()
	image := prefix + ":test"
	web, cli := prefix+"-web", prefix+"-cli"
	tcpPort := 20000 + uint16(os.Getpid()%10000)
	udpPort := tcpPort
	// Source ports differ from run to run, so that a connection of an
	// earlier run still in TIME_WAIT never gets in the way.
	sport := 30000 + uint16(os.Getpid()%5000)*4
	t.Cleanup(dockerTeardown)
	buildImage(t, image)
	webPID := runContainer(t, web, image, "-p", fmt.Sprintf("%d:80", tcpPort), "-p", fmt.Sprintf("%d:53/udp", udpPort))
	cliPID := runContainer(t, cli, image)
	webIP := netip.MustParseAddr(docker(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", web))
	gw := netip.MustParseAddr(docker(t, "inspect", "-f", "{{.NetworkSettings.Gateway}}", web))
	time.Sleep(300 * time.Millisecond) // the program's sockets

	snap, err := Collect(tctx(t, time.Minute), Options{AllNetNS: true, Keep: func(tg *Target) bool {
		return tg.Current || tg.Container == web || tg.Container == cli
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range snap.Warnings {
		t.Logf("warning: %s", w)
	}
	dir := filepath.Join(t.TempDir(), "snap")
	warnings, err := snap.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Logf("write: %s", w)
	}
	s, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var host string
	for _, n := range snap.Nodes {
		if n.Target.Current {
			host = n.Target.Node
		}
	}
	for _, name := range []string{web, cli} {
		n := s.Node(name)
		if n == nil || n.Kind != model.KindContainer {
			t.Fatalf("node %s = %+v, want a container named as Docker names it", name, n)
		}
	}
	if got := fmt.Sprint(s.Node(web).Listeners); !strings.Contains(got, "80") {
		t.Errorf("%s listens on %s, want tcp/80", web, got)
	}
	hostIf := map[string]string{}
	for _, l := range s.Links {
		for i, e := range l.Ends {
			if (e.Node == web || e.Node == cli) && e.Iface == "eth0" {
				hostIf[e.Node] = l.Ends[1-i].Iface
			}
		}
	}
	if hostIf[web] == "" || hostIf[cli] == "" {
		t.Fatalf("the containers' veths are not joined to the host: links %v", linkSet(s))
	}
	hostAddr := netip.Addr{}
	for _, i := range s.Node(host).Interfaces {
		for _, a := range i.Addrs {
			if a.Prefix.Addr().Is4() && !a.Prefix.Addr().IsLoopback() && i.Name != "docker0" && i.Up && !hostAddr.IsValid() {
				hostAddr = a.Prefix.Addr()
			}
		}
	}
	if !hostAddr.IsValid() {
		hostAddr = gw
	}
	e, err := engine.New(s)
	if err != nil {
		t.Fatal(err)
	}
	ifs := []capIface{
		{web, "eth0", fmt.Sprintf("/proc/%d/ns/net", webPID)},
		{cli, "eth0", fmt.Sprintf("/proc/%d/ns/net", cliPID)},
		{host, "docker0", ""}, {host, hostIf[web], ""}, {host, hostIf[cli], ""},
	}
	cliNS := fmt.Sprintf("/proc/%d/ns/net", cliPID)
	cases := []struct {
		name    string
		probe   engine.Probe
		send    func(p engine.Probe) error
		verdict string
	}{
		{"container pings the host", engine.Probe{From: cli, Proto: packet.ICMP, Dst: gw, ICMPID: 4242, ICMPSeq: 1},
			func(p engine.Probe) error { return ping(cliNS, p.Dst, p.ICMPID) }, trace.Answered},
		{"container to the host's published port", engine.Probe{From: cli, Proto: packet.TCP, Dst: hostAddr, DPort: tcpPort, SPort: sport + 1},
			func(p engine.Probe) error { return dial(cliNS, "tcp", p.SPort, netip.AddrPortFrom(p.Dst, p.DPort)) }, trace.Answered},
		{"host to the published tcp port", engine.Probe{From: host, Proto: packet.TCP, Dst: hostAddr, DPort: tcpPort, SPort: sport + 2},
			func(p engine.Probe) error { return dial("", "tcp", p.SPort, netip.AddrPortFrom(p.Dst, p.DPort)) }, trace.Answered},
		{"host to the published udp port", engine.Probe{From: host, Proto: packet.UDP, Dst: hostAddr, DPort: udpPort, SPort: sport + 3},
			func(p engine.Probe) error { return dial("", "udp", p.SPort, netip.AddrPortFrom(p.Dst, p.DPort)) }, trace.Answered},
		{"host pings the container", engine.Probe{From: host, Proto: packet.ICMP, Dst: webIP, ICMPID: 4243, ICMPSeq: 1},
			func(p engine.Probe) error { return ping("", p.Dst, p.ICMPID) }, trace.Answered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pkts, sendErr := capture(t, ifs, func() error { return tc.send(tc.probe) })
			if sendErr != nil {
				t.Logf("sender: %v", sendErr)
			}
			pkts = relevant(pkts, tc.probe)
			tr := e.Trace(tc.probe)
			if tr.Verdict != tc.verdict {
				t.Errorf("verdict %s (%s), want %s", tr.Verdict, tr.Reason, tc.verdict)
			}
			// Only the captured interfaces are compared.
			captured := map[string]bool{}
			for _, ci := range ifs {
				captured[ci.node+"|"+ci.iface] = true
			}
			pred := *tr
			pred.Captures = nil
			for _, c := range tr.Captures {
				if captured[c.Node+"|"+c.Iface] {
					pred.Captures = append(pred.Captures, c)
				}
			}
			diffs := verify.Compare(&pred, pkts)
			t.Logf("on the %d captured interfaces: %d packets predicted, %d captured", len(ifs), len(pred.Captures), len(pkts))
			if len(pkts) == 0 || len(pred.Captures) == 0 {
				t.Fatalf("nothing captured or predicted: the check would be vacuous")
			}
			if len(diffs) > 0 || len(tr.Uncertain) > 0 {
				for _, c := range pred.Captures {
					t.Logf("pktflow: %s %s %s %s", c.Node, c.Iface, c.Dir, c.Line)
				}
				for _, k := range pkts {
					t.Logf("kernel:  %s", k)
				}
				t.Fatalf("uncertain: %v\n%s", tr.Uncertain, strings.Join(diffs, "\n"))
			}
		})
	}
}
