package netfilter

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// parseStates parses a comma list of conntrack state names; the state
// match accepts the first five only (SNAT and DNAT are conntrack's).
func parseStates(s string, withNAT bool) (CTState, bool) {
	var st CTState
	names := ctStateNames
	if !withNAT {
		names = names[:5]
	}
	for _, tok := range strings.Split(s, ",") {
		i := lookupPrefixFold(names, tok)
		if i < 0 {
			return 0, false
		}
		st |= ctStateBits[i]
	}
	return st, true
}

// stateMatch is -m state --state. It sees the conntrack state only, not
// the SNAT/DNAT bits conntrack's --ctstate adds.
type stateMatch struct {
	states CTState
	neg    bool
	opt    *model.Option
}

const stateMask = CTNew | CTEstablished | CTRelated | CTInvalid | CTUntracked

func (rc *ruleCompiler) compileState(m *model.Match) (matcher, error) {
	if len(m.Options) != 1 || optName(m.Options[0]) != "state" {
		if len(m.Options) == 0 {
			return nil, rc.errf("-m state needs --state")
		}
		return rc.unsupported(m, m.Options[len(m.Options)-1]), nil
	}
	o := m.Options[0]
	a, err := rc.arg(o)
	if err != nil {
		return nil, err
	}
	st, ok := parseStates(a, false)
	if !ok {
		return nil, rc.errf("--state %s: expected a comma list of INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED", a)
	}
	return &stateMatch{states: st, neg: o.Negate, opt: &m.Options[0]}, nil
}

func stateUnknown(o *model.Option) string {
	return "rule skipped: " + optText(*o) + " needs the conntrack state, which the context does not give; assumed not matching"
}

func (m *stateMatch) match(w *walker) bool {
	s := w.ctx.State & stateMask
	if s == 0 {
		w.uncertain(stateUnknown(m.opt))
		return false
	}
	return (s&m.states != 0) != m.neg
}

func (m *stateMatch) why(w *walker, b []byte, matched bool) []byte {
	if w.ctx.State&stateMask == 0 {
		return append(b, stateUnknown(m.opt)...)
	}
	b = appendOpt(b, m.opt)
	b = verb(b, matched)
	return appendState(append(b, "state "...), w.ctx.State&stateMask)
}

func (m *stateMatch) pure() bool { return false }

// Option bits of ctMatch.
const (
	ctoState = 1 << iota
	ctoDir
	ctoProto
	ctoOrigSrc
	ctoOrigDst
	ctoReplSrc
	ctoReplDst
	ctoOrigSPort
	ctoOrigDPort
	ctoReplSPort
	ctoReplDPort
	ctoStatus
	ctoExpire
)

// ctMatch is -m conntrack. It follows xt_conntrack's order and its
// special case: a packet without a conntrack entry (INVALID, UNTRACKED)
// matches when the rule has --ctstate and that passed, and never
// otherwise, whatever the other options say.
type ctMatch struct {
	opts     uint16
	neg      uint16
	states   CTState
	dirReply bool
	proto    uint8
	addrs    [4]addrMask  // origsrc, origdst, replsrc, repldst
	ports    [4]portRange // origsrcport, origdstport, replsrcport, repldstport
	status   CTStatus
	opts13   [13]*model.Option
}

