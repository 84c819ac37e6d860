package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"github.com/pktflow/pktflow/internal/conntrack"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/netfilter"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/route"
	"github.com/pktflow/pktflow/internal/trace"
)

// maxSteps bounds a trace: a packet that crosses more interfaces than this
// is in a loop the model did not break (TTL normally does).
const maxSteps = 4096

// run is the state of one trace: per-node conntrack tables and the trace
// being written.
type run struct {
	e *Engine
	// ct holds the conntrack tables of the nodes the run touched (a
	// trace touches a few nodes: a list beats a map).
	ct    []nodeTable
	tr    *trace.Trace
	probe Probe
	steps int
	done  bool
	// fate says what happened to the request when it did not reach its
	// destination (the reason an error was sent), for the verdict.
	fate string
	// errFromDest is set when the error or reset came from the
	// destination itself because nothing listens.
	errFromDest bool
	// deliveredTo is the node the request was delivered to.
	deliveredTo string
	// errMTU is the MTU a fragmentation-needed error reports.
	errMTU uint16
	// neigh holds the neighbour entries this run has used.
	neigh map[neighKey]bool
	// ndpLearned lists the IPv6 neighbours nodes learned during the run
	// (see ndpStop).
	ndpLearned []neighKey
	// prefix forces the first random choices; choices records them all.
	prefix  []bool
	choices []choice
	// dropReason is the verdict's reason if nothing follows the last drop
	// (a drop may be followed by the error the node sends back).
	dropReason string

	// Scratch reused within the run (a run is one goroutine): the
	// netfilter context runTable passes, with its choice callback, and
	// the rendering of the last packet captured, which usually crosses
	// several devices unchanged.
	nfc        netfilter.Ctx
	chooseFn   func(string, float64) bool
	chooseNode string
	capPkt     packet.Packet
	capLine    string
	// sh is what the branches of one Trace share.
	sh *shared
	// msg holds the text of the branch's event messages; pend says which
	// bytes are which event's. The messages become one string when the
	// branch ends (see run.finalize): one allocation instead of one or
	// more per event.
	msg  []byte
	pend []msgSpan
	// hdrs holds the branch's NAT event headers, allocated together.
	hdrs []trace.Header
}

// msgSpan is an event's message in run.msg.
type msgSpan struct{ hop, a, b int32 }

// shared is what every branch of one Trace reuses: the few addresses,
// connection tuples and packets a trace prints over and over, rendered
// once, and the buffers of the branches' messages and netfilter walks
// (branches run one after the other).
type shared struct {
	probe  string
	addrs  []rendered[netip.Addr]
	tuples []rendered[conntrack.Tuple]
	lines  []rendered[packet.Packet]
	pend   []msgSpan
	nf     netfilter.Scratch
	// hops, caps and text are where runs write their events, captures
	// and message bytes (see arena).
	hops arena[trace.Event]
	caps arena[trace.Capture]
	text arena[byte]
	// strs holds the bytes of the short strings traces are given (the
	// renderings of addresses, tuples, packets, choices): see intern.
	strs []byte
	// scratch is where short texts are rendered before interning (see
	// keep).
	scratch []byte
	// tables are conntrack tables of finished runs, for reuse.
	tables []*conntrack.Table
	// ctxs and results hand out a run's packet contexts and routing
	// results; each run starts them over (nothing of a finished run
	// points into them: the trace holds copies).
	ctxs    slab[pctx]
	results slab[route.Result]
	// branches, stack and flat are Engine.trace's lists of branches and
	// of the choice prefixes still to explore (branches only for a
	// Tracer: otherwise the merged trace keeps it).
	branches []*trace.Trace
	stack    [][]bool
	flat     []bool
	// run is the branch being traced (see Engine.run).
	run run
	// reuse is set for a Tracer's shared: its runs take their trace
	// values from traces instead of allocating them.
	reuse  bool
	traces slab[trace.Trace]
}

