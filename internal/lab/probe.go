package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktflow/pktflow/internal/nsthread"
	"github.com/pktflow/pktflow/internal/packet"
)

// pingData is the echo payload: 56 bytes, as ping sends by default, so
// that tcpdump prints "length 64".
var pingData = func() []byte {
	b := make([]byte, 56)
	for i := range b {
		b[i] = byte(0x10 + i)
	}
	return b
}()

// Ping sends count ICMP echo requests from node to dst, one after the
// other, each waiting up to the lab's Timeout for its answer (like
// `ping -c COUNT -W1 -t TTL`). ttl 0 leaves the node's default TTL (hop
// limit for IPv6). It uses a raw socket created in the node's namespace,
// so iputils ping need not be installed.
//
// It returns the answers received: echo replies, and ICMP errors that
// quote one of its requests (time exceeded, unreachable...). No answer is
// not an error; a send the kernel refuses (no route, EPERM from a
// firewall's OUTPUT chain) is, and ends the probe.
func (l *Lab) Ping(ctx context.Context, node string, dst netip.Addr, ttl, count int) ([]packet.Packet, error) {
	return l.PingSize(ctx, node, dst, ttl, 0, count)
}

// PingSize is Ping with echo requests of size bytes of ICMP message
// (header included, what tcpdump prints after "length"; `ping -s` takes
// size-8); 0 is ping's default of 64.
func (l *Lab) PingSize(ctx context.Context, node string, dst netip.Addr, ttl, size, count int) ([]packet.Packet, error) {
	ns, err := l.nodeNS(node)
	if err != nil {
		return nil, err
	}
	if !dst.IsValid() {
		return nil, errors.New("lab: Ping: invalid destination")
	}
	if size == 0 {
		size = 8 + len(pingData)
	}
	if size < 8 || size > 65507 {
		return nil, fmt.Errorf("lab: Ping: echo size %d: expected 8 to 65507 bytes of ICMP message", size)
	}
	dst = dst.Unmap()
	id := uint16(rand.Uint32())
	var answers []packet.Packet
	err = nsthread.InNamed(ns, func() error {
		var fd int
		var err error
		if dst.Is4() {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		} else {
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		}
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		if dst.Is4() {
			if ttl > 0 {
				err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, ttl)
			}
		} else {
			if ttl > 0 {
				err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
			}
			if err == nil {
				err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			}
			if err == nil {
				err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
			}
		}
		if err != nil {
			return fmt.Errorf("setsockopt: %w", err)
		}
		buf := make([]byte, 65536)
		oob := make([]byte, 512)
		for seq := uint16(1); int(seq) <= count; seq++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			var sa unix.Sockaddr
			msg := make([]byte, size)
			binary.BigEndian.PutUint16(msg[4:], id)
			binary.BigEndian.PutUint16(msg[6:], seq)
			for i := 8; i < size; i++ {
				msg[i] = pingData[(i-8)%len(pingData)]
			}
			if dst.Is4() {
				msg[0] = packet.ICMPEchoRequest
				binary.BigEndian.PutUint16(msg[2:], checksum(msg))
				sa = &unix.SockaddrInet4{Addr: dst.As4()}
			} else {
				msg[0] = 128 // the kernel fills in the ICMPv6 checksum
				sa = &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: zoneID(dst)}
			}
			if err := unix.Sendto(fd, msg, 0, sa); err != nil {
				return fmt.Errorf("send echo %d: %w", seq, err)
			}
			deadline := time.Now().Add(l.timeout)
			if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
				deadline = d
			}
			for {
				left := time.Until(deadline)
				if left <= 0 {
					break
				}
				tv := unix.NsecToTimeval(left.Nanoseconds())
				if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
					return err
				}
				p, err := recvICMP(fd, dst.Is4(), buf, oob)
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				if err != nil {
					return fmt.Errorf("receive: %w", err)
				}
				if p != nil && answersEcho(p, id, seq) {
					answers = append(answers, *p)
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return answers, fmt.Errorf("lab: ping %s from %s: %w", dst, node, err)
	}
	return answers, nil
}

// recvICMP reads one ICMP message from a raw socket. IPv4 raw sockets
// return the IP header; IPv6 ones do not, so addresses and hop limit come
// from the sender's address and ancillary data. It returns nil for a
// message it cannot decode.
func recvICMP(fd int, v4 bool, buf, oob []byte) (*packet.Packet, error) {
	if v4 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, err
		}
		p, err := DecodeIP(buf[:n])
		if err != nil {
			return nil, nil
		}
		return &p, nil
	}
	n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
	if err != nil {
		return nil, err
	}
	p := packet.Packet{Proto: packet.ICMPv6}
	if sa, ok := from.(*unix.SockaddrInet6); ok {
		p.Src = netip.AddrFrom16(sa.Addr)
	}
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if m.Header.Level != unix.IPPROTO_IPV6 {
				continue
			}
			switch {
			case m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16:
				p.Dst = netip.AddrFrom16([16]byte(m.Data[:16]))
			case m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
				p.TTL = uint8(binary.NativeEndian.Uint32(m.Data[:4]))
			}
		}
	}
	decodeL4(&p, buf[:n], n, true)
	return &p, nil
}

