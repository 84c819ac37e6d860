package iptsave

import (
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// smatch is a match being built; its options are p.opts[o0:o1]. Options of
// one match are contiguous because only the newest match takes options.
type smatch struct {
	module string
	o0, o1 int
}

// sopt is an option being built; its arguments are p.args[a0:a1].
type sopt struct {
	name   string
	neg    bool
	a0, a1 int
}

// Bits for the base options, to refuse a second -s as iptables does.
const (
	baseS = 1 << iota
	baseD
	baseI
	baseO
	baseP
	baseF
)

// canonical maps an option as written to the short form of the options
// iptables itself handles, "" for an extension's option (--dport), or "?"
// for anything else that cannot appear in a rule.
func canonical(name string) string {
	switch name {
	case "-s", "--source", "--src":
		return "-s"
	case "-d", "--destination", "--dst":
		return "-d"
	case "-i", "--in-interface":
		return "-i"
	case "-o", "--out-interface":
		return "-o"
	case "-p", "--protocol":
		return "-p"
	case "-f", "--fragment":
		return "-f"
	case "-m", "--match":
		return "-m"
	case "-j", "--jump":
		return "-j"
	case "-g", "--goto":
		return "-g"
	case "-c", "--set-counters":
		return "-c"
	case "--append", "--insert", "--delete", "--replace", "--new-chain",
		"--delete-chain", "--policy", "--flush", "--zero", "--rename-chain":
		return "?"
	}
	if len(name) > 2 && name[1] == '-' {
		return ""
	}
	return "?"
}

// baseInfo gives a base option's bit and a description of its value for
// error messages.
func baseInfo(opt string) (bit int, value string) {
	switch opt {
	case "-s":
		return baseS, "an address or prefix (e.g. 10.0.0.0/8)"
	case "-d":
		return baseD, "an address or prefix (e.g. 10.0.0.0/8)"
	case "-i":
		return baseI, "an interface name (e.g. eth0 or veth+)"
	case "-o":
		return baseO, "an interface name (e.g. eth0 or veth+)"
	case "-p":
		return baseP, "a protocol (e.g. tcp, udp, icmp or a number)"
	}
	return baseF, ""
}

// freeForm lists options whose single argument is arbitrary text. Such an
// argument may begin with '-' unquoted (iptables-save quotes only strings
// with characters outside letters, digits, '-' and '_'), so it cannot be
// told from an option by its look and is taken unconditionally.
func freeForm(opt string) bool {
	switch opt {
	case "--comment", "--log-prefix", "--nflog-prefix", "--string", "--hex-string",
		"--name", "--hashlimit-name", "--helper":
		return true
	}
	return false
}

// implicitModule is the match iptables loads by itself when an extension
// option follows -p PROTO without -m: "-p tcp --dport 80" means
// "-p tcp -m tcp --dport 80". iptables-save always prints the -m, but
// hand-written rules in tickets often omit it.
func implicitModule(proto string, family int) string {
	switch strings.ToLower(proto) {
	case "tcp", "6":
		return "tcp"
	case "udp", "17":
		return "udp"
	case "udplite", "136":
		return "udplite"
	case "sctp", "132":
		return "sctp"
	case "dccp", "33":
		return "dccp"
	case "icmp", "1":
		if family == 4 {
			return "icmp"
		}
	case "icmpv6", "ipv6-icmp", "icmp6", "58":
		if family == 6 {
			return "icmp6"
		}
	}
	return ""
}

func (p *parser) rule(n int, line, s string, pk, by uint64, counted bool) *ingest.Error {
	if p.tbl == nil {
		return p.errf(n, line, "rule outside a table: expected *TABLE before it (and COMMIT after the table's rules)")
	}
	if !p.tokenize(s) {
		return p.errf(n, line, "unterminated double quote: expected a closing \"")
	}
	toks := p.toks
	// s starts with '-', so there is a first, unquoted token.
	switch cmd := toks[0].s; cmd {
	case "-A", "--append":
	case "-I", "--insert", "-D", "--delete", "-R", "--replace", "-N", "--new-chain",
		"-X", "--delete-chain", "-P", "--policy", "-F", "--flush", "-Z", "--zero",
		"-E", "--rename-chain":
		return p.errf(n, line, "%s is not something iptables-save prints: expected -A CHAIN ... (rules are listed in order, each with -A)", cmd)
	default:
		return p.errf(n, line, "unexpected %q at the start of a rule: expected -A CHAIN ...", cmd)
	}
	if len(toks) < 2 || toks[1].isOpt() || toks[1].isBang() || toks[1].s == "" {
		return p.errf(n, line, "missing chain name: expected -A CHAIN ...")
	}
	name := toks[1].s
	// The rule's chain. A parser of part of a run (see run.go) that
	// reads before every chain is declared (p.main not set) leaves it,
	// with the rule's position and jump target, to be resolved after
	// (see resolve), and a body error then only stands if the chain is
	// declared; one that reads after resolves them from the table's
	// parser.
	idx, ci := p, -1
	if p.deferChains {
		idx = p.main
	}
	if idx != nil {
		var ok bool
		if ci, ok = idx.chainOf(name, p.lastIdx); !ok {
			return p.undeclared(n, line, name)
		}
		p.lastIdx = ci
		name = p.tbl.Chains[ci].Name
	}
	r := &p.slabs.rules.take(1)[0]
	r.Chain = name
	r.Packets, r.Bytes = pk, by
	r.Origin = model.Origin{File: p.file, Line: n, Text: line}
	if err := p.body(n, line, toks[2:], r, counted); err != nil {
		if ci < 0 {
			p.errChain = name
		}
		return err
	}
	if ci < 0 {
		p.deferred++
		return nil
	}
	if r.Target != "" {
		// Resolve a jump to a chain now, on whichever core parses the
		// rule, rather than at COMMIT on one: the rule keeps the chain's
		// index (and its name, so that consumers checking the hint
		// compare one string with itself). A chain declared after this
		// rule is resolved at COMMIT (see checkTable).
		idx.resolveTarget(r, &p.targets)
	}
	p.ruleChain = append(p.ruleChain, int32(ci))
	if p.deferChains {
		// Numbered in the chunk; adopt numbers it in the table.
		r.Pos = p.pos.next(ci)
		p.deferred++
		return nil
	}
	p.counts[ci]++
	r.Pos = p.counts[ci]
	p.tblRules = append(p.tblRules, r)
	return nil
}

// body parses the matches and target of a rule. Options are assigned by
// position, as iptables-save prints them: an --option belongs to the
// latest -m match, or after -j to the target.
func (p *parser) body(n int, line string, toks []token, r *model.Rule, counted bool) *ingest.Error {
	p.matches, p.opts, p.topts, p.args = p.matches[:0], p.opts[:0], p.topts[:0], p.args[:0]
	const (
		inNone = iota
		inMatch
		inTarget
	)
	ctx := inNone
	neg := false
	seen := 0
	proto := "" // the -p value when not negated, for implicit matches
	for i := 0; i < len(toks); {
		t := toks[i]
		i++
		if t.isBang() {
			if neg {
				return p.errf(n, line, "two ! in a row: expected one ! before an option")
			}
			neg = true
			continue
		}
		if !t.isOpt() {
			return p.errf(n, line, "unexpected %q: expected an option (such as -s, -p, -m MODULE, --dport or -j TARGET)", t.s)
		}
		opt := canonical(t.s)
		switch opt {
		case "-s", "-d", "-i", "-o", "-p", "-f":
			bit, value := baseInfo(opt)
			if seen&bit != 0 {
				return p.errf(n, line, "%s given twice: expected at most one %s per rule", t.s, opt)
			}
			seen |= bit
			ctx = inNone
			o := sopt{name: opt, a0: len(p.args)}
			if opt == "-f" {
				if p.family == 6 {
					return p.errf(n, line, "-f is IPv4-only: expected -m frag for IPv6 fragments")
				}
			} else {
				// The old form "-s ! ADDR" negates too.
				if i+1 < len(toks) && toks[i].isBang() && !toks[i+1].isOpt() && !toks[i+1].isBang() {
					if neg {
						return p.errf(n, line, "%s negated twice: expected one !", t.s)
					}
					neg = true
					i++
				}
				if i >= len(toks) || toks[i].isOpt() || toks[i].isBang() || toks[i].s == "" {
					return p.errf(n, line, "%s needs a value: expected %s after it", t.s, value)
				}
				v := toks[i].s
				i++
				if (opt == "-i" || opt == "-o") && len(v) > 15 {
					return p.errf(n, line, "interface name %q is longer than 15 characters: expected %s", v, value)
				}
				if opt == "-p" && !neg {
					proto = v
				}
				p.args = append(p.args, v)
			}
			o.neg, neg = neg, false
			o.a1 = len(p.args)
			p.opts = append(p.opts, o)
			p.matches = append(p.matches, smatch{o0: len(p.opts) - 1, o1: len(p.opts)})

		case "-m":
			if neg {
				return p.errf(n, line, "! cannot negate -m: expected ! before one of the match's options (-m tcp ! --dport 80)")
			}
			if i >= len(toks) || toks[i].isOpt() || toks[i].isBang() || toks[i].s == "" {
				return p.errf(n, line, "%s needs a module name: expected -m MODULE (e.g. -m tcp)", t.s)
			}
			p.matches = append(p.matches, smatch{module: toks[i].s, o0: len(p.opts), o1: len(p.opts)})
			i++
			ctx = inMatch

		case "-j", "-g":
			if neg {
				return p.errf(n, line, "! cannot negate %s: expected ! before a match option", t.s)
			}
			if r.Target != "" {
				return p.errf(n, line, "second target %s: expected one -j or -g per rule", t.s)
			}
			if i >= len(toks) || toks[i].isOpt() || toks[i].isBang() || toks[i].s == "" {
				if opt == "-g" {
					return p.errf(n, line, "%s needs a chain: expected -g CHAIN", t.s)
				}
				return p.errf(n, line, "%s needs a target: expected -j TARGET (a chain, or an extension such as ACCEPT or DNAT)", t.s)
			}
			r.Target = toks[i].s
			r.Goto = opt == "-g"
			i++
			ctx = inTarget

		case "-c":
			if neg {
				return p.errf(n, line, "! cannot negate %s: expected -c PACKETS BYTES", t.s)
			}
			if counted {
				return p.errf(n, line, "counters given twice: expected either a [packets:bytes] prefix or -c PACKETS BYTES")
			}
			counted = true
			var a, b string
			if i < len(toks) && strings.IndexByte(toks[i].s, ',') >= 0 {
				a, b, _ = strings.Cut(toks[i].s, ",")
				i++
			} else if i+1 < len(toks) {
				a, b = toks[i].s, toks[i+1].s
				i += 2
			}
			pk, err1 := strconv.ParseUint(a, 10, 64)
			by, err2 := strconv.ParseUint(b, 10, 64)
			if err1 != nil || err2 != nil {
				return p.errf(n, line, "malformed %s: expected -c PACKETS BYTES with decimal numbers", t.s)
			}
			r.Packets, r.Bytes = pk, by

		case "":
			// An extension's option: it goes to the current match or
			// target, else to the target if there is one, else to the
			// match -p implies.
			if ctx == inNone {
				switch {
				case r.Target != "":
					ctx = inTarget
				case implicitModule(proto, p.family) != "":
					p.matches = append(p.matches, smatch{module: implicitModule(proto, p.family), o0: len(p.opts), o1: len(p.opts)})
					ctx = inMatch
				default:
					return p.errf(n, line, "option %s belongs to no match or target: expected -m MODULE (or -j TARGET) before it", t.s)
				}
			}
			// The old form "--dport ! 80" negates too; "! --opt" after
			// an option without arguments is the next option's.
			if i+1 < len(toks) && toks[i].isBang() && !toks[i+1].isOpt() && !toks[i+1].isBang() {
				if neg {
					return p.errf(n, line, "%s negated twice: expected one !", t.s)
				}
				neg = true
				i++
			}
			o := sopt{name: t.s, neg: neg, a0: len(p.args)}
			neg = false
			if freeForm(t.s) {
				if i >= len(toks) || toks[i].isBang() {
					return p.errf(n, line, "%s needs a value: expected %s TEXT (quoted if it has blanks)", t.s, t.s)
				}
				p.args = append(p.args, toks[i].s)
				i++
			} else {
				for i < len(toks) && !toks[i].isOpt() && !toks[i].isBang() {
					p.args = append(p.args, toks[i].s)
					i++
				}
			}
			o.a1 = len(p.args)
			if ctx == inTarget {
				p.topts = append(p.topts, o)
			} else {
				p.opts = append(p.opts, o)
				p.matches[len(p.matches)-1].o1 = len(p.opts)
			}

		default:
			if t.s == "-A" || t.s == "-I" {
				return p.errf(n, line, "unexpected %s inside a rule: expected one rule per line", t.s)
			}
			return p.errf(n, line, "unknown option %s: expected -s, -d, -i, -o, -p, -f, -m MODULE, -j TARGET, -g CHAIN, -c or an extension's --option", t.s)
		}
	}
	if neg {
		return p.errf(n, line, "! at the end of the rule: expected an option after it")
	}
	p.build(r)
	return nil
}

// build copies the scratch matches, options and arguments into r.
func (p *parser) build(r *model.Rule) {
	args := p.slabs.args.take(len(p.args))
	copy(args, p.args)
	opts := p.slabs.opts.take(len(p.opts) + len(p.topts))
	fill := func(dst []model.Option, src []sopt) {
		for k, o := range src {
			dst[k] = model.Option{Name: o.name, Negate: o.neg}
			if o.a1 > o.a0 {
				dst[k].Args = args[o.a0:o.a1:o.a1]
			}
		}
	}
	fill(opts, p.opts)
	if len(p.topts) > 0 {
		r.TargetOpts = opts[len(p.opts):len(opts):len(opts)]
		fill(r.TargetOpts, p.topts)
	}
	if len(p.matches) > 0 {
		r.Matches = p.slabs.matches.take(len(p.matches))
		for k, m := range p.matches {
			r.Matches[k].Module = m.module
			if m.o1 > m.o0 {
				r.Matches[k].Options = opts[m.o0:m.o1:m.o1]
			}
		}
	}
}
