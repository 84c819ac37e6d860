package iptlist

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
)

// extensions are the target extensions iptables knows: a target column
// naming one of them is not a jump to a chain.
var extensions = map[string]bool{
	"ACCEPT": true, "DROP": true, "RETURN": true, "QUEUE": true,
	"AUDIT": true, "CHECKSUM": true, "CLASSIFY": true, "CLUSTERIP": true, "CONNMARK": true,
	"CONNSECMARK": true, "CT": true, "DNAT": true, "DNPT": true, "DSCP": true, "ECN": true,
	"HL": true, "HMARK": true, "IDLETIMER": true, "LED": true, "LOG": true, "MARK": true,
	"MASQUERADE": true, "NETMAP": true, "NFLOG": true, "NFQUEUE": true, "NOTRACK": true,
	"RATEEST": true, "REDIRECT": true, "REJECT": true, "SECMARK": true, "SET": true, "SNAT": true,
	"SNPT": true, "SYNPROXY": true, "TCPMSS": true, "TCPOPTSTRIP": true, "TEE": true, "TOS": true,
	"TPROXY": true, "TRACE": true, "TTL": true, "ULOG": true,
}

// tableOfTarget names the only table a target can be used in (the kernel
// refuses it elsewhere), as evidence for a listing without -t.
func tableOfTarget(t string) string {
	switch t {
	case "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP":
		return "nat"
	case "TPROXY", "TTL", "HL", "TOS", "DSCP", "ECN", "CHECKSUM":
		return "mangle"
	case "NOTRACK", "CT":
		return "raw"
	}
	return ""
}

// assignTables decides each block's table: given by the caller, by a
// pasted command line, or inferred from targets, jumps and chain names.
func (p *parser) assignTables() *ingest.Error {
	for _, b := range p.blocks {
		switch {
		case p.table != "":
			b.table = p.table
		case b.promptExplicit:
			b.table = b.promptTable
		}
	}
	for _, b := range p.blocks {
		if b.table != "" {
			continue
		}
		// The kernel takes these targets in one table only: the
		// inference is certain and needs no note.
		for _, r := range b.rows {
			if t := tableOfTarget(r.target); t != "" {
				b.table = t
				break
			}
		}
	}
	// Chains joined by a jump are in the same table.
	for changed := true; changed; {
		changed = false
		for _, b := range p.blocks {
			for _, r := range b.rows {
				for _, c := range p.blocks {
					if c == b || c.chain != r.target || hookOf(c.chain) != 0 {
						continue
					}
					switch {
					case b.table != "" && c.table == "":
						c.table, c.why = b.table, fmt.Sprintf("chain %s of table %s jumps to it (line %d)", b.chain, b.table, r.line)
						changed = true
					case b.table == "" && c.table != "":
						b.table, b.why = c.table, fmt.Sprintf("it jumps to chain %s of table %s (line %d)", c.chain, c.table, r.line)
						changed = true
					}
				}
			}
		}
	}
	for _, b := range p.blocks {
		if b.table != "" {
			continue
		}
		switch b.chain {
		case "PREROUTING", "POSTROUTING":
			b.table, b.why = "nat", "a "+b.chain+" chain is not in the filter table and nat is the usual one to list"
		default:
			b.table, b.why = "filter", "filter is what iptables -L lists without -t"
		}
	}
	for _, b := range p.blocks {
		if hookOf(b.chain) != 0 && !slices.Contains(tableHooks(b.table), b.chain) {
			return p.errf(b.line, b.text, "chain %s is listed as part of table %s, which has no such built-in chain (it has %s)",
				b.chain, b.table, strings.Join(tableHooks(b.table), ", "))
		}
		if b.why == "" {
			continue
		}
		note := fmt.Sprintf("the listing does not say which table chain %s is from (no -t on a pasted command line): read as %s because %s", b.chain, b.table, b.why)
		for _, r := range b.rows {
			r.lossy = append(r.lossy, note)
		}
	}
	return nil
}

