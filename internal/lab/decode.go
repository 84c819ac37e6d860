package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/pktflow/pktflow/internal/packet"
)

// Packet is one frame captured on one interface.
type Packet struct {
	Node, Iface string
	// Seq is the frame's 0-based position among the frames returned for
	// its interface, in capture order.
	Seq int
	// Dir is "in" (received by the interface) or "out" (sent by it), as
	// the kernel's packet socket reported it (tcpdump -Q).
	Dir  string
	Time time.Time
	// SrcMAC and DstMAC are the Ethernet addresses, lower-case colon form.
	SrcMAC, DstMAC string
	// EtherType is the frame's type after any VLAN tags (0x0800 IPv4,
	// 0x86dd IPv6, 0x0806 ARP...).
	EtherType uint16
	// IP reports whether Pkt holds a decoded IPv4/IPv6 datagram.
	IP bool
	// Pkt is the datagram as the engine sees one; Pkt.Len is what
	// tcpdump prints after "length".
	Pkt packet.Packet
	// Frame is the whole captured frame.
	Frame []byte
}

func (p Packet) String() string {
	head := fmt.Sprintf("%s:%s#%d %-3s", p.Node, p.Iface, p.Seq, p.Dir)
	if !p.IP {
		return fmt.Sprintf("%s %s > %s ethertype 0x%04x len %d", head, p.SrcMAC, p.DstMAC, p.EtherType, len(p.Frame))
	}
	return head + " " + FormatPacket(&p.Pkt)
}

// FormatPacket renders a datagram in one line, close to tcpdump's words:
// for test failure messages and logs.
func FormatPacket(p *packet.Packet) string {
	var b strings.Builder
	src, dst := p.Src.String(), p.Dst.String()
	if p.HasPorts() {
		src = fmt.Sprintf("%s.%d", src, p.SPort)
		dst = fmt.Sprintf("%s.%d", dst, p.DPort)
	}
	fmt.Fprintf(&b, "%s > %s %s", src, dst, packet.ProtoName(p.Proto))
	switch p.Proto {
	case packet.TCP:
		fmt.Fprintf(&b, " [%s]", tcpFlags(p.TCPFlags))
	case packet.ICMP, packet.ICMPv6:
		fmt.Fprintf(&b, " type %d code %d", p.ICMPType, p.ICMPCode)
		if !p.IsICMPError() {
			fmt.Fprintf(&b, " id %d seq %d", p.ICMPID, p.ICMPSeq)
		}
		if p.ICMPMTU != 0 {
			fmt.Fprintf(&b, " mtu %d", p.ICMPMTU)
		}
	}
	fmt.Fprintf(&b, " ttl %d", p.TTL)
	if p.DF {
		b.WriteString(" DF")
	}
	fmt.Fprintf(&b, " length %d", p.Len)
	if p.Inner != nil {
		fmt.Fprintf(&b, " {%s}", FormatPacket(p.Inner))
	}
	return b.String()
}

