package netfilter

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// matcher is one compiled -m match.
type matcher interface {
	// match reports whether the packet matches. A matcher that cannot
	// decide calls w.uncertain and returns its assumption.
	match(w *walker) bool
	// why appends to b, in words, what the match required and what the
	// packet had. With matched false it describes the first option that
	// failed. It is only called to build messages.
	why(w *walker, b []byte, matched bool) []byte
	// pure reports whether match looks at nothing but the packet and the
	// context, never records uncertainty and never calls Ctx.Choose: such
	// matches can be skipped for a packet without changing the Result,
	// which the chain index relies on.
	pure() bool
}

// compileMatch compiles one -m match.
func (rc *ruleCompiler) compileMatch(m *model.Match) (matcher, error) {
	switch m.Module {
	case "tcp":
		if err := rc.requireProto("tcp", packet.TCP); err != nil {
			return nil, err
		}
		return rc.compilePorts(m, packet.TCP)
	case "udp":
		if err := rc.requireProto("udp", packet.UDP); err != nil {
			return nil, err
		}
		return rc.compilePorts(m, packet.UDP)
	case "multiport":
		// The kernel accepts multiport with tcp, udp, udplite, dccp and
		// sctp; pktflow's packets only carry tcp and udp ports.
		if err := rc.requireProto("multiport", packet.TCP, packet.UDP, 136, 33, 132); err != nil {
			return nil, err
		}
		return rc.compileMultiport(m)
	case "conntrack":
		return rc.compileConntrack(m)
	case "state":
		return rc.compileState(m)
	case "addrtype":
		return rc.compileAddrtype(m)
	case "comment":
		return rc.compileComment(m)
	case "mark", "connmark":
		return rc.compileMark(m)
	case "icmp":
		if rc.family == 6 {
			return nil, rc.errf("-m icmp is an iptables match: expected -m icmp6 in ip6tables rules")
		}
		if err := rc.requireProto("icmp", packet.ICMP); err != nil {
			return nil, err
		}
		return rc.compileICMP(m, false)
	case "icmp6", "icmpv6":
		if rc.family != 6 {
			return nil, rc.errf("-m %s is an ip6tables match: expected -m icmp in iptables rules", m.Module)
		}
		if err := rc.requireProto(m.Module, packet.ICMPv6); err != nil {
			return nil, err
		}
		return rc.compileICMP(m, true)
	case "iprange":
		return rc.compileIPRange(m)
	case "statistic":
		return rc.compileStatistic(m)
	case "physdev":
		return rc.compilePhysdev(m)
	case "mac":
		return rc.compileMAC(m)
	case "limit", "hashlimit":
		return rc.compileLimit(m)
	case "length":
		return rc.compileLength(m)
	case "ttl", "hl":
		return rc.compileTTL(m)
	case "pkttype":
		return rc.compilePkttype(m)
	case "frag":
		if rc.family != 6 {
			break
		}
		return (*fragMatch)(m), nil
	}
	return &unknownMatch{text: "rule skipped: unknown match " + matchText(m) + "; assumed not matching"}, nil
}

func (rc *ruleCompiler) unsupported(m *model.Match, o model.Option) matcher {
	return &unknownMatch{text: "rule skipped: option " + optText(o) + " of " + matchText(m) + " is not modelled; assumed not matching"}
}

// --- helpers for messages ---

func verb(b []byte, matched bool) []byte {
	if matched {
		return append(b, " matched "...)
	}
	return append(b, " did not match "...)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "(unknown)"...)
	}
	return a.AppendTo(b)
}

func appendHex(b []byte, v uint32) []byte {
	b = append(b, "0x"...)
	return strconv.AppendUint(b, uint64(v), 16)
}

func appendIface(b []byte, dev string) []byte {
	if dev == "" {
		return append(b, "(none)"...)
	}
	return append(b, dev...)
}

// --- unknown ---

// unknownMatch stands for a match pktflow cannot evaluate: a module it
// does not model, or an option of one it does. The rule is assumed not to
// match, and the walk says so.
type unknownMatch struct{ text string }

func (m *unknownMatch) match(w *walker) bool { w.uncertain(m.text); return false }
func (m *unknownMatch) why(w *walker, b []byte, matched bool) []byte {
	return append(b, m.text...)
}
func (m *unknownMatch) pure() bool { return false }

// --- tcp / udp ---

type portRange struct{ lo, hi uint16 }

func (p portRange) has(v uint16) bool { return v >= p.lo && v <= p.hi }

