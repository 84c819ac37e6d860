// Package iptlist reads the listing `iptables -L -n -v` prints (with or
// without --line-numbers, -x, -t TABLE or a chain name; ip6tables too)
// back into a *model.Ruleset.
//
// A listing is not iptables-save: it prints each rule as columns (target,
// protocol, fragment flag, interfaces, addresses) followed by what every
// match and target module chooses to print ("tcp dpt:443", "ctstate
// RELATED,ESTABLISHED", "to:172.17.0.2:443"). The parser reads each rule
// back into the iptables-save form it came from where that form is
// unambiguous — the listing's `tcp dpt:443` is written only by the tcp
// match, so it is exactly `-p tcp -m tcp --dport 443` — and the result is
// then read by the iptsave parser, so a listing and an iptables-save of
// the same rules give the same model.
//
// What a listing does not say is recorded on the rule in Rule.Lossy, so
// that the netfilter package can name it in a trace's uncertainties when
// the rule decides a packet's fate:
//
//   - the table, when neither a `-t TABLE` on the command line pasted with
//     it nor the caller says which (the table is then inferred from the
//     targets and chain names, and each rule says so);
//   - the interfaces, in a listing made without -v (it has no in/out
//     columns: every -i and -o is lost);
//   - the `!` glued to an interface name (`!docker0`): it is read as a
//     negation, which is what iptables means by it, but an interface
//     literally named "!docker0" would print the same (see
//     ResolveInterfaces, which drops the note when the node has no such
//     interface);
//   - match and target text the parser cannot read back (an unknown match
//     becomes a match that netfilter reports as unknown, so the rule is
//     never silently widened).
//
// Chains the listing does not show — the other built-in chains of a table
// it lists, or a chain a listed rule jumps to — are added with a single
// placeholder rule (no match, no target) whose Lossy note says the chain's
// rules are unknown: a packet that crosses such a chain gets that note in
// its trace. Placeholder tables for tables the listing lacks entirely
// come from Unlisted.
//
// Counters are read (with the K, M, G and T suffixes of a listing made
// without -x, so they are approximate) but never change a trace.
//
// Errors are *ingest.Error naming the file, the listing line and what was
// expected; a listing made without -n (host and service names instead of
// numbers) is refused with that hint.
package iptlist

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// Tables lists the tables a listing can come from, in iptables-save order.
var Tables = []string{"raw", "mangle", "nat", "filter", "security"}

// NoteBangIface starts the Lossy note for an interface printed with a
// glued "!" (see ResolveInterfaces).
const NoteBangIface = "the listing glues ! to interface "

// Parse reads a listing of family 4 (iptables) or 6 (ip6tables). table is
// the table the listing is known to come from ("nat" for a file named
// iptables-L-nat), or "" when only the listing can say. file names the
// input in errors and Origins.
func Parse(file string, r io.Reader, family int, table string) (*model.Ruleset, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	return ParseString(file, string(b), family, table)
}