// arena is where runs write the events and captures of the traces they
// return, so that a finished branch keeps what it wrote where it wrote it
// instead of copying it out of a scratch list: a run appends to the free
// tail of the current block (a slice whose capacity is the block's
// remainder), and finalize freezes what it used (a three-index slice, so
// the trace can never append over what follows). Blocks are never
// reused, except by a Tracer (see Tracer): traces own them, and a trace
// kept keeps its block alive. A branch that outgrows the tail moves
// itself into a block of its own through append, as any slice does, and
// the next run starts a new block.
type arena[T any] struct {
	buf []T // len is what traces own, the rest is free
	// hint is the size of the last branch, to size the next block.
	hint int
}

// start returns an empty slice on the free tail of the current block.
func (a *arena[T]) start() []T {
	// A branch rarely writes much more than the last one did; blocks
	// hold sixteen, so about a sixteenth of each is left unused.
	if cap(a.buf)-len(a.buf) < a.hint+a.hint/16 {
		a.buf = make([]T, 0, max(16*a.hint, 32))
	}
	return a.buf[len(a.buf):len(a.buf)]
}

// rewind makes the current block's memory available again; blocks given
// up earlier are left to the garbage collector.
func (a *arena[T]) rewind() { a.buf = a.buf[:0] }

// freeze takes back what a run appended to the slice start gave it and
// returns it capped at its length.
func (a *arena[T]) freeze(s []T) []T {
	n := len(s)
	a.hint = n
	if n == 0 {
		return s[:0:0]
	}
	if free := a.buf[len(a.buf):cap(a.buf)]; len(free) >= n && &free[0] == &s[0] {
		a.buf = a.buf[:len(a.buf)+n]
	} else {
		// The run outgrew the tail and append moved it: its slice is
		// its own, and the tail is left for the next run.
		a.buf = a.buf[:cap(a.buf)]
	}
	return s[:n:n]
}

// intern returns b's bytes as a string kept in the shared's string block:
// traces get many short strings, and one block of them is one allocation
// instead of one each. The block is only ever appended to, and a full
// one is left to the traces that point into it; a Tracer rewinds it with
// the rest of its memory.
func (sh *shared) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(sh.strs)-len(sh.strs) < len(b) {
		sh.strs = make([]byte, 0, max(4096, len(b)))
	}
	n := len(sh.strs)
	sh.strs = append(sh.strs, b...)
	return unsafe.String(&sh.strs[n], len(b))
}

// keep interns b, rendered on sh.scratch[:0], and keeps its buffer as the
// next scratch: every short text a trace assembles is rendered that way.
func (sh *shared) keep(b []byte) string {
	sh.scratch = b
	return sh.intern(b)
}

// slab hands out values from blocks kept for the next run: a run makes
// a dozen packet contexts and routing results, which need no garbage
// collection of their own.
type slab[T any] struct {
	blocks [][]T
	b, i   int
}

// get returns a value, holding whatever it held last: callers assign it
// whole.
func (s *slab[T]) get() *T {
	for {
		if s.b == len(s.blocks) {
			s.blocks = append(s.blocks, make([]T, 16))
		}
		if blk := s.blocks[s.b]; s.i < len(blk) {
			s.i++
			return &blk[s.i-1]
		}
		s.b, s.i = s.b+1, 0
	}
}

// restart makes every value available again.
func (s *slab[T]) restart() { s.b, s.i = 0, 0 }

// newCtx returns a packet context for the run, to be assigned whole.
func (r *run) newCtx() *pctx { return r.sh.ctxs.get() }

// result returns a zero routing result for the run.
func (r *run) result() *route.Result {
	res := r.sh.results.get()
	*res = route.Result{}
	return res
}

// sharedPool keeps shared values between traces: their buffers have
// grown to the size traces need.
var sharedPool = sync.Pool{New: func() any { return new(shared) }}

// reset readies a pooled shared for a new trace. The renderings are
// dropped (a long-running program traces many different packets); the
// buffers are kept.
func (sh *shared) reset(probe string) {
	sh.probe = probe
	clear(sh.addrs)
	clear(sh.tuples)
	clear(sh.lines)
	sh.addrs, sh.tuples, sh.lines = sh.addrs[:0], sh.tuples[:0], sh.lines[:0]
	sh.pend = sh.pend[:0]
	clear(sh.nf.Steps)
	sh.nf.Msgs, sh.nf.Steps, sh.nf.Spans = nil, sh.nf.Steps[:0], sh.nf.Spans[:0]
}

