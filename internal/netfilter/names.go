package netfilter

import (
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/packet"
)

// This file holds the name tables iptables accepts, copied in meaning (not
// code) from the iptables extensions and /etc/protocols, /etc/services.
// iptables-save always prints numbers, but hand-written rulesets and
// `iptables -S` output use names.

// protoNames maps -p names to protocol numbers: iptables' own aliases plus
// the usual /etc/protocols entries (iptables lower-cases -p before the
// look-up, so matching is case-insensitive).
var protoNames = map[string]uint8{
	"all": 0, "ip": 0, "hopopt": 0,
	"icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
	"egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22,
	"rdp": 27, "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37,
	"idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44,
	"idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "skip": 57,
	"ipv6-icmp": 58, "icmpv6": 58, "icmp6": 58, "ipv6-nonxt": 59,
	"ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89,
	"ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103,
	"ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132,
	"fc": 133, "mobility-header": 135, "mh": 135, "ipv6-mh": 135,
	"udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139,
	"shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143,
}

// parseProto parses a -p / --ctproto argument.
func parseProto(s string) (uint8, bool) {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 0, 8)
		return uint8(n), err == nil
	}
	p, ok := protoNames[strings.ToLower(s)]
	return p, ok
}

// serviceNames maps the common /etc/services names to ports, for ports
// written by name. Unknown names are compile errors.
var serviceNames = map[string]uint16{
	"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25,
	"time": 37, "whois": 43, "tacacs": 49, "domain": 53, "bootps": 67,
	"bootpc": 68, "tftp": 69, "gopher": 70, "finger": 79, "http": 80,
	"www": 80, "kerberos": 88, "pop3": 110, "sunrpc": 111, "auth": 113,
	"nntp": 119, "ntp": 123, "epmap": 135, "netbios-ns": 137,
	"netbios-dgm": 138, "netbios-ssn": 139, "imap": 143, "imap2": 143,
	"snmp": 161, "snmp-trap": 162, "bgp": 179, "irc": 194, "ldap": 389,
	"https": 443, "microsoft-ds": 445, "isakmp": 500, "syslog": 514,
	"submission": 587, "ldaps": 636, "rsync": 873, "imaps": 993,
	"pop3s": 995, "openvpn": 1194, "ms-sql-s": 1433, "l2tp": 1701,
	"pptp": 1723, "radius": 1812, "radius-acct": 1813, "nfs": 2049,
	"mysql": 3306, "ms-wbt-server": 3389, "sip": 5060, "xmpp-client": 5222,
	"postgresql": 5432, "amqp": 5672, "x11": 6000, "http-alt": 8080,
	"webcache": 8080,
}

