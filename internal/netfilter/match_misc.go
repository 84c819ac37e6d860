package netfilter

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// --- physdev ---

// Option bits of physdevMatch, as in xt_physdev.
const (
	pdIn uint8 = 1 << iota
	pdOut
	pdIsIn
	pdIsOut
	pdBridged
)

// physdevMatch is -m physdev: the bridge ports a bridged packet entered
// and leaves by (br_netfilter). It follows xt_physdev exactly, quirks
// included: for a packet that is not bridged only negated options match;
// --physdev-in is not checked when the packet has no input port; and
// --physdev-out fails, negated or not, when it has no output port yet.
type physdevMatch struct {
	bits, inv uint8
	in, out   ifaceMatch
	text      string
}

func (rc *ruleCompiler) compilePhysdev(m *model.Match) (matcher, error) {
	pm := &physdevMatch{text: matchText(m)}
	for _, o := range m.Options {
		var bit uint8
		switch optName(o) {
		case "physdev-in":
			bit = pdIn
		case "physdev-out":
			bit = pdOut
		case "physdev-is-in":
			bit = pdIsIn
		case "physdev-is-out":
			bit = pdIsOut
		case "physdev-is-bridged":
			bit = pdBridged
		default:
			return rc.unsupported(m, o), nil
		}
		pm.bits |= bit
		if o.Negate {
			pm.inv |= bit
		}
		if bit == pdIn || bit == pdOut {
			a, err := rc.arg(o)
			if err != nil {
				return nil, err
			}
			if bit == pdIn {
				pm.in = parseIface(a)
			} else {
				pm.out = parseIface(a)
			}
		}
	}
	if pm.bits == 0 {
		return nil, rc.errf("-m physdev needs at least one option")
	}
	if pm.bits&(pdOut|pdIsOut) != 0 && (pm.bits&pdBridged == 0 || pm.inv&pdBridged != 0) {
		rc.addHooks(^hOut, "--physdev-out and --physdev-is-out only work in FORWARD and POSTROUTING with bridged traffic")
	}
	return pm, nil
}

func (m *physdevMatch) match(w *walker) bool {
	c := w.ctx
	if !c.Bridged {
		return m.bits&^m.inv == 0
	}
	indev, outdev := c.PhysIn, c.PhysOut
	if m.bits&pdBridged != 0 && (outdev != "") == (m.inv&pdBridged != 0) {
		return false
	}
	if m.bits&pdIsIn != 0 && (indev == "") != (m.inv&pdIsIn != 0) {
		return false
	}
	if m.bits&pdIsOut != 0 && (outdev == "") != (m.inv&pdIsOut != 0) {
		return false
	}
	if m.bits&pdIn != 0 && indev != "" && m.in.match(indev) == (m.inv&pdIn != 0) {
		return false
	}
	if m.bits&pdOut != 0 {
		if outdev == "" {
			return false
		}
		return m.out.match(outdev) != (m.inv&pdOut != 0)
	}
	return true
}

func (m *physdevMatch) why(w *walker, b []byte, matched bool) []byte {
	c := w.ctx
	b = append(b, m.text...)
	b = verb(b, matched)
	if !c.Bridged {
		return append(b, "a packet that is not bridged"...)
	}
	b = appendIface(append(b, "bridge ports in "...), c.PhysIn)
	return appendIface(append(b, " out "...), c.PhysOut)
}

func (m *physdevMatch) pure() bool { return true }

// --- mac ---

// macMatch is -m mac --mac-source. The kernel only has the Ethernet
// header of received frames, hence the hook restriction.
type macMatch struct {
	mac  string
	neg  bool
	text string
	unc  string
}

