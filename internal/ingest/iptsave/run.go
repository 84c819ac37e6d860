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
// the run. Each chunk has its own parser (slabs, scratch, rules) that
// leaves what needs the declared chains for later: once every chain is
// declared, the chunks' rules get their chains, positions and jump
// targets (again on every core), and the chunks are adopted in order.
//
// The result, and the first error, are those of a serial parse. A chunk
// numbers its lines from 1 and learns its first line's number when the
// chunks before it are counted. A chunk stops at its first error, which
// stands unless a rule before it names an undeclared chain (or its own
// rule does, which a serial parse reports first). A chunk gives up at a
// line that is not a rule, a comment or blank (a declaration, a COMMIT
// inside the run ...): the rules before it are adopted, and the parser
// goes on alone from there, dropping the chunks after it.
const splitMinBytes = 1 << 20

// run is a table's run of rules parsed in chunks.
type run struct {
	start, end int // offsets of the run in the text
	chunks     []*chunk
	next       atomic.Int32 // the next chunk to take
	stop       atomic.Bool  // set when the parse ends early
	wg         sync.WaitGroup
	workers    int
}

// chunk is part of a run.
type chunk struct {
	p        *parser
	from, to int
	// rules holds the chunk's rules, in order: the first n are read.
	rules []model.Rule
	n     int
	// off is where its rules go in the table's list.
	off int
	// lines is the number of lines read; base the number of the line
	// before the chunk's first, once known.
	lines, base int
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
// big enough to be worth it, and there must be another core.
func (p *parser) startRun(start int) bool {
	workers := min(runtime.GOMAXPROCS(0), 8)
	if workers < 2 {
		return false
	}
	end := strings.Index(p.text[start:], "\nCOMMIT")
	if end < splitMinBytes {
		return false
	}
	end += start + 1
	r := &run{start: start, end: end, workers: workers}
	// A few chunks per core, so that a core slowed by something else
	// leaves more of them to the others.
	const minChunk = 256 << 10
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
		r.wg.Go(func() { r.parseChunks(p) })
	}
	return true
}

// stopRun makes the other cores stop taking chunks when the parse ends
// (early, on an error before the run).
func (p *parser) stopRun() {
	if p.run != nil {
		p.run.stop.Store(true)
	}
}

// parseChunks parses chunks until none is left.
func (r *run) parseChunks(main *parser) {
	for !r.stop.Load() {
		k := int(r.next.Add(1)) - 1
		if k >= len(r.chunks) {
			return
		}
		r.chunks[k].parse(main)
	}
}

// parse parses the chunk's lines with a parser of its own.
func (c *chunk) parse(main *parser) {
	text := main.text[c.from:c.to]
	// Rules number at most the lines: one array holds them, which
	// the parser takes from in order (see rule).
	c.rules = make([]model.Rule, strings.Count(text, "\n"))
	p := &parser{file: main.file, family: main.family, tbl: main.tbl, text: main.text, deferChains: true}
	p.slabs.rules.free = c.rules
	c.p = p
	pos, n := c.from, 0
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
	c.lines = n
	c.n = p.deferred
}

// joinRun parses the run's chunks left (the chains are now declared),
// resolves their rules, and adopts them. n is the number of the line
// before the run. It returns where to go on and the number of the line
// before, or the first error.
func (p *parser) joinRun(n int) (int, int, *ingest.Error) {
	r := p.run
	p.run = nil
	r.parseChunks(p)
	r.wg.Wait()
	// Number the chunks' lines, up to the first that stopped short.
	use := r.chunks
	base := n
	for k, c := range r.chunks {
		c.base = base
		base += c.lines
		if c.aborted || c.err != nil {
			use = r.chunks[:k+1]
			break
		}
	}
	// Resolve their rules on every core.
	var next atomic.Int32
	resolve := func() {
		cnt := make([]int32, len(p.tbl.Chains))
		for {
			k := int(next.Add(1)) - 1
			if k >= len(use) {
				return
			}
			p.resolve(use[k], cnt)
		}
	}
	// The table's rule lists get room for all the chunks' rules, which
	// resolve writes in place.
	total := len(p.tblRules)
	for _, c := range use {
		c.off = total
		total += c.n
	}
	if total > cap(p.tblRules) {
		p.tblRules = append(make([]*model.Rule, 0, total), p.tblRules...)
		p.ruleChain = append(make([]int32, 0, total), p.ruleChain...)
	}
	var wg sync.WaitGroup
	for range min(r.workers, len(use)) - 1 {
		wg.Go(resolve)
	}
	resolve()
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
	return r.end, base, nil
}

// resolve gives a chunk's rules their line numbers, chains, positions in
// the chunk and jump targets, as rule does for the rules it reads
// itself, and settles the chunk's error. cnt is zero for every chain and
// is left so.
func (p *parser) resolve(c *chunk, cnt []int32) {
	chains := p.tbl.Chains
	rules := p.tblRules[c.off : c.off+c.n]
	ruleChain := p.ruleChain[c.off : c.off+c.n]
	last := -1
	var touched []int32
	var targets targetCache
	defer func() {
		for _, ci := range touched {
			cnt[ci] = 0
		}
	}()
	for k := range c.rules[:c.n] {
		r := &c.rules[k]
		rules[k] = r
		r.Origin.Line += c.base
		name := r.Chain
		ci := last
		switch {
		case ci >= 0 && chains[ci].Name == name:
		case ci+1 < len(chains) && chains[ci+1].Name == name:
			ci++
		default:
			var ok bool
			if ci, ok = p.chainIdx[name]; !ok {
				c.err = p.undeclared(r.Origin.Line, r.Origin.Text, name)
				c.aborted = false
				c.n = k
				return
			}
		}
		last = ci
		r.Chain = chains[ci].Name
		ruleChain[k] = int32(ci)
		if cnt[ci] == 0 {
			touched = append(touched, int32(ci))
		}
		cnt[ci]++
		r.Pos = int(cnt[ci])
		if r.Target != "" {
			p.resolveTarget(r, &targets)
		}
	}
	if c.err != nil {
		c.err.Line += c.base
		if c.errChain != "" {
			if _, ok := p.chainIdx[c.errChain]; !ok {
				c.err = p.undeclared(c.err.Line, c.err.Text, c.errChain)
			}
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
