package iptsave

import "testing"

// RuleText is Parse's inverse: every rule of the samples renders back to
// a line that parses to the same rule text.
func TestRuleTextRoundTrip(t *testing.T) {
	src := `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:X - [0:0]
-A INPUT ! -s 10.0.0.0/8 -p tcp -m tcp ! --dport 22 -m comment --comment "say \"hi\" \\ there" -j ACCEPT
-A FORWARD -i eth0 -o eth1 -m conntrack --ctstate RELATED,ESTABLISHED -g X
-A X -j LOG --log-prefix "x: "
COMMIT
`
	rs, err := ParseString("t", src, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range rs.Tables {
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				line := RuleText("", r)
				again, err := ParseString("t", "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n"+line+"\nCOMMIT\n", 4)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				r2 := again.Table("filter").Chain(r.Chain).Rules[0]
				if got := RuleText("", r2); got != line {
					t.Errorf("round trip: %q became %q", line, got)
				}
			}
		}
	}
}
