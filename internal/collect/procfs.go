package collect

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
)

// procState is what /proc says about a namespace, read from a thread
// inside it.
type procState struct {
	sysctls [][2]string // name (dotted, as sysctl prints it), value
	listen  []listenSock
}

// listenSock is a socket that answers: a TCP listener or an unconnected
// UDP socket. An invalid Addr means any address.
type listenSock struct {
	Proto string
	Addr  netip.Addr
	Port  uint16
}

func (l listenSock) String() string {
	if !l.Addr.IsValid() {
		return fmt.Sprintf("%s/%d", l.Proto, l.Port)
	}
	return fmt.Sprintf("%s/%s", l.Proto, netip.AddrPortFrom(l.Addr, l.Port))
}

// globalSysctls are the namespace-wide keys pktflow reads, relative to
// /proc/sys; they are skipped when the kernel lacks them (bridge-nf-call
// exists only with br_netfilter loaded).
var globalSysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/ip_local_port_range",
	"net/ipv4/ip_default_ttl",
	"net/bridge/bridge-nf-call-arptables",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
}

// confSysctls are the per-device keys, read for all, default and every
// interface.
var confSysctls = []string{
	"net/ipv4/conf/%s/forwarding",
	"net/ipv4/conf/%s/rp_filter",
	"net/ipv4/conf/%s/route_localnet",
	"net/ipv4/conf/%s/arp_ignore",
	"net/ipv6/conf/%s/forwarding",
}

// readProc reads sysctls and listening sockets; it must run on a thread
// that has joined the namespace.
func readProc(ifaces []string) (*procState, error) {
	st := &procState{}
	var paths []string
	paths = append(paths, globalSysctls...)
	for _, dev := range append([]string{"all", "default"}, ifaces...) {
		for _, f := range confSysctls {
			paths = append(paths, fmt.Sprintf(f, dev))
		}
	}
	for _, p := range paths {
		b, err := os.ReadFile("/proc/sys/" + p)
		if err != nil {
			continue
		}
		st.sysctls = append(st.sysctls, [2]string{sysctlName(p), strings.TrimRight(string(b), "\n")})
	}
	for _, f := range []struct {
		file, proto string
		tcp         bool
	}{{"tcp", "tcp", true}, {"tcp6", "tcp", true}, {"udp", "udp", false}, {"udp6", "udp", false}} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f.file)
		if err != nil {
			continue // no IPv6, say
		}
		socks, err := parseProcNet(b, f.proto, f.tcp)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s: %w", f.file, err)
		}
		st.listen = append(st.listen, socks...)
	}
	st.listen = dedupListen(st.listen)
	return st, nil
}

// sysctlName turns a /proc/sys path into the name sysctl prints: '/'
// becomes '.', and a '.' inside a component (eth0.100) becomes '/'.
func sysctlName(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(s, ".", "/")
	}
	return strings.Join(parts, ".")
}

// parseProcNet parses /proc/net/{tcp,tcp6,udp,udp6}: TCP sockets in
// LISTEN (0A) and UDP sockets without a remote address answer.
func parseProcNet(data []byte, proto string, tcp bool) ([]listenSock, error) {
	var out []listenSock
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			continue // header
		}
		if len(f) < 4 {
			continue
		}
		local, remote, state := f[1], f[2], f[3]
		if tcp && state != "0A" {
			continue
		}
		if !tcp {
			ra, rp, err := hexAddrPort(remote)
			if err != nil {
				return nil, err
			}
			if rp != 0 || !ra.IsUnspecified() {
				continue // connected: answers one peer only
			}
		}
		a, port, err := hexAddrPort(local)
		if err != nil {
			return nil, err
		}
		if port == 0 {
			continue
		}
		a = a.Unmap()
		if a.IsUnspecified() {
			a = netip.Addr{}
		}
		out = append(out, listenSock{Proto: proto, Addr: a, Port: port})
	}
	return out, sc.Err()
}

// hexAddrPort decodes "0100007F:0016": the address as the kernel's
// 32-bit words printed in host byte order, then the port.
func hexAddrPort(s string) (netip.Addr, uint16, error) {
	hs, ps, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(ps, 16, 16)
	if !ok || err != nil || (len(hs) != 8 && len(hs) != 32) {
		return netip.Addr{}, 0, fmt.Errorf("bad socket address %q", s)
	}
	raw, err := hex.DecodeString(hs)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad socket address %q", s)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(b)
	return a, uint16(port), nil
}

// dedupListen drops repeats (a port bound by several sockets, tcp and
// tcp6 on ::) and sorts: by protocol, port, address.
func dedupListen(in []listenSock) []listenSock {
	any := map[string]bool{}
	for _, l := range in {
		if !l.Addr.IsValid() {
			any[fmt.Sprintf("%s/%d", l.Proto, l.Port)] = true
		}
	}
	seen := map[listenSock]bool{}
	var out []listenSock
	for _, l := range in {
		if l.Addr.IsValid() && any[fmt.Sprintf("%s/%d", l.Proto, l.Port)] {
			continue // covered by the wildcard socket
		}
		if seen[l] {
			continue
		}
		seen[l] = true
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Addr.Less(b.Addr)
	})
	return out
}