// parsePortRange parses port, port:port, :port or port: (a missing end
// is 0 or 65535). A dash is accepted too, after the whole string failed
// as a service name.
func parsePortRange(s string) (portRange, bool) {
	if p, ok := parsePort(s); ok {
		return portRange{p, p}, true
	}
	a, b, isRange := strings.Cut(s, ":")
	if !isRange {
		a, b, isRange = strings.Cut(s, "-")
	}
	if !isRange {
		return portRange{}, false
	}
	r := portRange{0, 65535}
	var ok bool
	if a != "" {
		if r.lo, ok = parsePort(a); !ok {
			return r, false
		}
	}
	if b != "" {
		if r.hi, ok = parsePort(b); !ok {
			return r, false
		}
	}
	return r, r.lo <= r.hi
}

const portWant = "a port 0-65535 or a range a:b (min <= max)"

// portsMatch is -m tcp / -m udp.
type portsMatch struct {
	proto        uint8
	hasS, hasD   bool
	negS, negD   bool
	sport, dport portRange
	hasF, negF   bool
	fmask, fcmp  uint8
	sOpt, dOpt   *model.Option
	fOpt, tcpOpt *model.Option
	module       string
}

func (rc *ruleCompiler) compilePorts(m *model.Match, proto uint8) (matcher, error) {
	pm := newIn(rc.wk, func(wk *worker) *block[portsMatch] { return &wk.ports })
	*pm = portsMatch{proto: proto, module: m.Module}
	for i := range m.Options {
		o := m.Options[i]
		op := &m.Options[i]
		n := optName(o)
		switch {
		case n == "sport" || n == "source-port" || n == "dport" || n == "destination-port":
			a, err := rc.arg(o)
			if err != nil {
				return nil, err
			}
			pr, ok := parsePortRange(a)
			if !ok {
				return nil, rc.errf("%s %s: expected %s", o.Name, a, portWant)
			}
			if n[0] == 's' {
				pm.hasS, pm.negS, pm.sport, pm.sOpt = true, o.Negate, pr, op
			} else {
				pm.hasD, pm.negD, pm.dport, pm.dOpt = true, o.Negate, pr, op
			}
		case proto == packet.TCP && n == "tcp-flags":
			if len(o.Args) != 2 {
				return nil, rc.errf("--tcp-flags takes a mask and a set: expected e.g. --tcp-flags SYN,RST,ACK,FIN SYN")
			}
			mask, ok1 := parseTCPFlags(o.Args[0])
			cmp, ok2 := parseTCPFlags(o.Args[1])
			if !ok1 || !ok2 {
				return nil, rc.errf("--tcp-flags %s %s: expected comma lists of FIN,SYN,RST,PSH,ACK,URG,ALL,NONE", o.Args[0], o.Args[1])
			}
			pm.hasF, pm.negF, pm.fmask, pm.fcmp, pm.fOpt = true, o.Negate, mask, cmp, op
		case proto == packet.TCP && n == "syn":
			pm.hasF, pm.negF = true, o.Negate
			pm.fmask = packet.SYN | packet.RST | packet.ACK | packet.FIN
			pm.fcmp = packet.SYN
			pm.fOpt = op
		case proto == packet.TCP && n == "tcp-option":
			pm.tcpOpt = op
		default:
			return rc.unsupported(m, o), nil
		}
	}
	return pm, nil
}

func parseTCPFlags(s string) (uint8, bool) {
	var f uint8
	for _, n := range strings.Split(s, ",") {
		v, ok := tcpFlagNames[strings.ToUpper(n)]
		if !ok {
			return 0, false
		}
		f |= v
	}
	return f, true
}

func (m *portsMatch) match(w *walker) bool {
	p := w.pkt
	if p.Proto != m.proto {
		return false
	}
	if m.hasS && m.sport.has(p.SPort) == m.negS {
		return false
	}
	if m.hasD && m.dport.has(p.DPort) == m.negD {
		return false
	}
	if m.hasF && (p.TCPFlags&m.fmask == m.fcmp) == m.negF {
		return false
	}
	if m.tcpOpt != nil {
		w.uncertain(m.tcpOptUnc())
		return false
	}
	return true
}

func (m *portsMatch) tcpOptUnc() string {
	return "rule skipped: " + optText(*m.tcpOpt) + " needs the packet's TCP options, which pktflow does not model; assumed not matching"
}

