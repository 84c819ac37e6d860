package netfilter

import (
	"testing"

	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
)

// TestTargetChainHint checks that the parser's jump-target indexes
// (model.Rule.TargetChain) change nothing: a ruleset compiles to the same
// jumps with them, without them, and with stale ones pointing elsewhere.
func TestTargetChainHint(t *testing.T) {
	text := saveText(`
*nat
:A - [0:0]
:B - [0:0]
:DNAT2 - [0:0]
-A PREROUTING -j A
-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1
-A A -g B
-A A -j DNAT2
-A B -j ACCEPT
-A DNAT2 -j RETURN
`)
	jumps := func(hint func(int32) int32) []string {
		rs, err := iptsave.ParseString("t", text, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range rs.Tables {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					r.TargetChain = hint(r.TargetChain)
				}
			}
		}
		c, err := Compile(rs)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, name := range []string{"PREROUTING", "A", "B", "DNAT2"} {
			for _, r := range c.tables["nat"].chains[name].rules {
				s := name + " " + r.m.Target
				if r.tgt.chain != nil {
					s += " chain " + r.tgt.chain.name
				}
				out = append(out, s)
			}
		}
		return out
	}
	want := jumps(func(h int32) int32 { return h })
	if len(want) != 6 || want[0] != "PREROUTING A chain A" || want[2] != "A B chain B" {
		t.Fatalf("jumps %q", want)
	}
	for name, hint := range map[string]func(int32) int32{
		"none":         func(int32) int32 { return 0 },
		"shifted":      func(h int32) int32 { return h%4 + 1 },
		"out of range": func(int32) int32 { return 99 },
		"everywhere":   func(int32) int32 { return 3 },
	} {
		if got := jumps(hint); len(got) != len(want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		} else {
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s: %q, want %q", name, got, want)
					break
				}
			}
		}
	}
}

// TestDuplicateChain: a table (built by hand: the parser refuses it)
// that declares a chain twice fails to compile, naming the second.
func TestDuplicateChain(t *testing.T) {
	o := func(line int) model.Origin { return model.Origin{File: "t", Line: line, Text: "x"} }
	in := &model.Chain{Name: "INPUT", Policy: "ACCEPT", Builtin: true, Origin: o(1)}
	a1 := &model.Chain{Name: "A", Origin: o(2)}
	a2 := &model.Chain{Name: "A", Origin: o(3)}
	in.Rules = []*model.Rule{{Chain: "INPUT", Pos: 1, Target: "A", Origin: o(4)}}
	a1.Rules = []*model.Rule{{Chain: "A", Pos: 1, Target: "ACCEPT", Origin: o(5)}}
	a2.Rules = []*model.Rule{{Chain: "A", Pos: 1, Target: "NOPE", Origin: o(6)}}
	rs := &model.Ruleset{Family: 4, Tables: []*model.Table{{Name: "filter", Chains: []*model.Chain{in, a1, a2}}}}
	_, err := Compile(rs)
	if err == nil || err.Error() != `t:3: chain A is declared twice in table filter: expected each chain once (in "x")` {
		t.Fatalf("got %v", err)
	}
}
