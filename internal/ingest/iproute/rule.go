package iproute

import (
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
)

// ipProtos maps the protocol names ip rule prints (from /etc/protocols)
// to numbers; "ipproto-N" and plain numbers are accepted too.
var ipProtos = map[string]int{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
	"ipv6-icmp": 58, "icmpv6": 58, "sctp": 132, "udplite": 136, "ipip": 4, "ipv6": 41,
}

// unmodelledRule are rule selectors and actions the model cannot hold.
var unmodelledRule = map[string]string{
	"tos":                   "TOS-selective rules are not modelled",
	"dsfield":               "TOS-selective rules are not modelled",
	"uidrange":              "uidrange rules are not modelled",
	"l3mdev":                "l3mdev (VRF) rules are not modelled",
	"suppress_prefixlength": "suppress_prefixlength is not modelled",
	"suppress_ifgroup":      "suppress_ifgroup is not modelled",
	"realms":                "realms rules are not modelled",
	"tun_id":                "tun_id rules are not modelled",
	"map-to":                "NAT rules (map-to) are not modelled",
	"nat":                   "NAT rules are not modelled",
	"flowlabel":             "flowlabel rules are not modelled",
}

// ParseRules parses `ip rule` (or `ip -6 rule`) output:
//
//	0:	from all lookup local
//	100:	not from 10.0.0.0/8 fwmark 0x1/0xff iif eth0 ipproto tcp dport 1000-2000 lookup 100
//	200:	from all goto 300
//	300:	from 192.0.2.0/24 blackhole
//
// Table names other than local, main and default are an error (they come
// from the machine's rt_tables). "[detached]" after iif/oif and
// "[unresolved]" after goto are accepted and ignored; selectors the model
// lacks (tos, uidrange, suppress_prefixlength, l3mdev ...) are errors.
func ParseRules(file string, r io.Reader) ([]model.PolicyRule, error) {
	lines, err := readLines(file, r)
	if err != nil {
		return nil, err
	}
	out := make([]model.PolicyRule, 0, len(lines))
	for _, l := range lines {
		pr, err := parseRuleLine(file, l)
		if err != nil {
			return nil, err
		}
		out = append(out, pr)
	}
	return out, nil
}

func parseRuleLine(file string, l line) (model.PolicyRule, error) {
	f := l.fields
	pr := model.PolicyRule{Origin: origin(file, l)}
	if l.indented || !strings.HasSuffix(f[0], ":") {
		return pr, errf(file, l, "expected a rule starting with its priority, like \"32766:\tfrom all lookup main\"")
	}
	prio, ok := atoi(f[0][:len(f[0])-1])
	if !ok {
		return pr, errf(file, l, "priority %q is not a number", f[0][:len(f[0])-1])
	}
	pr.Priority = prio
	for i := 1; i < len(f); i++ {
		key := f[i]
		switch key {
		case "not":
			pr.Not = true
			continue
		case "[detached]", "[unresolved]":
			continue
		case "blackhole", "unreachable", "prohibit", "nop":
			if pr.Action != "" {
				return pr, errf(file, l, "rule has two actions (%s and %s)", pr.Action, key)
			}
			pr.Action = key
			continue
		}
		if msg, ok := unmodelledRule[key]; ok {
			return pr, errf(file, l, "%s", msg+removeHint)
		}
		switch key {
		case "from", "to", "fwmark", "iif", "oif", "ipproto", "sport", "dport",
			"lookup", "table", "goto", "proto", "protocol", "pref", "priority", "preference":
		default:
			return pr, errf(file, l, "unknown rule keyword %q", key)
		}
		if i+1 >= len(f) {
			return pr, errf(file, l, "missing value after %q", key)
		}
		i++
		val := f[i]
		switch key {
		case "from", "to":
			var p netip.Prefix
			if val != "all" {
				var want string
				p, want = parsePrefixOrHost(val)
				if want != "" {
					return pr, errf(file, l, "%s %q: expected \"all\" or %s", key, val, want)
				}
			}
			if key == "from" {
				pr.From = p
			} else {
				pr.To = p
			}
		case "fwmark":
			m, mask, ok := parseMark(val)
			if !ok {
				return pr, errf(file, l, "fwmark %q: expected MARK or MARK/MASK (hex 0x.. or decimal)", val)
			}
			pr.FwMark, pr.FwMask, pr.HasMark = m, mask, true
		case "iif":
			pr.IIF = val
		case "oif":
			pr.OIF = val
		case "ipproto":
			p, ok := parseIPProto(val)
			if !ok {
				return pr, errf(file, l, "ipproto %q: expected a protocol name (tcp, udp, icmp ...) or number", val)
			}
			pr.IPProto = p
		case "sport", "dport":
			pr2, ok := parsePortRange(val)
			if !ok {
				return pr, errf(file, l, "%s %q: expected PORT or PORT-PORT", key, val)
			}
			if key == "sport" {
				pr.SPort = pr2
			} else {
				pr.DPort = pr2
			}
		case "lookup", "table":
			if pr.Action != "" {
				return pr, errf(file, l, "rule has two actions (%s and lookup)", pr.Action)
			}
			t, msg := parseTable(val)
			if msg != "" {
				return pr, errf(file, l, "%s", msg)
			}
			pr.Action, pr.Table = "lookup", t
		case "goto":
			if pr.Action != "" {
				return pr, errf(file, l, "rule has two actions (%s and goto)", pr.Action)
			}
			n, ok := atoi(val)
			if !ok {
				return pr, errf(file, l, "goto %q is not a rule priority", val)
			}
			pr.Action, pr.Goto = "goto", n
		case "pref", "priority", "preference":
			n, ok := atoi(val)
			if !ok {
				return pr, errf(file, l, "%s %q is not a number", key, val)
			}
			pr.Priority = n
		}
	}
	if pr.Action == "" {
		return pr, errf(file, l, "rule has no action; expected lookup TABLE, goto PRIO, blackhole, unreachable, prohibit or nop")
	}
	if pr.From.IsValid() && pr.To.IsValid() && pr.From.Addr().Is4() != pr.To.Addr().Is4() {
		return pr, errf(file, l, "from and to are of different address families")
	}
	return pr, nil
}

// parseMark parses "0x1", "0x1/0xff" or decimal. Without a mask the whole
// mark is compared, as the kernel does.
func parseMark(s string) (mark, mask uint32, ok bool) {
	ms, ks, hasMask := strings.Cut(s, "/")
	m, err := strconv.ParseUint(ms, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	k := uint64(0xffffffff)
	if hasMask {
		if k, err = strconv.ParseUint(ks, 0, 32); err != nil {
			return 0, 0, false
		}
	}
	return uint32(m), uint32(k), true
}

func parseIPProto(s string) (int, bool) {
	if p, ok := ipProtos[strings.ToLower(s)]; ok {
		return p, true
	}
	s = strings.TrimPrefix(s, "ipproto-")
	n, ok := atoi(s)
	return n, ok && n < 256
}

func parsePortRange(s string) ([2]uint16, bool) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, ok1 := atoi(lo)
	b := a
	ok2 := true
	if isRange {
		b, ok2 = atoi(hi)
	}
	if !ok1 || !ok2 || a > 65535 || b > 65535 || b < a {
		return [2]uint16{}, false
	}
	return [2]uint16{uint16(a), uint16(b)}, true
}
