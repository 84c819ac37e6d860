package iptlist

import (
	"errors"
	"fmt"
	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"net/netip"
	"strconv"
	"strings"
)

// addr is an address column read back: "0.0.0.0/0", "172.17.0.2",
// "!10.0.0.0/8", "10.0.0.0/255.0.0.0".
type addr struct {
	neg bool
	any bool
	pfx string // in iptables-save form: with its prefix length
}

// addrCol reads a source or destination column.
func addrCol(s string, family int) (addr, bool) {
	var a addr
	if strings.HasPrefix(s, "!") {
		a.neg, s = true, s[1:]
	}
	ip, bits, hasBits := strings.Cut(s, "/")
	ad, err := netip.ParseAddr(ip)
	if err != nil || ad.Zone() != "" || (family == 4) != ad.Is4() {
		return a, false
	}
	n := ad.BitLen()
	if hasBits {
		if isDigits(bits) {
			v, err := strconv.Atoi(bits)
			if err != nil || v > ad.BitLen() {
				return a, false
			}
			n = v
		} else if m, err := netip.ParseAddr(bits); err == nil && m.Is4() && family == 4 {
			// iptables 1.4 printed masks that are not a prefix
			// length in dotted form; a contiguous one is a length.
			v, ok := maskLen(m.As4())
			if !ok {
				return a, false
			}
			n = v
		} else {
			return a, false
		}
	}
	p := netip.PrefixFrom(ad, n)
	if n == 0 {
		a.any = true
	}
	a.pfx = p.String()
	return a, true
}

// maskLen returns the length of a contiguous netmask.
func maskLen(m [4]byte) (int, bool) {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	return n, v == 0
}

// rowBody turns the columns of a row into the iptables-save form of its
// rule.
func (p *parser) rowBody(r *row, b *block, chains map[string]bool) error {
	c, lay := r.cols, r.lay
	k := 0
	if lay.target {
		r.target = c[0]
		k++
	}
	proto := c[k]
	k++
	opt := "--"
	if lay.opt {
		opt = c[k]
		k++
	}
	in, out := "*", "*"
	if b.verbose {
		in, out = c[k], c[k+1]
		k += 2
	}
	src, _ := addrCol(c[k], p.family)
	dst, _ := addrCol(c[k+1], p.family)
	var parts []string
	for _, x := range []struct {
		flag string
		a    addr
	}{{"-s", src}, {"-d", dst}} {
		if x.a.any && !x.a.neg {
			continue
		}
		if x.a.neg {
			parts = append(parts, "!")
		}
		parts = append(parts, x.flag, x.a.pfx)
	}
	for _, x := range []struct{ flag, v string }{{"-i", in}, {"-o", out}} {
		v := x.v
		if v == "*" || v == "any" {
			continue
		}
		if strings.HasPrefix(v, "!") {
			v = v[1:]
			r.lossy = append(r.lossy, NoteBangIface+fmt.Sprintf("%q: read as ! %s %s (an interface literally named %q would print the same)", x.v, x.flag, v, x.v))
			parts = append(parts, "!")
		}
		if v == "" || len(v) > 15 || strings.ContainsAny(v, "/\"") {
			return fmt.Errorf("interface %q: expected an interface name of at most 15 characters (or *)", x.v)
		}
		parts = append(parts, x.flag, v)
	}
	pr := proto
	if strings.HasPrefix(pr, "!") {
		pr = pr[1:]
		parts = append(parts, "!", "-p", pr)
	} else if pr != "all" && pr != "0" {
		parts = append(parts, "-p", pr)
	}
	switch opt {
	case "-f":
		parts = append(parts, "-f")
	case "!f":
		parts = append(parts, "!", "-f")
	}
	if !b.verbose {
		r.lossy = append(r.lossy, "listed without -v: the rule's -i/-o interfaces are not shown, so it is read as matching every interface")
	}
	x := &extras{toks: c[lay.n:], target: r.target, family: p.family, proto: strings.ToLower(pr), chains: chains}
	if err := x.parse(); err != nil {
		return err
	}
	parts = append(parts, x.matches...)
	r.goTo = x.goTo
	if r.target != "" {
		if r.goTo {
			parts = append(parts, "-g", r.target)
		} else {
			parts = append(parts, "-j", r.target)
		}
		parts = append(parts, x.topts...)
	} else if x.goTo {
		return errors.New("[goto] without a target: expected the chain in the target column")
	}
	r.lossy = append(r.lossy, x.lossy...)
	r.body = strings.Join(parts, " ")
	return nil
}