// src says where a line of the generated iptables-save text came from.
type src struct {
	line   int
	text   string
	lossy  []string
	pk, by uint64
	synth  string // for placeholders: the Origin text
}

// build writes the listing as iptables-save text, one table at a time,
// parses it with iptsave and moves origins back to the listing.
func (p *parser) build() (*model.Ruleset, *ingest.Error) {
	var order []string
	byTable := map[string][]*block{}
	for _, b := range p.blocks {
		if _, ok := byTable[b.table]; !ok {
			order = append(order, b.table)
		}
		for _, o := range byTable[b.table] {
			if o.chain == b.chain {
				return nil, p.errf(b.line, b.text, "chain %s of table %s is listed twice (first at line %d): expected each chain once per table", b.chain, b.table, o.line)
			}
		}
		byTable[b.table] = append(byTable[b.table], b)
	}
	listed := map[string]bool{}
	for _, b := range p.blocks {
		listed[b.chain] = true
	}
	for _, b := range p.blocks {
		for _, r := range b.rows {
			if err := p.rowBody(r, b, listed); err != nil {
				return nil, p.errf(r.line, r.text, "%s", err)
			}
		}
	}
	rs := &model.Ruleset{Family: p.family, Origin: model.Origin{File: p.file}}
	for _, tname := range order {
		t, err := p.buildTable(tname, byTable[tname])
		if err != nil {
			return nil, err
		}
		rs.Tables = append(rs.Tables, t)
	}
	return rs, nil
}

func (p *parser) buildTable(tname string, blocks []*block) (*model.Table, *ingest.Error) {
	var text strings.Builder
	srcs := []src{{}} // 1-based
	emit := func(line string, s src) {
		text.WriteString(line)
		text.WriteByte('\n')
		srcs = append(srcs, s)
	}
	first := blocks[0]
	emit("*"+tname, src{line: first.line, text: first.text})
	have := map[string]bool{}
	for _, b := range blocks {
		pol := "-"
		if b.policy != "" {
			pol = b.policy
		}
		emit(fmt.Sprintf(":%s %s [%d:%d]", b.chain, pol, b.pk, b.by), src{line: b.line, text: b.text, pk: b.pk, by: b.by})
		have[b.chain] = true
	}
	var missing []string
	for _, h := range tableHooks(tname) {
		if !have[h] {
			missing = append(missing, h)
			have[h] = true
		}
	}
	for _, b := range blocks {
		for _, r := range b.rows {
			if r.target != "" && !extensions[r.target] && !have[r.target] {
				missing = append(missing, r.target)
				have[r.target] = true
			}
		}
	}
	placeholder := func(chain string) src {
		what := "its rules are unknown"
		if hookOf(chain) != 0 {
			what = "its rules and policy are unknown (pktflow assumes no rules and policy ACCEPT)"
		}
		return src{
			synth: fmt.Sprintf("placeholder for chain %s of table %s, which the iptables -L listing does not show", chain, tname),
			lossy: []string{fmt.Sprintf("chain %s of table %s is not in the iptables -L listing: %s", chain, tname, what)},
		}
	}
	for _, c := range missing {
		pol := "-"
		if hookOf(c) != 0 {
			pol = "ACCEPT"
		}
		emit(fmt.Sprintf(":%s %s [0:0]", c, pol), placeholder(c))
	}
	for _, b := range blocks {
		for _, r := range b.rows {
			line := "-A " + b.chain
			if r.body != "" {
				line += " " + r.body
			}
			emit(line, src{line: r.line, text: r.text, lossy: r.lossy, pk: r.pk, by: r.by})
		}
	}
	for _, c := range missing {
		emit("-A "+c, placeholder(c))
	}
	emit("COMMIT", src{line: first.line, text: first.text})
	gen := text.String()
	rs, err := iptsave.ParseString(p.file, gen, p.family)
	if err != nil {
		ie, ok := err.(*ingest.Error)
		if !ok || ie.Line < 1 || ie.Line >= len(srcs) {
			return nil, p.errf(first.line, first.text, "reading the listing back: %v", err)
		}
		s := srcs[ie.Line]
		if s.synth != "" || s.line == 0 {
			return nil, p.errf(first.line, first.text, "reading the listing back as %q: %s", ie.Text, ie.Msg)
		}
		return nil, p.errf(s.line, s.text, "read back as %q: %s", ie.Text, ie.Msg)
	}
	t := rs.Tables[0]
	set := func(o *model.Origin) src {
		s := srcs[o.Line]
		if s.synth != "" {
			*o = model.Origin{File: p.file, Text: s.synth, Synthesized: true}
		} else {
			*o = model.Origin{File: p.file, Line: s.line, Text: s.text}
		}
		return s
	}
	set(&t.Origin)
	for _, c := range t.Chains {
		set(&c.Origin)
		for _, r := range c.Rules {
			s := set(&r.Origin)
			r.Lossy = s.lossy
			r.Packets, r.Bytes = s.pk, s.by
		}
	}
	return t, nil
}