func (m *portsMatch) why(w *walker, b []byte, matched bool) []byte {
	p := w.pkt
	if p.Proto != m.proto {
		b = append(append(b, "-m "...), m.module...)
		b = verb(b, false)
		return append(b, packet.ProtoName(p.Proto)...)
	}
	start := len(b)
	if m.hasS {
		ok := m.sport.has(p.SPort) != m.negS
		if matched || !ok {
			b = appendOpt(b, m.sOpt)
			b = verb(b, ok)
			b = strconv.AppendUint(append(b, "sport "...), uint64(p.SPort), 10)
			if !ok {
				return b
			}
		}
	}
	if m.hasD {
		ok := m.dport.has(p.DPort) != m.negD
		if matched || !ok {
			if len(b) > start {
				b = append(b, "; "...)
			}
			b = appendOpt(b, m.dOpt)
			b = verb(b, ok)
			b = strconv.AppendUint(append(b, "dport "...), uint64(p.DPort), 10)
			if !ok {
				return b
			}
		}
	}
	if m.hasF {
		ok := (p.TCPFlags&m.fmask == m.fcmp) != m.negF
		if matched || !ok {
			if len(b) > start {
				b = append(b, "; "...)
			}
			b = appendOpt(b, m.fOpt)
			b = verb(b, ok)
			b = append(append(b, "flags "...), tcpFlagsString(p.TCPFlags)...)
			if !ok {
				return b
			}
		}
	}
	if m.tcpOpt != nil {
		if len(b) > start {
			b = append(b, "; "...)
		}
		return append(b, m.tcpOptUnc()...)
	}
	if len(b) == start {
		b = append(append(b, "-m "...), m.module...)
		b = verb(b, true)
		b = append(b, packet.ProtoName(p.Proto)...)
	}
	return b
}

func (m *portsMatch) pure() bool { return m.tcpOpt == nil }

// --- multiport ---

// multiportMatch is -m multiport: up to 15 ports, where a range counts
// twice, matched against the source, destination or either port.
type multiportMatch struct {
	which  byte // 's', 'd' or 'b' (both: --ports)
	neg    bool
	ranges []portRange
	opt    *model.Option
}

func (rc *ruleCompiler) compileMultiport(m *model.Match) (matcher, error) {
	if len(m.Options) != 1 {
		if len(m.Options) == 0 {
			return nil, rc.errf("-m multiport needs --sports, --dports or --ports")
		}
		return nil, rc.errf("-m multiport takes one of --sports, --dports or --ports")
	}
	o := m.Options[0]
	mm := &multiportMatch{neg: o.Negate, opt: &m.Options[0]}
	switch optName(o) {
	case "sports", "source-ports":
		mm.which = 's'
	case "dports", "destination-ports":
		mm.which = 'd'
	case "ports":
		mm.which = 'b'
	default:
		return rc.unsupported(m, o), nil
	}
	a, err := rc.arg(o)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, s := range strings.Split(a, ",") {
		pr, ok := parsePortRange(s)
		if !ok {
			return nil, rc.errf("%s %s: expected a comma list of ports or ranges a:b", o.Name, a)
		}
		n++
		if pr.lo != pr.hi {
			n++
		}
		mm.ranges = append(mm.ranges, pr)
	}
	if n > 15 {
		return nil, rc.errf("%s %s: too many ports (at most 15, a range counts as two)", o.Name, a)
	}
	return mm, nil
}

func (m *multiportMatch) hit(p *packet.Packet) bool {
	for _, r := range m.ranges {
		if (m.which != 'd' && r.has(p.SPort)) || (m.which != 's' && r.has(p.DPort)) {
			return true
		}
	}
	return false
}

func (m *multiportMatch) match(w *walker) bool {
	p := w.pkt
	if p.Proto != packet.TCP && p.Proto != packet.UDP {
		return false
	}
	return m.hit(p) != m.neg
}

func (m *multiportMatch) why(w *walker, b []byte, matched bool) []byte {
	p := w.pkt
	b = appendOpt(b, m.opt)
	b = verb(b, matched)
	if p.Proto != packet.TCP && p.Proto != packet.UDP {
		return append(b, "a packet without ports"...)
	}
	if m.which != 'd' {
		b = strconv.AppendUint(append(b, "sport "...), uint64(p.SPort), 10)
		if m.which == 'b' {
			b = append(b, ", "...)
		}
	}
	if m.which != 's' {
		b = strconv.AppendUint(append(b, "dport "...), uint64(p.DPort), 10)
	}
	return b
}

func (m *multiportMatch) pure() bool { return true }

// --- comment ---