// rendered is a value and its text, rendered once per trace (see once).
type rendered[K comparable] struct {
	k K
	s string
}

// nodeTable is a node's conntrack table in a run.
type nodeTable struct {
	ns *nodeState
	t  *conntrack.Table
}

// once returns k's text from the trace's list of rendered values,
// rendering it with appendTo (into the shared's string block) the first
// time: a trace prints the same few addresses, tuples and packets over
// and over.
func once[K comparable](sh *shared, list *[]rendered[K], k K, appendTo func([]byte, K) []byte) string {
	for i := range *list {
		if (*list)[i].k == k {
			return (*list)[i].s
		}
	}
	s := sh.keep(appendTo(sh.scratch[:0], k))
	*list = append(*list, rendered[K]{k, s})
	return s
}

// cat returns the parts joined, kept in the shared's string block (see
// intern): the short sentences a trace assembles from pieces it already
// holds cost no allocation of their own.
func (r *run) cat(parts ...string) string {
	b := r.sh.scratch[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	return r.sh.keep(b)
}

// addr renders an address (netip.Addr.String), once per trace.
func (r *run) addr(a netip.Addr) string { return once(r.sh, &r.sh.addrs, a, appendAddr) }

// tuple renders a connection tuple (conntrack.Tuple.String), once per
// trace.
func (r *run) tuple(t conntrack.Tuple) string {
	return once(r.sh, &r.sh.tuples, t, func(b []byte, t conntrack.Tuple) []byte { return t.AppendTo(b) })
}

// tcpdump renders a packet (packet.Tcpdump), once per trace; a packet
// with an inner datagram (an ICMP error) each time.
func (r *run) tcpdump(p *packet.Packet) string {
	if p.Inner != nil {
		return packet.Tcpdump(p)
	}
	return once(r.sh, &r.sh.lines, *p, func(b []byte, p packet.Packet) []byte { return packet.AppendTcpdump(b, &p) })
}

// emitMsg records ev with the message r.msg[start:], which the caller
// appended.
func (r *run) emitMsg(ev trace.Event, start int) {
	r.pend = append(r.pend, msgSpan{int32(len(r.tr.Hops)), int32(start), int32(len(r.msg))})
	r.emit(ev)
}

// finalize freezes the branch's events, captures and message bytes where
// the run wrote them (see arena), gives the events their messages, and
// hands the run's conntrack tables back for reuse.
func (r *run) finalize() {
	sh := r.sh
	r.tr.Hops = sh.hops.freeze(r.tr.Hops)
	r.tr.Captures = sh.caps.freeze(r.tr.Captures)
	if len(r.pend) > 0 {
		// The messages' bytes are frozen in the arena, never written
		// again, so strings may point into them.
		text := sh.text.freeze(r.msg)
		for _, p := range r.pend {
			r.tr.Hops[p.hop].Message = unsafe.String(&text[p.a], p.b-p.a)
		}
	} else {
		sh.text.freeze(r.msg[:0])
	}
	r.sh.pend = r.pend[:0]
	r.msg, r.pend = nil, nil
	// The run's conntrack tables are its own and die with it: the next
	// branch or trace reuses their memory.
	for _, nt := range r.ct {
		r.sh.tables = append(r.sh.tables, nt.t)
	}
	r.ct = r.ct[:0]
}

// appendAddr appends an address as fmt's %s prints it.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "invalid IP"...)
	}
	return a.AppendTo(b)
}

// pctx is a packet inside one node, with its conntrack association.
type pctx struct {
	ns  *nodeState
	pkt packet.Packet
	leg trace.Leg
	// iif and oif are the input and output devices ("" when none yet).
	iif, oif string
	// rt is the routing decision for the packet's current destination.
	rt *route.Result
	// ent is the packet's connection, dir tells which direction.
	ent     *conntrack.Entry
	reply   bool
	state   netfilter.CTState
	tracked bool // conntrack already looked at this packet on this node
	mark    uint32
	// local is true once the route says the packet is for this node.
	local bool
	// locallyGenerated: sent by this node (OUTPUT path).
	locallyGenerated bool
	// bridged frames carry their bridge ports for -m physdev.
	physIn, physOut string
	bridged         bool
	// viaBridgeNF: came up from a bridge port with br_netfilter on.
	viaBridgeNF bool
}

