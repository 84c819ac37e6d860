package netfilter

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pktflow/pktflow/internal/gcpause"
	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// Compiled is a ruleset compiled for evaluation: every rule turned into a
// flat struct of pre-parsed fields, jumps resolved to chain pointers, and
// large chains indexed. It is immutable after Compile (SetIndexing only
// flips an atomic switch) and safe for concurrent Run calls.
type Compiled struct {
	family int
	tables map[string]*ctable
	// known holds the five tables iptables has by their index in
	// tableNames: a walk looks its table up without hashing the name.
	known [len(tableNames)]*ctable
	// noIndex turns the chain index off (for tests and benchmarks that
	// compare indexed and rule-by-rule evaluation).
	noIndex atomic.Bool
}

// ctable is one compiled table.
type ctable struct {
	name   string
	chains map[string]*cchain
	// hooks holds the built-in chain of each hook, nil where the table
	// has none (nat has no FORWARD, raw no INPUT ...).
	hooks [5]*cchain
	// byIdx holds, while the table compiles, the compiled chain of each
	// of the model table's chains by index (nil for a duplicate), for
	// the jump targets the parser resolved (model.Rule.TargetChain).
	byIdx []*cchain
}

// cchain is one compiled chain.
type cchain struct {
	name    string
	table   string
	builtin bool
	policy  Verdict
	// policyMsg is the message of the policy step of a built-in chain
	// (see walker.policy), made once: many built-in chains have no rules.
	policyMsg string
	rules     []crule
	// color marks the chain during markHooks' loop search.
	color uint8
	// jumps are the chain's rules that jump or go to a chain, in order,
	// while the table compiles (for markHooks).
	jumps []jump
	// jumpTg and gotoTg are the targets of rules that jump or go to
	// this chain, shared by all of them.
	jumpTg, gotoTg atomic.Pointer[target]
	// idx is the dispatch index, nil for small or unindexable chains.
	idx *chainIndex
	// hookMask says from which hooks the chain is reachable (bit 1<<Hook),
	// as the kernel computes it when loading a table.
	hookMask uint8
	model    *model.Chain
}

// Base-match bits of crule.has and crule.neg.
const (
	bSrc uint8 = 1 << iota
	bDst
	bIn
	bOut
	bProto
	bFrag
)

// jump is a rule that jumps or goes to a chain.
type jump struct {
	to *cchain
	r  *model.Rule
}

// ifacePair is a rule's -i and -o.
type ifacePair struct{ in, out ifaceMatch }

// addrPair is a rule's -s and -d.
type addrPair struct{ src, dst addrMask }

// crule is one compiled rule. A model rule whose -s or -d lists several
// addresses compiles to several crules, as iptables itself expands it.
type crule struct {
	m *model.Rule
	// has says which base matches the rule has, neg which are negated.
	has, neg uint8
	proto    uint8
	// addrs holds -s and -d, io -i and -o; each nil when the rule has
	// neither (most rules: pointers instead of the matches inline keep a
	// 100k-rule table 10 MB smaller).
	addrs *addrPair
	io    *ifacePair
	mods  []matcher
	tgt   *target
}

