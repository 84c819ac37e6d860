// Package iptsave reads the text that iptables-save and ip6tables-save print
// (the same text iptables-restore reads) into a *model.Ruleset.
//
// Users paste this text into tickets, so the parser accepts everything the
// real tools print, from iptables 1.4 (legacy) to 1.8.x (legacy and
// nf_tables variants): comment and warning lines, counters on chain lines,
// "[pkts:bytes]" rule prefixes and restore-style "-c pkts bytes", and the
// old "-s ! ADDR" negation. It does not give rules meaning — the netfilter
// package compiles them — but it does check structure, because a
// half-understood ruleset would make the engine explain the wrong path.
// Every error is an *ingest.Error naming the file, the line and what was
// expected; no partial ruleset is ever returned.
//
// The parser is hand-written rather than regexp-based because real
// kube-proxy hosts carry 100k+ rules and pktflow parses them on every run.
package iptsave

import (
	"io"
	"io/fs"
	"strconv"
	"strings"
	"unsafe"

	"github.com/pktflow/pktflow/internal/gcpause"
	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// Parse reads iptables-save (family 4) or ip6tables-save (family 6) output
// from r. file names the input in errors and Origins.
func Parse(file string, r io.Reader, family int) (*model.Ruleset, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	if len(b) >= holdGCBytes {
		// The ruleset stays live: collecting while it is built finds
		// little garbage (see gcpause).
		defer gcpause.Hold()()
	}
	// One string for the whole input: every unquoted token, line text and
	// name in the ruleset is a substring of it, which is what keeps a 100k
	// rule parse to a handful of allocations per rule. b is ours alone and
	// never written again, so the string can share its bytes.
	return ParseString(file, unsafe.String(unsafe.SliceData(b), len(b)), family)
}

// holdGCBytes is the input size from which Parse holds off garbage
// collection (a 10k-rule ruleset is about 1.5 MB).
const holdGCBytes = 4 << 20

// readAll is io.ReadAll that, for a file, reads into one buffer of the
// file's size instead of growing one by doubling (a kube-proxy host's
// iptables-save is tens of megabytes).
func readAll(r io.Reader) ([]byte, error) {
	f, ok := r.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return io.ReadAll(r)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() <= 0 || st.Size() > 1<<31 {
		return io.ReadAll(r)
	}
	// One byte more than the size, so that a read at the end reports EOF
	// without growing the buffer; a file that grew meanwhile still reads
	// whole.
	b := make([]byte, 0, st.Size()+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// ParseString is Parse for text already in memory.
func ParseString(file, text string, family int) (*model.Ruleset, error) {
	if family != 4 && family != 6 {
		return nil, ingest.Errorf(file, 0, "", "family %d: expected 4 (iptables-save) or 6 (ip6tables-save)", family)
	}
	p := &parser{file: file, family: family}
	rs, err := p.parse(text)
	if err != nil {
		// Returned separately so that a nil *ingest.Error never becomes
		// a non-nil error interface.
		return nil, err
	}
	return rs, nil
}

// parser holds the state of one parse. The scratch slices are reused from
// rule to rule; the slabs hand out the final slices (see alloc.go).
type parser struct {
	file   string
	family int
	rs     *model.Ruleset

	// The table being read (between *table and COMMIT), with the line
	// that opened it and its chains by name (value: index in tbl.Chains).
	tbl      *model.Table
	tblLine  int
	tblText  string
	chainIdx map[string]int
	// Rules of one chain come together in iptables-save output, and
	// chains come in the order they were declared, so the chain of the
	// next rule is nearly always the last one or the one after it.
	lastIdx int
	// The table's rules in input order with their chain indexes, and the
	// rule count of each chain. Chains get their Rules slices at COMMIT,
	// carved from one array, rather than by appending rule by rule.
	tblRules  []*model.Rule
	ruleChain []int32
	counts    []int
	// next is the offset of the line after the current one, for
	// looking ahead.
	text string
	next int

	toks    []token
	qbuf    []byte
	matches []smatch
	opts    []sopt
	topts   []sopt
	args    []string

	slabs slabs

	// run is the table's run of rules being parsed on other cores, if
	// any (see run.go).
	run *run
	// deferChains is set in a parser of part of a run: it leaves rules'
	// chains to be resolved once every chain is declared (see rule).
	deferChains bool
	// deferred counts the rules read with deferChains set; main and pos,
	// when set, resolve them as they are read (see rule).
	deferred int
	main     *parser
	pos      *posCounter
	// errChain is, after an error in a rule's body with deferChains set,
	// the rule's chain: an undeclared chain is the error to report.
	errChain string
	// targets caches jump targets looked up (see resolveTarget); it is
	// cleared whenever a chain is declared.
	targets targetCache
	// lateDecl is set when a chain of the table was declared after some
	// of its rules, which may jump to it: their targets were looked up
	// before it existed.
	lateDecl bool
}

func (p *parser) errf(line int, text, format string, args ...any) *ingest.Error {
	return ingest.Errorf(p.file, line, text, format, args...)
}

func (p *parser) parse(text string) (*model.Ruleset, *ingest.Error) {
	p.rs = &model.Ruleset{Family: p.family, Origin: model.Origin{File: p.file}}
	p.text = text
	defer p.stopRun()
	n := 0
	for pos := 0; pos < len(text); {
		if p.run != nil && pos == p.run.start {
			// The chains are declared: take the run's rules (see
			// joinRun) and go on after them.
			var err *ingest.Error
			if pos, n, err = p.joinRun(); err != nil {
				return nil, err
			}
			p.next = pos
			continue
		}
		var line string
		if i := strings.IndexByte(text[pos:], '\n'); i >= 0 {
			line = text[pos : pos+i]
			pos += i + 1
		} else {
			line = text[pos:]
			pos = len(text)
		}
		n++
		p.next = pos
		// Pastes from Windows tickets carry CRLF.
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if err := p.line(n, line); err != nil {
			return nil, err
		}
	}
	if p.tbl != nil {
		return nil, p.errf(p.tblLine, p.tblText, "table %s is not COMMITted by the end of the input: expected a COMMIT line after its rules (is the paste cut short?)", p.tbl.Name)
	}
	return p.rs, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// line handles one input line. Leading blanks are allowed because tickets
// often indent pasted output.
func (p *parser) line(n int, line string) *ingest.Error {
	s := trimSpace(line)
	if s == "" || s[0] == '#' {
		// "# Generated by", "# Completed on", "# Warning: iptables-legacy
		// tables present", "# Table `x' is incompatible": all comments.
		return nil
	}
	switch s[0] {
	case '*':
		return p.startTable(n, line, s[1:])
	case ':':
		return p.declareChain(n, line, s[1:])
	case '[':
		return p.countedRule(n, line, s)
	case '-':
		return p.rule(n, line, s, 0, 0, false)
	}
	if s == "COMMIT" {
		return p.commit(n, line)
	}
	if strings.HasPrefix(s, "COMMIT") && isSpace(s[len("COMMIT")]) {
		return p.errf(n, line, "unexpected text after COMMIT: expected COMMIT alone on its line")
	}
	return p.errf(n, line, "unrecognised line: expected *TABLE, :CHAIN POLICY [packets:bytes], -A CHAIN rule, COMMIT or a # comment")
}

// Built-in chains as a bit set, so that each table's set is one constant.
const (
	hookPrerouting = 1 << iota
	hookInput
	hookForward
	hookOutput
	hookPostrouting
)

func hookBit(chain string) int {
	switch chain {
	case "PREROUTING":
		return hookPrerouting
	case "INPUT":
		return hookInput
	case "FORWARD":
		return hookForward
	case "OUTPUT":
		return hookOutput
	case "POSTROUTING":
		return hookPostrouting
	}
	return 0
}

func hookNames(set int) string {
	var names []string
	for _, c := range [...]string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"} {
		if set&hookBit(c) != 0 {
			names = append(names, c)
		}
	}
	return strings.Join(names, ", ")
}

// tableHooks lists the built-in chains of each table iptables knows. The
// set matters: a chain named like a hook is built-in only in a table that
// has that hook, and iptables-restore refuses a policy on any other.
func tableHooks(name string) (int, bool) {
	switch name {
	case "filter", "security":
		return hookInput | hookForward | hookOutput, true
	case "nat":
		return hookPrerouting | hookInput | hookOutput | hookPostrouting, true
	case "mangle":
		return hookPrerouting | hookInput | hookForward | hookOutput | hookPostrouting, true
	case "raw":
		return hookPrerouting | hookOutput, true
	}
	return 0, false
}

func (p *parser) startTable(n int, line, name string) *ingest.Error {
	if p.tbl != nil {
		return p.errf(n, line, "table %s (line %d) is not COMMITted: expected COMMIT before the next *table", p.tbl.Name, p.tblLine)
	}
	name = trimSpace(name)
	if _, ok := tableHooks(name); !ok {
		if name == "" {
			return p.errf(n, line, "missing table name: expected *filter, *nat, *mangle, *raw or *security")
		}
		return p.errf(n, line, "unknown table %q: expected *filter, *nat, *mangle, *raw or *security", name)
	}
	if t := p.rs.Table(name); t != nil {
		// iptables-save prints each table once; a second copy would
		// leave the engine guessing which one the kernel has.
		return p.errf(n, line, "table %s appears twice (first at line %d): expected each table once", name, t.Origin.Line)
	}
	p.tbl = &model.Table{Name: name, Origin: model.Origin{File: p.file, Line: n, Text: line}}
	p.rs.Tables = append(p.rs.Tables, p.tbl)
	p.tblLine, p.tblText = n, line
	// Size the chain index for the declarations that follow (kube-proxy
	// hosts declare tens of thousands of chains), and find where the
	// rules after them start.
	decls, rules := 0, -1
	for pos := p.next; pos < len(p.text); {
		end := len(p.text)
		if i := strings.IndexByte(p.text[pos:], '\n'); i >= 0 {
			end = pos + i
		}
		l := p.text[pos:end]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if l != "" && l[0] != '#' && l[0] != ':' {
			if l[0] == '-' || l[0] == '[' {
				rules = pos
			}
			break
		}
		if l != "" && l[0] == ':' {
			decls++
		}
		pos = end + 1
	}
	p.chainIdx = make(map[string]int, decls)
	p.tbl.Chains = make([]*model.Chain, 0, decls)
	p.counts = p.counts[:0]
	p.tblRules, p.ruleChain = p.tblRules[:0], p.ruleChain[:0]
	p.lastIdx = -1
	p.lateDecl = false
	// A big run of rules is parsed on the other cores while this one
	// reads the declarations (see run.go).
	if rules >= 0 && p.startRun(rules, n) {
		return nil
	}
	// Otherwise, size the rule lists for the table's rules (an estimate:
	// the "-A" lines up to the next COMMIT), rather than growing them by
	// doubling, which on a 100k-rule table leaves megabytes of garbage
	// behind.
	rest := p.text[p.next:]
	if i := strings.Index(rest, "\nCOMMIT"); i >= 0 {
		rest = rest[:i]
	}
	if n := strings.Count(rest, "\n-A ") + 1; n > cap(p.tblRules) {
		p.tblRules, p.ruleChain = make([]*model.Rule, 0, n), make([]int32, 0, n)
	}
	return nil
}

// fields splits s on blanks without allocating more than the result.
func fields(s string, out []string) []string {
	out = out[:0]
	for i := 0; i < len(s); {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		if j > i {
			out = append(out, s[i:j])
		}
		i = j
	}
	return out
}

// parseCounters reads "[pkts:bytes]".
func parseCounters(s string) (pk, by uint64, ok bool) {
	if len(s) < 5 || s[0] != '[' || s[len(s)-1] != ']' {
		return 0, 0, false
	}
	a, b, found := strings.Cut(s[1:len(s)-1], ":")
	if !found {
		return 0, 0, false
	}
	pk, err1 := strconv.ParseUint(a, 10, 64)
	by, err2 := strconv.ParseUint(b, 10, 64)
	return pk, by, err1 == nil && err2 == nil
}

func isStandardVerdict(name string) bool {
	switch name {
	case "ACCEPT", "DROP", "RETURN", "QUEUE":
		return true
	}
	return false
}

func (p *parser) declareChain(n int, line, rest string) *ingest.Error {
	if p.tbl == nil {
		return p.errf(n, line, "chain declaration outside a table: expected *TABLE before it")
	}
	var buf [4]string
	f := fields(rest, buf[:0])
	if len(f) < 2 || len(f) > 3 {
		return p.errf(n, line, "malformed chain line: expected :CHAIN POLICY [packets:bytes], e.g. :INPUT ACCEPT [0:0] or :MYCHAIN - [0:0]")
	}
	name, policy := f[0], f[1]
	if len(f) == 3 {
		if _, _, ok := parseCounters(f[2]); !ok {
			return p.errf(n, line, "malformed counters %q: expected [packets:bytes] with decimal numbers", f[2])
		}
	}
	if name[0] == '-' {
		return p.errf(n, line, "chain name %q starts with '-': expected a chain name (iptables refuses such names)", name)
	}
	hooks, _ := tableHooks(p.tbl.Name)
	c := &p.slabs.chains.take(1)[0]
	*c = model.Chain{Name: name, Origin: model.Origin{File: p.file, Line: n, Text: line}}
	bit := hookBit(name)
	switch {
	case bit&hooks != 0:
		if policy != "ACCEPT" && policy != "DROP" {
			return p.errf(n, line, "built-in chain %s has policy %q: expected ACCEPT or DROP", name, policy)
		}
		c.Policy, c.Builtin = policy, true
	case policy != "-":
		if bit != 0 {
			return p.errf(n, line, "table %s has no built-in chain %s (it has %s): expected a user-defined chain with policy -", p.tbl.Name, name, hookNames(hooks))
		}
		return p.errf(n, line, "user-defined chain %s has policy %q: expected - (only built-in chains %s have a policy)", name, policy, hookNames(hooks))
	case isStandardVerdict(name):
		return p.errf(n, line, "chain name %s is a standard verdict: expected another name (iptables refuses it)", name)
	}
	// One map operation both checks for a duplicate and inserts.
	before := len(p.chainIdx)
	p.chainIdx[name] = len(p.tbl.Chains)
	if len(p.chainIdx) == before {
		return p.errf(n, line, "chain %s is declared twice in table %s: expected each chain once", name, p.tbl.Name)
	}
	p.tbl.Chains = append(p.tbl.Chains, c)
	p.counts = append(p.counts, 0)
	p.targets = targetCache{}
	if len(p.tblRules) > 0 {
		p.lateDecl = true
	}
	return nil
}

// countedRule handles "[pkts:bytes] -A ...", the form iptables-save -c prints.
func (p *parser) countedRule(n int, line, s string) *ingest.Error {
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return p.errf(n, line, "unterminated counters: expected [packets:bytes] -A CHAIN ...")
	}
	pk, by, ok := parseCounters(s[:end+1])
	if !ok {
		return p.errf(n, line, "malformed counters %q: expected [packets:bytes] with decimal numbers", s[:end+1])
	}
	rest := s[end+1:]
	if rest == "" || !isSpace(rest[0]) {
		return p.errf(n, line, "expected a rule after the counters: [packets:bytes] -A CHAIN ...")
	}
	rest = trimSpace(rest)
	if rest == "" || rest[0] != '-' {
		return p.errf(n, line, "expected a rule after the counters: [packets:bytes] -A CHAIN ...")
	}
	return p.rule(n, line, rest, pk, by, true)
}

func (p *parser) commit(n int, line string) *ingest.Error {
	if p.tbl == nil {
		return p.errf(n, line, "COMMIT outside a table: expected *TABLE before it")
	}
	p.distribute()
	if err := p.checkTable(); err != nil {
		return err
	}
	p.tbl, p.chainIdx = nil, nil
	return nil
}

// distribute gives each chain of the table its rules, in order, as slices
// of one array sized to the table.
func (p *parser) distribute() {
	if len(p.tblRules) == 0 {
		return
	}
	all := make([]*model.Rule, len(p.tblRules))
	off := 0
	for ci, c := range p.tbl.Chains {
		n := p.counts[ci]
		if n > 0 {
			c.Rules = all[off : off : off+n]
		}
		off += n
	}
	for k, r := range p.tblRules {
		c := p.tbl.Chains[p.ruleChain[k]]
		c.Rules = append(c.Rules, r) // within capacity: no allocation
	}
}