// MaxBranches bounds how many random-choice paths one trace enumerates.
const MaxBranches = 1024

// Trace traces a probe and the answer to it. Where the kernel chooses at
// random (-m statistic --mode random, multipath routes), every branch is
// traced with its probability: the result then lists them in Branches.
func (e *Engine) Trace(p Probe) *trace.Trace {
	sh := sharedPool.Get().(*shared)
	defer sharedPool.Put(sh)
	return e.trace(p, sh)
}

// Tracer traces probes one after another on one goroutine, writing each
// trace over the memory of the one before: a trace it returns is valid
// only until its next call. It is for bulk work that checks or renders
// each trace and drops it (every probe of a verification, a fleet's
// worth of traces), where Engine.Trace would leave every trace's events
// to the garbage collector. Make one per goroutine.
type Tracer struct {
	e  *Engine
	sh *shared
}

// NewTracer returns a Tracer over the engine.
func (e *Engine) NewTracer() *Tracer { return &Tracer{e: e, sh: &shared{reuse: true}} }

// Trace traces p like Engine.Trace; the result, and every string and
// slice in it, is valid until the next call.
func (t *Tracer) Trace(p Probe) *trace.Trace {
	t.sh.rewind()
	return t.e.trace(p, t.sh)
}

// rewind makes the memory of the previous traces available again (for a
// Tracer, whose traces die with the next call).
func (sh *shared) rewind() {
	sh.hops.rewind()
	sh.caps.rewind()
	sh.text.rewind()
	sh.strs = sh.strs[:0]
	sh.traces.restart()
}

func (e *Engine) trace(p Probe, sh *shared) *trace.Trace {
	sh.reset(sh.keep(p.appendTo(sh.scratch[:0])))
	// branches ends up in the merged trace; a Tracer's is reused. The
	// prefixes still to explore are slices of one list of choices.
	branches := sh.branches[:0]
	if !sh.reuse {
		branches = make([]*trace.Trace, 0, 4)
	}
	stack, flat := append(sh.stack[:0], nil), sh.flat[:0]
	truncated := false
	for len(stack) > 0 {
		if len(branches) == MaxBranches {
			truncated = true
			break
		}
		prefix := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		r := e.run(p, prefix, sh)
		branches = append(branches, r.tr)
		// Every choice made freely (beyond the prefix) as "taken" has an
		// untaken alternative still to explore; push them so that the
		// earliest is explored first.
		for j := len(r.choices) - 1; j >= len(prefix); j-- {
			if c := r.choices[j]; c.took && c.p < 1 {
				at := len(flat)
				for k := 0; k < j; k++ {
					flat = append(flat, r.choices[k].took)
				}
				flat = append(flat, false)
				stack = append(stack, flat[at:len(flat):len(flat)])
			}
		}
	}
	// The prefixes may point into an earlier flat list that append
	// moved; only the newest is kept for the next trace.
	sh.stack, sh.flat = stack[:0], flat[:0]
	if sh.reuse {
		sh.branches = branches[:0]
	}
	if len(branches) == 1 {
		return branches[0]
	}
	return merge(sh, branches, truncated)
}

// newTrace returns an empty trace to fill, with probability 1: a new one,
// or for a Tracer one of the traces it hands out again, keeping the
// memory of its lists.
func (sh *shared) newTrace() *trace.Trace {
	if !sh.reuse {
		return &trace.Trace{Uncertain: []string{}, Probability: 1}
	}
	t := sh.traces.get()
	u := t.Uncertain[:0]
	if u == nil {
		u = []string{}
	}
	*t = trace.Trace{Uncertain: u, Choices: t.Choices[:0], Probability: 1}
	return t
}

// verdictOrder lists verdicts in the order a mixed reason gives them.
var verdictOrder = [...]string{trace.Answered, trace.Refused, trace.Rejected, trace.Dropped}