func (rc *ruleCompiler) compileConntrack(m *model.Match) (matcher, error) {
	cm := &ctMatch{}
	for oi := range m.Options {
		o := m.Options[oi]
		n := optName(o)
		var bit uint16
		var idx int
		switch n {
		case "ctstate":
			bit = ctoState
		case "ctdir":
			bit = ctoDir
		case "ctproto":
			bit = ctoProto
		case "ctorigsrc":
			bit, idx = ctoOrigSrc, 0
		case "ctorigdst":
			bit, idx = ctoOrigDst, 1
		case "ctreplsrc":
			bit, idx = ctoReplSrc, 2
		case "ctrepldst":
			bit, idx = ctoReplDst, 3
		case "ctorigsrcport":
			bit, idx = ctoOrigSPort, 0
		case "ctorigdstport":
			bit, idx = ctoOrigDPort, 1
		case "ctreplsrcport":
			bit, idx = ctoReplSPort, 2
		case "ctrepldstport":
			bit, idx = ctoReplDPort, 3
		case "ctstatus":
			bit = ctoStatus
		case "ctexpire":
			bit = ctoExpire
		default:
			return rc.unsupported(m, o), nil
		}
		a, err := rc.arg(o)
		if err != nil {
			return nil, err
		}
		cm.opts |= bit
		if o.Negate {
			cm.neg |= bit
		}
		for i := 0; i < 13; i++ {
			if bit == 1<<i {
				cm.opts13[i] = &m.Options[oi]
			}
		}
		switch bit {
		case ctoState:
			st, ok := parseStates(a, true)
			if !ok {
				return nil, rc.errf("--ctstate %s: expected a comma list of INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED, SNAT, DNAT", a)
			}
			cm.states = st
		case ctoDir:
			switch strings.ToUpper(a) {
			case "ORIGINAL":
			case "REPLY":
				cm.dirReply = true
			default:
				return nil, rc.errf("--ctdir %s: expected ORIGINAL or REPLY", a)
			}
			if o.Negate {
				return nil, rc.errf("--ctdir cannot be negated: expected --ctdir ORIGINAL or --ctdir REPLY")
			}
		case ctoProto:
			p, ok := parseProto(a)
			if !ok {
				return nil, rc.errf("--ctproto %s: expected a protocol name or number", a)
			}
			cm.proto = p
		case ctoOrigSrc, ctoOrigDst, ctoReplSrc, ctoReplDst:
			am, want := parseAddrMask(a, rc.family)
			if want != "" {
				return nil, rc.errf("%s %s: expected %s", o.Name, a, want)
			}
			cm.addrs[idx] = am
		case ctoOrigSPort, ctoOrigDPort, ctoReplSPort, ctoReplDPort:
			pr, ok := parsePortRange(a)
			if !ok {
				return nil, rc.errf("%s %s: expected %s", o.Name, a, portWant)
			}
			cm.ports[idx] = pr
		case ctoStatus:
			for _, tok := range strings.Split(a, ",") {
				i := lookupPrefixFold(ctStatusNames, tok)
				if i < 0 {
					return nil, rc.errf("--ctstatus %s: expected a comma list of NONE, EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED", a)
				}
				cm.status |= ctStatusBits[i]
			}
		}
	}
	return cm, nil
}

// ctStatusOf returns the status bits known for the packet's connection:
// those known set, and those known clear.
func ctStatusOf(c *Ctx) (set, clear CTStatus) {
	all := CTStatusExpected | CTStatusSeenReply | CTStatusAssured | CTStatusConfirmed
	if c.HasStatus {
		return c.Status, all &^ c.Status
	}
	switch {
	case c.State&CTNew != 0 && !c.Reply:
		// The first packet of a connection: not confirmed until it
		// leaves the stack, no reply seen, not assured, and not created
		// from an expectation (that would make it RELATED).
		return 0, all
	case c.State&CTEstablished != 0:
		// A reply has been seen (or is being seen: the bit is set before
		// the tables run), so the entry was confirmed.
		return CTStatusSeenReply | CTStatusConfirmed, 0
	}
	return 0, 0
}

func (m *ctMatch) ctProto(w *walker) uint8 {
	if w.ctx.CTProto != 0 {
		return w.ctx.CTProto
	}
	if w.ctx.State&CTRelated != 0 && w.pkt.Inner != nil && w.pkt.IsICMPError() {
		return w.pkt.Inner.Proto
	}
	return w.pkt.Proto
}