func (rc *ruleCompiler) compileMAC(m *model.Match) (matcher, error) {
	if len(m.Options) != 1 || optName(m.Options[0]) != "mac-source" {
		if len(m.Options) == 0 {
			return nil, rc.errf("-m mac needs --mac-source")
		}
		return rc.unsupported(m, m.Options[len(m.Options)-1]), nil
	}
	o := m.Options[0]
	a, err := rc.arg(o)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(a, ":")
	if len(parts) != 6 {
		return nil, rc.errf("--mac-source %s: expected XX:XX:XX:XX:XX:XX", a)
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 16, 8); err != nil || len(p) > 2 || p == "" {
			return nil, rc.errf("--mac-source %s: expected XX:XX:XX:XX:XX:XX", a)
		}
	}
	rc.addHooks(hPre|hIn|hFwd, "-m mac needs a received frame (PREROUTING, INPUT, FORWARD)")
	t := optText(o)
	return &macMatch{mac: strings.ToLower(a), neg: o.Negate, text: t,
		unc: "rule skipped: " + t + " needs the frame's source MAC, which the context does not give; assumed not matching"}, nil
}

func (m *macMatch) match(w *walker) bool {
	if w.ctx.SrcMAC == "" {
		w.uncertain(m.unc)
		return false
	}
	return strings.EqualFold(w.ctx.SrcMAC, m.mac) != m.neg
}

func (m *macMatch) why(w *walker, b []byte, matched bool) []byte {
	if w.ctx.SrcMAC == "" {
		return append(b, m.unc...)
	}
	b = append(b, m.text...)
	b = verb(b, matched)
	return append(append(b, "source MAC "...), w.ctx.SrcMAC...)
}

func (m *macMatch) pure() bool { return false }

// --- length ---

// lengthMatch is -m length: the IP datagram's total length (for IPv6 the
// payload length plus the 40-byte header). The packet model carries the
// layer-4 payload length; TCP options are not modelled, so a TCP header
// may be 20 to 60 bytes and the match is uncertain when that matters.
type lengthMatch struct {
	r    portRange
	neg  bool
	text string
	unc  string
}

func (rc *ruleCompiler) compileLength(m *model.Match) (matcher, error) {
	if len(m.Options) != 1 || optName(m.Options[0]) != "length" {
		if len(m.Options) == 0 {
			return nil, rc.errf("-m length needs --length")
		}
		return rc.unsupported(m, m.Options[len(m.Options)-1]), nil
	}
	o := m.Options[0]
	a, err := rc.arg(o)
	if err != nil {
		return nil, err
	}
	r, ok := parsePortRange(a)
	if !ok {
		return nil, rc.errf("--length %s: expected a length or a range a:b", a)
	}
	t := optText(o)
	return &lengthMatch{r: r, neg: o.Negate, text: t,
		unc: "rule skipped: " + t + " depends on the TCP header length (options are not modelled); assumed not matching"}, nil
}

func ipLenRange(p *packet.Packet, v6 bool) (lo, hi int) {
	ip := 20
	if v6 {
		ip = 40
	}
	switch p.Proto {
	case packet.TCP:
		return ip + 20 + p.Len, ip + 60 + p.Len
	case packet.UDP:
		return ip + 8 + p.Len, ip + 8 + p.Len
	}
	return ip + p.Len, ip + p.Len
}

func (m *lengthMatch) hit(n int) bool {
	return n >= int(m.r.lo) && n <= int(m.r.hi)
}

func (m *lengthMatch) match(w *walker) bool {
	lo, hi := ipLenRange(w.pkt, w.family == 6)
	a, b := m.hit(lo), m.hit(hi)
	if a != b {
		w.uncertain(m.unc)
		return false
	}
	return a != m.neg
}

func (m *lengthMatch) why(w *walker, b []byte, matched bool) []byte {
	lo, hi := ipLenRange(w.pkt, w.family == 6)
	if m.hit(lo) != m.hit(hi) {
		return append(b, m.unc...)
	}
	b = append(b, m.text...)
	b = verb(b, matched)
	b = strconv.AppendInt(append(b, "length "...), int64(lo), 10)
	if hi != lo {
		b = strconv.AppendInt(append(b, '-'), int64(hi), 10)
	}
	return b
}

func (m *lengthMatch) pure() bool { return false }

// --- ttl / hl ---

// ttlMatch is -m ttl (IPv4) or -m hl (IPv6 hop limit).
type ttlMatch struct {
	op   byte // '=', '!', '<', '>'
	v    uint8
	text string
}