// merge summarises the branches of a trace.
func merge(sh *shared, bs []*trace.Trace, truncated bool) *trace.Trace {
	first := bs[0]
	t := sh.newTrace()
	t.Probe, t.Hops, t.Captures, t.Branches, t.Choices = first.Probe, first.Hops, first.Captures, bs, nil
	var prob [len(verdictOrder)]float64
	var seen [len(verdictOrder)]bool
	kinds, other := 0, false
	for _, b := range bs {
		// A branch ends with one of verdictOrder (never mixed); any other
		// only makes the outcome mixed.
		if i := slices.Index(verdictOrder[:], b.Verdict); i < 0 {
			other = true
		} else {
			if !seen[i] {
				seen[i] = true
				kinds++
			}
			prob[i] += b.Probability
		}
		for _, u := range b.Uncertain {
			if !slices.Contains(t.Uncertain, u) {
				t.Uncertain = append(t.Uncertain, u)
			}
		}
	}
	if truncated {
		t.Uncertain = append(t.Uncertain, fmt.Sprintf("more than %d random-choice paths: only the first %d were traced", MaxBranches, MaxBranches))
	}
	b := sh.scratch[:0]
	if kinds == 1 && !other {
		t.Verdict = first.Verdict
		b = strconv.AppendInt(append(b, "all "...), int64(len(bs)), 10)
		b = append(append(b, " possible paths (a random choice decides which) end the same way; the first: "...), first.Reason...)
	} else {
		t.Verdict = trace.Mixed
		b = append(strconv.AppendInt(b, int64(len(bs)), 10), " possible paths (a random choice decides which): "...)
		sep := false
		for i, v := range verdictOrder {
			if !seen[i] {
				continue
			}
			if sep {
				b = append(b, ", "...)
			}
			b = strconv.AppendFloat(append(append(b, v...), " with probability "...), 100*prob[i], 'f', 1, 64)
			b, sep = append(b, '%'), true
		}
	}
	t.Reason = sh.keep(b)
	return t
}

// choice is one random decision taken during a run.
type choice struct {
	p    float64
	took bool
}

// run traces one branch: the first len(prefix) random choices are forced,
// later ones are taken.
func (e *Engine) run(p Probe, prefix []bool, sh *shared) *run {
	sh.ctxs.restart()
	sh.results.restart()
	// The run itself is the shared one, reset: the caller is done with
	// the previous branch's run (it took its trace and choices) before it
	// starts the next. The choice callback, bound to it, is kept.
	r := &sh.run
	tr := sh.newTrace()
	tr.Probe, tr.Hops, tr.Captures = sh.probe, sh.hops.start(), sh.caps.start()
	// The previous run's conntrack list (emptied by finalize),
	// neighbour set and learned IPv6 neighbours are reused.
	neigh := r.neigh
	clear(neigh)
	*r = run{e: e, probe: p, prefix: prefix, sh: sh, msg: sh.text.start(), pend: sh.pend, chooseFn: r.chooseFn, choices: r.choices[:0], tr: tr,
		ct: r.ct[:0], neigh: neigh, ndpLearned: r.ndpLearned[:0]}
	r.start()
	if !r.done {
		if r.dropReason != "" {
			r.finish(trace.Dropped, r.dropReason)
		} else {
			r.finish(trace.Dropped, "the trace ended without the packet reaching anything (pktflow bug: please report)")
		}
	}
	r.finalize()
	return r
}

// choose is the engine's answer to a random choice with probability p of
// being taken: forced by the branch's prefix, else taken (the
// alternative is explored by another run).
func (r *run) choose(what string, p float64) bool { return r.chooseAt("", what, p) }

// chooseAt is choose for a choice a node's rules make: the choice is
// described as "NODE: WHAT".
func (r *run) chooseAt(node, what string, p float64) bool {
	i := len(r.choices)
	took := true
	if i < len(r.prefix) {
		took = r.prefix[i]
	}
	if p >= 1 {
		took = true
	} else if p <= 0 {
		took = false
	}
	r.choices = append(r.choices, choice{p: p, took: took})
	// "WHAT: taken (probability %.4g)" without fmt.
	b := r.sh.scratch[:0]
	if node != "" {
		b = append(append(b, node...), ": "...)
	}
	b = append(b, what...)
	if took {
		r.tr.Probability *= p
		b = strconv.AppendFloat(append(b, ": taken (probability "...), p, 'g', 4, 64)
	} else {
		r.tr.Probability *= 1 - p
		b = strconv.AppendFloat(append(b, ": not taken (probability "...), 1-p, 'g', 4, 64)
	}
	r.tr.Choices = append(r.tr.Choices, r.sh.keep(append(b, ')')))
	return took
}