// eval evaluates the match; it returns the bit of the option that failed
// (0 when the match passed) and whether the result is uncertain.
func (m *ctMatch) eval(w *walker) (failed uint16, unc string) {
	c := w.ctx
	if m.opts&ctoState != 0 {
		st := c.State
		if st&stateMask == 0 {
			return ctoState, stateUnknown(m.opts13[0])
		}
		if (st&m.states != 0) == (m.neg&ctoState != 0) {
			return ctoState, ""
		}
	}
	if noConntrack(c) {
		if m.opts&ctoState != 0 {
			return 0, ""
		}
		return ctoState, ""
	}
	if m.opts&ctoDir != 0 && c.Reply != m.dirReply {
		return ctoDir, ""
	}
	addrs := [4]netip.Addr{c.OrigSrc, c.OrigDst, c.ReplySrc, c.ReplyDst}
	for i := 0; i < 4; i++ {
		bit := uint16(ctoOrigSrc) << i
		if m.opts&bit == 0 {
			continue
		}
		if !addrs[i].IsValid() {
			return bit, "rule skipped: " + optText(*m.opts13[3+i]) + " needs the connection's tuple, which the context does not give; assumed not matching"
		}
		if m.addrs[i].match(toAddr128(addrs[i], w.family)) == (m.neg&bit != 0) {
			return bit, ""
		}
	}
	if m.opts&ctoProto != 0 && (m.ctProto(w) == m.proto) == (m.neg&ctoProto != 0) {
		return ctoProto, ""
	}
	ports := [4]uint16{c.OrigSPort, c.OrigDPort, c.ReplySPort, c.ReplyDPort}
	for i := 0; i < 4; i++ {
		bit := uint16(ctoOrigSPort) << i
		if m.opts&bit == 0 {
			continue
		}
		if !addrs[i&^1].IsValid() {
			return bit, "rule skipped: " + optText(*m.opts13[7+i]) + " needs the connection's tuple, which the context does not give; assumed not matching"
		}
		if m.ports[i].has(ports[i]) == (m.neg&bit != 0) {
			return bit, ""
		}
	}
	if m.opts&ctoStatus != 0 {
		set, clear := ctStatusOf(c)
		var hit bool
		switch {
		case m.status&set != 0:
			hit = true
		case m.status&^clear == 0:
			hit = false
		default:
			return ctoStatus, "rule skipped: " + optText(*m.opts13[11]) + ": the connection's status is not known for state " + stateString(c.State) + "; assumed not matching"
		}
		if hit == (m.neg&ctoStatus != 0) {
			return ctoStatus, ""
		}
	}
	if m.opts&ctoExpire != 0 {
		return ctoExpire, "rule skipped: " + optText(*m.opts13[12]) + " needs the connection's remaining lifetime, which pktflow does not model; assumed not matching"
	}
	return 0, ""
}

func (m *ctMatch) match(w *walker) bool {
	failed, unc := m.eval(w)
	if unc != "" {
		w.uncertain(unc)
	}
	return failed == 0
}

// describe appends what option bit checked against the packet.
func (m *ctMatch) describe(w *walker, b []byte, bit uint16, ok bool) []byte {
	c := w.ctx
	var i int
	for i = 0; i < 13 && bit != 1<<i; i++ {
	}
	b = appendOpt(b, m.opts13[i])
	b = verb(b, ok)
	switch bit {
	case ctoState:
		return appendState(append(b, "state "...), c.State)
	case ctoDir:
		if c.Reply {
			return append(b, "direction REPLY"...)
		}
		return append(b, "direction ORIGINAL"...)
	case ctoProto:
		return append(append(b, "protocol "...), packet.ProtoName(m.ctProto(w))...)
	case ctoOrigSrc:
		return appendAddr(append(b, "original src "...), c.OrigSrc)
	case ctoOrigDst:
		return appendAddr(append(b, "original dst "...), c.OrigDst)
	case ctoReplSrc:
		return appendAddr(append(b, "reply src "...), c.ReplySrc)
	case ctoReplDst:
		return appendAddr(append(b, "reply dst "...), c.ReplyDst)
	case ctoOrigSPort:
		return strconv.AppendUint(append(b, "original sport "...), uint64(c.OrigSPort), 10)
	case ctoOrigDPort:
		return strconv.AppendUint(append(b, "original dport "...), uint64(c.OrigDPort), 10)
	case ctoReplSPort:
		return strconv.AppendUint(append(b, "reply sport "...), uint64(c.ReplySPort), 10)
	case ctoReplDPort:
		return strconv.AppendUint(append(b, "reply dport "...), uint64(c.ReplyDPort), 10)
	case ctoStatus:
		return append(b, "the connection's status"...)
	}
	return b
}

func (m *ctMatch) why(w *walker, b []byte, matched bool) []byte {
	failed, unc := m.eval(w)
	if unc != "" {
		return append(b, unc...)
	}
	if failed != 0 {
		if failed == ctoState && m.opts&ctoState == 0 {
			b = append(b, "-m conntrack did not match a packet without a conntrack entry (state "...)
			return append(appendState(b, w.ctx.State), ')')
		}
		return m.describe(w, b, failed, false)
	}
	start := len(b)
	for i := 0; i < 13; i++ {
		bit := uint16(1) << i
		if m.opts&bit == 0 {
			continue
		}
		if len(b) > start {
			b = append(b, "; "...)
		}
		b = m.describe(w, b, bit, true)
		if bit == ctoState && noConntrack(w.ctx) {
			break
		}
	}
	return b
}

func (m *ctMatch) pure() bool { return false }

// --- addrtype ---