// parsePort parses one port, numeric or a service name.
func parsePort(s string) (uint16, bool) {
	if isDigits(s) {
		n, err := strconv.ParseUint(s, 10, 16)
		return uint16(n), err == nil
	}
	p, ok := serviceNames[strings.ToLower(s)]
	return p, ok
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// icmpName is one --icmp-type / --icmpv6-type name: a type and a code
// range (0-255 for "the whole type").
type icmpName struct {
	name       string
	typ        uint8
	cmin, cmax uint8
}

// icmp4Names is the list `iptables -p icmp -h` prints, in its order;
// "any" has type 255, which the kernel treats as "every type".
var icmp4Names = []icmpName{
	{"any", 0xFF, 0, 0xFF},
	{"echo-reply", 0, 0, 0xFF},
	{"pong", 0, 0, 0xFF},
	{"destination-unreachable", 3, 0, 0xFF},
	{"network-unreachable", 3, 0, 0},
	{"host-unreachable", 3, 1, 1},
	{"protocol-unreachable", 3, 2, 2},
	{"port-unreachable", 3, 3, 3},
	{"fragmentation-needed", 3, 4, 4},
	{"source-route-failed", 3, 5, 5},
	{"network-unknown", 3, 6, 6},
	{"host-unknown", 3, 7, 7},
	{"network-prohibited", 3, 9, 9},
	{"host-prohibited", 3, 10, 10},
	{"TOS-network-unreachable", 3, 11, 11},
	{"TOS-host-unreachable", 3, 12, 12},
	{"communication-prohibited", 3, 13, 13},
	{"host-precedence-violation", 3, 14, 14},
	{"precedence-cutoff", 3, 15, 15},
	{"source-quench", 4, 0, 0xFF},
	{"redirect", 5, 0, 0xFF},
	{"network-redirect", 5, 0, 0},
	{"host-redirect", 5, 1, 1},
	{"TOS-network-redirect", 5, 2, 2},
	{"TOS-host-redirect", 5, 3, 3},
	{"echo-request", 8, 0, 0xFF},
	{"ping", 8, 0, 0xFF},
	{"router-advertisement", 9, 0, 0xFF},
	{"router-solicitation", 10, 0, 0xFF},
	{"time-exceeded", 11, 0, 0xFF},
	{"ttl-exceeded", 11, 0, 0xFF},
	{"ttl-zero-during-transit", 11, 0, 0},
	{"ttl-zero-during-reassembly", 11, 1, 1},
	{"parameter-problem", 12, 0, 0xFF},
	{"ip-header-bad", 12, 0, 0},
	{"required-option-missing", 12, 1, 1},
	{"timestamp-request", 13, 0, 0xFF},
	{"timestamp-reply", 14, 0, 0xFF},
	{"address-mask-request", 17, 0, 0xFF},
	{"address-mask-reply", 18, 0, 0xFF},
}

// icmp6Names is the list `ip6tables -p icmpv6 -h` prints.
var icmp6Names = []icmpName{
	{"destination-unreachable", 1, 0, 0xFF},
	{"no-route", 1, 0, 0},
	{"communication-prohibited", 1, 1, 1},
	{"beyond-scope", 1, 2, 2},
	{"address-unreachable", 1, 3, 3},
	{"port-unreachable", 1, 4, 4},
	{"failed-policy", 1, 5, 5},
	{"reject-route", 1, 6, 6},
	{"packet-too-big", 2, 0, 0xFF},
	{"time-exceeded", 3, 0, 0xFF},
	{"ttl-exceeded", 3, 0, 0xFF},
	{"ttl-zero-during-transit", 3, 0, 0},
	{"ttl-zero-during-reassembly", 3, 1, 1},
	{"parameter-problem", 4, 0, 0xFF},
	{"bad-header", 4, 0, 0},
	{"unknown-header-type", 4, 1, 1},
	{"unknown-option", 4, 2, 2},
	{"echo-request", 128, 0, 0xFF},
	{"ping", 128, 0, 0xFF},
	{"echo-reply", 129, 0, 0xFF},
	{"pong", 129, 0, 0xFF},
	{"router-solicitation", 133, 0, 0xFF},
	{"router-advertisement", 134, 0, 0xFF},
	{"neighbour-solicitation", 135, 0, 0xFF},
	{"neighbor-solicitation", 135, 0, 0xFF},
	{"neighbour-advertisement", 136, 0, 0xFF},
	{"neighbor-advertisement", 136, 0, 0xFF},
	{"redirect", 137, 0, 0xFF},
}

// parseICMPType parses an --icmp-type argument the way iptables does: a
// case-insensitive name or unambiguous prefix of one, else "type" or
// "type/code" in numbers.
func parseICMPType(s string, names []icmpName) (icmpName, string) {
	if s == "" {
		return icmpName{}, "an ICMP type name or number"
	}
	found := -1
	for i, n := range names {
		if len(s) <= len(n.name) && strings.EqualFold(n.name[:len(s)], s) {
			if strings.EqualFold(n.name, s) {
				return n, ""
			}
			if found >= 0 && (names[found].typ != n.typ || names[found].cmin != n.cmin || names[found].cmax != n.cmax) {
				return icmpName{}, "an unambiguous ICMP type (" + s + " could be " + names[found].name + " or " + n.name + ")"
			}
			if found < 0 {
				found = i
			}
		}
	}
	if found >= 0 {
		return names[found], ""
	}
	t, c, slash := strings.Cut(s, "/")
	tn, err := strconv.ParseUint(t, 0, 8)
	if err != nil {
		return icmpName{}, "an ICMP type name, a number 0-255 or type/code"
	}
	r := icmpName{name: s, typ: uint8(tn), cmin: 0, cmax: 0xFF}
	if slash {
		cn, err := strconv.ParseUint(c, 0, 8)
		if err != nil {
			return icmpName{}, "an ICMP code 0-255 after the slash"
		}
		r.cmin, r.cmax = uint8(cn), uint8(cn)
	}
	return r, ""
}

// rejectName is one --reject-with value: the long name iptables-save
// prints and the short alias it also accepts.
type rejectName struct{ name, alias string }

// reject4Names and reject6Names are in the order of the kernel's enums,
// which is the order iptables tries prefixes in.
var reject4Names = []rejectName{
	{"icmp-net-unreachable", "net-unreach"},
	{"icmp-host-unreachable", "host-unreach"},
	{"icmp-proto-unreachable", "proto-unreach"},
	{"icmp-port-unreachable", "port-unreach"},
	{"icmp-net-prohibited", "net-prohib"},
	{"icmp-host-prohibited", "host-prohib"},
	{"tcp-reset", "tcp-rst"},
	{"icmp-admin-prohibited", "admin-prohib"},
}

var reject6Names = []rejectName{
	{"icmp6-no-route", "no-route"},
	{"icmp6-adm-prohibited", "adm-prohibited"},
	{"icmp6-addr-unreachable", "addr-unreach"},
	{"icmp6-port-unreachable", "port-unreach"},
	{"tcp-reset", "tcp-reset"},
	{"icmp6-policy-fail", "policy-fail"},
	{"icmp6-reject-route", "reject-route"},
}

// parseRejectWith returns the long form of a --reject-with value: like
// iptables, the first entry whose name or alias starts with the argument
// (case-insensitive) wins.
func parseRejectWith(s string, family int) (RejectWith, bool) {
	names := reject4Names
	if family == 6 {
		names = reject6Names
	}
	if s == "" {
		return "", false
	}
	for _, n := range names {
		if hasPrefixFold(n.name, s) || hasPrefixFold(n.alias, s) {
			return RejectWith(n.name), true
		}
	}
	return "", false
}

func hasPrefixFold(s, prefix string) bool {
	return len(prefix) <= len(s) && strings.EqualFold(s[:len(prefix)], prefix)
}

// lookupPrefixFold returns the index of the first name that the token is a
// case-insensitive prefix of, as iptables' strncasecmp look-ups do.
func lookupPrefixFold(names []string, tok string) int {
	if tok == "" {
		return -1
	}
	for i, n := range names {
		if hasPrefixFold(n, tok) {
			return i
		}
	}
	return -1
}

// ctStateNames are the --ctstate / --state names in the order the
// conntrack extension tries them, with their CTState bits.
var ctStateNames = []string{"INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED", "SNAT", "DNAT"}
var ctStateBits = []CTState{CTInvalid, CTNew, CTEstablished, CTRelated, CTUntracked, CTSNAT, CTDNAT}

// ctStatusNames are the --ctstatus names; NONE is the empty set.
var ctStatusNames = []string{"NONE", "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED"}
var ctStatusBits = []CTStatus{0, CTStatusExpected, CTStatusSeenReply, CTStatusAssured, CTStatusConfirmed}

// addrTypeNames are the addrtype names, in the order of the AddrType bits.
var addrTypeNames = []string{"UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"}

// tcpFlagNames are the --tcp-flags names (matched exactly,
// case-insensitively).
var tcpFlagNames = map[string]uint8{
	"FIN": packet.FIN, "SYN": packet.SYN, "RST": packet.RST, "PSH": packet.PSH,
	"ACK": packet.ACK, "URG": packet.URG,
	"ALL":  packet.FIN | packet.SYN | packet.RST | packet.PSH | packet.ACK | packet.URG,
	"NONE": 0,
}

// tcpFlagsString renders flag bits the way iptables-save does (FIN,SYN...).
func tcpFlagsString(f uint8) string {
	if f == 0 {
		return "NONE"
	}
	var parts []string
	for _, n := range []struct {
		s string
		b uint8
	}{{"FIN", packet.FIN}, {"SYN", packet.SYN}, {"RST", packet.RST}, {"PSH", packet.PSH}, {"ACK", packet.ACK}, {"URG", packet.URG}} {
		if f&n.b != 0 {
			parts = append(parts, n.s)
		}
	}
	return strings.Join(parts, ",")
}

// stateString renders CTState bits as --ctstate prints them.
func stateString(s CTState) string { return string(appendState(nil, s)) }

// appendState appends stateString(s) to b: rule explanations name the
// state on every conntrack match, and this allocates nothing.
func appendState(b []byte, s CTState) []byte {
	if s == 0 {
		return append(b, "(unknown)"...)
	}
	first := true
	for i, bit := range ctStateBits {
		if s&bit != 0 {
			if !first {
				b = append(b, ',')
			}
			b, first = append(b, ctStateNames[i]...), false
		}
	}
	return b
}

func addrTypeString(t AddrType) string {
	if t == 0 {
		return "(none)"
	}
	var parts []string
	for i, n := range addrTypeNames {
		if t&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, ",")
}
