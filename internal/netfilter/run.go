package netfilter

import (
	"strconv"
	"sync"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// RuleCheck is one rule Explain evaluated, matched or not.
type RuleCheck struct {
	Table, Chain string
	Rule         *model.Rule
	Matched      bool
	// Uncertain is set when part of the rule could not be evaluated (an
	// unknown match, a limit, an unenumerated random choice ...): the
	// outcome is pktflow's assumption.
	Uncertain bool
	// Message says why: for a matched rule every match with the packet's
	// value; otherwise the first match that failed, e.g.
	// "--dport 80 did not match dport 443".
	Message string
}

// Run walks the built-in chain of hook in table for the packet, as the
// kernel's ipt_do_table does, and returns the verdict with every rule
// that matched, every jump, return and policy on the way. A table the
// ruleset lacks, or a hook the table has no chain for (nat FORWARD, raw
// INPUT ...), accepts with no steps.
//
// MARK and CONNMARK change ctx.Mark and ctx.CTMark in place; ctx.Choose is
// called at each random choice a rule actually reaches. The nat table is
// only meant to be walked for the first packet of a connection: that is
// the caller's decision.
func (c *Compiled) Run(table string, hook Hook, ctx *Ctx) Result {
	return c.run(table, hook, ctx, nil, !c.noIndex.Load(), nil)
}

// Scratch is memory a caller that walks many tables lends to RunScratch,
// so that a walk allocates nothing of its own for its steps and messages.
type Scratch struct {
	// Msgs receives the steps' messages, appended after what it holds.
	Msgs []byte
	// Steps is reused for Result.Steps.
	Steps []Step
	// Spans says where each step's message is: Msgs[a:b] for Steps[i]
	// is Spans[i] = {a, b}; {-1, -1} when Steps[i].Message holds it
	// already (an uncertainty note).
	Spans [][2]int32
	// NAT is reused for Result.NAT.
	NAT NAT
}

// RunScratch is Run with the steps' messages left in s.Msgs (see
// Scratch.Spans) instead of Step.Message: the caller turns them into
// strings when it needs them. Result.Steps is s.Steps and Result.NAT is
// &s.NAT, valid until the next RunScratch with s.
func (c *Compiled) RunScratch(table string, hook Hook, ctx *Ctx, s *Scratch) Result {
	return c.run(table, hook, ctx, nil, !c.noIndex.Load(), s)
}

// Explain walks like Run, without the index, and reports every rule it
// evaluated: which matched and, for the others, which match failed first
// ("why didn't my rule match"). It works on a copy of ctx, so marks in
// the caller's ctx are left alone; Choose is still called.
func (c *Compiled) Explain(table string, hook Hook, ctx *Ctx) []RuleCheck {
	var cp Ctx
	if ctx != nil {
		cp = *ctx
	}
	checks := []RuleCheck{}
	c.run(table, hook, &cp, &checks, false, nil)
	return checks
}

// frame is one chain being walked: the jump stack holds one per chain
// entered by -j (a -g replaces the top frame instead).
type frame struct {
	ch *cchain
	// pos is the next rule for a plain walk.
	pos int32
	// For an indexed walk: the candidate rules of the packet's key and
	// the rules the index could not place, both in rule order, merged as
	// the walk goes.
	indexed bool
	ci, ri  int32
	cand    []int32
	rest    []int32
}

// next returns the index of the next rule to evaluate, or -1 at the end
// of the chain.
func (f *frame) next() int32 {
	if !f.indexed {
		if int(f.pos) < len(f.ch.rules) {
			f.pos++
			return f.pos - 1
		}
		return -1
	}
	a, b := int32(-1), int32(-1)
	if int(f.ci) < len(f.cand) {
		a = f.cand[f.ci]
	}
	if int(f.ri) < len(f.rest) {
		b = f.rest[f.ri]
	}
	switch {
	case a < 0 && b < 0:
		return -1
	case b < 0 || (a >= 0 && a < b):
		f.ci++
		return a
	}
	f.ri++
	return b
}

// walker is the state of one Run. Walkers are pooled: a Run allocates
// only its Result (steps, messages, NAT).
type walker struct {
	c        *Compiled
	tbl      *ctable
	ctx      *Ctx
	pkt      *packet.Packet
	family   int
	src, dst addr128
	base     *cchain
	res      Result
	frames   []frame
	uncs     []string
	useIndex bool
	checks   *[]RuleCheck
	// msgs holds the text of every step message of the walk; pend says
	// which bytes belong to which step. One string conversion at the end
	// gives all steps their messages: one allocation instead of one per
	// step.
	msgs   []byte
	mstart int
	pend   []pendMsg
	// steps collects the walk's steps; the Result gets an exact-size copy.
	steps []Step
	// nat, when set, holds the Result's NAT (RunScratch's Scratch.NAT).
	nat *NAT
}

type pendMsg struct{ step, a, b int }

var walkerPool = sync.Pool{New: func() any { return new(walker) }}

var emptyPacket packet.Packet

func (c *Compiled) run(table string, hook Hook, ctx *Ctx, checks *[]RuleCheck, useIndex bool, s *Scratch) Result {
	t := c.table(table)
	if s != nil {
		s.Steps, s.Spans = s.Steps[:0], s.Spans[:0]
	}
	if t == nil || hook < PreRouting || hook > PostRouting || t.hooks[hook] == nil {
		return Result{Verdict: Accept}
	}
	if b := t.hooks[hook]; len(b.rules) == 0 && b.policyMsg != "" {
		// An empty built-in chain: its policy decides, as a walk would
		// say (walker.policy), without one.
		st := Step{Table: b.table, Chain: b.name, What: "policy", Message: b.policyMsg}
		if s == nil {
			return Result{Verdict: b.policy, Steps: []Step{st}}
		}
		s.Steps, s.Spans = append(s.Steps, st), append(s.Spans, [2]int32{-1, -1})
		return Result{Verdict: b.policy, Steps: s.Steps}
	}
	if ctx == nil {
		ctx = &Ctx{}
	}
	w := walkerPool.Get().(*walker)
	w.c, w.tbl, w.ctx, w.checks, w.useIndex = c, t, ctx, checks, useIndex
	w.pkt = ctx.Pkt
	if w.pkt == nil {
		w.pkt = &emptyPacket
	}
	w.family = c.family
	w.src = toAddr128(w.pkt.Src, c.family)
	w.dst = toAddr128(w.pkt.Dst, c.family)
	w.res = Result{Verdict: Accept}
	w.base = t.hooks[hook]
	if s != nil {
		// Walk straight into the caller's buffers.
		own, ownSteps := w.msgs, w.steps
		w.msgs, w.steps, w.nat = s.Msgs, s.Steps, &s.NAT
		w.walk()
		w.nat = nil
		for range w.steps {
			s.Spans = append(s.Spans, [2]int32{-1, -1})
		}
		for _, p := range w.pend {
			s.Spans[p.step] = [2]int32{int32(p.a), int32(p.b)}
		}
		s.Msgs, s.Steps = w.msgs, w.steps
		w.res.Steps = w.steps
		w.msgs, w.steps = own, ownSteps
		w.pend = w.pend[:0]
		return w.release()
	}
	w.walk()
	if len(w.pend) > 0 {
		all := string(w.msgs)
		for _, p := range w.pend {
			w.steps[p.step].Message = all[p.a:p.b]
		}
	}
	if len(w.steps) > 0 {
		w.res.Steps = append([]Step(nil), w.steps...)
	}
	clear(w.steps)
	w.msgs, w.pend, w.steps = w.msgs[:0], w.pend[:0], w.steps[:0]
	return w.release()
}

// release returns the walker to the pool and its Result.
func (w *walker) release() Result {
	res := w.res
	w.res = Result{}
	w.c, w.tbl, w.ctx, w.pkt, w.checks, w.base = nil, nil, nil, nil, nil, nil
	w.frames = w.frames[:0]
	w.uncs = w.uncs[:0]
	walkerPool.Put(w)
	return res
}

func (w *walker) newFrame(ch *cchain) frame {
	f := frame{ch: ch}
	if ch.idx != nil && w.useIndex {
		f.indexed = true
		f.cand = ch.idx.lookup(w)
		f.rest = ch.idx.rest
	}
	return f
}

// uncertain records that a match could not be evaluated; the walk
// attaches the rule to it.
func (w *walker) uncertain(text string) { w.uncs = append(w.uncs, text) }

func (w *walker) flushUnc(ch *cchain, r *crule, matched bool) {
	ref := ruleRef(ch.table, ch.name, r.m)
	for _, u := range w.uncs {
		w.res.Uncertain = append(w.res.Uncertain, ref+": "+u)
		if !matched {
			w.steps = append(w.steps, Step{Table: ch.table, Chain: ch.name, Rule: r.m, What: "uncertain", Message: u})
		}
	}
	w.uncs = w.uncs[:0]
}

// eval evaluates a rule: base matches first, in the kernel's order, then
// the extensions in rule order, stopping at the first that fails (so a
// random choice is only made when everything before it matched).
func (w *walker) eval(ch *cchain, r *crule) bool {
	if w.checks != nil {
		return w.evalExplain(ch, r)
	}
	if r.has != 0 && r.baseFail(w) != 0 {
		return false
	}
	for _, m := range r.mods {
		if !m.match(w) {
			if len(w.uncs) > 0 {
				w.flushUnc(ch, r, false)
			}
			return false
		}
	}
	if len(w.uncs) > 0 {
		w.flushUnc(ch, r, true)
	}
	if len(r.m.Lossy) > 0 {
		w.res.Uncertain = append(w.res.Uncertain, LossyUncertainty(ch.table, ch.name, r.m)...)
	}
	return true
}

// LossyUncertainty turns what an input could not say about a rule
// (model.Rule.Lossy: a rule read back from `iptables -L`, a chain the
// listing did not show) into uncertainty lines naming the rule, as Run
// reports them whenever the rule matches a packet.
func LossyUncertainty(table, chain string, r *model.Rule) []string {
	if r == nil || len(r.Lossy) == 0 {
		return nil
	}
	ref := ruleRef(table, chain, r)
	out := make([]string, 0, len(r.Lossy))
	for _, l := range r.Lossy {
		out = append(out, ref+": "+l)
	}
	return out
}

func (w *walker) evalExplain(ch *cchain, r *crule) bool {
	rc := RuleCheck{Table: ch.table, Chain: ch.name, Rule: r.m}
	defer func() { *w.checks = append(*w.checks, rc) }()
	if bit := r.baseFail(w); bit != 0 {
		rc.Message = string(w.baseWhy(nil, r, bit, false))
		return false
	}
	for _, m := range r.mods {
		if !m.match(w) {
			rc.Uncertain = len(w.uncs) > 0
			rc.Message = string(m.why(w, nil, false))
			if len(w.uncs) > 0 {
				w.flushUnc(ch, r, false)
			}
			return false
		}
	}
	rc.Matched = true
	rc.Uncertain = len(w.uncs) > 0 || len(r.m.Lossy) > 0
	rc.Message = string(w.reasons(nil, r))
	if len(w.uncs) > 0 {
		w.flushUnc(ch, r, true)
	}
	if len(r.m.Lossy) > 0 {
		w.res.Uncertain = append(w.res.Uncertain, LossyUncertainty(ch.table, ch.name, r.m)...)
	}
	return true
}

// baseFail returns the first base match that fails, in the order of the
// kernel's ip_packet_match, or 0 when all pass.
func (r *crule) baseFail(w *walker) uint8 {
	h := r.has
	if h&bSrc != 0 && r.addrs.src.match(w.src) == (r.neg&bSrc != 0) {
		return bSrc
	}
	if h&bDst != 0 && r.addrs.dst.match(w.dst) == (r.neg&bDst != 0) {
		return bDst
	}
	if h&bIn != 0 && r.io.in.match(w.ctx.InIface) == (r.neg&bIn != 0) {
		return bIn
	}
	if h&bOut != 0 && r.io.out.match(w.ctx.OutIface) == (r.neg&bOut != 0) {
		return bOut
	}
	if h&bProto != 0 && (w.pkt.Proto == r.proto) == (r.neg&bProto != 0) {
		return bProto
	}
	// pktflow's packets are whole datagrams or first fragments: -f never
	// matches, ! -f always does.
	if h&bFrag != 0 && r.neg&bFrag == 0 {
		return bFrag
	}
	return 0
}

// baseWhy appends the description of one base match.
func (w *walker) baseWhy(b []byte, r *crule, bit uint8, ok bool) []byte {
	if r.neg&bit != 0 {
		b = append(b, "! "...)
	}
	switch bit {
	case bSrc:
		b = verb(r.addrs.src.appendText(append(b, "-s "...), w.family), ok)
		return appendAddr(append(b, "src "...), w.pkt.Src)
	case bDst:
		b = verb(r.addrs.dst.appendText(append(b, "-d "...), w.family), ok)
		return appendAddr(append(b, "dst "...), w.pkt.Dst)
	case bIn:
		b = verb(r.io.in.appendText(append(b, "-i "...)), ok)
		return appendIface(append(b, "in "...), w.ctx.InIface)
	case bOut:
		b = verb(r.io.out.appendText(append(b, "-o "...)), ok)
		return appendIface(append(b, "out "...), w.ctx.OutIface)
	case bProto:
		b = append(append(b, "-p "...), packet.ProtoName(r.proto)...)
		return append(verb(b, ok), packet.ProtoName(w.pkt.Proto)...)
	case bFrag:
		b = verb(append(b, "-f"...), ok)
		return append(b, "a packet that is not a non-first fragment"...)
	}
	return b
}

// reasons appends why a matched rule matched: every match with the
// packet's value, "; "-separated.
func (w *walker) reasons(b []byte, r *crule) []byte {
	start := len(b)
	for bit := bSrc; bit <= bFrag; bit <<= 1 {
		if r.has&bit != 0 {
			if len(b) > start {
				b = append(b, "; "...)
			}
			b = w.baseWhy(b, r, bit, true)
		}
	}
	for _, m := range r.mods {
		if len(b) > start {
			b = append(b, "; "...)
		}
		b = m.why(w, b, true)
	}
	if len(b) == start {
		b = append(b, "no conditions (matches every packet)"...)
	}
	return b
}

// step records a rule step whose message is what was appended to w.msgs
// since begin: b is w.msgs with the message appended.
func (w *walker) step(ch *cchain, r *crule, what string, b []byte) {
	w.stepRaw(ch, r, what, b)
}

// begin starts a step message in w.msgs.
func (w *walker) begin() []byte {
	w.mstart = len(w.msgs)
	return w.msgs
}

// start begins a rule step message: the reasons and an arrow.
func (w *walker) start(r *crule) []byte {
	b := w.reasons(w.begin(), r)
	return append(b, " → "...)
}

func (w *walker) policy(ch *cchain, why string) {
	w.res.Verdict = ch.policy
	w.res.Reject = ""
	w.res.NAT = nil
	var b []byte
	if why == "end of chain" {
		// "end of chain INPUT: policy DROP", made when the chain compiled
		// (policies belong to built-in chains only).
		b = append(w.begin(), ch.policyMsg...)
	} else {
		// "no calling chain left: policy DROP of chain INPUT"
		b = append(append(w.begin(), why...), ": policy "...)
		b = append(append(append(b, ch.policy.String()...), " of chain "...), ch.name...)
	}
	w.stepRaw(ch, nil, "policy", b)
}

// ret leaves the top chain, by RETURN (r set) or by falling off the end
// of a user chain (r nil). It reports whether the walk ended: returning
// with no calling chain left, which happens for RETURN in the hook's
// built-in chain or at the end of a chain entered by goto from it, takes
// the built-in chain's policy, as the kernel's underflow rule does.
func (w *walker) ret(r *crule, from *cchain) bool {
	w.frames = w.frames[:len(w.frames)-1]
	var b []byte
	if r != nil {
		b = w.start(r)
		b = append(b, "RETURN"...)
	} else {
		b = append(w.begin(), "end of chain "...)
		b = append(b, from.name...)
	}
	if len(w.frames) == 0 {
		b = append(b, ": no calling chain left, so the policy of "...)
		b = append(b, w.base.name...)
		b = append(b, " applies"...)
		w.stepRaw(from, r, "return", b)
		w.policy(w.base, "no calling chain left")
		return true
	}
	caller := w.frames[len(w.frames)-1].ch
	if r != nil {
		b = append(b, " to "...)
	} else {
		b = append(b, ": return to "...)
	}
	b = append(b, caller.name...)
	w.stepRaw(from, r, "return", b)
	return false
}

func (w *walker) stepRaw(ch *cchain, r *crule, what string, b []byte) {
	var mr *model.Rule
	if r != nil {
		mr = r.m
	}
	w.pend = append(w.pend, pendMsg{step: len(w.steps), a: w.mstart, b: len(b)})
	w.steps = append(w.steps, Step{Table: ch.table, Chain: ch.name, Rule: mr, What: what})
	w.msgs = b
}

func (w *walker) walk() {
	w.frames = append(w.frames[:0], w.newFrame(w.base))
	for {
		f := &w.frames[len(w.frames)-1]
		ch := f.ch
		i := f.next()
		if i < 0 {
			if ch.builtin {
				w.policy(ch, "end of chain")
				return
			}
			if w.ret(nil, ch) {
				return
			}
			continue
		}
		r := &ch.rules[i]
		if !w.eval(ch, r) {
			continue
		}
		tg := r.tgt
		if tg.unc != "" && tg.kind != tUnknown {
			w.res.Uncertain = append(w.res.Uncertain, ruleRef(ch.table, ch.name, r.m)+": "+tg.unc)
		}
		switch tg.kind {
		case tAccept, tDrop:
			b := appendTarget(w.start(r), r.m)
			w.res.Verdict = Accept
			if tg.kind == tDrop {
				w.res.Verdict = Drop
			}
			w.step(ch, r, "verdict", b)
			return
		case tReject:
			b := append(w.start(r), "REJECT with "...)
			b = append(b, tg.reject...)
			w.res.Verdict, w.res.Reject = Reject, tg.reject
			w.step(ch, r, "verdict", b)
			return
		case tNAT:
			// Each Result gets its own NAT; a Scratch lends one.
			n := w.nat
			if n == nil {
				n = new(NAT)
			}
			*n = tg.nat
			w.res.Verdict, w.res.NAT = Accept, n
			b := appendTarget(w.start(r), r.m)
			if tg.note != "" {
				b = append(append(append(b, " ("...), tg.note...), ')')
			}
			w.step(ch, r, "verdict", b)
			return
		case tReturn:
			if w.ret(r, ch) {
				return
			}
		case tJump:
			b := append(w.start(r), "jump to "...)
			w.step(ch, r, "jump", append(b, tg.chain.name...))
			w.frames = append(w.frames, w.newFrame(tg.chain))
		case tGoto:
			b := append(w.start(r), "goto "...)
			w.step(ch, r, "goto", append(b, tg.chain.name...))
			w.frames[len(w.frames)-1] = w.newFrame(tg.chain)
		case tMark:
			old := w.ctx.Mark
			w.ctx.Mark = (old & tg.and) ^ tg.xor
			b := appendTarget(w.start(r), r.m)
			b = appendHex(append(b, ": mark "...), old)
			b = appendHex(append(b, " becomes "...), w.ctx.Mark)
			w.step(ch, r, "match", b)
		case tConnmark:
			b := appendTarget(w.start(r), r.m)
			if noConntrack(w.ctx) {
				b = append(b, ": no effect, the packet has no conntrack entry"...)
			} else {
				om, oc := w.ctx.Mark, w.ctx.CTMark
				tg.cm.apply(w.ctx)
				if tg.cm.mode == 'r' {
					b = appendHex(append(b, ": mark "...), om)
					b = appendHex(append(b, " becomes "...), w.ctx.Mark)
				} else {
					b = appendHex(append(b, ": ctmark "...), oc)
					b = appendHex(append(b, " becomes "...), w.ctx.CTMark)
				}
			}
			w.step(ch, r, "match", b)
		case tNote:
			if tg.noTrack {
				w.res.NoTrack = true
			}
			b := appendTarget(w.start(r), r.m)
			b = append(append(append(b, ": "...), tg.note...), ", continue"...)
			w.step(ch, r, "match", b)
		case tNone:
			b := append(w.start(r), "no target: counted, continue"...)
			w.step(ch, r, "match", b)
		case tUnknown:
			w.res.Uncertain = append(w.res.Uncertain, ruleRef(ch.table, ch.name, r.m)+": "+tg.unc)
			b := append(w.start(r), tg.unc...)
			w.step(ch, r, "uncertain", b)
		}
	}
}

// String renders a step for debugging and test failures.
func (s Step) String() string {
	pos := ""
	if s.Rule != nil {
		pos = " #" + strconv.Itoa(s.Rule.Pos)
	}
	return s.Table + "/" + s.Chain + pos + " " + s.What + ": " + s.Message
}
