package conformance

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// topo is a scenario as the generator builds it: the inline form of a
// snapshot's topology.yaml (see internal/snapshot), written out by yaml
// and loaded back by snapshot.Load, so that what is checked is exactly
// what a saved failure reproduces.
type topo struct {
	comment []string
	nodes   []*node
	links   []link
	names   map[string][]string
}

type node struct {
	name, kind string
	ifaces     []*iface
	routes     []string
	rules      []string
	neighbors  []string
	sysctl     [][2]string
	listen     []string
	owns       []string
	ttl        int
	fw, fw6    *ipt // iptables and ip6tables
}

type iface struct {
	name, kind, master, mac string
	addrs                   []string
	down, hairpin           bool
}

type link struct {
	kind string // veth, tap, segment
	ends []string
}

func (t *topo) add(name, kind string) *node {
	n := &node{name: name, kind: kind}
	t.nodes = append(t.nodes, n)
	return n
}

func (t *topo) node(name string) *node {
	for _, n := range t.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (t *topo) wire(kind string, ends ...string) {
	t.links = append(t.links, link{kind: kind, ends: ends})
}

func (n *node) iface(name string, addrs ...string) *iface {
	i := &iface{name: name, addrs: addrs}
	n.ifaces = append(n.ifaces, i)
	return i
}

func (n *node) getIface(name string) *iface {
	for _, i := range n.ifaces {
		if i.name == name {
			return i
		}
	}
	return nil
}

func (n *node) route(format string, a ...any) { n.routes = append(n.routes, fmt.Sprintf(format, a...)) }
func (n *node) set(k, v string)               { n.sysctl = append(n.sysctl, [2]string{k, v}) }
func (n *node) listens(specs ...string)       { n.listen = append(n.listen, specs...) }

// hasIPv6 reports whether one of the node's interfaces has an IPv6
// address.
func (n *node) hasIPv6() bool {
	for _, i := range n.ifaces {
		for _, a := range i.addrs {
			if strings.Contains(a, ":") {
				return true
			}
		}
	}
	return false
}

// firewall returns the node's iptables ruleset, creating it.
func (n *node) firewall() *ipt {
	if n.fw == nil {
		n.fw = &ipt{}
	}
	return n.fw
}

// firewall6 returns the node's ip6tables ruleset, creating it.
func (n *node) firewall6() *ipt {
	if n.fw6 == nil {
		n.fw6 = &ipt{}
	}
	return n.fw6
}

// ipt builds an iptables-save text: tables with built-in chains (policy
// ACCEPT unless set), user chains, and rules in order.
type ipt struct {
	tables []*itable
}

type itable struct {
	name   string
	chains []*ichain
}

type ichain struct {
	name, policy string
	builtin      bool
	rules        []string
}

var builtinChains = map[string][]string{
	"raw":    {"PREROUTING", "OUTPUT"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
}

var tableOrder = []string{"raw", "mangle", "nat", "filter"}

func (f *ipt) table(name string) *itable {
	for _, t := range f.tables {
		if t.name == name {
			return t
		}
	}
	t := &itable{name: name}
	for _, c := range builtinChains[name] {
		t.chains = append(t.chains, &ichain{name: c, policy: "ACCEPT", builtin: true})
	}
	f.tables = append(f.tables, t)
	sort.SliceStable(f.tables, func(i, j int) bool { return rank(f.tables[i].name) < rank(f.tables[j].name) })
	return t
}

func rank(table string) int {
	for i, t := range tableOrder {
		if t == table {
			return i
		}
	}
	return len(tableOrder)
}

func (f *ipt) chain(table, name string) *ichain {
	t := f.table(table)
	for _, c := range t.chains {
		if c.name == name {
			return c
		}
	}
	c := &ichain{name: name}
	t.chains = append(t.chains, c)
	return c
}

// A appends a rule ("-A CHAIN " + rule).
func (f *ipt) A(table, chain, rule string, a ...any) {
	c := f.chain(table, chain)
	c.rules = append(c.rules, fmt.Sprintf(rule, a...))
}

// I inserts a rule at the top of a chain.
func (f *ipt) I(table, chain, rule string, a ...any) {
	c := f.chain(table, chain)
	c.rules = append([]string{fmt.Sprintf(rule, a...)}, c.rules...)
}

// P sets a built-in chain's policy.
func (f *ipt) P(table, chain, policy string) { f.chain(table, chain).policy = policy }

// N declares a user chain.
func (f *ipt) N(table, chain string) { f.chain(table, chain) }

// text is the ruleset as iptables-save (legacy) prints it: built-in
// chains, then user chains by name, then the rules chain by chain.
func (f *ipt) text() string {
	var b strings.Builder
	for _, t := range f.tables {
		fmt.Fprintf(&b, "*%s\n", t.name)
		chains := append([]*ichain(nil), t.chains...)
		sort.SliceStable(chains, func(i, j int) bool {
			if chains[i].builtin != chains[j].builtin {
				return chains[i].builtin
			}
			if chains[i].builtin {
				return false
			}
			return chains[i].name < chains[j].name
		})
		for _, c := range chains {
			pol := "-"
			if c.builtin {
				pol = c.policy
			}
			fmt.Fprintf(&b, ":%s %s [0:0]\n", c.name, pol)
		}
		for _, c := range chains {
			for _, r := range c.rules {
				fmt.Fprintf(&b, "-A %s %s\n", c.name, r)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// yaml writes the topology as topology.yaml with every node's state
// inline.
func (t *topo) yaml() []byte {
	var b strings.Builder
	for _, c := range t.comment {
		fmt.Fprintf(&b, "# %s\n", c)
	}
	b.WriteString("nodes:\n")
	for _, n := range t.nodes {
		fmt.Fprintf(&b, "  %s:\n", n.name)
		fmt.Fprintf(&b, "    kind: %s\n", n.kind)
		if len(n.sysctl) > 0 {
			b.WriteString("    sysctl:\n")
			for _, kv := range n.sysctl {
				fmt.Fprintf(&b, "      %s: %s\n", kv[0], q(kv[1]))
			}
		}
		if n.ttl > 0 {
			fmt.Fprintf(&b, "    ttl: %d\n", n.ttl)
		}
		if len(n.owns) > 0 {
			fmt.Fprintf(&b, "    owns: [%s]\n", strings.Join(n.owns, ", "))
		}
		if len(n.listen) > 0 {
			var qs []string
			for _, l := range n.listen {
				qs = append(qs, q(l))
			}
			fmt.Fprintf(&b, "    listen: [%s]\n", strings.Join(qs, ", "))
		}
		if len(n.ifaces) > 0 {
			b.WriteString("    interfaces:\n")
			for _, i := range n.ifaces {
				var f []string
				if len(i.addrs) > 0 {
					f = append(f, "addrs: ["+strings.Join(i.addrs, ", ")+"]")
				}
				if i.kind != "" {
					f = append(f, "kind: "+i.kind)
				}
				if i.master != "" {
					f = append(f, "master: "+i.master)
				}
				if i.mac != "" {
					f = append(f, "mac: "+q(i.mac))
				}
				if i.hairpin {
					f = append(f, "hairpin: true")
				}
				if i.down {
					f = append(f, "up: false")
				}
				fmt.Fprintf(&b, "      %s: {%s}\n", i.name, strings.Join(f, ", "))
			}
		}
		for _, l := range []struct {
			key   string
			items []string
		}{{"routes", n.routes}, {"rules", n.rules}, {"neighbors", n.neighbors}} {
			if len(l.items) == 0 {
				continue
			}
			fmt.Fprintf(&b, "    %s:\n", l.key)
			for _, it := range l.items {
				fmt.Fprintf(&b, "      - %s\n", q(it))
			}
		}
		for _, fw := range []struct {
			key string
			f   *ipt
		}{{"iptables", n.fw}, {"ip6tables", n.fw6}} {
			if fw.f == nil || len(fw.f.tables) == 0 {
				continue
			}
			fmt.Fprintf(&b, "    %s: |\n", fw.key)
			for _, line := range strings.Split(strings.TrimRight(fw.f.text(), "\n"), "\n") {
				fmt.Fprintf(&b, "      %s\n", line)
			}
		}
	}
	if len(t.links) > 0 {
		b.WriteString("links:\n")
		for _, l := range t.links {
			fmt.Fprintf(&b, "  - %s: [%s]\n", l.kind, strings.Join(l.ends, ", "))
		}
	}
	if len(t.names) > 0 {
		b.WriteString("names:\n")
		var keys []string
		for k := range t.names {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s: [%s]\n", k, strings.Join(t.names[k], ", "))
		}
	}
	return []byte(b.String())
}

// q quotes a YAML scalar (JSON's double-quoted strings are YAML's).
func q(s string) string { return strconv.Quote(s) }
