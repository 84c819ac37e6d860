// Package synth builds the iptables rulesets that platforms install on
// their own — libvirt for its virtual networks, Docker for its bridge
// networks and published ports — from the descriptions users have
// (`virsh net-dumpxml`, `docker network inspect`), for `--synthesize`.
//
// A Builder replays the iptables commands a platform runs (-N, -I, -A,
// -P, "insert unless it exists") in the order it runs them, so that the
// resulting chains hold the rules in the order the kernel would; the
// platform packages (libvirt, docker) know which commands to run. The
// result is written as iptables-save text and read with the iptsave
// parser, so a synthesized ruleset is exactly what iptables-save would
// print on such a host. Every synthesized rule, chain and table has an
// Origin marked Synthesized whose Text is the rule line and whose File
// says what it was synthesized from.
package synth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
)

// Source says what a synthesized rule comes from: the input file (relative
// to the snapshot) and the line of the element that caused it.
type Source struct {
	File string
	Line int
}

// Origin returns the Origin of a fact synthesized from s, with text.
func (s Source) Origin(text string) model.Origin {
	return model.Origin{File: "synthesized from " + s.File, Line: s.Line, Text: text, Synthesized: true}
}

// Builder accumulates one family's ruleset.
type Builder struct {
	family int
	tables []*table
}

type table struct {
	name   string
	src    Source
	chains []*chain
}

type chain struct {
	name    string
	policy  string // "" for user chains
	builtin bool
	src     Source
	rules   []rule
}

type rule struct {
	body string
	src  Source
}

// New returns an empty builder for family 4 (iptables) or 6 (ip6tables).
func New(family int) *Builder { return &Builder{family: family} }

// Family returns 4 or 6.
func (b *Builder) Family() int { return b.family }

// Empty reports whether nothing was added.
func (b *Builder) Empty() bool { return len(b.tables) == 0 }

// builtins lists each table's built-in chains in iptables-save order.
func builtins(t string) []string {
	switch t {
	case "raw":
		return []string{"PREROUTING", "OUTPUT"}
	case "mangle":
		return []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
	case "nat":
		return []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}
	}
	return []string{"INPUT", "FORWARD", "OUTPUT"}
}

// table returns the named table, creating it with its built-in chains
// (policy ACCEPT, as the kernel starts them).
func (b *Builder) table(name string, src Source) *table {
	for _, t := range b.tables {
		if t.name == name {
			return t
		}
	}
	t := &table{name: name, src: src}
	for _, c := range builtins(name) {
		t.chains = append(t.chains, &chain{name: c, policy: "ACCEPT", builtin: true, src: src})
	}
	b.tables = append(b.tables, t)
	return t
}

func (t *table) chain(name string) *chain {
	for _, c := range t.chains {
		if c.name == name {
			return c
		}
	}
	return nil
}

// NewChain is `iptables -t TABLE -N CHAIN` unless the chain exists.
func (b *Builder) NewChain(tbl, name string, src Source) {
	t := b.table(tbl, src)
	if t.chain(name) == nil {
		t.chains = append(t.chains, &chain{name: name, src: src})
	}
}

// Policy is `iptables -t TABLE -P CHAIN POLICY`.
func (b *Builder) Policy(tbl, name, policy string, src Source) {
	t := b.table(tbl, src)
	if c := t.chain(name); c != nil && c.builtin {
		c.policy = policy
		c.src = src
	}
}

// mustChain returns a chain, creating a user chain when missing (iptables
// would refuse the rule; the platform packages always create chains
// first, so this only keeps a mistake visible in the output).
func (b *Builder) mustChain(tbl, name string, src Source) *chain {
	b.NewChain(tbl, name, src)
	return b.table(tbl, src).chain(name)
}

// Insert is `iptables -t TABLE -I CHAIN BODY`: the rule goes first.
func (b *Builder) Insert(tbl, name, body string, src Source) {
	c := b.mustChain(tbl, name, src)
	c.rules = slices.Insert(c.rules, 0, rule{body, src})
}