// FillUnlisted adds placeholder tables for filter and nat when a ruleset
// read from a listing lacks them: a user who pasted `iptables -t nat -L`
// has said nothing about the filter table, and a packet crossing it
// should say so. Each built-in chain gets policy ACCEPT and one
// placeholder rule whose Lossy note names the missing listing. mangle,
// raw and security are left out: they are empty on most hosts, and a
// note on every packet for them would bury the ones that matter.
func FillUnlisted(rs *model.Ruleset, file string) {
	if rs == nil {
		return
	}
	cmd := map[int]string{4: "iptables", 6: "ip6tables"}[rs.Family]
	if cmd == "" {
		cmd = "iptables"
	}
	for _, tname := range []string{"nat", "filter"} {
		if rs.Table(tname) != nil {
			continue
		}
		t := &model.Table{Name: tname, Origin: model.Origin{File: file, Synthesized: true,
			Text: fmt.Sprintf("placeholder for table %s, which the %s -L listing does not show", tname, cmd)}}
		for _, h := range tableHooks(tname) {
			o := model.Origin{File: file, Synthesized: true,
				Text: fmt.Sprintf("placeholder for chain %s of table %s, which the %s -L listing does not show", h, tname, cmd)}
			c := &model.Chain{Name: h, Policy: "ACCEPT", Builtin: true, Origin: o}
			c.Rules = []*model.Rule{{Chain: h, Pos: 1, Origin: o, Lossy: []string{
				fmt.Sprintf("table %s is not in the %s -L listing (list it with %s -t %s -L -n -v): its rules and policies are unknown; pktflow assumes none and ACCEPT",
					tname, cmd, cmd, tname)}}}
			t.Chains = append(t.Chains, c)
		}
		rs.Tables = append(rs.Tables, t)
	}
}

// ResolveInterfaces drops the NoteBangIface notes that the node's
// interfaces settle: when has reports that no interface of the node is
// literally named "!docker0", `!docker0` can only be the negation.
func ResolveInterfaces(rs *model.Ruleset, has func(name string) bool) {
	if rs == nil {
		return
	}
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if len(r.Lossy) == 0 {
					continue
				}
				keep := r.Lossy[:0:0]
				for _, n := range r.Lossy {
					if rest, ok := strings.CutPrefix(n, NoteBangIface); ok {
						if q, err := strconv.QuotedPrefix(rest); err == nil {
							if name, err := strconv.Unquote(q); err == nil && !has(name) {
								continue
							}
						}
					}
					keep = append(keep, n)
				}
				if len(keep) == 0 {
					keep = nil
				}
				r.Lossy = keep
			}
		}
	}
}

// SaveText renders a rule as the "-A" line iptables-save would print for
// it (for tests, and for messages that show what a listing line was read
// as).
func SaveText(r *model.Rule) string { return iptsave.RuleText("", r) }
