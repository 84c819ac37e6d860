// Package packet is the engine's view of one IP datagram: the header fields
// that routing, netfilter, NAT and tcpdump care about, as a small value type.
package packet

import (
	"net/netip"
)

// IP protocol numbers.
const (
	ICMP   uint8 = 1
	TCP    uint8 = 6
	UDP    uint8 = 17
	ICMPv6 uint8 = 58
)

// TCP flag bits, as in the TCP header.
const (
	FIN uint8 = 0x01
	SYN uint8 = 0x02
	RST uint8 = 0x04
	PSH uint8 = 0x08
	ACK uint8 = 0x10
	URG uint8 = 0x20
)

// ICMPv4 types and codes the engine produces or recognises.
const (
	ICMPEchoReply      uint8 = 0
	ICMPDestUnreach    uint8 = 3
	ICMPRedirect       uint8 = 5
	ICMPEchoRequest    uint8 = 8
	ICMPTimeExceeded   uint8 = 11
	ICMPParamProblem   uint8 = 12
	CodeNetUnreach     uint8 = 0
	CodeHostUnreach    uint8 = 1
	CodeProtoUnreach   uint8 = 2
	CodePortUnreach    uint8 = 3
	CodeFragNeeded     uint8 = 4
	CodeNetProhibited  uint8 = 9
	CodeHostProhibited uint8 = 10
	CodeAdminProhib    uint8 = 13
)

// ICMPv6 types the engine produces or recognises.
const (
	ICMPv6DestUnreach  uint8 = 1
	ICMPv6PacketTooBig uint8 = 2
	ICMPv6TimeExceeded uint8 = 3
	ICMPv6EchoRequest  uint8 = 128
	ICMPv6EchoReply    uint8 = 129
	Code6NoRoute       uint8 = 0
	Code6AdminProhib   uint8 = 1
	Code6AddrUnreach   uint8 = 3
	Code6PortUnreach   uint8 = 4
	Code6PolicyFail    uint8 = 5
	Code6RejectRoute   uint8 = 6
)

// Packet is one IP datagram. It is a value: copy it to change it.
type Packet struct {
	Src, Dst netip.Addr
	Proto    uint8
	// SPort and DPort are the TCP/UDP ports.
	SPort, DPort uint16
	TCPFlags     uint8
	// TCP sequence numbers are not modelled; Ack says whether the ACK
	// number field is meaningful (it is whenever the ACK flag is set).
	ICMPType, ICMPCode uint8
	// ICMPID and ICMPSeq are the echo identifier and sequence.
	ICMPID, ICMPSeq uint16
	// MTU carried by a fragmentation-needed / packet-too-big error.
	ICMPMTU uint16
	// ICMPGateway is the better next hop an ICMP redirect names.
	ICMPGateway netip.Addr
	TTL         uint8
	DF          bool
	// Len is the length tcpdump prints after "length": the ICMP message
	// length for ICMP, the payload length for TCP and UDP.
	Len int
	// Inner is the datagram embedded in an ICMP error.
	Inner *Packet
}

// Is6 reports whether the packet is IPv6.
func (p *Packet) Is6() bool { return p.Dst.Is6() && !p.Dst.Is4In6() }

// IsICMPError reports whether the packet is an ICMP error message (one
// that carries an inner datagram), as opposed to an echo or other query.
func (p *Packet) IsICMPError() bool {
	switch p.Proto {
	case ICMP:
		switch p.ICMPType {
		case ICMPDestUnreach, ICMPRedirect, ICMPTimeExceeded, ICMPParamProblem, 4:
			return true
		}
	case ICMPv6:
		return p.ICMPType < 128
	}
	return false
}

// HasPorts reports whether the packet carries TCP or UDP ports.
func (p *Packet) HasPorts() bool { return p.Proto == TCP || p.Proto == UDP }

// ProtoName returns the lower-case protocol name (icmp, tcp, udp, ipv6-icmp)
// or the number as text.
func ProtoName(proto uint8) string {
	switch proto {
	case ICMP:
		return "icmp"
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMPv6:
		return "ipv6-icmp"
	}
	return itoa(int(proto))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [8]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