// answersEcho reports whether p answers echo request (id, seq): an echo
// reply with the same id and sequence, or an ICMP error quoting it.
func answersEcho(p *packet.Packet, id, seq uint16) bool {
	if !p.IsICMPError() {
		return (p.Proto == packet.ICMP && p.ICMPType == packet.ICMPEchoReply || p.Proto == packet.ICMPv6 && p.ICMPType == 129) &&
			p.ICMPID == id && p.ICMPSeq == seq
	}
	in := p.Inner
	return in != nil && (in.Proto == packet.ICMP && in.ICMPType == packet.ICMPEchoRequest || in.Proto == packet.ICMPv6 && in.ICMPType == 128) &&
		in.ICMPID == id && in.ICMPSeq == seq
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func zoneID(a netip.Addr) uint32 {
	if a.Zone() == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(a.Zone()); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// Dial opens a "tcp" or "udp" socket inside node's namespace and connects
// it to dst. src, when not the zero value, is bound first: its address
// (any when invalid) and port (kernel-chosen when 0); binding uses
// SO_REUSEADDR so that a port in TIME_WAIT can be reused, and IP_FREEBIND.
// A TCP handshake waits at most the lab's Timeout; a timeout wraps
// ErrNoReply. The connection keeps its namespace and may be used from any
// goroutine; the caller closes it.
func (l *Lab) Dial(ctx context.Context, node, network string, src, dst netip.AddrPort) (net.Conn, error) {
	ns, err := l.nodeNS(node)
	if err != nil {
		return nil, err
	}
	if network != "tcp" && network != "udp" {
		return nil, fmt.Errorf("lab: Dial: network %q, want tcp or udp", network)
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if dst.Addr().Is4() {
		network += "4"
	} else {
		network += "6"
	}
	d := net.Dialer{Timeout: l.timeout, Control: bindControl(src.Addr().IsValid())}
	if src.Addr().IsValid() || src.Port() != 0 {
		a := src.Addr()
		if !a.IsValid() {
			a = netip.IPv4Unspecified()
			if dst.Addr().Is6() {
				a = netip.IPv6Unspecified()
			}
		}
		ap := netip.AddrPortFrom(a, src.Port())
		if network[:3] == "tcp" {
			d.LocalAddr = net.TCPAddrFromAddrPort(ap)
		} else {
			d.LocalAddr = net.UDPAddrFromAddrPort(ap)
		}
	}
	var conn net.Conn
	err = nsthread.InNamed(ns, func() error {
		var err error
		conn, err = d.DialContext(ctx, network, dst.String())
		return err
	})
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("lab: %s %s from %s: %w (%w)", network, dst, node, ErrNoReply, err)
		}
		return nil, fmt.Errorf("lab: %s %s from %s: %w", network, dst, node, err)
	}
	if err := l.keep(conn); err != nil {
		return nil, err
	}
	return &trackedConn{Conn: conn, l: l}, nil
}

// trackedConn forgets itself from the lab's closers when closed.
type trackedConn struct {
	net.Conn
	l *Lab
}

func (c *trackedConn) Close() error {
	c.l.drop(c.Conn)
	return c.Conn.Close()
}

// bindControl sets SO_REUSEADDR, and IP_FREEBIND when binding a specific
// address, on a socket before it binds.
func bindControl(freebind bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil && freebind {
				// Best effort: an unsupported option is not fatal.
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// TCPConnect opens a TCP connection from node to dst (from src when not
// the zero value) and closes it at once (FIN). It returns nil when the
// handshake completed, an error wrapping syscall.ECONNREFUSED on a reset,
// and one wrapping ErrNoReply when nothing answered in time.
func (l *Lab) TCPConnect(ctx context.Context, node string, src, dst netip.AddrPort) error {
	c, err := l.Dial(ctx, node, "tcp", src, dst)
	if err != nil {
		return err
	}
	return c.Close()
}

// UDPSend sends one datagram from node to dst (from src when not the zero
// value) and waits up to the lab's Timeout for one reply, which it
// returns. An ICMP port unreachable gives an error wrapping
// syscall.ECONNREFUSED; silence gives one wrapping ErrNoReply. A nil
// payload sends "pktflow".
func (l *Lab) UDPSend(ctx context.Context, node string, src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	return l.UDPSendTTL(ctx, node, src, dst, payload, 0)
}

// UDPSendTTL is UDPSend with the datagram's TTL (hop limit) set, as
// traceroute and tracepath set it; 0 keeps the node's default.
func (l *Lab) UDPSendTTL(ctx context.Context, node string, src, dst netip.AddrPort, payload []byte, ttl int) ([]byte, error) {
	if payload == nil {
		payload = []byte("pktflow")
	}
	c, err := l.Dial(ctx, node, "udp", src, dst)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if ttl > 0 {
		if err := setTTL(c, dst.Addr().Unmap().Is4(), ttl); err != nil {
			return nil, fmt.Errorf("lab: udp %s from %s: set ttl: %w", dst, node, err)
		}
	}
	if _, err := c.Write(payload); err != nil {
		return nil, fmt.Errorf("lab: udp %s from %s: %w", dst, node, err)
	}
	deadline := time.Now().Add(l.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetReadDeadline(deadline)
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("lab: udp %s from %s: %w", dst, node, ErrNoReply)
		}
		return nil, fmt.Errorf("lab: udp %s from %s: %w", dst, node, err)
	}
	return buf[:n], nil
}

// setTTL sets IP_TTL (or IPV6_UNICAST_HOPS) on a connected socket.
func setTTL(c net.Conn, v4 bool, ttl int) error {
	sc, ok := c.(*trackedConn)
	if !ok {
		return fmt.Errorf("not a lab socket")
	}
	raw, ok := sc.Conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("socket has no file descriptor")
	}
	rc, err := raw.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v4 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, ttl)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