// Compile compiles a ruleset. A nil ruleset compiles to a Compiled without
// tables, where every hook accepts. Compile fails only for rules that
// iptables-restore itself would refuse (bad addresses or ports, a jump to
// a missing chain, a chain loop, -o in INPUT ...); each error names the
// rule's file and line and says what was expected. Unknown match modules
// and targets are not errors: they compile into matchers and targets that
// report uncertainty when a packet reaches them.
//
// The Compiled refers to rs (steps point at its rules, messages render
// its options): rs must not be changed afterwards.
func Compile(rs *model.Ruleset) (*Compiled, error) {
	c := &Compiled{family: 4, tables: map[string]*ctable{}}
	if rs == nil {
		return c, nil
	}
	switch rs.Family {
	case 0, 4:
	case 6:
		c.family = 6
	default:
		return nil, ingest.Errorf(rs.Origin.File, rs.Origin.Line, rs.Origin.Text, "ruleset family %d: expected 4 (iptables) or 6 (ip6tables)", rs.Family)
	}
	var errs []error
	if n := countRules(rs, holdGCRules); n >= holdGCRules {
		// The compiled rules stay live: collecting while they are
		// built finds little garbage (see gcpause).
		defer gcpause.Hold()()
	}
	for _, t := range rs.Tables {
		if t == nil {
			continue
		}
		if _, dup := c.tables[t.Name]; dup {
			errs = append(errs, ingest.Errorf(t.Origin.File, t.Origin.Line, t.Origin.Text, "table %s appears twice: expected each table once", t.Name))
			continue
		}
		ct, terrs := compileTable(c.family, t)
		errs = append(errs, terrs...)
		c.tables[t.Name] = ct
		if i := tableIndex(t.Name); i >= 0 {
			c.known[i] = ct
		}
	}
	if len(errs) > 0 {
		if len(errs) > 20 {
			errs = append(errs[:20], fmt.Errorf("... and %d more errors", len(errs)-20))
		}
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// holdGCRules is the ruleset size from which Compile holds off garbage
// collection.
const holdGCRules = 20000

// countRules counts the ruleset's rules, up to limit.
func countRules(rs *model.Ruleset, limit int) int {
	n := 0
	for _, t := range rs.Tables {
		if t == nil {
			continue
		}
		for _, ch := range t.Chains {
			if ch != nil {
				if n += len(ch.Rules); n >= limit {
					return n
				}
			}
		}
	}
	return n
}

// HasTable reports whether the ruleset has the named table.
func (c *Compiled) HasTable(table string) bool {
	return c.table(table) != nil
}

// tableNames are the tables iptables knows.
var tableNames = [...]string{"raw", "mangle", "nat", "filter", "security"}

// tableIndex is a name's index in tableNames, or -1.
func tableIndex(name string) int {
	switch name {
	case "raw":
		return 0
	case "mangle":
		return 1
	case "nat":
		return 2
	case "filter":
		return 3
	case "security":
		return 4
	}
	return -1
}

// table returns the named table, or nil.
func (c *Compiled) table(name string) *ctable {
	if i := tableIndex(name); i >= 0 {
		return c.known[i]
	}
	return c.tables[name]
}

// Family returns 4 or 6.
func (c *Compiled) Family() int { return c.family }

// SetIndexing turns the chain index on (the default) or off. Results are
// identical either way; off walks every rule, as the kernel does. It is
// meant for tests and benchmarks and may be called while Runs are in
// flight (each Run sees one setting throughout).
func (c *Compiled) SetIndexing(on bool) { c.noIndex.Store(!on) }

// hookConstraint is a hook restriction of a match or target, checked once
// the chain graph says from which hooks each chain is reachable.
type hookConstraint struct {
	allowed uint8
	what    string
}

type pendingCheck struct {
	ch  *cchain
	r   *model.Rule
	hc  hookConstraint
	jmp *cchain
}

func compileTable(family int, t *model.Table) (*ctable, []error) {
	ct := &ctable{name: t.Name, chains: make(map[string]*cchain, len(t.Chains))}
	var errs []error
	var slab []cchain
	ct.byIdx = make([]*cchain, len(t.Chains))
	defer func() {
		// The jump lists were for markHooks.
		for _, cc := range ct.byIdx {
			if cc != nil {
				cc.jumps = nil
			}
		}
		ct.byIdx = nil
	}()
	for i, ch := range t.Chains {
		if ch == nil {
			continue
		}
		// The table's chains come from one array: a kube-proxy table
		// has tens of thousands.
		if len(slab) == 0 {
			slab = make([]cchain, len(t.Chains))
		}
		cc := &slab[0]
		// One map operation both checks for a duplicate and inserts.
		before := len(ct.chains)
		ct.chains[ch.Name] = cc
		if len(ct.chains) == before {
			// The first chain of the name stays.
			for _, first := range ct.byIdx[:i] {
				if first != nil && first.name == ch.Name {
					ct.chains[ch.Name] = first
					break
				}
			}
			errs = append(errs, ingest.Errorf(ch.Origin.File, ch.Origin.Line, ch.Origin.Text, "chain %s is declared twice in table %s: expected each chain once", ch.Name, t.Name))
			continue
		}
		slab = slab[1:]
		*cc = cchain{name: ch.Name, table: t.Name, builtin: ch.Builtin, model: ch}
		if h, ok := hookOfChain(ch.Name); ok {
			cc.builtin = true
			ct.hooks[h] = cc
		}
		switch ch.Policy {
		case "", "-", "ACCEPT":
			cc.policy = Accept
		case "DROP":
			cc.policy = Drop
		default:
			errs = append(errs, ingest.Errorf(ch.Origin.File, ch.Origin.Line, ch.Origin.Text, "chain %s has policy %q: expected ACCEPT or DROP", ch.Name, ch.Policy))
		}
		if cc.builtin {
			cc.policyMsg = "end of chain " + cc.name + ": policy " + cc.policy.String()
		}
		ct.byIdx[i] = cc
	}
	checks, rerrs := compileRules(family, ct, t)
	errs = append(errs, rerrs...)
	if len(errs) > 0 {
		return ct, errs
	}
	if err := ct.markHooks(); err != nil {
		return ct, []error{err}
	}
	for _, part := range checks {
		for _, pc := range part {
			if bad := pc.ch.hookMask &^ pc.hc.allowed; bad != 0 {
				errs = append(errs, ruleErr(pc.r, "%s, but chain %s is reachable from %s", pc.hc.what, pc.ch.name, hookMaskString(bad)))
			}
		}
	}
	return ct, errs
}

// parallelMinRules is the table size from which compileRules splits the
// work: below it, starting goroutines costs more than it saves. A
// variable only so that a fuzz test can make tiny tables take that path.
var parallelMinRules = 8192

// compileRules compiles the rules of every chain of t, indexes the long
// chains, and lists each chain's jumps for markHooks. A big table's
// chains are split into contiguous runs of about equal rule counts, a few
// per core, which the cores take in turn: chains compile independently
// (jump targets are only looked up, and made once per chain, see
// compileTarget). Errors and hook checks (one list per run) come back in
// chain order, as a serial compile gives them.
func compileRules(family int, ct *ctable, t *model.Table) ([][]pendingCheck, []error) {
	type work struct {
		ch *model.Chain
		cc *cchain
	}
	all := make([]work, 0, len(t.Chains))
	total := 0
	for _, ch := range t.Chains {
		if ch == nil {
			continue
		}
		cc := ct.chains[ch.Name]
		if cc == nil || cc.model != ch {
			continue
		}
		all = append(all, work{ch, cc})
		total += len(ch.Rules)
	}
	run := func(wk *worker, ws []work) ([]pendingCheck, []error) {
		var checks []pendingCheck
		var errs []error
		for _, w := range ws {
			cc := w.cc
			// The chain's rules and jumps come from the worker's
			// current blocks (a rule that expands to several spills the
			// rules into an array of the chain's own).
			cc.rules = room(&wk.rules, len(w.ch.Rules), 16, 2048)
			jumps := room(&wk.jumps, len(w.ch.Rules), 1024, 1024)
			for _, r := range w.ch.Rules {
				if r == nil {
					continue
				}
				rc := ruleCompiler{family: family, table: ct, chain: cc, r: r, out: cc.rules, wk: wk}
				rules, err := rc.compile()
				if err != nil {
					errs = append(errs, err)
					continue
				}
				cc.rules = rules
				if tg := rules[len(rules)-1].tgt; tg.kind == tJump || tg.kind == tGoto {
					jumps = append(jumps, jump{tg.chain, r})
				}
				for _, hc := range rc.hooks[:rc.nhooks] {
					checks = append(checks, pendingCheck{ch: cc, r: r, hc: hc})
				}
			}
			cc.jumps = keep(&wk.jumps, jumps)
			cc.rules = keep(&wk.rules, cc.rules)
			if len(cc.rules) >= indexMinRules {
				cc.idx = buildIndex(cc, family)
			}
		}
		return checks, errs
	}
	workers := min(runtime.GOMAXPROCS(0), 4)
	if total < parallelMinRules || workers < 2 {
		checks, errs := run(newWorker(), all)
		return [][]pendingCheck{checks}, errs
	}
	// Runs of chains [bounds[k], bounds[k+1]) hold about a 1/parts
	// share of the rules each.
	parts := 4 * workers
	bounds := make([]int, 0, parts+1)
	bounds = append(bounds, 0)
	done := 0
	for k, end := 0, 0; k < parts; k++ {
		want := total * (k + 1) / parts
		for end < len(all) && (done < want || k == parts-1) {
			done += len(all[end].ch.Rules)
			end++
		}
		bounds = append(bounds, end)
	}
	type result struct {
		checks []pendingCheck
		errs   []error
	}
	results := make([]result, parts)
	var next atomic.Int32
	work1 := func() {
		wk := newWorker()
		for {
			k := int(next.Add(1)) - 1
			if k >= parts {
				return
			}
			results[k].checks, results[k].errs = run(wk, all[bounds[k]:bounds[k+1]])
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work1)
	}
	work1()
	wg.Wait()
	checks := make([][]pendingCheck, parts)
	var errs []error
	for k, r := range results {
		checks[k] = r.checks
		errs = append(errs, r.errs...)
	}
	return checks, errs
}

// worker is the state of one core compiling rules.
type worker struct {
	// shared holds the targets without options (ACCEPT, RETURN ...),
	// which every rule using them shares.
	shared map[sharedKey]*target
	// pairs, jumps, rules and mods hand out rules' addrPairs, chains'
	// jump lists, chains' compiled rules and rules' matchers, a block at
	// a time.
	pairs []addrPair
	jumps []jump
	rules []crule
	mods  []matcher
	// Targets with options and the commonest matches come from blocks
	// too (newIn).
	targets block[target]
	ports   block[portsMatch]
	stats   block[statisticMatch]
	// notChain holds target names recently found not to be chains of
	// the table (DNAT, REJECT ... on thousands of rules), for jumpTarget.
	notChain [4]string
	nextNot  uint8
}

func newWorker() *worker { return &worker{shared: map[sharedKey]*target{}} }

// block hands out zeroed Ts from arrays of blockSize.
type block[T any] struct{ free []T }

const blockSize = 256

// newIn returns a new zeroed T, from wk's block of Ts (which of wk's
// blocks, of) when there is a worker.
func newIn[T any](wk *worker, of func(*worker) *block[T]) *T {
	if wk == nil {
		return new(T)
	}
	b := of(wk)
	if len(b.free) == 0 {
		b.free = make([]T, blockSize)
	}
	t := &b.free[0]
	b.free = b.free[1:]
	return t
}

// hookOfChain returns the hook of a built-in chain name.
func hookOfChain(name string) (Hook, bool) {
	for h := PreRouting; h <= PostRouting; h++ {
		if h.String() == name {
			return h, true
		}
	}
	return 0, false
}

func hookMaskString(m uint8) string {
	s := ""
	for h := PreRouting; h <= PostRouting; h++ {
		if m&(1<<h) != 0 {
			if s != "" {
				s += ","
			}
			s += h.String()
		}
	}
	return s
}

// markHooks computes from which hooks each chain is reachable and rejects
// jump loops, as the kernel does when iptables-restore commits a table
// (a loop would make the kernel's walk never end, so it refuses the table
// with ELOOP). Loops among chains no hook reaches are not walked by the
// kernel and so are not errors. It walks the chains' jump lists, which
// it drops.
func (t *ctable) markHooks() error {
	const (
		white = iota
		grey
		black
	)
	// Colors live in the chains (white, the zero value, until visited):
	// a kube-proxy table has tens of thousands of chains. order collects
	// the chains in the order the search finishes them.
	var order []*cchain
	var visit func(c *cchain) error
	visit = func(c *cchain) error {
		c.color = grey
		for _, j := range c.jumps {
			switch j.to.color {
			case grey:
				return ruleErr(j.r, "jump from chain %s to %s closes a loop: expected chains to form no cycle (iptables-restore refuses loops)", c.name, j.to.name)
			case white:
				if err := visit(j.to); err != nil {
					return err
				}
			}
		}
		c.color = black
		order = append(order, c)
		return nil
	}
	for h := PreRouting; h <= PostRouting; h++ {
		if b := t.hooks[h]; b != nil && b.color == white {
			if err := visit(b); err != nil {
				return err
			}
		}
	}
	// No loops: the chains form a DAG, and the reverse of the order in
	// which the search finished them puts every chain after all the
	// chains that jump to it. One pass in that order propagates every
	// hook's bit along the jumps (rather than one walk per hook).
	for h := PreRouting; h <= PostRouting; h++ {
		if b := t.hooks[h]; b != nil {
			b.hookMask |= 1 << h
		}
	}
	for i := len(order) - 1; i >= 0; i-- {
		c := order[i]
		if c.hookMask == 0 {
			continue
		}
		for _, j := range c.jumps {
			j.to.hookMask |= c.hookMask
		}
	}
	return nil
}

// ruleErr builds an error naming the rule's origin.
func ruleErr(r *model.Rule, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if r.Origin.File == "" && r.Origin.Line == 0 {
		msg = fmt.Sprintf("chain %s rule %d: %s", r.Chain, r.Pos, msg)
	}
	return ingest.Errorf(r.Origin.File, r.Origin.Line, r.Origin.Text, "%s", msg)
}

// ruleRef names a rule for uncertainty messages: table, chain, position
// and file:line.
func ruleRef(table, chain string, r *model.Rule) string {
	s := table + " " + chain + " rule " + strconv.Itoa(r.Pos)
	if r.Origin.File != "" {
		s += " (" + r.Origin.File + ":" + strconv.Itoa(r.Origin.Line) + ")"
	} else if r.Origin.Line > 0 {
		s += " (line " + strconv.Itoa(r.Origin.Line) + ")"
	}
	return s
}