// commentMatch is -m comment: it always matches; its text makes the
// messages of the rule recognisable (kube-proxy names services in it).
// It is the model's match itself, converted: no allocation per rule.
type commentMatch model.Match

func (rc *ruleCompiler) compileComment(m *model.Match) (matcher, error) {
	for _, o := range m.Options {
		if optName(o) != "comment" {
			return rc.unsupported(m, o), nil
		}
	}
	return (*commentMatch)(m), nil
}

func (m *commentMatch) match(w *walker) bool { return true }
func (m *commentMatch) why(w *walker, b []byte, matched bool) []byte {
	b = append(b, "/*"...)
	for _, o := range m.Options {
		for _, a := range o.Args {
			b = append(append(b, ' '), a...)
		}
	}
	return append(b, " */"...)
}
func (m *commentMatch) pure() bool { return true }

// --- mark / connmark ---

// parseMarkMask parses value[/mask]; the mask defaults to 0xffffffff.
func parseMarkMask(s string) (v, m uint32, ok bool) {
	vs, ms, hasMask := strings.Cut(s, "/")
	vv, err := strconv.ParseUint(vs, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	m = math.MaxUint32
	if hasMask {
		mm, err := strconv.ParseUint(ms, 0, 32)
		if err != nil {
			return 0, 0, false
		}
		m = uint32(mm)
	}
	return uint32(vv), m, true
}

func parseU32(s string) (uint32, bool) {
	v, err := strconv.ParseUint(s, 0, 32)
	return uint32(v), err == nil
}

// markMatch is -m mark --mark v[/m] (skb->mark) or -m connmark --mark
// v[/m] (the connection's mark): it matches when (mark & m) == v.
// Without a conntrack entry (INVALID, UNTRACKED) connmark never matches,
// negated or not, as in the kernel.
type markMatch struct {
	ct   bool
	v, m uint32
	neg  bool
	opt  *model.Option
}

func (rc *ruleCompiler) compileMark(m *model.Match) (matcher, error) {
	if len(m.Options) != 1 || optName(m.Options[0]) != "mark" {
		if len(m.Options) == 0 {
			return nil, rc.errf("-m %s needs --mark value[/mask]", m.Module)
		}
		return rc.unsupported(m, m.Options[len(m.Options)-1]), nil
	}
	o := m.Options[0]
	a, err := rc.arg(o)
	if err != nil {
		return nil, err
	}
	v, mask, ok := parseMarkMask(a)
	if !ok {
		return nil, rc.errf("--mark %s: expected value[/mask] as 32-bit numbers", a)
	}
	return &markMatch{ct: m.Module == "connmark", v: v, m: mask, neg: o.Negate, opt: &m.Options[0]}, nil
}

func noConntrack(c *Ctx) bool { return c.State&(CTInvalid|CTUntracked) != 0 }

func (m *markMatch) match(w *walker) bool {
	v := w.ctx.Mark
	if m.ct {
		if noConntrack(w.ctx) {
			return false
		}
		v = w.ctx.CTMark
	}
	return (v&m.m == m.v) != m.neg
}

func (m *markMatch) why(w *walker, b []byte, matched bool) []byte {
	if m.ct {
		b = append(b, "-m connmark "...)
	}
	b = appendOpt(b, m.opt)
	b = verb(b, matched)
	if m.ct {
		if noConntrack(w.ctx) {
			return append(b, "a packet without a conntrack entry"...)
		}
		return appendHex(append(b, "ctmark "...), w.ctx.CTMark)
	}
	return appendHex(append(b, "mark "...), w.ctx.Mark)
}

func (m *markMatch) pure() bool { return true }

// --- icmp / icmp6 ---

type icmpMatch struct {
	v6         bool
	typ        uint8
	cmin, cmax uint8
	neg        bool
	opt        *model.Option
}

func (rc *ruleCompiler) compileICMP(m *model.Match, v6 bool) (matcher, error) {
	opt := "icmp-type"
	names := icmp4Names
	if v6 {
		opt, names = "icmpv6-type", icmp6Names
	}
	if len(m.Options) != 1 || optName(m.Options[0]) != opt {
		if len(m.Options) == 0 {
			return nil, rc.errf("-m %s needs --%s", m.Module, opt)
		}
		return rc.unsupported(m, m.Options[len(m.Options)-1]), nil
	}
	o := m.Options[0]
	a, err := rc.arg(o)
	if err != nil {
		return nil, err
	}
	n, want := parseICMPType(a, names)
	if want != "" {
		return nil, rc.errf("%s %s: expected %s", o.Name, a, want)
	}
	return &icmpMatch{v6: v6, typ: n.typ, cmin: n.cmin, cmax: n.cmax, neg: o.Negate, opt: &m.Options[0]}, nil
}

func (m *icmpMatch) match(w *walker) bool {
	p := w.pkt
	if (m.v6 && p.Proto != packet.ICMPv6) || (!m.v6 && p.Proto != packet.ICMP) {
		return false
	}
	hit := p.ICMPType == m.typ && p.ICMPCode >= m.cmin && p.ICMPCode <= m.cmax
	if !m.v6 && m.typ == 0xFF {
		hit = true // "any"
	}
	return hit != m.neg
}

func (m *icmpMatch) why(w *walker, b []byte, matched bool) []byte {
	b = appendOpt(b, m.opt)
	b = verb(b, matched)
	p := w.pkt
	b = strconv.AppendUint(append(b, "type "...), uint64(p.ICMPType), 10)
	return strconv.AppendUint(append(b, " code "...), uint64(p.ICMPCode), 10)
}

func (m *icmpMatch) pure() bool { return true }

// --- iprange ---

type iprangeMatch struct {
	hasS, hasD   bool
	negS, negD   bool
	sLo, sHi     addr128
	dLo, dHi     addr128
	sText, dText string
}

func (rc *ruleCompiler) compileIPRange(m *model.Match) (matcher, error) {
	im := &iprangeMatch{}
	for _, o := range m.Options {
		n := optName(o)
		if n != "src-range" && n != "dst-range" {
			return rc.unsupported(m, o), nil
		}
		a, err := rc.arg(o)
		if err != nil {
			return nil, err
		}
		lo, hi, ok := parseAddrRange(a, rc.family)
		if !ok {
			return nil, rc.errf("%s %s: expected an address range a-b of IPv%d addresses", o.Name, a, rc.family)
		}
		if n == "src-range" {
			im.hasS, im.negS, im.sLo, im.sHi, im.sText = true, o.Negate, lo, hi, optText(o)
		} else {
			im.hasD, im.negD, im.dLo, im.dHi, im.dText = true, o.Negate, lo, hi, optText(o)
		}
	}
	return im, nil
}

func inRange(a, lo, hi addr128) bool { return !a.less(lo) && !hi.less(a) }

func (m *iprangeMatch) match(w *walker) bool {
	if m.hasS && inRange(w.src, m.sLo, m.sHi) == m.negS {
		return false
	}
	if m.hasD && inRange(w.dst, m.dLo, m.dHi) == m.negD {
		return false
	}
	return true
}

func (m *iprangeMatch) why(w *walker, b []byte, matched bool) []byte {
	start := len(b)
	if m.hasS {
		ok := inRange(w.src, m.sLo, m.sHi) != m.negS
		if matched || !ok {
			b = appendAddr(append(verb(append(b, m.sText...), ok), "src "...), w.pkt.Src)
			if !ok {
				return b
			}
		}
	}
	if m.hasD {
		ok := inRange(w.dst, m.dLo, m.dHi) != m.negD
		if matched || !ok {
			if len(b) > start {
				b = append(b, "; "...)
			}
			b = appendAddr(append(verb(append(b, m.dText...), ok), "dst "...), w.pkt.Dst)
		}
	}
	return b
}

func (m *iprangeMatch) pure() bool { return true }

// --- statistic ---

// statisticMatch is -m statistic. Random mode is a choice pktflow either
// enumerates (Ctx.Choose) or, without Choose, assumes taken; nth mode is
// decided from Ctx.NthPacket.
type statisticMatch struct {
	random     bool
	p          float64
	every, pkt uint64
	neg        bool
	// The rule and the match as written, to describe the choice for
	// Ctx.Choose; rendered only when a packet reaches the match, as a
	// kube-proxy node has tens of thousands of statistic matches.
	table, chain string
	r            *model.Rule
	m            *model.Match
	// desc is what, made the first time a packet reaches the match.
	desc atomic.Pointer[string]
}

// what describes the choice for Ctx.Choose: the rule (as ruleRef names
// it), then the match.
func (m *statisticMatch) what() string {
	if d := m.desc.Load(); d != nil {
		return *d
	}
	d := m.describe()
	m.desc.Store(&d)
	return d
}

func (m *statisticMatch) describe() string {
	b := make([]byte, 0, 192)
	b = append(append(append(append(b, m.table...), ' '), m.chain...), " rule "...)
	b = strconv.AppendInt(b, int64(m.r.Pos), 10)
	if o := &m.r.Origin; o.File != "" {
		b = append(append(append(b, " ("...), o.File...), ':')
		b = append(strconv.AppendInt(b, int64(o.Line), 10), ')')
	} else if o.Line > 0 {
		b = append(strconv.AppendInt(append(b, " (line "...), int64(o.Line), 10), ')')
	}
	return string(appendMatch(append(b, ": "...), m.m))
}

func (rc *ruleCompiler) compileStatistic(m *model.Match) (matcher, error) {
	sm := newIn(rc.wk, func(wk *worker) *block[statisticMatch] { return &wk.stats })
	mode := ""
	hasP, hasEvery := false, false
	for _, o := range m.Options {
		if o.Negate {
			sm.neg = true
		}
		switch optName(o) {
		case "mode":
			a, err := rc.arg(o)
			if err != nil {
				return nil, err
			}
			if a != "random" && a != "nth" {
				return nil, rc.errf("--mode %s: expected random or nth", a)
			}
			mode = a
		case "probability":
			a, err := rc.arg(o)
			if err != nil {
				return nil, err
			}
			p, err := strconv.ParseFloat(a, 64)
			if err != nil || p < 0 || p > 1 {
				return nil, rc.errf("--probability %s: expected a number between 0 and 1", a)
			}
			sm.p, hasP = p, true
		case "every":
			a, err := rc.arg(o)
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseUint(a, 0, 32)
			if err != nil || n == 0 {
				return nil, rc.errf("--every %s: expected a positive number", a)
			}
			sm.every, hasEvery = n, true
		case "packet":
			a, err := rc.arg(o)
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseUint(a, 0, 32)
			if err != nil {
				return nil, rc.errf("--packet %s: expected a number", a)
			}
			sm.pkt = n
		default:
			return rc.unsupported(m, o), nil
		}
	}
	switch mode {
	case "random":
		if !hasP {
			return nil, rc.errf("-m statistic --mode random needs --probability")
		}
		sm.random = true
	case "nth":
		if !hasEvery {
			return nil, rc.errf("-m statistic --mode nth needs --every")
		}
		if sm.pkt >= sm.every {
			return nil, rc.errf("--packet %d: expected 0 <= p <= n-1 for --every %d", sm.pkt, sm.every)
		}
	default:
		return nil, rc.errf("-m statistic needs --mode random or --mode nth")
	}
	sm.table, sm.chain, sm.r, sm.m = rc.table.name, rc.chain.name, rc.r, m
	return sm, nil
}

func (m *statisticMatch) match(w *walker) bool {
	if !m.random {
		return (w.ctx.NthPacket%m.every == m.pkt) != m.neg
	}
	if w.ctx.Choose == nil {
		w.uncertain(string(appendMatch(nil, m.m)) + ": random choice not enumerated (no Ctx.Choose); assumed taken")
		return true
	}
	return w.ctx.Choose(m.what(), m.p) != m.neg
}

func (m *statisticMatch) why(w *walker, b []byte, matched bool) []byte {
	b = appendMatch(b, m.m)
	if !m.random {
		b = verb(b, matched)
		return strconv.AppendUint(append(b, "packet number "...), w.ctx.NthPacket, 10)
	}
	if w.ctx.Choose == nil {
		return append(b, " assumed taken (random choice not enumerated)"...)
	}
	if matched {
		return append(b, ": random branch taken"...)
	}
	return append(b, ": random branch not taken"...)
}

func (m *statisticMatch) pure() bool { return false }

// --- limit / hashlimit ---

// limitMatch is -m limit / -m hashlimit: rates are not modelled, so the
// packet is assumed to be within the limit (for --hashlimit-above, that
// means the rule does not match).
type limitMatch struct {
	above bool
	text  string
}

func (rc *ruleCompiler) compileLimit(m *model.Match) (matcher, error) {
	lm := &limitMatch{}
	for _, o := range m.Options {
		if optName(o) == "hashlimit-above" {
			lm.above = true
		}
	}
	if lm.above {
		lm.text = matchText(m) + ": rate not modelled; assumed within the limit, so not above it (rule skipped)"
	} else {
		lm.text = matchText(m) + ": rate not modelled; assumed within the limit"
	}
	return lm, nil
}

func (m *limitMatch) match(w *walker) bool { w.uncertain(m.text); return !m.above }
func (m *limitMatch) why(w *walker, b []byte, matched bool) []byte {
	return append(b, m.text...)
}
func (m *limitMatch) pure() bool { return false }
