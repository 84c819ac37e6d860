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

	hooks []hookConstraint
}

// optName returns an option name without its leading dashes.
func optName(o model.Option) string { return strings.TrimLeft(o.Name, "-") }

// optText renders an option as written: "! --dport 80".
func optText(o model.Option) string {
	var b strings.Builder
	if o.Negate {
		b.WriteString("! ")
	}
	b.WriteString(o.Name)
	for _, a := range o.Args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\"") {
			b.WriteString(quote(a))
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// matchText renders a whole -m match as written.
func matchText(m model.Match) string {
	parts := []string{"-m " + m.Module}
	for _, o := range m.Options {
		parts = append(parts, optText(o))
	}
	return strings.Join(parts, " ")
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
	rc.hooks = append(rc.hooks, hookConstraint{allowed: allowed, what: what})
}

const (
	hPre  = uint8(1) << PreRouting
	hIn   = uint8(1) << Input
	hFwd  = uint8(1) << Forward
	hOut  = uint8(1) << Output
	hPost = uint8(1) << PostRouting
)

// compile turns the rule into one crule, or several when -s/-d list
// several addresses (iptables expands "-s a,b" into one rule per address
// when it inserts them, so each copy is evaluated, in order).
func (rc *ruleCompiler) compile() ([]crule, error) {
	r := rc.r
	var base crule
	base.m = r
	var srcs, dsts []string
	var srcNeg, dstNeg bool
	seen := map[string]bool{}
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
			if seen[name] {
				return nil, rc.errf("option -%s given twice: iptables allows it once per rule", name)
			}
			seen[name] = true
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
				srcs, srcNeg = strings.Split(a, ","), o.Negate
			case "d":
				dsts, dstNeg = strings.Split(a, ","), o.Negate
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
				im.text = "-" + name + " " + a
				if o.Negate {
					im.text = "! " + im.text
				}
				bit := bIn
				if name == "o" {
					bit = bOut
					base.out = im
				} else {
					base.in = im
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
	var mods []matcher
	for _, m := range r.Matches {
		if m.Module == "" {
			continue
		}
		mt, err := rc.compileMatch(m)
		if err != nil {
			return nil, err
		}
		mods = append(mods, mt)
	}
	base.mods = mods
	tg, err := rc.compileTarget()
	if err != nil {
		return nil, err
	}
	base.tgt = tg

	parse := func(list []string, neg bool, opt string) ([]addrMask, error) {
		if list == nil {
			return nil, nil
		}
		out := make([]addrMask, 0, len(list))
		for _, s := range list {
			am, want := parseAddrMask(s, rc.family)
			if want != "" {
				return nil, rc.errf("%s %s: expected %s", opt, s, want)
			}
			am.text = opt + " " + am.text
			if neg {
				am.text = "! " + am.text
			}
			out = append(out, am)
		}
		return out, nil
	}
	srcM, err := parse(srcs, srcNeg, "-s")
	if err != nil {
		return nil, err
	}
	dstM, err := parse(dsts, dstNeg, "-d")
	if err != nil {
		return nil, err
	}
	if srcNeg && len(srcM) > 1 || dstNeg && len(dstM) > 1 {
		return nil, rc.errf("! with several addresses: iptables refuses to negate an address list")
	}
	if srcM == nil {
		srcM = []addrMask{{}}
	} else {
		base.has |= bSrc
		if srcNeg {
			base.neg |= bSrc
		}
	}
	if dstM == nil {
		dstM = []addrMask{{}}
	} else {
		base.has |= bDst
		if dstNeg {
			base.neg |= bDst
		}
	}
	out := make([]crule, 0, len(srcM)*len(dstM))
	for _, s := range srcM {
		for _, d := range dstM {
			cr := base
			cr.src, cr.dst = s, d
			out = append(out, cr)
		}
	}
	return out, nil
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
