package netfilter

import (
	"strings"
	"testing"
)

// A rule whose input lost facts (model.Rule.Lossy, set by the iptables -L
// reader) reports them as uncertainty when it matches, and only then.
func TestLossyRuleUncertainWhenMatched(t *testing.T) {
	rs := parse(t, 4, `*nat
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE`)
	post := rs.Table("nat").Chain("POSTROUTING")
	post.Rules[0].Lossy = []string{"read from a listing: the table was inferred"}
	post.Rules[1].Lossy = []string{"never reported: this rule does not match"}
	c, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	for _, explain := range []bool{false, true} {
		ctx := newCtx(tcpPkt("172.17.0.2", 40000, "142.250.115.106", 443))
		ctx.OutIface = "eth0"
		var unc []string
		if explain {
			checks := c.Explain("nat", PostRouting, ctx)
			if len(checks) == 0 || !checks[0].Uncertain || !checks[0].Matched {
				t.Fatalf("explain: first check %+v, want a matched, uncertain rule", checks)
			}
			continue
		}
		res := c.Run("nat", PostRouting, ctx)
		unc = res.Uncertain
		if res.NAT == nil || res.NAT.Kind != Masquerade {
			t.Fatalf("want MASQUERADE, got %s", dump(res))
		}
		if len(unc) != 1 || !strings.Contains(unc[0], "nat POSTROUTING rule 1") || !strings.HasSuffix(unc[0], "the table was inferred") {
			t.Errorf("uncertain = %q", unc)
		}
	}
	// A packet the lossy rule does not match gets no note from it.
	ctx := newCtx(tcpPkt("192.0.2.1", 40000, "142.250.115.106", 443))
	ctx.OutIface = "eth0"
	if res := c.Run("nat", PostRouting, ctx); len(res.Uncertain) != 0 {
		t.Errorf("uncertain for a non-matching packet: %q", res.Uncertain)
	}
	if got := LossyUncertainty("nat", "POSTROUTING", post.Rules[0]); len(got) != 1 {
		t.Errorf("LossyUncertainty = %q", got)
	}
}
