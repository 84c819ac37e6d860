package model

// Ruleset is one family's netfilter configuration as iptables-save prints
// it: tables, each with chains, each with rules in order.
type Ruleset struct {
	// Family is 4 for iptables, 6 for ip6tables.
	Family int
	Tables []*Table
	Origin Origin
}

// Table returns the named table (filter, nat, mangle, raw, security) or nil.
func (r *Ruleset) Table(name string) *Table {
	if r == nil {
		return nil
	}
	for _, t := range r.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Table is one netfilter table.
type Table struct {
	Name   string
	Chains []*Chain
	Origin Origin // the "*nat" line
}

// Chain returns the named chain or nil.
func (t *Table) Chain(name string) *Chain {
	if t == nil {
		return nil
	}
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Chain is a built-in or user-defined chain.
type Chain struct {
	Name string
	// Policy is ACCEPT or DROP for built-in chains, empty for user chains
	// (iptables-save prints "-").
	Policy  string
	Builtin bool
	Rules   []*Rule
	Origin  Origin // the ":CHAIN POLICY [p:b]" line
}

// Rule is one "-A CHAIN ..." line, split into its parts but not yet given
// meaning: the netfilter package compiles it.
type Rule struct {
	Chain string
	// Pos is the rule's 1-based position in its chain, as
	// `iptables -L --line-numbers` would number it.
	Pos int
	// Base matches: the options iptables handles itself (-s -d -i -o -p -f).
	Matches []Match
	// Target is the -j or -g target: a chain name or an extension
	// (ACCEPT, DROP, DNAT ...). Empty when the rule has no target (a
	// counting rule).
	Target string
	// Goto is true for -g (goto) rather than -j (jump).
	Goto bool
	// TargetChain, when not zero, is 1 + the index in its table's
	// Chains of the chain Target names, as the iptables-save parser
	// resolved it; zero when Target is no chain or was not resolved. It
	// is a hint that spares consumers a lookup by name in a table of tens
	// of thousands of chains: they check that the chain at that index has
	// the name Target before relying on it, and look the name up
	// otherwise.
	TargetChain int32
	// TargetOpts are the options after the target, in order.
	TargetOpts []Option
	// Counters as written with iptables-save -c ([pkts:bytes]), if any.
	Packets, Bytes uint64
	Origin         Origin // the whole "-A" line
	// Lossy lists what the input could not say about this rule, one
	// sentence each: a rule read back from `iptables -L` may have lost
	// which match module wrote a port, a truncated interface name, its
	// table... The netfilter package reports these as uncertainties
	// whenever the rule decides a packet's fate.
	Lossy []string
}

// Match is one match: either a base match (Module "" and a single option
// such as -s) or a match extension loaded by -m with its options.
type Match struct {
	// Module is the -m name (tcp, conntrack, multiport ...), or "" for the
	// base options (-s, -d, -i, -o, -p, -f) which come one per Match.
	Module  string
	Options []Option
}

// Option is one option with its arguments, e.g. "--dport" ["80"], negated
// when "!" preceded it.
type Option struct {
	Name   string // with dashes, as written in long form: "--dport", "-s"
	Negate bool
	Args   []string
}