func (r *run) start() {
	p := r.probe
	ns := r.e.nodes[p.From]
	if ns == nil {
		r.finish(trace.Dropped, fmt.Sprintf("no node %q in the snapshot", p.From))
		return
	}
	pkt := packet.Packet{Src: p.Src, Dst: p.Dst, Proto: p.Proto, SPort: p.SPort, DPort: p.DPort, TTL: uint8(p.TTL), DF: true}
	if p.Proto == packet.ICMP && p.Dst.Is6() {
		pkt.Proto = packet.ICMPv6
	}
	switch pkt.Proto {
	case packet.ICMPv6:
		pkt.ICMPType, pkt.ICMPID, pkt.ICMPSeq, pkt.Len = packet.ICMPv6EchoRequest, p.ICMPID, p.ICMPSeq, p.Len
		if pkt.Len == 0 {
			pkt.Len = DefaultICMPLen
		}
	case packet.ICMP:
		pkt.ICMPType, pkt.ICMPID, pkt.ICMPSeq, pkt.Len = packet.ICMPEchoRequest, p.ICMPID, p.ICMPSeq, p.Len
		if pkt.Len == 0 {
			pkt.Len = DefaultICMPLen
		}
	case packet.TCP:
		pkt.TCPFlags = packet.SYN
	case packet.UDP:
		pkt.Len = p.Len
		if pkt.Len == 0 {
			pkt.Len = DefaultUDPLen
		}
	}
	if p.FromIface != "" {
		ifc := ns.ifaces[p.FromIface]
		if ifc == nil {
			r.finish(trace.Dropped, fmt.Sprintf("node %s has no interface %q", p.From, p.FromIface))
			return
		}
		if !pkt.Src.IsValid() {
			r.finish(trace.Dropped, "a packet injected on an interface needs --src")
			return
		}
		if pkt.TTL == 0 {
			pkt.TTL = 64
		}
		r.note(trace.LegRequest, ns, p.FromIface, fmt.Sprintf("packet arrives on %s from outside the snapshot", p.FromIface))
		r.recvFrame(ns, p.FromIface, pkt, ns.mac(p.FromIface), trace.LegRequest)
		return
	}
	c := r.newCtx()
	*c = pctx{ns: ns, pkt: pkt, leg: trace.LegRequest, locallyGenerated: true}
	r.originate(c)
}

// table returns the node's conntrack table for this run, made on first use.
func (r *run) table(ns *nodeState) *conntrack.Table {
	for i := range r.ct {
		if r.ct[i].ns == ns {
			return r.ct[i].t
		}
	}
	var t *conntrack.Table
	if n := len(r.sh.tables); n > 0 {
		t, r.sh.tables = r.sh.tables[n-1], r.sh.tables[:n-1]
		t.Reset()
		ns.fillTable(t)
	} else {
		t = ns.newTable()
	}
	r.ct = append(r.ct, nodeTable{ns, t})
	return t
}

// finish ends the trace with a verdict.
func (r *run) finish(verdict, reason string) {
	if r.done {
		return
	}
	r.done = true
	r.tr.Verdict = verdict
	r.tr.Reason = reason
}

func (r *run) emit(ev trace.Event) {
	r.tr.Hops = append(r.tr.Hops, ev)
}

func (r *run) note(leg trace.Leg, ns *nodeState, iface, msg string) {
	r.emit(trace.Event{Leg: leg, Node: ns.n.Name, Iface: iface, Kind: trace.EvNote, Message: msg})
}

func (r *run) uncertain(ns *nodeState, msg string) {
	s := ns.n.Name + ": " + msg
	for _, u := range r.tr.Uncertain {
		if u == s {
			return
		}
	}
	r.tr.Uncertain = append(r.tr.Uncertain, s)
}

