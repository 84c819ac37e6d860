package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/nsthread"
)

// connIdle bounds how long a listener keeps an idle accepted connection.
const connIdle = 10 * time.Second

// startListeners opens a node's listeners in its namespace: a listener
// without an address (or with 0.0.0.0 / ::) listens on every IPv4 address,
// and on every IPv6 one too when the node uses IPv6 (as a [::] socket
// would). Sockets are bound with IP_FREEBIND so an address that is only
// reachable through a local route still works.
func (l *Lab) startListeners(n *model.Node) error {
	ns := l.nsOf[n.Name]
	for _, lst := range n.Listeners {
		proto := strings.ToLower(lst.Proto)
		if proto != "tcp" && proto != "udp" {
			l.warnf("%s: listener %s/%d skipped: only tcp and udp are served", n.Name, lst.Proto, lst.Port)
			continue
		}
		var addrs []netip.Addr
		switch a := lst.Addr.Unmap(); {
		case a.IsValid() && !a.IsUnspecified():
			addrs = []netip.Addr{a}
		case a == netip.IPv4Unspecified():
			addrs = []netip.Addr{a}
		default:
			addrs = []netip.Addr{netip.IPv4Unspecified()}
			if l.v6[n.Name] || a.Is6() {
				addrs = append(addrs, netip.IPv6Unspecified())
			}
		}
		for _, a := range addrs {
			ap := netip.AddrPortFrom(a, lst.Port)
			err := l.listen(ns, proto, ap)
			if errors.Is(err, syscall.EADDRINUSE) {
				l.warnf("%s: listener %s %s skipped: address in use (listed twice?)", n.Name, proto, ap)
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Lab) listen(ns, proto string, ap netip.AddrPort) error {
	fam := "4"
	if ap.Addr().Is6() {
		fam = "6"
	}
	lc := net.ListenConfig{Control: listenControl(proto == "udp")}
	var ln net.Listener
	var pc net.PacketConn
	err := nsthread.InNamed(ns, func() error {
		var err error
		if proto == "tcp" {
			ln, err = lc.Listen(context.Background(), "tcp"+fam, ap.String())
		} else {
			pc, err = lc.ListenPacket(context.Background(), "udp"+fam, ap.String())
		}
		return err
	})
	if err != nil {
		return err
	}
	l.logf("%s: listening %s %s", ns, proto, ap)
	if ln != nil {
		if err := l.keep(ln); err != nil {
			return err
		}
		go l.serveTCP(ln)
		return nil
	}
	if err := l.keep(pc); err != nil {
		return err
	}
	go l.serveUDP(pc.(*net.UDPConn), ap.Addr().Is4())
	return nil
}

// listenControl sets SO_REUSEADDR and IP_FREEBIND, and for UDP asks for
// each datagram's destination address (IP_PKTINFO / IPV6_RECVPKTINFO) so
// that replies leave from the address that was asked.
func listenControl(udp bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1) // best effort
			if serr == nil && udp {
				if strings.HasSuffix(network, "6") {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
				} else {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// serveTCP accepts connections and echoes what each sends until EOF,
// then closes it; it ends when Down closes the listener.
func (l *Lab) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if l.keep(c) != nil {
			return
		}
		go func() {
			defer l.drop(c)
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				c.SetDeadline(time.Now().Add(connIdle))
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// serveUDP answers every datagram with one copy of it, sent from the
// address the datagram was sent to.
func (l *Lab) serveUDP(c *net.UDPConn, v4 bool) {
	buf := make([]byte, 65536)
	oob := make([]byte, 512)
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if _, _, err := c.WriteMsgUDPAddrPort(buf[:n], replyOOB(oob[:oobn], v4), from); err != nil {
			// A subnet broadcast cannot be a source: let the kernel choose.
			c.WriteMsgUDPAddrPort(buf[:n], nil, from)
		}
	}
}

// replyOOB turns the destination address a datagram arrived with into
// the ancillary data that makes the reply leave from that address.
func replyOOB(oob []byte, v4 bool) []byte {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		switch {
		case v4 && m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12:
			dst := netip.AddrFrom4([4]byte(m.Data[8:12]))
			if !dst.IsGlobalUnicast() && !dst.IsLoopback() {
				return nil // broadcast, multicast: let the kernel choose
			}
			return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: dst.As4()})
		case !v4 && m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 20:
			dst := netip.AddrFrom16([16]byte(m.Data[:16]))
			if dst.IsMulticast() {
				return nil
			}
			info := unix.Inet6Pktinfo{Addr: dst.As16()}
			if dst.IsLinkLocalUnicast() {
				info.Ifindex = binary.NativeEndian.Uint32(m.Data[16:20])
			}
			return unix.PktInfo6(&info)
		}
	}
	return nil
}