func (rc *ruleCompiler) compileTTL(m *model.Match) (matcher, error) {
	if len(m.Options) != 1 {
		if len(m.Options) == 0 {
			return nil, rc.errf("-m %s needs --%s-eq, --%s-lt or --%s-gt", m.Module, m.Module, m.Module, m.Module)
		}
		return rc.unsupported(m, m.Options[1]), nil
	}
	o := m.Options[0]
	n := optName(o)
	if !strings.HasPrefix(n, m.Module+"-") {
		return rc.unsupported(m, o), nil
	}
	tm := &ttlMatch{text: optText(o)}
	switch strings.TrimPrefix(n, m.Module+"-") {
	case "eq":
		tm.op = '='
		if o.Negate {
			tm.op = '!'
		}
	case "lt":
		tm.op = '<'
	case "gt":
		tm.op = '>'
	default:
		return rc.unsupported(m, o), nil
	}
	if o.Negate && tm.op != '!' {
		return nil, rc.errf("%s cannot be negated: only --%s-eq can", o.Name, m.Module)
	}
	a, err := rc.arg(o)
	if err != nil {
		return nil, err
	}
	v, err := strconv.ParseUint(a, 0, 8)
	if err != nil {
		return nil, rc.errf("%s %s: expected a number 0-255", o.Name, a)
	}
	tm.v = uint8(v)
	return tm, nil
}

func (m *ttlMatch) match(w *walker) bool {
	t := w.pkt.TTL
	switch m.op {
	case '=':
		return t == m.v
	case '!':
		return t != m.v
	case '<':
		return t < m.v
	}
	return t > m.v
}

func (m *ttlMatch) why(w *walker, b []byte, matched bool) []byte {
	b = append(b, m.text...)
	b = verb(b, matched)
	return strconv.AppendUint(append(b, "TTL "...), uint64(w.pkt.TTL), 10)
}

func (m *ttlMatch) pure() bool { return true }

// --- frag (IPv6) ---

// fragMatch is ip6tables' -m frag. The kernel's frag_mt returns false,
// whatever the options and their negations, for a packet without a
// fragment header, and pktflow's packets are never fragmented.
type fragMatch model.Match

func (m *fragMatch) match(w *walker) bool { return false }
func (m *fragMatch) why(w *walker, b []byte, matched bool) []byte {
	b = appendMatch(b, (*model.Match)(m))
	return append(b, " did not match a packet without a fragment header"...)
}
func (m *fragMatch) pure() bool { return true }

// --- pkttype ---

// pkttypeMatch is -m pkttype. The link-layer type is derived from the
// destination address: multicast addresses are multicast, the limited
// broadcast address (and any address Ctx.AddrType calls BROADCAST) is
// broadcast, the rest unicast.
type pkttypeMatch struct {
	typ  string
	neg  bool
	text string
}

func (rc *ruleCompiler) compilePkttype(m *model.Match) (matcher, error) {
	if len(m.Options) != 1 || optName(m.Options[0]) != "pkt-type" {
		if len(m.Options) == 0 {
			return nil, rc.errf("-m pkttype needs --pkt-type")
		}
		return rc.unsupported(m, m.Options[len(m.Options)-1]), nil
	}
	o := m.Options[0]
	a, err := rc.arg(o)
	if err != nil {
		return nil, err
	}
	t := strings.ToLower(a)
	switch t {
	case "unicast", "host":
		t = "unicast"
	case "broadcast", "multicast":
	default:
		return rc.unsupported(m, o), nil
	}
	return &pkttypeMatch{typ: t, neg: o.Negate, text: optText(o)}, nil
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func (m *pkttypeMatch) kind(w *walker) string {
	d := w.pkt.Dst
	switch {
	case d.IsMulticast():
		return "multicast"
	case d == limitedBroadcast:
		return "broadcast"
	case w.ctx.AddrType != nil && w.ctx.AddrType(d, "")&AddrBroadcast != 0:
		return "broadcast"
	}
	return "unicast"
}

func (m *pkttypeMatch) match(w *walker) bool { return (m.kind(w) == m.typ) != m.neg }

func (m *pkttypeMatch) why(w *walker, b []byte, matched bool) []byte {
	b = append(b, m.text...)
	b = verb(b, matched)
	return append(append(b, "a "...), m.kind(w)...)
}

func (m *pkttypeMatch) pure() bool { return true }
