package iptsave

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// Parallel parsing. A kube-proxy host's nat table is tens of thousands of
// chain declarations followed by one run of 100k rule lines. When a table
// starts with such a run of more than splitMinBytes, the run is cut into
// chunks at line ends, which the other cores parse while this one reads
// the declarations, and which this one joins in parsing once it reaches
// the run. Each chunk has its own parser (slabs, scratch, rules). A chunk
// started once every chain is declared resolves its rules' chains, their
// positions in the chunk and their jump targets as it reads them, as the
// serial parser does; one started before leaves that to a pass over its
// rules once the chains are declared. The chunks are then adopted in
// order: their rules are numbered after the rules of the same chain in
// the chunks before.
//
// The result, and the first error, are those of a serial parse. Line
// numbers are counted ahead, so a chunk numbers its lines as the serial
// parser would. A chunk stops at its first error, which stands unless a
// rule before it names an undeclared chain (or, in a chunk read before
// the declarations were, its own rule does, which a serial parse reports
// first). A chunk gives up at a line that is not a rule, a comment or
// blank (a declaration, a COMMIT inside the run ...): the rules before it
// are adopted, and the parser goes on alone from there, dropping the
// chunks after it.
//
// splitMinBytes and minChunk are variables only so that a fuzz test can
// make tiny inputs take this path.
var (
	splitMinBytes = 1 << 20
	// minChunk is the smallest chunk worth handing to a core.
	minChunk = 256 << 10
)

// deferAll makes every chunk leave its rules to be resolved after (for
// tests: which chunks do depends on timing).
var deferAll bool

// run is a table's run of rules parsed in chunks.
type run struct {
	start, end int // offsets of the run in the text
	chunks     []*chunk
	// first is the number of the line before the run; the chunks'
	// numbers are counted once (count), by whichever core gets there
	// first.
	first   int
	count   sync.Once
	next    atomic.Int32 // the next chunk to take
	stop    atomic.Bool  // set when the parse ends early
	decl    atomic.Bool  // set once every chain of the table is declared
	wg      sync.WaitGroup
	workers int
}

// chunk is part of a run.
type chunk struct {
	p        *parser
	from, to int
	// base is the number of the line before the chunk's first; lines
	// the number of lines it has, then the number it read.
	base, lines int
	// rules holds the chunk's rules, in order: the first n are read.
	rules []model.Rule
	n     int
	// resolved says whether the chunk was read with every chain
	// declared: its rules then have their chains (chains, the index of
	// each rule's chain), positions in the chunk and jump targets.
	resolved bool
	chains   []int32
	// off is where its rules go in the table's list.
	off int
	// stopped is where the chunk gave up, when aborted.
	stopped int
	aborted bool
	err     *ingest.Error
	// errChain is the chain of the rule err is about, when err stands
	// only if that chain is declared.
	errChain string
}

// startRun starts parsing the table's rules, which start at offset
// start, on the other cores, and reports whether it did: the run must be
// big enough to be worth it, and there must be another core. n is the
// number of the table's line.
func (p *parser) startRun(start, n int) bool {
	workers := min(runtime.GOMAXPROCS(0), 8)
	if workers < 2 {
		return false
	}
	end := strings.Index(p.text[start:], "\nCOMMIT")
	if end < splitMinBytes {
		return false
	}
	end += start + 1
	r := &run{start: start, end: end, workers: workers, first: n + strings.Count(p.text[p.next:start], "\n")}
	// A few chunks per core, so that a core slowed by something else
	// leaves more of them to the others.
	parts := max(1, min(4*workers, (end-start)/minChunk))
	from := start
	for k := 1; k <= parts && from < end; k++ {
		to := end
		if k < parts {
			to = start + (end-start)*k/parts
			if i := strings.IndexByte(p.text[to:end], '\n'); i >= 0 {
				to += i + 1
			} else {
				to = end
			}
		}
		if to <= from {
			continue
		}
		r.chunks = append(r.chunks, &chunk{from: from, to: to})
		from = to
	}
	p.run = r
	for range workers - 1 {
		r.wg.Go(func() { r.parseChunks(p, &posCounter{}) })
	}
	return true
}

// countLines numbers the chunks' lines.
func (r *run) countLines(text string) {
	base := r.first
	for _, c := range r.chunks {
		c.base = base
		c.lines = strings.Count(text[c.from:c.to], "\n")
		base += c.lines
	}
}