func tcpFlags(f uint8) string {
	var s []byte
	for _, x := range []struct {
		bit uint8
		c   byte
	}{{packet.SYN, 'S'}, {packet.FIN, 'F'}, {packet.PSH, 'P'}, {packet.RST, 'R'}, {packet.URG, 'U'}, {0x40, 'E'}, {0x80, 'W'}, {packet.ACK, '.'}} {
		if f&x.bit != 0 {
			s = append(s, x.c)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return string(s)
}

// DecodeFrame decodes an Ethernet frame (VLAN tags are skipped). ok is
// true when the frame carries an IPv4 or IPv6 datagram of a protocol the
// engine models; for others only the link-layer fields are filled.
func DecodeFrame(frame []byte) (p Packet, ok bool) {
	p.Frame = frame
	var eth layers.Ethernet
	if err := eth.DecodeFromBytes(frame, gopacket.NilDecodeFeedback); err != nil {
		return p, false
	}
	p.SrcMAC, p.DstMAC = eth.SrcMAC.String(), eth.DstMAC.String()
	et, payload := eth.EthernetType, eth.Payload
	for et == layers.EthernetTypeDot1Q || et == layers.EthernetTypeQinQ {
		var tag layers.Dot1Q
		if err := tag.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
			return p, false
		}
		et, payload = tag.Type, tag.Payload
	}
	p.EtherType = uint16(et)
	if et != layers.EthernetTypeIPv4 && et != layers.EthernetTypeIPv6 {
		return p, false
	}
	pkt, err := DecodeIP(payload)
	if err != nil {
		return p, false
	}
	p.Pkt, p.IP = pkt, true
	return p, true
}

// DecodeIP decodes an IPv4 or IPv6 datagram starting at its IP header.
// A truncated datagram (as embedded in an ICMP error) is decoded as far
// as its bytes go; lengths come from its headers.
func DecodeIP(b []byte) (packet.Packet, error) {
	return decodeIP(b, true)
}

func decodeIP(b []byte, outer bool) (packet.Packet, error) {
	var p packet.Packet
	if len(b) < 1 {
		return p, errors.New("empty datagram")
	}
	var l4 []byte
	var l4len int
	switch b[0] >> 4 {
	case 4:
		var ip layers.IPv4
		if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			return p, err
		}
		p.Src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		p.Dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		p.TTL = ip.TTL
		p.DF = ip.Flags&layers.IPv4DontFragment != 0
		p.Proto = uint8(ip.Protocol)
		l4, l4len = ip.Payload, int(ip.Length)-int(ip.IHL)*4
		if ip.FragOffset != 0 {
			p.Len = l4len // a later fragment: no transport header
			return p, nil
		}
	case 6:
		var ip layers.IPv6
		if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			return p, err
		}
		p.Src, _ = netip.AddrFromSlice(ip.SrcIP.To16())
		p.Dst, _ = netip.AddrFromSlice(ip.DstIP.To16())
		p.TTL = ip.HopLimit
		p.Proto = uint8(ip.NextHeader)
		l4, l4len = b[min(40, len(b)):], int(ip.Length)
		if len(l4) > l4len {
			l4 = l4[:l4len]
		}
		// Walk extension headers to the transport header.
	walk:
		for {
			switch p.Proto {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(l4) < 8 {
					return p, nil
				}
				n := 8 + int(l4[1])*8
				p.Proto = l4[0]
				l4, l4len = l4[min(n, len(l4)):], l4len-n
				continue
			case 44: // fragment
				if len(l4) < 8 {
					return p, nil
				}
				off := binary.BigEndian.Uint16(l4[2:4]) >> 3
				p.Proto = l4[0]
				l4, l4len = l4[8:], l4len-8
				if off != 0 {
					p.Len = l4len
					return p, nil
				}
			default:
				break walk
			}
		}
	default:
		return p, fmt.Errorf("not IP (version %d)", b[0]>>4)
	}
	decodeL4(&p, l4, l4len, outer)
	return p, nil
}

// decodeL4 fills the transport fields from l4, the bytes available, and
// l4len, the transport length the IP header announced.
func decodeL4(p *packet.Packet, l4 []byte, l4len int, outer bool) {
	switch p.Proto {
	case packet.TCP:
		if len(l4) >= 4 {
			p.SPort = binary.BigEndian.Uint16(l4[0:2])
			p.DPort = binary.BigEndian.Uint16(l4[2:4])
		}
		if len(l4) >= 14 {
			p.TCPFlags = l4[13]
			p.Len = l4len - int(l4[12]>>4)*4
		}
	case packet.UDP:
		if len(l4) >= 4 {
			p.SPort = binary.BigEndian.Uint16(l4[0:2])
			p.DPort = binary.BigEndian.Uint16(l4[2:4])
		}
		if len(l4) >= 6 {
			p.Len = int(binary.BigEndian.Uint16(l4[4:6])) - 8
		}
	case packet.ICMP, packet.ICMPv6:
		p.Len = l4len
		if len(l4) < 2 {
			return
		}
		p.ICMPType, p.ICMPCode = l4[0], l4[1]
		if len(l4) < 8 {
			return
		}
		if p.IsICMPError() {
			switch {
			case p.Proto == packet.ICMP && p.ICMPType == packet.ICMPDestUnreach && p.ICMPCode == packet.CodeFragNeeded:
				p.ICMPMTU = binary.BigEndian.Uint16(l4[6:8])
			case p.Proto == packet.ICMPv6 && p.ICMPType == 2: // packet too big
				p.ICMPMTU = uint16(min(binary.BigEndian.Uint32(l4[4:8]), 0xffff))
			}
			if outer && len(l4) > 8 {
				if in, err := decodeIP(l4[8:], false); err == nil {
					p.Inner = &in
				}
			}
			return
		}
		if hasEchoID(p) {
			p.ICMPID = binary.BigEndian.Uint16(l4[4:6])
			p.ICMPSeq = binary.BigEndian.Uint16(l4[6:8])
		}
	default:
		p.Len = l4len
	}
}