func (r *run) header(p *packet.Packet) *trace.Header {
	if len(r.hdrs) == cap(r.hdrs) {
		// A new block; headers already handed out keep the old one.
		r.hdrs = make([]trace.Header, 0, 8)
	}
	r.hdrs = append(r.hdrs, trace.Header{Src: r.addr(p.Src), Dst: r.addr(p.Dst), Proto: packet.ProtoName(p.Proto)})
	h := &r.hdrs[len(r.hdrs)-1]
	if p.HasPorts() {
		h.SPort, h.DPort = p.SPort, p.DPort
	} else if p.Proto == packet.ICMP && !p.IsICMPError() {
		h.SPort, h.DPort = p.ICMPID, p.ICMPID
	}
	return h
}

// drop ends the packet's journey at this node with a reason. The trace
// goes on only if the node sends an error back (the caller does that).
func (r *run) drop(c *pctx, iface, msg string, origin *model.Origin) {
	r.emit(trace.Event{Leg: c.leg, Node: c.ns.n.Name, Iface: iface, Kind: trace.EvDrop, Message: msg, Origin: origin})
	if c.ent != nil && !c.ent.Confirmed {
		r.table(c.ns).Forget(c.ent)
	}
	where := fmt.Sprintf("%s dropped at %s: %s", legNoun(c.leg), c.ns.n.Name, msg)
	switch c.leg {
	case trace.LegRequest:
		r.dropReason = where
	case trace.LegReply:
		r.dropReason = fmt.Sprintf("the request reached %s, but the %s", r.deliveredTo, where)
	default:
		r.dropReason = fmt.Sprintf("%s; the %s", r.fate, where)
	}
}

func legNoun(leg trace.Leg) string {
	switch leg {
	case trace.LegReply:
		return "reply"
	case trace.LegError:
		return "error sent back"
	}
	return "request"
}

// step counts work and stops runaway traces.
func (r *run) step(c *pctx) bool {
	if r.done {
		return false
	}
	r.steps++
	if r.steps > maxSteps {
		r.drop(c, "", fmt.Sprintf("the packet crossed more than %d interfaces: a forwarding loop", maxSteps), nil)
		return false
	}
	return true
}

// capture records what tcpdump on a device would show.
func (r *run) capture(c *pctx, dev, dir string) {
	p := c.pkt
	if r.capLine == "" || p.Inner != nil || p != r.capPkt {
		r.capPkt, r.capLine = p, r.tcpdump(&p)
	}
	cp := trace.Capture{Leg: c.leg, Node: c.ns.n.Name, Iface: dev, Dir: dir, Src: r.addr(p.Src), Dst: r.addr(p.Dst),
		Proto: packet.ProtoName(p.Proto), TTL: int(p.TTL), ICMPType: -1, ICMPCode: -1, ICMPID: -1, Packet: p}
	if p.HasPorts() {
		cp.SPort, cp.DPort = p.SPort, p.DPort
		if p.Proto == packet.TCP {
			cp.TCPFlags = packet.FlagString(p.TCPFlags)
		}
	}
	if p.Proto == packet.ICMP || p.Proto == packet.ICMPv6 {
		cp.ICMPType, cp.ICMPCode = int(p.ICMPType), int(p.ICMPCode)
		if !p.IsICMPError() {
			cp.ICMPID = int(p.ICMPID)
		}
	}
	cp.Line = r.capLine
	r.tr.Captures = append(r.tr.Captures, cp)
	m := len(r.msg)
	r.msg = append(append(append(append(append(r.msg, dev...), ' '), dir...), ' '), cp.Line...)
	r.emitMsg(trace.Event{Leg: c.leg, Node: c.ns.n.Name, Iface: dev, Kind: trace.EvCapture}, m)
}

// errorSource is the address an ICMP error generated at node c.ns about
// c.pkt comes from: the packet's destination when it was for this node,
// otherwise whatever the route back to the sender selects (icmp_send
// leaves saddr to the route lookup for forwarded packets).
//
// IPv6 (icmp6_send) is stricter: the destination is reused only when it is
// an address configured on a device, so an error about a packet for an
// address the node only routes locally (an external node's owned range,
// "ip route add local") takes the address the route back selects.
func errorSource(c *pctx) netip.Addr {
	if !c.local {
		return netip.Addr{}
	}
	if c.pkt.Is6() && !c.ns.hasIfAddr(c.pkt.Dst) {
		return netip.Addr{}
	}
	return c.pkt.Dst
}
