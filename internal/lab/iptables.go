package lab

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
)

// counters matches the "[pkts:bytes] " that iptables-save -c puts before
// a rule; iptables-restore without -c would reject it.
var counters = regexp.MustCompile(`^\[\d+:\d+\]\s+`)

// RestoreText writes a ruleset back as iptables-save text, ready for
// iptables-restore. Chains are declared from the model (built-in chains
// with their policy, ACCEPT when none is given; user chains with "-")
// and counters are reset; each rule is its Origin.Text, the verbatim
// "-A ..." line, or is regenerated from its parts when there is none.
func RestoreText(rs *model.Ruleset) (string, error) {
	var b strings.Builder
	for _, t := range rs.Tables {
		if t.Name == "" {
			return "", fmt.Errorf("lab: ruleset table without a name")
		}
		fmt.Fprintf(&b, "*%s\n", t.Name)
		for _, c := range t.Chains {
			policy := "-"
			if c.Builtin {
				policy = c.Policy
				if policy == "" || policy == "-" {
					policy = "ACCEPT"
				}
			}
			fmt.Fprintf(&b, ":%s %s [0:0]\n", c.Name, policy)
		}
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				line := ruleLine(c.Name, r)
				if strings.ContainsAny(line, "\n\r") {
					return "", fmt.Errorf("lab: rule of %s/%s spans lines: %q", t.Name, c.Name, line)
				}
				b.WriteString(line)
				b.WriteByte('\n')
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String(), nil
}

// ruleLine is one rule's "-A" line.
func ruleLine(chain string, r *model.Rule) string {
	text := counters.ReplaceAllString(strings.TrimSpace(r.Origin.Text), "")
	if strings.HasPrefix(text, "-A ") {
		return text
	}
	return RuleText(chain, r)
}

// RuleText regenerates a rule's "-A" line from its parsed parts.
func RuleText(chain string, r *model.Rule) string { return iptsave.RuleText(chain, r) }
