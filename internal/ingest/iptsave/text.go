package iptsave

import (
	"strings"

	"github.com/pktflow/pktflow/internal/model"
)

// RuleText renders a rule as the "-A" line iptables-save prints for it:
// the inverse of Parse, for rules that were not read from iptables-save
// (a listing, a synthesized rule) or that must be written back
// (iptables-restore in a lab). chain is used when the rule has none.
func RuleText(chain string, r *model.Rule) string {
	if r.Chain != "" {
		chain = r.Chain
	}
	parts := []string{"-A", chain}
	opt := func(o model.Option) {
		if o.Negate {
			parts = append(parts, "!")
		}
		parts = append(parts, o.Name)
		for _, a := range o.Args {
			parts = append(parts, Quote(a))
		}
	}
	for _, m := range r.Matches {
		if m.Module != "" {
			parts = append(parts, "-m", m.Module)
		}
		for _, o := range m.Options {
			opt(o)
		}
	}
	if r.Target != "" {
		if r.Goto {
			parts = append(parts, "-g", r.Target)
		} else {
			parts = append(parts, "-j", r.Target)
		}
		for _, o := range r.TargetOpts {
			opt(o)
		}
	}
	return strings.Join(parts, " ")
}

// Quote quotes an argument the way the tokenizer reads it back: plain
// when it has no blank or quote, else in double quotes with backslash
// escapes.
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`)
	return `"` + r.Replace(s) + `"`
}
