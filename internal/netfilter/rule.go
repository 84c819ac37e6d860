package netfilter

import (
	"strings"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// ruleCompiler compiles one model rule.
type ruleCompiler struct {
	family int
	table  *ctable
	chain  *cchain
	r      *model.Rule

	// Base options seen, for the checks extensions make against them
	// (-m tcp needs -p tcp, REJECT --reject-with tcp-reset too ...).
	proto    uint8
	hasProto bool
	negProto bool

	hooks  [3]hookConstraint
	nhooks int
	// out is the chain's compiled rules so far: compile appends to it.
	out []crule
	// wk is the compiling core's state (shared targets, blocks of
	// addrPairs); nil compiles the rule on its own.
	wk *worker
}

// takePairs returns room for n addrPairs (length 0, capacity n). Blocks
// double from 8 to 256 pairs: small tables stay small.
func (rc *ruleCompiler) takePairs(n int) []addrPair {
	if rc.wk == nil {
		return make([]addrPair, 0, n)
	}
	return takeFrom(&rc.wk.pairs, n, 8, 256)
}

// takeMods returns room for n matchers (length 0, capacity n), from the
// worker's current block when there is one.
func (rc *ruleCompiler) takeMods(n int) []matcher {
	if rc.wk == nil {
		return make([]matcher, 0, n)
	}
	return takeFrom(&rc.wk.mods, n, 16, 2048)
}

// takeFrom hands out room for n values (length 0, capacity n) from the
// block *free (see room), and takes it out of the block.
func takeFrom[T any](free *[]T, n, lo, hi int) []T {
	r := room(free, n, lo, hi)
	*free = (*free)[:len(*free)+n]
	return r
}

// room returns the free tail of the block *free with room for n values
// (length 0, capacity n), starting a new block, twice the last and
// between lo and hi values long (or n when more), when the block has too
// little left. What the caller appends stays free until keep takes it.
func room[T any](free *[]T, n, lo, hi int) []T {
	f := *free
	if cap(f)-len(f) < n {
		f = make([]T, 0, max(n, min(max(2*cap(f), lo), hi)))
		*free = f
	}
	return f[len(f) : len(f) : len(f)+n]
}

// keep takes s, which a caller appended to what room gave it, out of the
// block's free tail, unless an append past its capacity moved it to an
// array of its own; it returns s capped at its length.
func keep[T any](free *[]T, s []T) []T {
	if f := *free; len(s) > 0 && len(f) < cap(f) && &f[:len(f)+1][len(f)] == &s[0] {
		*free = f[:len(f)+len(s)]
	}
	return s[:len(s):len(s)]
}

// optName returns an option name without its leading dashes.
func optName(o model.Option) string { return strings.TrimLeft(o.Name, "-") }

// optText renders an option as written: "! --dport 80". Compiled
// matchers keep pointers to their model options and render them with
// appendOpt only when a message needs them, so that compiling 100k rules
// does not build 100k strings nobody reads.
func optText(o model.Option) string { return string(appendOpt(nil, &o)) }

// appendOpt appends an option as written.
func appendOpt(b []byte, o *model.Option) []byte {
	if o.Negate {
		b = append(b, "! "...)
	}
	b = append(b, o.Name...)
	for _, a := range o.Args {
		b = append(b, ' ')
		if a == "" || strings.ContainsAny(a, " \t\"") {
			b = append(append(append(b, '"'), strings.ReplaceAll(a, `"`, `\"`)...), '"')
		} else {
			b = append(b, a...)
		}
	}
	return b
}

// matchText renders a whole -m match as written.
func matchText(m *model.Match) string { return string(appendMatch(nil, m)) }

func appendMatch(b []byte, m *model.Match) []byte {
	b = append(append(b, "-m "...), m.Module...)
	for i := range m.Options {
		b = appendOpt(append(b, ' '), &m.Options[i])
	}
	return b
}

func (rc *ruleCompiler) errf(format string, args ...any) error {
	return ruleErr(rc.r, format, args...)
}

// arg returns the single argument of an option or an error.
func (rc *ruleCompiler) arg(o model.Option) (string, error) {
	if len(o.Args) != 1 {
		return "", rc.errf("%s takes one argument, got %d", o.Name, len(o.Args))
	}
	return o.Args[0], nil
}

func (rc *ruleCompiler) addHooks(allowed uint8, what string) {
	if rc.nhooks < len(rc.hooks) {
		rc.hooks[rc.nhooks] = hookConstraint{allowed: allowed, what: what}
		rc.nhooks++
	}
}

const (
	hPre  = uint8(1) << PreRouting
	hIn   = uint8(1) << Input
	hFwd  = uint8(1) << Forward
	hOut  = uint8(1) << Output
	hPost = uint8(1) << PostRouting
)

// compile appends the rule to rc.out as one crule, or several when -s/-d
// list several addresses (iptables expands "-s a,b" into one rule per
// address when it inserts them, so each copy is evaluated, in order).
func (rc *ruleCompiler) compile() ([]crule, error) {
	r := rc.r
	var base crule
	base.m = r
	var srcs, dsts string
	var srcNeg, dstNeg bool
	var seen uint8
	for _, m := range r.Matches {
		if m.Module != "" {
			continue
		}
		for _, o := range m.Options {
			name := optName(o)
			switch name {
			case "s", "source", "src":
				name = "s"
			case "d", "destination", "dst":
				name = "d"
			case "i", "in-interface":
				name = "i"
			case "o", "out-interface":
				name = "o"
			case "p", "protocol":
				name = "p"
			case "f", "fragment":
				name = "f"
			default:
				return nil, rc.errf("unknown base option %s: expected -s, -d, -i, -o, -p or -f", o.Name)
			}
			bit := uint8(1) << strings.IndexByte("sdiopf", name[0])
			if seen&bit != 0 {
				return nil, rc.errf("option -%s given twice: iptables allows it once per rule", name)
			}
			seen |= bit
			if name == "f" {
				if rc.family == 6 {
					return nil, rc.errf("-f is not an ip6tables option: expected -m frag")
				}
				base.has |= bFrag
				if o.Negate {
					base.neg |= bFrag
				}
				continue
			}
			a, err := rc.arg(o)
			if err != nil {
				return nil, err
			}
			switch name {
			case "s":
				srcs, srcNeg = a, o.Negate
			case "d":
				dsts, dstNeg = a, o.Negate
			case "i", "o":
				// iptables refuses -o where there is no output device yet
				// and -i where there is no input device (a locally
				// generated packet has none), naming the built-in chain;
				// in user chains the kernel just compares with an empty
				// name.
				if name == "i" && (r.Chain == "OUTPUT" || r.Chain == "POSTROUTING") {
					return nil, rc.errf("-i cannot be used in %s: locally generated and outgoing packets have no input interface", r.Chain)
				}
				if name == "o" && (r.Chain == "PREROUTING" || r.Chain == "INPUT") {
					return nil, rc.errf("-o cannot be used in %s: the output interface is not known before routing", r.Chain)
				}
				im := parseIface(a)
				if base.io == nil {
					base.io = &ifacePair{}
				}
				bit := bIn
				if name == "o" {
					bit = bOut
					base.io.out = im
				} else {
					base.io.in = im
				}
				base.has |= bit
				if o.Negate {
					base.neg |= bit
				}
			case "p":
				p, ok := parseProto(a)
				if !ok {
					return nil, rc.errf("unknown protocol %q: expected a protocol name (tcp, udp, icmp, ...) or number", a)
				}
				rc.hasProto, rc.negProto = true, o.Negate
				rc.proto = p
				if p == 0 {
					if o.Negate {
						return nil, rc.errf("! -p %s would never match", a)
					}
					// -p all: matches every protocol.
					rc.hasProto = false
					continue
				}
				base.proto = p
				base.has |= bProto
				if o.Negate {
					base.neg |= bProto
				}
			}
		}
	}
	nmods := 0
	for i := range r.Matches {
		if r.Matches[i].Module != "" {
			nmods++
		}
	}
	if nmods > 0 {
		base.mods = rc.takeMods(nmods)
	}
	for i := range r.Matches {
		m := &r.Matches[i]
		if m.Module == "" {
			continue
		}
		mt, err := rc.compileMatch(m)
		if err != nil {
			return nil, err
		}
		base.mods = append(base.mods, mt)
	}
	tg, err := rc.compileTarget()
	if err != nil {
		return nil, err
	}
	base.tgt = tg

	var srcArr, dstArr [1]addrMask
	srcM, err := rc.parseAddrs(srcs, "-s", srcArr[:0])
	if err != nil {
		return nil, err
	}
	dstM, err := rc.parseAddrs(dsts, "-d", dstArr[:0])
	if err != nil {
		return nil, err
	}
	if srcNeg && len(srcM) > 1 || dstNeg && len(dstM) > 1 {
		return nil, rc.errf("! with several addresses: iptables refuses to negate an address list")
	}
	if srcM == nil && dstM == nil {
		return append(rc.out, base), nil
	}
	if srcM == nil {
		srcM = srcArr[:1]
	} else {
		base.has |= bSrc
		if srcNeg {
			base.neg |= bSrc
		}
	}
	if dstM == nil {
		dstM = dstArr[:1]
	} else {
		base.has |= bDst
		if dstNeg {
			base.neg |= bDst
		}
	}
	out := rc.out
	pairs := rc.takePairs(len(srcM) * len(dstM))
	for _, s := range srcM {
		for _, d := range dstM {
			cr := base
			pairs = append(pairs, addrPair{s, d})
			cr.addrs = &pairs[len(pairs)-1]
			out = append(out, cr)
		}
	}
	return out, nil
}

// parseAddrs parses an -s/-d argument, a comma list of addresses, into
// buf (a one-element array on the caller's stack covers the usual case).
func (rc *ruleCompiler) parseAddrs(list, opt string, buf []addrMask) ([]addrMask, error) {
	if list == "" {
		return nil, nil
	}
	for {
		s, rest, more := strings.Cut(list, ",")
		am, want := parseAddrMask(s, rc.family)
		if want != "" {
			return nil, rc.errf("%s %s: expected %s", opt, s, want)
		}
		buf = append(buf, am)
		if !more {
			return buf, nil
		}
		list = rest
	}
}

// requireProto checks that the rule has the non-negated -p an extension
// needs; the kernel refuses e.g. -m tcp without -p tcp.
func (rc *ruleCompiler) requireProto(module string, protos ...uint8) error {
	if rc.hasProto && !rc.negProto {
		for _, p := range protos {
			if rc.proto == p {
				return nil
			}
		}
	}
	names := make([]string, len(protos))
	for i, p := range protos {
		names[i] = "-p " + packet.ProtoName(p)
	}
	return rc.errf("-m %s needs %s before it (the kernel refuses it otherwise)", module, strings.Join(names, " or "))
}
