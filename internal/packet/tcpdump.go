package packet

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// flagStrings holds FlagString's answer for every combination of the six
// flags, made once: a trace renders flags for every capture.
var flagStrings = func() (t [64]string) {
	for f := range t {
		t[f] = flagString(uint8(f))
	}
	return t
}()

// FlagString renders TCP flags the way tcpdump does: one letter per flag
// in header bit order, with "." for ACK (SYN-ACK is "S.").
func FlagString(f uint8) string {
	if f < 64 {
		return flagStrings[f]
	}
	return flagString(f)
}

func flagString(f uint8) string {
	var b strings.Builder
	for _, x := range []struct {
		bit uint8
		s   string
	}{{FIN, "F"}, {SYN, "S"}, {RST, "R"}, {PSH, "P"}, {ACK, "."}, {URG, "U"}} {
		if f&x.bit != 0 {
			b.WriteString(x.s)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// TCPHeaderLen is the TCP header length Linux sends for a segment with
// these flags: 20 bytes plus the options Linux puts on a SYN (MSS,
// SACK-permitted, timestamps, window scale: 20 bytes) or, on other
// segments of a connection with timestamps, 12 bytes. A reset carries no
// options.
func TCPHeaderLen(flags uint8) int {
	switch {
	case flags&RST != 0:
		return 20
	case flags&SYN != 0:
		return 40
	}
	return 32
}

// ICMPName names an ICMP type and code in words.
func ICMPName(typ, code uint8) string {
	switch typ {
	case ICMPEchoReply:
		return "ICMP echo reply"
	case ICMPEchoRequest:
		return "ICMP echo request"
	case ICMPTimeExceeded:
		if code == 1 {
			return "ICMP time exceeded (fragment reassembly)"
		}
		return "ICMP time exceeded in-transit"
	case ICMPDestUnreach:
		names := map[uint8]string{
			CodeNetUnreach: "net unreachable", CodeHostUnreach: "host unreachable", CodeProtoUnreach: "protocol unreachable",
			CodePortUnreach: "port unreachable", CodeFragNeeded: "fragmentation needed", CodeNetProhibited: "net prohibited",
			CodeHostProhibited: "host prohibited", CodeAdminProhib: "administratively prohibited",
		}
		if n, ok := names[code]; ok {
			return "ICMP " + n
		}
		return fmt.Sprintf("ICMP destination unreachable code %d", code)
	}
	return fmt.Sprintf("ICMP type %d code %d", typ, code)
}

// ICMP6Name names an ICMPv6 type and code in words.
func ICMP6Name(typ, code uint8) string {
	switch typ {
	case ICMPv6EchoRequest:
		return "ICMPv6 echo request"
	case ICMPv6EchoReply:
		return "ICMPv6 echo reply"
	case ICMPv6PacketTooBig:
		return "ICMPv6 packet too big"
	case ICMPv6TimeExceeded:
		return "ICMPv6 time exceeded in-transit"
	case ICMPv6DestUnreach:
		return "ICMPv6 destination unreachable, " + unreach6[code]
	}
	return fmt.Sprintf("ICMPv6 type %d code %d", typ, code)
}

// unreach6 are tcpdump's words for ICMPv6 destination-unreachable codes.
var unreach6 = map[uint8]string{
	Code6NoRoute: "unreachable route", Code6AdminProhib: "unreachable prohibited", 2: "beyond scope",
	Code6AddrUnreach: "unreachable address", Code6PortUnreach: "unreachable port",
	Code6PolicyFail: "failed source address policy", Code6RejectRoute: "reject route to destination",
}

// Tcpdump renders the packet as `tcpdump -nn` prints it, without the
// timestamp. TCP sequence numbers, windows and options are not modelled
// and are left out.
func Tcpdump(p *Packet) string {
	switch p.Proto {
	case TCP, UDP:
		var buf [128]byte
		return string(AppendTcpdump(buf[:0], p))
	}
	return tcpdump(p)
}

// AppendTcpdump appends what Tcpdump returns. TCP and UDP, the packets
// traced most, are rendered without fmt.
func AppendTcpdump(b []byte, p *Packet) []byte {
	switch p.Proto {
	case TCP, UDP:
	default:
		return append(b, tcpdump(p)...)
	}
	if p.Is6() {
		b = append(b, "IP6 "...)
	} else {
		b = append(b, "IP "...)
	}
	b = strconv.AppendUint(append(appendAddr(b, p.Src), '.'), uint64(p.SPort), 10)
	b = append(b, " > "...)
	b = strconv.AppendUint(append(appendAddr(b, p.Dst), '.'), uint64(p.DPort), 10)
	if p.Proto == TCP {
		b = append(append(append(b, ": Flags ["...), FlagString(p.TCPFlags)...), "], length "...)
	} else {
		b = append(b, ": UDP, length "...)
	}
	return strconv.AppendInt(b, int64(p.Len), 10)
}

// appendAddr appends an address as fmt's %s prints it.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "invalid IP"...)
	}
	return a.AppendTo(b)
}

func tcpdump(p *Packet) string {
	ip := "IP"
	if p.Is6() {
		ip = "IP6"
	}
	switch p.Proto {
	case TCP:
		return fmt.Sprintf("%s %s.%d > %s.%d: Flags [%s], length %d", ip, p.Src, p.SPort, p.Dst, p.DPort, FlagString(p.TCPFlags), p.Len)
	case UDP:
		return fmt.Sprintf("%s %s.%d > %s.%d: UDP, length %d", ip, p.Src, p.SPort, p.Dst, p.DPort, p.Len)
	case ICMP:
		return fmt.Sprintf("%s %s > %s: ICMP %s, length %d", ip, p.Src, p.Dst, icmpBody(p), p.Len)
	case ICMPv6:
		return fmt.Sprintf("%s %s > %s: ICMP6, %s, length %d", ip, p.Src, p.Dst, icmp6Body(p), p.Len)
	}
	return fmt.Sprintf("%s %s > %s: ip-proto-%d %d", ip, p.Src, p.Dst, p.Proto, p.Len)
}

// icmpBody follows tcpdump's print-icmp.c wording.
func icmpBody(p *Packet) string {
	switch p.ICMPType {
	case ICMPEchoRequest:
		return fmt.Sprintf("echo request, id %d, seq %d", p.ICMPID, p.ICMPSeq)
	case ICMPEchoReply:
		return fmt.Sprintf("echo reply, id %d, seq %d", p.ICMPID, p.ICMPSeq)
	case ICMPTimeExceeded:
		if p.ICMPCode == 1 {
			return "ip reassembly time exceeded"
		}
		return "time exceeded in-transit"
	case ICMPRedirect:
		dst := "?"
		if p.Inner != nil {
			dst = p.Inner.Dst.String()
		}
		kind := map[uint8]string{0: "net", 1: "host", 2: "tos net", 3: "tos host"}[p.ICMPCode]
		return fmt.Sprintf("redirect %s to %s %s", dst, kind, p.ICMPGateway)
	case ICMPDestUnreach:
		in := p.Inner
		dst := "?"
		if in != nil {
			dst = in.Dst.String()
		}
		switch p.ICMPCode {
		case CodeNetUnreach:
			return fmt.Sprintf("net %s unreachable", dst)
		case CodeHostUnreach:
			return fmt.Sprintf("host %s unreachable", dst)
		case CodeProtoUnreach:
			if in != nil {
				return fmt.Sprintf("%s protocol %d unreachable", dst, in.Proto)
			}
		case CodePortUnreach:
			if in != nil && in.HasPorts() {
				return fmt.Sprintf("%s %s port %d unreachable", dst, ProtoName(in.Proto), in.DPort)
			}
			if in != nil {
				// tcpdump reads a "port" from the quoted header's bytes
				// 2-3 (an ICMP checksum here), which pktflow does not model.
				return fmt.Sprintf("%s protocol %d port unreachable", dst, in.Proto)
			}
		case CodeFragNeeded:
			return fmt.Sprintf("%s unreachable - need to frag (mtu %d)", dst, p.ICMPMTU)
		case CodeNetProhibited:
			return fmt.Sprintf("net %s unreachable - admin prohibited", dst)
		case CodeHostProhibited:
			return fmt.Sprintf("host %s unreachable - admin prohibited", dst)
		case CodeAdminProhib:
			return fmt.Sprintf("host %s unreachable - admin prohibited filter", dst)
		}
		return fmt.Sprintf("%s unreachable code %d", dst, p.ICMPCode)
	}
	return fmt.Sprintf("type-#%d", p.ICMPType)
}

func icmp6Body(p *Packet) string {
	switch p.ICMPType {
	case 128:
		return fmt.Sprintf("echo request, id %d, seq %d", p.ICMPID, p.ICMPSeq)
	case 129:
		return fmt.Sprintf("echo reply, id %d, seq %d", p.ICMPID, p.ICMPSeq)
	case ICMPv6DestUnreach:
		s := "destination unreachable, " + unreach6[p.ICMPCode]
		if in := p.Inner; in != nil {
			if p.ICMPCode == Code6PortUnreach && in.HasPorts() {
				return fmt.Sprintf("%s, %s %s port %d", s, in.Dst, ProtoName(in.Proto), in.DPort)
			}
			return fmt.Sprintf("%s, %s", s, in.Dst)
		}
		return s
	case ICMPv6PacketTooBig:
		return fmt.Sprintf("packet too big, mtu %d", p.ICMPMTU)
	case ICMPv6TimeExceeded:
		return "time exceeded in-transit"
	}
	return fmt.Sprintf("icmp6 type %d", p.ICMPType)
}