// Append is `iptables -t TABLE -A CHAIN BODY`.
func (b *Builder) Append(tbl, name, body string, src Source) {
	c := b.mustChain(tbl, name, src)
	c.rules = append(c.rules, rule{body, src})
}

// Exists is `iptables -t TABLE -C CHAIN BODY`.
func (b *Builder) Exists(tbl, name, body string) bool {
	for _, t := range b.tables {
		if t.name != tbl {
			continue
		}
		if c := t.chain(name); c != nil {
			return slices.ContainsFunc(c.rules, func(r rule) bool { return r.body == body })
		}
	}
	return false
}

// Delete is `iptables -t TABLE -D CHAIN BODY` (the first such rule).
func (b *Builder) Delete(tbl, name, body string) {
	for _, t := range b.tables {
		if t.name != tbl {
			continue
		}
		if c := t.chain(name); c != nil {
			if i := slices.IndexFunc(c.rules, func(r rule) bool { return r.body == body }); i >= 0 {
				c.rules = slices.Delete(c.rules, i, i+1)
			}
		}
	}
}

// InsertUnless inserts a rule unless it exists (what Docker and libvirt
// do to be idempotent).
func (b *Builder) InsertUnless(tbl, name, body string, src Source) {
	if !b.Exists(tbl, name, body) {
		b.Insert(tbl, name, body, src)
	}
}

// AppendUnless appends a rule unless it exists.
func (b *Builder) AppendUnless(tbl, name, body string, src Source) {
	if !b.Exists(tbl, name, body) {
		b.Append(tbl, name, body, src)
	}
}

// EnsureFirst moves a rule to the top of the chain (deleting a copy
// further down), as Docker's EnsureJumpRule does.
func (b *Builder) EnsureFirst(tbl, name, body string, src Source) {
	b.Delete(tbl, name, body)
	b.Insert(tbl, name, body, src)
}

// Text writes the ruleset as iptables-save text.
func (b *Builder) Text() string {
	var s strings.Builder
	for _, t := range b.tables {
		fmt.Fprintf(&s, "*%s\n", t.name)
		for _, c := range t.chains {
			pol := "-"
			if c.builtin {
				pol = c.policy
			}
			fmt.Fprintf(&s, ":%s %s [0:0]\n", c.name, pol)
		}
		for _, c := range t.chains {
			for _, r := range c.rules {
				fmt.Fprintf(&s, "-A %s %s\n", c.name, r.body)
			}
		}
		s.WriteString("COMMIT\n")
	}
	return s.String()
}

// Ruleset reads the built rules back with the iptsave parser and gives
// every table, chain and rule its synthesized Origin. It fails only when a
// platform package wrote a rule iptables-save could not print, which is a
// bug; the error then names the rule.
func (b *Builder) Ruleset() (*model.Ruleset, error) {
	if b.Empty() {
		return nil, nil
	}
	text := b.Text()
	rs, err := iptsave.ParseString("synthesized", text, b.family)
	if err != nil {
		return nil, fmt.Errorf("synthesized ruleset is malformed (a bug): %w", err)
	}
	// Origins in rule order: tables, then each table's chains, then its
	// rules, as Text wrote them.
	lines := strings.Split(text, "\n")
	srcOf := map[int]Source{}
	n := 0
	for _, t := range b.tables {
		n++
		srcOf[n] = t.src
		for _, c := range t.chains {
			n++
			srcOf[n] = c.src
		}
		for _, c := range t.chains {
			for _, r := range c.rules {
				n++
				srcOf[n] = r.src
			}
		}
		n++ // COMMIT
	}
	set := func(o *model.Origin) {
		line := o.Line
		text := ""
		if line >= 1 && line <= len(lines) {
			text = lines[line-1]
		}
		*o = srcOf[line].Origin(text)
	}
	rs.Origin = b.tables[0].src.Origin("")
	for _, t := range rs.Tables {
		set(&t.Origin)
		for _, c := range t.Chains {
			set(&c.Origin)
			for _, r := range c.Rules {
				set(&r.Origin)
			}
		}
	}
	return rs, nil
}