// stopRun makes the other cores stop taking chunks when the parse ends
// (early, on an error before the run).
func (p *parser) stopRun() {
	if p.run != nil {
		p.run.stop.Store(true)
	}
}

// parseChunks parses chunks until none is left.
func (r *run) parseChunks(main *parser, pc *posCounter) {
	r.count.Do(func() { r.countLines(main.text) })
	for !r.stop.Load() {
		k := int(r.next.Add(1)) - 1
		if k >= len(r.chunks) {
			return
		}
		r.chunks[k].parse(main, r.decl.Load() && !deferAll, pc)
	}
}

// parse parses the chunk's lines with a parser of its own, resolving
// rules as it goes when every chain is declared.
func (c *chunk) parse(main *parser, resolved bool, pc *posCounter) {
	// Rules number at most the lines: one array holds them, which
	// the parser takes from in order (see rule).
	c.rules = make([]model.Rule, c.lines)
	p := &parser{file: main.file, family: main.family, tbl: main.tbl, text: main.text, deferChains: true}
	p.slabs.rules.free = c.rules
	if resolved {
		c.resolved = true
		pc.init(len(main.tbl.Chains))
		defer pc.reset()
		p.main, p.pos = main, pc
		p.ruleChain = make([]int32, 0, c.lines)
		p.lastIdx = -1
	}
	c.p = p
	pos, n := c.from, c.base
	for pos < c.to {
		// The run ends with a newline.
		i := strings.IndexByte(main.text[pos:c.to], '\n')
		line := main.text[pos : pos+i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if t := trimSpace(line); t != "" && t[0] != '-' && t[0] != '[' && t[0] != '#' {
			c.aborted, c.stopped = true, pos
			break
		}
		pos += i + 1
		n++
		p.next = pos
		if err := p.line(n, line); err != nil {
			c.err, c.errChain = err, p.errChain
			break
		}
	}
	c.lines = n - c.base
	c.n = p.deferred
	c.chains = p.ruleChain
}

// posCounter numbers rules in their chains within a chunk: cnt holds,
// for each chain of the table, the rules seen (zero for chains not in
// touched).
type posCounter struct {
	cnt     []int32
	touched []int32
}

func (pc *posCounter) init(chains int) {
	if len(pc.cnt) < chains {
		pc.cnt = make([]int32, chains)
	}
}

// next returns the position in the chunk of a rule of chain ci.
func (pc *posCounter) next(ci int) int {
	if pc.cnt[ci] == 0 {
		pc.touched = append(pc.touched, int32(ci))
	}
	pc.cnt[ci]++
	return int(pc.cnt[ci])
}

func (pc *posCounter) reset() {
	for _, ci := range pc.touched {
		pc.cnt[ci] = 0
	}
	pc.touched = pc.touched[:0]
}

// chainOf returns the index of the chain named name, looking first at the
// chain of the previous rule (last) and the one after it: rules of a
// chain come together, in the order the chains were declared.
func (p *parser) chainOf(name string, last int) (int, bool) {
	chains := p.tbl.Chains
	switch {
	case last >= 0 && chains[last].Name == name:
		return last, true
	case last+1 < len(chains) && chains[last+1].Name == name:
		return last + 1, true
	}
	ci, ok := p.chainIdx[name]
	return ci, ok
}

// joinRun parses the run's chunks left (the chains are now declared),
// resolves the rules of those read before, and adopts them. It returns
// where to go on and the number of the line before, or the first error.
func (p *parser) joinRun() (int, int, *ingest.Error) {
	r := p.run
	p.run = nil
	r.decl.Store(true)
	pc := &posCounter{}
	r.parseChunks(p, pc)
	r.wg.Wait()
	// The chunks up to the first that stopped short count.
	use := r.chunks
	for k, c := range r.chunks {
		if c.aborted || c.err != nil {
			use = r.chunks[:k+1]
			break
		}
	}
	// The table's rule lists get room for all the chunks' rules.
	total := len(p.tblRules)
	for _, c := range use {
		c.off = total
		total += c.n
	}
	if total > cap(p.tblRules) {
		p.tblRules = append(make([]*model.Rule, 0, total), p.tblRules...)
		p.ruleChain = append(make([]int32, 0, total), p.ruleChain...)
	}
	// Resolve the rules of the chunks read before the chains were
	// declared, and list every chunk's rules, on every core.
	var next atomic.Int32
	resolve := func(pc *posCounter) {
		for {
			k := int(next.Add(1)) - 1
			if k >= len(use) {
				return
			}
			if c := use[k]; c.resolved {
				rules := p.tblRules[c.off : c.off+c.n]
				for i := range rules {
					rules[i] = &c.rules[i]
				}
				copy(p.ruleChain[c.off:c.off+c.n], c.chains)
			} else {
				pc.init(len(p.tbl.Chains))
				p.resolve(c, pc)
				pc.reset()
			}
		}
	}
	var wg sync.WaitGroup
	for range min(r.workers, len(use)) - 1 {
		wg.Go(func() { resolve(&posCounter{}) })
	}
	resolve(pc)
	wg.Wait()
	for _, c := range use {
		if c.err != nil {
			return 0, 0, c.err
		}
		p.adopt(c)
		if c.aborted {
			return c.stopped, c.base + c.lines, nil
		}
	}
	last := r.chunks[len(r.chunks)-1]
	return r.end, last.base + last.lines, nil
}

// resolve gives the rules of a chunk read before the chains were
// declared their chains, positions in the chunk and jump targets, as
// rule does for the rules it reads, lists them in the table's rule list,
// and settles the chunk's error.
func (p *parser) resolve(c *chunk, pc *posCounter) {
	rules := p.tblRules[c.off : c.off+c.n]
	ruleChain := p.ruleChain[c.off : c.off+c.n]
	last := -1
	var targets targetCache
	for k := range c.rules[:c.n] {
		r := &c.rules[k]
		rules[k] = r
		ci, ok := p.chainOf(r.Chain, last)
		if !ok {
			c.err = p.undeclared(r.Origin.Line, r.Origin.Text, r.Chain)
			c.aborted = false
			c.n = k
			return
		}
		last = ci
		r.Chain = p.tbl.Chains[ci].Name
		ruleChain[k] = int32(ci)
		r.Pos = pc.next(ci)
		if r.Target != "" {
			p.resolveTarget(r, &targets)
		}
	}
	if c.err != nil && c.errChain != "" {
		if _, ok := p.chainIdx[c.errChain]; !ok {
			c.err = p.undeclared(c.err.Line, c.err.Text, c.errChain)
		}
	}
}

// undeclared is the error for a rule of a chain the table does not
// declare.
func (p *parser) undeclared(n int, line, name string) *ingest.Error {
	return p.errf(n, line, "chain %s is not declared in table %s: expected a :%s line before its rules", name, p.tbl.Name, name)
}

// adopt appends a chunk's resolved rules (already in place after the
// table's rules) to the table's, numbered after the rules already read of
// each chain.
func (p *parser) adopt(c *chunk) {
	end := c.off + c.n
	p.tblRules, p.ruleChain = p.tblRules[:end], p.ruleChain[:end]
	ruleChain := p.ruleChain[c.off:]
	for k, ci := range ruleChain {
		if off := p.counts[ci]; off != 0 {
			c.rules[k].Pos += off
		}
	}
	for _, ci := range ruleChain {
		p.counts[ci]++
	}
	p.lastIdx = -1
}

// targetCache remembers the last few jump targets looked up: most rules
// of a kube-proxy table jump to one of a few names (KUBE-MARK-MASQ, DNAT),
// the rest to chains named once or twice.
type targetCache struct {
	names [4]string
	idx   [4]int // index of the chain, -1 for a name that is no chain
	next  uint8
}

// resolveTarget records in r the chain its target names, if the table has
// one: its index (a hint for consumers) and its name as declared, so
// that checking the hint compares one string with itself.
func (p *parser) resolveTarget(r *model.Rule, c *targetCache) {
	j, cached := -1, false
	for k, n := range c.names {
		if n == r.Target {
			j, cached = c.idx[k], true
			break
		}
	}
	if !cached {
		if i, ok := p.chainIdx[r.Target]; ok {
			j = i
		}
		c.names[c.next%4], c.idx[c.next%4] = r.Target, j
		c.next++
	}
	if j >= 0 {
		r.Target = p.tbl.Chains[j].Name
		r.TargetChain = int32(j + 1)
	}
}