// addrtypeMatch is -m addrtype: it asks the node (Ctx.AddrType) what kind
// of address the source and destination are. --limit-iface-in/out
// restrict the answer to the packet's input/output device.
type addrtypeMatch struct {
	hasS, hasD        bool
	negS, negD        bool
	src, dst          AddrType
	limitIn, limitOut bool
	sOpt, dOpt        *model.Option
	m                 *model.Match
}

func (rc *ruleCompiler) compileAddrtype(m *model.Match) (matcher, error) {
	am := &addrtypeMatch{m: m}
	parse := func(o model.Option) (AddrType, error) {
		a, err := rc.arg(o)
		if err != nil {
			return 0, err
		}
		var t AddrType
		for _, tok := range strings.Split(a, ",") {
			i := lookupPrefixFold(addrTypeNames, tok)
			if i < 0 {
				return 0, rc.errf("%s %s: expected a comma list of %s", o.Name, a, strings.Join(addrTypeNames, ", "))
			}
			t |= 1 << i
		}
		return t, nil
	}
	for i := range m.Options {
		o := m.Options[i]
		var err error
		switch optName(o) {
		case "src-type":
			am.hasS, am.negS, am.sOpt = true, o.Negate, &m.Options[i]
			am.src, err = parse(o)
		case "dst-type":
			am.hasD, am.negD, am.dOpt = true, o.Negate, &m.Options[i]
			am.dst, err = parse(o)
		case "limit-iface-in":
			am.limitIn = true
		case "limit-iface-out":
			am.limitOut = true
		default:
			return rc.unsupported(m, o), nil
		}
		if err != nil {
			return nil, err
		}
	}
	if am.limitIn && am.limitOut {
		return nil, rc.errf("-m addrtype: --limit-iface-in and --limit-iface-out cannot both be given")
	}
	if am.limitIn {
		rc.addHooks(hPre|hIn|hFwd, "--limit-iface-in needs an input interface (PREROUTING, INPUT, FORWARD)")
	}
	if am.limitOut {
		rc.addHooks(hOut|hPost|hFwd, "--limit-iface-out needs an output interface (OUTPUT, POSTROUTING, FORWARD)")
	}
	if rc.family == 6 {
		if (am.src|am.dst)&(AddrBlackhole|AddrBroadcast) != 0 || (am.src|am.dst) >= AddrProhibit {
			return nil, rc.errf("ip6tables addrtype supports neither BROADCAST, BLACKHOLE nor PROHIBIT and later types")
		}
	}
	return am, nil
}

func (m *addrtypeMatch) unc() string {
	return "rule skipped: " + matchText(m.m) + " needs the node's address types (Ctx.AddrType is nil); assumed not matching"
}

func (m *addrtypeMatch) dev(c *Ctx) string {
	switch {
	case m.limitIn:
		return c.InIface
	case m.limitOut:
		return c.OutIface
	}
	return ""
}

func (m *addrtypeMatch) match(w *walker) bool {
	f := w.ctx.AddrType
	if f == nil {
		w.uncertain(m.unc())
		return false
	}
	dev := m.dev(w.ctx)
	if m.hasS && (f(w.pkt.Src, dev)&m.src != 0) == m.negS {
		return false
	}
	if m.hasD && (f(w.pkt.Dst, dev)&m.dst != 0) == m.negD {
		return false
	}
	return true
}

func (m *addrtypeMatch) why(w *walker, b []byte, matched bool) []byte {
	f := w.ctx.AddrType
	if f == nil {
		return append(b, m.unc()...)
	}
	dev := m.dev(w.ctx)
	start := len(b)
	one := func(opt *model.Option, a netip.Addr, want AddrType, neg bool, what string) bool {
		t := f(a, dev)
		ok := (t&want != 0) != neg
		if matched || !ok {
			if len(b) > start {
				b = append(b, "; "...)
			}
			b = appendOpt(b, opt)
			b = verb(b, ok)
			b = appendAddr(append(b, what...), a)
			b = append(append(append(b, " ("...), addrTypeString(t)...), ')')
			if dev != "" {
				b = append(append(b, " on "...), dev...)
			}
		}
		return ok
	}
	if m.hasS && !one(m.sOpt, w.pkt.Src, m.src, m.negS, "src ") {
		return b
	}
	if m.hasD {
		one(m.dOpt, w.pkt.Dst, m.dst, m.negD, "dst ")
	}
	return b
}

func (m *addrtypeMatch) pure() bool { return false }