// ParseString is Parse for text already in memory.
func ParseString(file, text string, family int, table string) (*model.Ruleset, error) {
	if family != 4 && family != 6 {
		return nil, ingest.Errorf(file, 0, "", "family %d: expected 4 (iptables) or 6 (ip6tables)", family)
	}
	if table != "" && !slices.Contains(Tables, table) {
		return nil, ingest.Errorf(file, 0, "", "unknown table %q: expected raw, mangle, nat, filter or security", table)
	}
	p := &parser{file: file, family: family, table: table}
	rs, err := p.parse(text)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// block is one "Chain NAME (...)" section of the listing.
type block struct {
	chain  string
	policy string // ACCEPT or DROP for a built-in chain, "" for a user chain
	pk, by uint64 // the policy counters
	line   int
	text   string
	// table is the table the block belongs to; why says how that was
	// decided when it was inferred rather than given.
	table string
	why   string
	// Columns, from the header line.
	header         bool
	num, verbose   bool
	rows           []*row
	promptTable    string // -t from the command line pasted before the block
	promptExplicit bool   // a command line was pasted (its -t, or filter)
}

// row is one rule of a block.
type row struct {
	line   int
	text   string
	target string
	goTo   bool
	// body is the rule in iptables-save form after "-A CHAIN".
	body   string
	lossy  []string
	pk, by uint64
	// The columns after the counters and their layout, read into body
	// once every chain of the listing is known.
	cols []string
	lay  layout
}

type parser struct {
	file   string
	family int
	table  string

	blocks []*block
	cur    *block
	// The table a pasted command line named, for the blocks after it.
	promptTable    string
	promptExplicit bool
	promptLine     int
}

func (p *parser) errf(line int, text, format string, args ...any) *ingest.Error {
	return ingest.Errorf(p.file, line, text, format, args...)
}

func (p *parser) parse(text string) (*model.Ruleset, *ingest.Error) {
	n := 0
	for pos := 0; pos < len(text); {
		var line string
		if i := strings.IndexByte(text[pos:], '\n'); i >= 0 {
			line, pos = text[pos:pos+i], pos+i+1
		} else {
			line, pos = text[pos:], len(text)
		}
		n++
		line = strings.TrimSuffix(line, "\r")
		if err := p.line(n, line); err != nil {
			return nil, err
		}
	}
	if p.cur != nil && !p.cur.header {
		return nil, p.errf(p.cur.line, p.cur.text, "chain %s has no column header: expected the line after it to start with pkts, num or target", p.cur.chain)
	}
	if len(p.blocks) == 0 {
		return &model.Ruleset{Family: p.family, Origin: model.Origin{File: p.file}}, nil
	}
	if err := p.assignTables(); err != nil {
		return nil, err
	}
	return p.build()
}

func (p *parser) line(n int, line string) *ingest.Error {
	t := strings.TrimSpace(line)
	switch {
	case t == "":
		// A blank line ends a chain's rows.
		if p.cur != nil && p.cur.header {
			p.cur = nil
		}
		return nil
	case strings.HasPrefix(t, "```"), t[0] == '#' && !isToolPrompt(t):
		// Code fences, and the warnings iptables-nft and
		// iptables-legacy print ("# Warning: iptables-legacy tables
		// present ...").
		return nil
	case isPrompt(t):
		return p.prompt(n, line, t)
	case strings.HasPrefix(t, "Chain "):
		if p.cur != nil && !p.cur.header {
			return p.errf(p.cur.line, p.cur.text, "chain %s has no column header: expected the line after it to start with pkts, num or target", p.cur.chain)
		}
		return p.chain(n, line, t)
	case p.cur == nil:
		return p.errf(n, line, "unexpected line outside a chain: expected \"Chain NAME (policy ...)\" or \"Chain NAME (N references)\" before rules (is this `iptables -L -n -v` output?)")
	case !p.cur.header:
		return p.header(n, line, t)
	}
	r, err := p.row(n, line, t)
	if err != nil {
		return err
	}
	p.cur.rows = append(p.cur.rows, r)
	return nil
}

// prompt handles a pasted command line: "[root@h ~]# iptables -t nat -L -n -v".
func (p *parser) prompt(n int, line, t string) *ingest.Error {
	p.cur = nil
	cmd := promptCommand(t)
	f := strings.Fields(cmd)
	if len(f) > 0 && f[0] == "sudo" {
		f = f[1:]
	}
	if len(f) == 0 {
		return nil
	}
	tool := f[0]
	if i := strings.LastIndexByte(tool, '/'); i >= 0 {
		tool = tool[i+1:]
	}
	fam := 0
	switch tool {
	case "iptables", "iptables-legacy", "iptables-nft":
		fam = 4
	case "ip6tables", "ip6tables-legacy", "ip6tables-nft":
		fam = 6
	}
	if fam == 0 {
		// Another command: whatever it printed is not a listing, and
		// the next lines are errors unless a listing follows.
		p.promptTable, p.promptExplicit = "", false
		return nil
	}
	if fam != p.family {
		return p.errf(n, line, "this is %s output, but the file holds %s: put it in the %s file", tool,
			map[int]string{4: "iptables (IPv4)", 6: "ip6tables (IPv6)"}[p.family],
			map[int]string{4: "iptables-L", 6: "ip6tables-L"}[fam])
	}
	table := "filter"
	for i := 1; i < len(f); i++ {
		a := f[i]
		switch {
		case a == "-t" || a == "--table":
			if i+1 < len(f) {
				table = f[i+1]
				i++
			}
		case strings.HasPrefix(a, "--table="):
			table = strings.TrimPrefix(a, "--table=")
		case strings.HasPrefix(a, "-t") && len(a) > 2 && !strings.HasPrefix(a, "--"):
			table = a[2:]
		}
	}
	if !slices.Contains(Tables, table) {
		return p.errf(n, line, "unknown table %q on the command line: expected raw, mangle, nat, filter or security", table)
	}
	if p.table != "" && table != p.table {
		return p.errf(n, line, "the command line lists table %s, but the file is for table %s: move this listing to the %s file", table, p.table, table)
	}
	p.promptTable, p.promptExplicit, p.promptLine = table, true, n
	return nil
}

// chain parses "Chain NAME (policy ACCEPT 237 packets, 20509 bytes)",
// "Chain NAME (policy DROP)" or "Chain NAME (2 references)".
func (p *parser) chain(n int, line, t string) *ingest.Error {
	rest := strings.TrimSpace(t[len("Chain "):])
	name, paren, ok := strings.Cut(rest, " ")
	paren = strings.TrimSpace(paren)
	const want = "expected \"Chain NAME (policy ACCEPT|DROP [N packets, M bytes])\" or \"Chain NAME (N references)\""
	if !ok || name == "" || !strings.HasPrefix(paren, "(") || !strings.HasSuffix(paren, ")") {
		return p.errf(n, line, "malformed chain line: %s", want)
	}
	b := &block{chain: name, line: n, text: line, promptTable: p.promptTable, promptExplicit: p.promptExplicit}
	f := strings.Fields(paren[1 : len(paren)-1])
	switch {
	case len(f) >= 2 && f[0] == "policy":
		if f[1] != "ACCEPT" && f[1] != "DROP" {
			return p.errf(n, line, "policy %q: expected ACCEPT or DROP", f[1])
		}
		b.policy = f[1]
		switch {
		case len(f) == 2:
		case len(f) == 6 && f[3] == "packets," && f[5] == "bytes":
			var ok1, ok2 bool
			b.pk, ok1 = counter(f[2])
			b.by, ok2 = counter(f[4])
			if !ok1 || !ok2 {
				return p.errf(n, line, "malformed policy counters: expected \"policy %s N packets, M bytes\"", f[1])
			}
		default:
			return p.errf(n, line, "malformed chain line: %s", want)
		}
		if hookOf(name) == 0 {
			return p.errf(n, line, "chain %s has a policy, but only the built-in chains (PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING) have one", name)
		}
	case len(f) == 2 && (f[1] == "references" || f[1] == "reference") && isDigits(f[0]):
		if hookOf(name) != 0 {
			return p.errf(n, line, "built-in chain %s is shown without its policy: expected \"Chain %s (policy ACCEPT|DROP ...)\"", name, name)
		}
	default:
		return p.errf(n, line, "malformed chain line: %s", want)
	}
	if strings.HasPrefix(name, "-") || strings.HasPrefix(name, "!") {
		return p.errf(n, line, "chain name %q: expected a name that does not start with - or !", name)
	}
	p.blocks = append(p.blocks, b)
	p.cur = b
	return nil
}

// header reads the column header: "[num] [pkts bytes] target prot opt
// [in out] source destination".
func (p *parser) header(n int, line, t string) *ingest.Error {
	f := strings.Fields(t)
	i := 0
	b := p.cur
	if i < len(f) && f[i] == "num" {
		b.num = true
		i++
	}
	if i+1 < len(f) && f[i] == "pkts" && f[i+1] == "bytes" {
		b.verbose = true
		i += 2
	}
	want := []string{"target", "prot", "opt"}
	if b.verbose {
		want = append(want, "in", "out")
	}
	want = append(want, "source", "destination")
	if !slices.Equal(f[i:], want) {
		return p.errf(n, line, "unexpected column header after chain %s: expected \"[num] [pkts bytes] target prot opt [in out] source destination\"", b.chain)
	}
	b.header = true
	return nil
}

// row reads one rule line.
func (p *parser) row(n int, line, t string) (*row, *ingest.Error) {
	b := p.cur
	f := strings.Fields(t)
	r := &row{line: n, text: line}
	i := 0
	if b.num {
		if len(f) == 0 || !isDigits(f[0]) {
			return nil, p.errf(n, line, "expected the rule number first (the listing has a num column)")
		}
		num, _ := strconv.Atoi(f[0])
		if num != len(b.rows)+1 {
			return nil, p.errf(n, line, "rule number %d in chain %s, expected %d: are lines missing from the listing?", num, b.chain, len(b.rows)+1)
		}
		i++
	}
	if b.verbose {
		if i+1 >= len(f) {
			return nil, p.errf(n, line, "expected packet and byte counters (the listing has pkts and bytes columns)")
		}
		var ok1, ok2 bool
		r.pk, ok1 = counter(f[i])
		r.by, ok2 = counter(f[i+1])
		if !ok1 || !ok2 {
			return nil, p.errf(n, line, "expected packet and byte counters such as 12 or 36K, got %q and %q", f[i], f[i+1])
		}
		i += 2
	}
	cols := f[i:]
	lay, msg := p.layout(cols, b.verbose)
	if msg != "" {
		return nil, p.errf(n, line, "%s", msg)
	}
	r.cols, r.lay = cols, lay
	if lay.target {
		r.target = cols[0]
	}
	return r, nil
}

// layout says where the columns of a row are: whether it has a target
// (a counting rule's target column is blank) and an opt column (ip6tables
// may leave it blank).
type layout struct {
	target, opt bool
	// n is the number of fixed columns (target prot opt in out src dst).
	n int
}

func (p *parser) layout(c []string, verbose bool) (layout, string) {
	for _, l := range []layout{{true, true, 0}, {false, true, 0}, {true, false, 0}, {false, false, 0}} {
		if p.family == 4 && !l.opt {
			continue
		}
		k := 0
		if l.target {
			k++
		}
		if k >= len(c) || !isProto(c[k]) {
			continue
		}
		k++
		if l.opt {
			if k >= len(c) || !isOptCol(c[k]) {
				continue
			}
			k++
		}
		if verbose {
			k += 2
		}
		if k+1 >= len(c) {
			continue
		}
		if _, ok := addrCol(c[k], p.family); !ok {
			continue
		}
		if _, ok := addrCol(c[k+1], p.family); !ok {
			continue
		}
		l.n = k + 2
		return l, ""
	}
	// Say what is wrong with the most likely reading.
	for _, a := range c {
		if a == "anywhere" || (strings.Contains(a, ".") && !strings.ContainsAny(a, "0123456789:")) {
			return layout{}, fmt.Sprintf("%q is a name: expected numeric output; list with -n (iptables -L -n -v)", a)
		}
	}
	if verbose {
		return layout{}, "expected the columns target, prot, opt, in, out, source and destination (source and destination as addresses)"
	}
	return layout{}, "expected the columns target, prot, opt, source and destination (source and destination as addresses)"
}

// isOptCol reports whether s is the opt column: "--", "-f" or "!f".
func isOptCol(s string) bool { return s == "--" || s == "-f" || s == "!f" }

// isProto reports whether s can be the prot column.
func isProto(s string) bool {
	s = strings.TrimPrefix(s, "!")
	if s == "" || isOptCol(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// counter parses a listing counter: 12, 36084, 12K, 3M (a listing without
// -x rounds to K, M, G, T).
func counter(s string) (uint64, bool) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1000, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1000*1000, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1000*1000*1000, s[:len(s)-1]
	case strings.HasSuffix(s, "T"):
		mult, s = 1000*1000*1000*1000, s[:len(s)-1]
	}
	if !isDigits(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > ^uint64(0)/mult {
		return 0, false
	}
	return v * mult, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// hookOf returns a bit for a built-in chain name, 0 for others.
func hookOf(chain string) int {
	switch chain {
	case "PREROUTING":
		return 1
	case "INPUT":
		return 2
	case "FORWARD":
		return 4
	case "OUTPUT":
		return 8
	case "POSTROUTING":
		return 16
	}
	return 0
}

// tableHooks lists the built-in chains of each table, in the order
// iptables-save declares them.
func tableHooks(table string) []string {
	switch table {
	case "raw":
		return []string{"PREROUTING", "OUTPUT"}
	case "mangle":
		return []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
	case "nat":
		return []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}
	}
	return []string{"INPUT", "FORWARD", "OUTPUT"}
}

// isToolPrompt reports whether a line starting with '#' is a root prompt
// running iptables ("# iptables -t nat -L -n -v") rather than a comment.
func isToolPrompt(t string) bool {
	f := strings.Fields(promptCommand(t))
	if len(f) > 0 && f[0] == "sudo" {
		f = f[1:]
	}
	return len(f) > 0 && strings.Contains(f[0], "tables")
}

// isPrompt recognises a pasted shell prompt with its command:
// "[root@mayura ~]# iptables -L", "root@h:~# iptables -L", "$ iptables -L".
func isPrompt(t string) bool {
	return promptCommand(t) != ""
}

// promptCommand returns the command of a prompt line, or "".
func promptCommand(t string) string { return ingest.PromptCommand(t) }