// extras reads what the match and target modules print after the
// destination column.
type extras struct {
	toks   []string
	i      int
	target string
	family int
	proto  string

	goTo    bool
	matches []string
	topts   []string
	lossy   []string
	// unknown collects consecutive tokens no reader understood.
	unknown []string
	inTgt   bool
	// chains holds the chains the listing shows: a target among them
	// is a jump, which prints nothing.
	chains map[string]bool
}

func (x *extras) peek(k int) string {
	if x.i+k < len(x.toks) {
		return x.toks[x.i+k]
	}
	return ""
}

func (x *extras) parse() error {
	if x.peek(0) == "[goto]" {
		x.goTo = true
		x.i++
	}
	for x.i < len(x.toks) {
		start := x.i
		ok, err := false, error(nil)
		if !x.inTgt {
			ok, err = x.match()
		}
		if err != nil {
			return err
		}
		if !ok {
			x.i = start
			ok, err = x.targetText()
			if err != nil {
				return err
			}
			if ok {
				x.inTgt = true
			}
		}
		if ok {
			x.flushUnknown()
			continue
		}
		x.i = start + 1
		x.unknown = append(x.unknown, x.toks[start])
	}
	x.flushUnknown()
	if err := x.checkTarget(); err != nil {
		return err
	}
	return nil
}

// flushUnknown turns text no reader understood into a match netfilter
// reports as unknown (so the rule is not widened by dropping it), or,
// after the target's own text or for a target whose printout pktflow does
// not know, into a note.
func (x *extras) flushUnknown() {
	if len(x.unknown) == 0 {
		return
	}
	text := strings.Join(x.unknown, " ")
	x.unknown = nil
	if x.inTgt || (x.target != "" && !x.chains[x.target] && !knownTarget(x.target)) {
		x.lossy = append(x.lossy, fmt.Sprintf("the listing's %q (after the matches, probably the %s target's options) could not be read back: the target's options are unknown", text, x.target))
		return
	}
	x.matches = append(x.matches, "-m", "listing", "--text", quote(text))
	x.lossy = append(x.lossy, fmt.Sprintf("the listing's %q could not be read back into a match", text))
}

func quote(s string) string { return iptsave.Quote(s) }

// knownTarget reports whether the parser reads what the target prints: an
// extension it knows, or a jump to a chain (which prints nothing).
func knownTarget(t string) bool {
	switch t {
	case "ACCEPT", "DROP", "RETURN", "QUEUE", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "REJECT",
		"MARK", "CONNMARK", "CHECKSUM", "LOG", "NOTRACK", "CT", "TCPMSS":
		return true
	}
	return !extensions[t]
}