// hasEchoID reports whether an ICMP message carries an identifier and a
// sequence number (echo, timestamp and information queries).
func hasEchoID(p *packet.Packet) bool {
	if p.Proto == packet.ICMPv6 {
		return p.ICMPType == 128 || p.ICMPType == 129
	}
	switch p.ICMPType {
	case 0, 8, 13, 14, 15, 16:
		return true
	}
	return false
}

// noise reports whether a decoded frame is background traffic rather
// than a datagram the engine predicts: ARP and other non-IP frames,
// protocols other than ICMP/TCP/UDP (IGMP...), neighbour discovery and
// MLD, and multicast or broadcast datagrams.
func noise(p Packet) bool {
	if !p.IP {
		return true
	}
	switch p.Pkt.Proto {
	case packet.ICMP, packet.TCP, packet.UDP:
	case packet.ICMPv6:
		switch p.Pkt.ICMPType {
		case 130, 131, 132, 133, 134, 135, 136, 137, 143: // MLD, RS, RA, NS, NA, redirect, MLDv2
			return true
		}
	default:
		return true
	}
	d := p.Pkt.Dst
	if d.IsMulticast() || d == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || p.DstMAC == "ff:ff:ff:ff:ff:ff" {
		return true
	}
	return false
}

var errEmptyPcap = errors.New("pcap: empty stream")

// pcapRecord is one frame of a pcap stream.
type pcapRecord struct {
	Time time.Time
	Data []byte
}

// readPcap reads a classic pcap stream (either byte order, micro- or
// nanosecond timestamps). It returns the records read before any error,
// and io.ErrUnexpectedEOF only when a record is cut short, which happens
// when tcpdump is killed mid-write.
func readPcap(r io.Reader) (linkType uint32, recs []pcapRecord, err error) {
	var hdr [24]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return 0, nil, errEmptyPcap
		}
		return 0, nil, fmt.Errorf("pcap header: %w", err)
	}
	var bo binary.ByteOrder
	var nano bool
	switch m := binary.LittleEndian.Uint32(hdr[0:4]); m {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return 0, nil, fmt.Errorf("pcap: bad magic %#x", m)
	}
	linkType = bo.Uint32(hdr[20:24]) & 0x0fffffff
	for {
		var rh [16]byte
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if err == io.EOF {
				return linkType, recs, nil
			}
			return linkType, recs, io.ErrUnexpectedEOF
		}
		sec, frac := int64(bo.Uint32(rh[0:4])), int64(bo.Uint32(rh[4:8]))
		if !nano {
			frac *= 1000
		}
		incl := bo.Uint32(rh[8:12])
		if incl > 1<<20 {
			return linkType, recs, fmt.Errorf("pcap: record of %d bytes", incl)
		}
		data := make([]byte, incl)
		if _, err := io.ReadFull(r, data); err != nil {
			return linkType, recs, io.ErrUnexpectedEOF
		}
		recs = append(recs, pcapRecord{Time: time.Unix(sec, frac), Data: data})
	}
}