// isUpperExtension reports whether t is an upper-case word, as address
// types are.
func isUpperExtension(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// checkTarget refuses targets whose required options the listing did not
// show: netfilter could not give them meaning.
func (x *extras) checkTarget() error {
	switch x.target {
	case "DNAT", "SNAT":
		if len(x.topts) == 0 {
			return fmt.Errorf("%s without \"to:ADDRESS\": expected the target's to: text at the end of the rule", x.target)
		}
	}
	return nil
}

// port reads a port ("443") or port range ("1000:2000"), with a leading
// "!" for negation.
func splitNeg(s string) (string, bool) {
	if strings.HasPrefix(s, "!") {
		return s[1:], true
	}
	return s, false
}

func isPortSpec(s string) bool {
	a, b, rng := strings.Cut(s, ":")
	if !isDigits(a) || (rng && !isDigits(b)) {
		return false
	}
	return true
}

func neg(b bool) []string {
	if b {
		return []string{"!"}
	}
	return nil
}

// match tries every match reader at the current position.
func (x *extras) match() (bool, error) {
	w := x.peek(0)
	bang := false
	if w == "!" {
		bang = true
		x.i++
		w = x.peek(0)
	}
	switch w {
	case "tcp", "udp", "udplite", "sctp", "dccp":
		if bang {
			return false, nil
		}
		return x.ports(w), nil
	case "multiport":
		return x.multiport(bang), nil
	case "icmptype", "ipv6-icmptype", "icmp", "ipv6-icmp":
		return x.icmp(bang), nil
	case "ctstate", "ctproto", "ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst", "ctorigsrcport",
		"ctorigdstport", "ctreplsrcport", "ctrepldstport", "ctstatus", "ctexpire", "ctdir":
		x.i -= b2i(bang)
		return x.conntrack(), nil
	case "state":
		if x.peek(1) == "" {
			return false, nil
		}
		x.matches = append(x.matches, "-m", "state")
		x.matches = append(x.matches, neg(bang)...)
		x.matches = append(x.matches, "--state", x.peek(1))
		x.i += 2
		return true, nil
	case "ADDRTYPE":
		if bang || x.peek(1) != "match" {
			return false, nil
		}
		return x.addrtype(), nil
	case "/*":
		if bang {
			return false, nil
		}
		for j := x.i + 1; j < len(x.toks); j++ {
			if x.toks[j] == "*/" {
				text := strings.Join(x.toks[x.i+1:j], " ")
				x.matches = append(x.matches, "-m", "comment", "--comment", quote(text))
				x.i = j + 1
				return true, nil
			}
		}
		return false, nil
	case "mark", "connmark":
		if bang || x.peek(1) != "match" || x.peek(2) == "" {
			return false, nil
		}
		v, n := splitNeg(x.peek(2))
		if !isMarkSpec(v) {
			return false, nil
		}
		x.matches = append(x.matches, "-m", w)
		x.matches = append(x.matches, neg(n)...)
		x.matches = append(x.matches, "--mark", v)
		x.i += 3
		return true, nil
	case "MAC":
		j := 1
		n := bang
		if x.peek(j) == "!" {
			n = true
			j++
		}
		if !isMAC(x.peek(j)) {
			return false, nil
		}
		x.matches = append(x.matches, "-m", "mac")
		x.matches = append(x.matches, neg(n)...)
		x.matches = append(x.matches, "--mac-source", x.peek(j))
		x.i += j + 1
		return true, nil
	case "PHYSDEV":
		if bang || x.peek(1) != "match" {
			return false, nil
		}
		return x.physdev(), nil
	case "source", "destination":
		if bang {
			return false, nil
		}
		return x.iprange(), nil
	case "limit:":
		if bang || x.peek(1) != "avg" || x.peek(3) != "burst" || !isDigits(x.peek(4)) {
			return false, nil
		}
		x.matches = append(x.matches, "-m", "limit", "--limit", x.peek(2), "--limit-burst", x.peek(4))
		x.i += 5
		return true, nil
	case "statistic":
		if bang || x.peek(1) != "mode" {
			return false, nil
		}
		switch {
		case x.peek(2) == "random" && x.peek(3) == "probability" && x.peek(4) != "":
			x.matches = append(x.matches, "-m", "statistic", "--mode", "random", "--probability", x.peek(4))
			x.i += 5
			return true, nil
		case x.peek(2) == "nth" && x.peek(3) == "every" && isDigits(x.peek(4)):
			x.matches = append(x.matches, "-m", "statistic", "--mode", "nth", "--every", x.peek(4))
			x.i += 5
			if x.peek(0) == "packet" && isDigits(x.peek(1)) {
				x.matches = append(x.matches, "--packet", x.peek(1))
				x.i += 2
			}
			return true, nil
		}
		return false, nil
	case "PKTTYPE":
		if bang || (x.peek(1) != "=" && x.peek(1) != "!=") || x.peek(2) == "" {
			return false, nil
		}
		x.matches = append(x.matches, "-m", "pkttype")
		x.matches = append(x.matches, neg(x.peek(1) == "!=")...)
		x.matches = append(x.matches, "--pkt-type", x.peek(2))
		x.i += 3
		return true, nil
	case "match-set":
		if x.peek(1) == "" || x.peek(2) == "" {
			return false, nil
		}
		x.matches = append(x.matches, "-m", "set")
		x.matches = append(x.matches, neg(bang)...)
		x.matches = append(x.matches, "--match-set", x.peek(1), x.peek(2))
		x.i += 3
		return true, nil
	case "length":
		v, n := splitNeg(x.peek(1))
		if bang || !isPortSpec(v) {
			return false, nil
		}
		x.matches = append(x.matches, "-m", "length")
		x.matches = append(x.matches, neg(n)...)
		x.matches = append(x.matches, "--length", v)
		x.i += 2
		return true, nil
	case "TTL":
		if bang || x.peek(1) != "match" || x.peek(2) != "TTL" || !isDigits(x.peek(4)) {
			return false, nil
		}
		var o []string
		switch x.peek(3) {
		case "==":
			o = []string{"--ttl-eq"}
		case "!=":
			o = []string{"!", "--ttl-eq"}
		case "<":
			o = []string{"--ttl-lt"}
		case ">":
			o = []string{"--ttl-gt"}
		default:
			return false, nil
		}
		x.matches = append(x.matches, "-m", "ttl")
		x.matches = append(x.matches, o...)
		x.matches = append(x.matches, x.peek(4))
		x.i += 5
		return true, nil
	}
	return false, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ports reads "tcp spt:1024 dpt:443 flags:0x17/0x02 option=2".
func (x *extras) ports(module string) bool {
	// The match name is printed only by a rule of that protocol
	// (iptables refuses -m tcp without -p tcp).
	num := map[string]string{"tcp": "6", "udp": "17", "udplite": "136", "sctp": "132", "dccp": "33"}[module]
	if module != x.proto && num != x.proto {
		return false
	}
	x.i++
	out := []string{"-m", module}
	for {
		w := x.peek(0)
		name, val, ok := strings.Cut(w, ":")
		if !ok {
			name, val, ok = strings.Cut(w, "=")
			if !ok || name != "option" {
				break
			}
		}
		v, n := splitNeg(val)
		switch name {
		case "spt", "dpt":
			if !isDigits(v) {
				return x.portsEnd(out)
			}
			out = append(out, neg(n)...)
			out = append(out, map[string]string{"spt": "--sport", "dpt": "--dport"}[name], v)
		case "spts", "dpts":
			if !isPortSpec(v) || !strings.Contains(v, ":") {
				return x.portsEnd(out)
			}
			out = append(out, neg(n)...)
			out = append(out, map[string]string{"spts": "--sport", "dpts": "--dport"}[name], v)
		case "flags":
			if module != "tcp" {
				return x.portsEnd(out)
			}
			m, c, ok := tcpFlags(v)
			if !ok {
				return x.portsEnd(out)
			}
			out = append(out, neg(n)...)
			out = append(out, "--tcp-flags", m, c)
		case "option":
			if module != "tcp" || !isDigits(v) {
				return x.portsEnd(out)
			}
			out = append(out, neg(n)...)
			out = append(out, "--tcp-option", v)
		default:
			return x.portsEnd(out)
		}
		x.i++
	}
	return x.portsEnd(out)
}

func (x *extras) portsEnd(out []string) bool {
	x.matches = append(x.matches, out...)
	return true
}

// tcpFlags converts "0x17/0x02" (or "FIN,SYN,RST,ACK/SYN") into the
// mask and comparison iptables-save writes.
func tcpFlags(s string) (string, string, bool) {
	m, c, ok := strings.Cut(s, "/")
	if !ok {
		return "", "", false
	}
	conv := func(v string) (string, bool) {
		if strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X") {
			n, err := strconv.ParseUint(v[2:], 16, 8)
			if err != nil {
				return "", false
			}
			return flagNames(uint8(n)), true
		}
		for _, f := range strings.Split(v, ",") {
			switch f {
			case "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "ALL", "NONE":
			default:
				return "", false
			}
		}
		return v, true
	}
	a, ok1 := conv(m)
	b, ok2 := conv(c)
	return a, b, ok1 && ok2
}

func flagNames(v uint8) string {
	if v == 0 {
		return "NONE"
	}
	var out []string
	for i, n := range []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"} {
		if v&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// multiport reads "multiport dports 80,443" (or sports, ports; a "!"
// before the list negates it).
func (x *extras) multiport(bang bool) bool {
	opt := map[string]string{"dports": "--dports", "sports": "--sports", "ports": "--ports"}[x.peek(1)]
	if opt == "" {
		return false
	}
	j := 2
	n := bang
	if x.peek(j) == "!" {
		n = true
		j++
	}
	list, ln := splitNeg(x.peek(j))
	n = n || ln
	for _, p := range strings.Split(list, ",") {
		if !isPortSpec(p) {
			return false
		}
	}
	x.matches = append(x.matches, "-m", "multiport")
	x.matches = append(x.matches, neg(n)...)
	x.matches = append(x.matches, opt, list)
	x.i += j + 1
	return true
}

// icmp reads "icmptype 8", "icmptype 3 code 3", "icmp !type 8", "icmp type
// 8" and the ipv6-icmp forms.
func (x *extras) icmp(bang bool) bool {
	w := x.peek(0)
	v6 := strings.HasPrefix(w, "ipv6")
	if v6 != (x.family == 6) {
		return false
	}
	j := 1
	n := bang
	switch w {
	case "icmp", "ipv6-icmp":
		switch x.peek(1) {
		case "type":
		case "!type":
			n = true
		case "!":
			if x.peek(2) != "type" {
				return false
			}
			n = true
			j++
		default:
			return false
		}
		j++
	}
	if x.peek(j) == "!" {
		n = true
		j++
	}
	t := x.peek(j)
	if !isDigits(t) {
		return false
	}
	j++
	spec := t
	if !v6 && t == "255" {
		spec = "any"
	}
	switch x.peek(j) {
	case "code":
		if !isDigits(x.peek(j + 1)) {
			return false
		}
		spec += "/" + x.peek(j+1)
		j += 2
	case "codes":
		// A code range cannot be written with --icmp-type: leave it
		// to the unknown-match path.
		return false
	}
	if v6 {
		x.matches = append(x.matches, "-m", "icmp6")
		x.matches = append(x.matches, neg(n)...)
		x.matches = append(x.matches, "--icmpv6-type", spec)
	} else {
		x.matches = append(x.matches, "-m", "icmp")
		x.matches = append(x.matches, neg(n)...)
		x.matches = append(x.matches, "--icmp-type", spec)
	}
	x.i += j
	return true
}

// conntrack reads consecutive "ctstate RELATED,ESTABLISHED ctdir ORIGINAL"
// items (each may be preceded by "!") into one -m conntrack.
func (x *extras) conntrack() bool {
	out := []string{"-m", "conntrack"}
	for {
		j := 0
		n := false
		if x.peek(0) == "!" {
			n = true
			j++
		}
		w := x.peek(j)
		switch w {
		case "ctstate", "ctproto", "ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst", "ctorigsrcport",
			"ctorigdstport", "ctreplsrcport", "ctrepldstport", "ctstatus", "ctexpire", "ctdir":
		default:
			if len(out) == 2 {
				return false
			}
			x.matches = append(x.matches, out...)
			return true
		}
		v := x.peek(j + 1)
		if v == "" {
			if len(out) == 2 {
				return false
			}
			x.matches = append(x.matches, out...)
			return true
		}
		out = append(out, neg(n)...)
		out = append(out, "--"+w, v)
		x.i += j + 2
	}
}

// addrtype reads "ADDRTYPE match src-type LOCAL dst-type !LOCAL limit-in".
func (x *extras) addrtype() bool {
	x.i += 2
	out := []string{"-m", "addrtype"}
	for {
		w := x.peek(0)
		switch w {
		case "src-type", "dst-type":
			j := 1
			n := false
			if x.peek(1) == "!" {
				n = true
				j++
			}
			v, vn := splitNeg(x.peek(j))
			if v == "" || !isUpperList(v) {
				x.matches = append(x.matches, out...)
				return true
			}
			out = append(out, neg(n || vn)...)
			out = append(out, "--"+w, v)
			x.i += j + 1
		case "limit-in":
			out = append(out, "--limit-iface-in")
			x.i++
		case "limit-out":
			out = append(out, "--limit-iface-out")
			x.i++
		default:
			x.matches = append(x.matches, out...)
			return true
		}
	}
}

func isUpperList(s string) bool {
	for _, p := range strings.Split(s, ",") {
		if p == "" || !isUpperExtension(p) {
			return false
		}
	}
	return true
}

// physdev reads "PHYSDEV match --physdev-in eth0 ! --physdev-is-bridged":
// the physdev match prints its options in iptables-save form.
func (x *extras) physdev() bool {
	x.i += 2
	out := []string{"-m", "physdev"}
	for {
		j := 0
		if x.peek(0) == "!" {
			j++
		}
		w := x.peek(j)
		switch w {
		case "--physdev-in", "--physdev-out":
			if x.peek(j+1) == "" {
				x.matches = append(x.matches, out...)
				return true
			}
			out = append(out, x.toks[x.i:x.i+j+2]...)
			x.i += j + 2
		case "--physdev-is-in", "--physdev-is-out", "--physdev-is-bridged":
			out = append(out, x.toks[x.i:x.i+j+1]...)
			x.i += j + 1
		default:
			x.matches = append(x.matches, out...)
			return true
		}
	}
}

// iprange reads "source IP range A-B" and "destination IP range ! A-B".
func (x *extras) iprange() bool {
	out := []string{"-m", "iprange"}
	for {
		w := x.peek(0)
		if (w != "source" && w != "destination") || x.peek(1) != "IP" || x.peek(2) != "range" {
			break
		}
		j := 3
		n := false
		if x.peek(j) == "!" {
			n = true
			j++
		}
		v, vn := splitNeg(x.peek(j))
		a, b, ok := strings.Cut(v, "-")
		if _, err := netip.ParseAddr(a); err != nil || !ok {
			break
		}
		if _, err := netip.ParseAddr(b); err != nil {
			break
		}
		out = append(out, neg(n || vn)...)
		out = append(out, map[string]string{"source": "--src-range", "destination": "--dst-range"}[w], v)
		x.i += j + 1
	}
	if len(out) == 2 {
		return false
	}
	x.matches = append(x.matches, out...)
	return true
}

func isMarkSpec(s string) bool {
	v, m, hasMask := strings.Cut(s, "/")
	if _, err := strconv.ParseUint(v, 0, 32); err != nil {
		return false
	}
	if hasMask {
		if _, err := strconv.ParseUint(m, 0, 32); err != nil {
			return false
		}
	}
	return true
}

func isMAC(s string) bool {
	f := strings.Split(s, ":")
	if len(f) != 6 {
		return false
	}
	for _, b := range f {
		if len(b) != 2 {
			return false
		}
		if _, err := strconv.ParseUint(b, 16, 8); err != nil {
			return false
		}
	}
	return true
}

// targetText reads the text the rule's target prints.
func (x *extras) targetText() (bool, error) {
	w := x.peek(0)
	switch x.target {
	case "DNAT", "SNAT":
		switch {
		case strings.HasPrefix(w, "to:"):
			opt := map[string]string{"DNAT": "--to-destination", "SNAT": "--to-source"}[x.target]
			x.topts = append(x.topts, opt, w[3:])
			x.i++
			return true, nil
		case w == "random" || w == "persistent" || w == "random-fully":
			x.topts = append(x.topts, "--"+w)
			x.i++
			return true, nil
		}
	case "MASQUERADE", "REDIRECT":
		word := map[string]string{"MASQUERADE": "masq", "REDIRECT": "redir"}[x.target]
		switch {
		case w == word && x.peek(1) == "ports" || w == word && x.peek(1) == "ports:":
			v := x.peek(2)
			a, b, _ := strings.Cut(v, "-")
			if !isDigits(a) || (b != "" && !isDigits(b)) {
				return false, fmt.Errorf("%s %s %q: expected a port or port range", w, x.peek(1), v)
			}
			x.topts = append(x.topts, "--to-ports", v)
			x.i += 3
			return true, nil
		case w == "random" || w == "random-fully":
			x.topts = append(x.topts, "--"+w)
			x.i++
			return true, nil
		}
	case "REJECT":
		if w == "reject-with" && x.peek(1) != "" {
			x.topts = append(x.topts, "--reject-with", x.peek(1))
			x.i += 2
			return true, nil
		}
	case "MARK", "CONNMARK":
		if w != x.target {
			return false, nil
		}
		return x.markTarget()
	case "CHECKSUM":
		if w == "CHECKSUM" && x.peek(1) == "fill" {
			x.topts = append(x.topts, "--checksum-fill")
			x.i += 2
			return true, nil
		}
	case "LOG":
		if w == "LOG" && x.peek(1) == "flags" && isDigits(x.peek(2)) && x.peek(3) == "level" && x.peek(4) != "" {
			x.topts = append(x.topts, "--log-level", x.peek(4))
			flags, _ := strconv.Atoi(x.peek(2))
			for bit, o := range []string{"--log-tcp-sequence", "--log-tcp-options", "--log-ip-options", "--log-uid", "--log-macdecode"} {
				if flags&(1<<bit) != 0 {
					x.topts = append(x.topts, o)
				}
			}
			x.i += 5
			if x.peek(0) == "prefix" && x.peek(1) != "" {
				// prefix "text": the text may hold blanks.
				rest := strings.Join(x.toks[x.i+1:], " ")
				if len(rest) >= 2 && rest[0] == '"' && rest[len(rest)-1] == '"' {
					x.topts = append(x.topts, "--log-prefix", quote(rest[1:len(rest)-1]))
					x.i = len(x.toks)
				}
			}
			return true, nil
		}
	case "CT":
		if w == "NOTRACK" {
			x.topts = append(x.topts, "--notrack")
			x.i++
			return true, nil
		}
	case "TCPMSS":
		if w == "TCPMSS" && x.peek(1) == "clamp" && x.peek(2) == "to" && x.peek(3) == "PMTU" {
			x.topts = append(x.topts, "--clamp-mss-to-pmtu")
			x.i += 4
			return true, nil
		}
		if w == "TCPMSS" && x.peek(1) == "set" && isDigits(x.peek(2)) {
			x.topts = append(x.topts, "--set-mss", x.peek(2))
			x.i += 3
			return true, nil
		}
	}
	return false, nil
}

// markTarget reads "MARK set 0x1", "MARK xset 0x1/0xff", "MARK or 0x4",
// "MARK and 0xfe", "MARK xor 0x1", "CONNMARK save", "CONNMARK restore",
// "CONNMARK set 0x1" and the masked forms.
func (x *extras) markTarget() (bool, error) {
	verb, v := x.peek(1), x.peek(2)
	opt := ""
	switch verb {
	case "set":
		opt = "--set-mark"
	case "xset":
		opt = "--set-xmark"
	case "or":
		opt = "--or-mark"
	case "and":
		opt = "--and-mark"
	case "xor":
		opt = "--xor-mark"
	case "save", "restore":
		if x.target != "CONNMARK" {
			return false, nil
		}
		x.topts = append(x.topts, "--"+verb+"-mark")
		x.i += 2
		for x.peek(0) == "mask" || x.peek(0) == "nfmask" || x.peek(0) == "ctmask" {
			if !isMarkSpec(x.peek(1)) {
				return false, fmt.Errorf("CONNMARK %s %s %q: expected a mark", verb, x.peek(0), x.peek(1))
			}
			x.topts = append(x.topts, "--"+x.peek(0), x.peek(1))
			x.i += 2
		}
		return true, nil
	default:
		return false, nil
	}
	if !isMarkSpec(v) {
		return false, fmt.Errorf("%s %s %q: expected a mark such as 0x1 or 0x1/0xff", x.target, verb, v)
	}
	x.topts = append(x.topts, opt, v)
	x.i += 3
	return true, nil
}
