package netfilter

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
)

// TestParallelCompileSameErrors compiles a table big enough to be split
// between cores, with bad rules spread over its chains, on one core and
// on several: the errors must be the same, in the same order.
func TestParallelCompileSameErrors(t *testing.T) {
	text := bigChains("*filter\n:INPUT ACCEPT [0:0]\n", "-A INPUT -s 10.%d.0.0/16 -j C%d\n", func(c, r int) string {
		if (c*30+r)%997 == 0 {
			return fmt.Sprintf("-A C%d -p tcp -m tcp --dport 99999 -j ACCEPT\n", c)
		}
		return fmt.Sprintf("-A C%d -d 10.1.%d.%d/32 -p tcp -m tcp --dport %d -j ACCEPT\n", c, c%250, r, 1000+r)
	}) + "COMMIT\n"
	msg := compileErrorsBothWays(t, parse(t, 4, text))
	if n := strings.Count(msg, "\n"); n < 10 {
		t.Errorf("only %d errors: %v", n+1, msg)
	}
}

// bigChains is a table big enough to be compiled on several cores: after
// head, 400 chains C0..C399, each jumped to from a built-in chain by
// jumpFmt (given c%250 and c) and holding the 30 rules rule(c, 0..29).
func bigChains(head, jumpFmt string, rule func(c, r int) string) string {
	var b strings.Builder
	b.WriteString(head)
	for c := 0; c < 400; c++ {
		fmt.Fprintf(&b, ":C%d - [0:0]\n", c)
	}
	for c := 0; c < 400; c++ {
		fmt.Fprintf(&b, jumpFmt, c%250, c)
		for r := 0; r < 30; r++ {
			b.WriteString(rule(c, r))
		}
	}
	return b.String()
}

// compileErrorsBothWays compiles rs on one core and on several, requires
// both to fail with the same errors, and returns them.
func compileErrorsBothWays(t *testing.T, rs *model.Ruleset) string {
	t.Helper()
	prev := runtime.GOMAXPROCS(1)
	_, serial := Compile(rs)
	runtime.GOMAXPROCS(max(prev, 2))
	_, parallel := Compile(rs)
	runtime.GOMAXPROCS(prev)
	if serial == nil || parallel == nil {
		t.Fatalf("expected errors: serial %v, parallel %v", serial, parallel)
	}
	if serial.Error() != parallel.Error() {
		t.Errorf("errors differ\nserial:   %v\nparallel: %v", serial, parallel)
	}
	return serial.Error()
}

// TestParallelCompileSameGraphErrors does the same for the errors found
// on the chain graph, which is walked while the rules compile: a target
// used in a chain reachable from a hook it is not allowed in, and a
// jump loop (made in the model: the parser refuses loops).
func TestParallelCompileSameGraphErrors(t *testing.T) {
	text := bigChains("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n", "-A PREROUTING -d 10.%d.0.0/16 -j C%d\n", func(c, r int) string {
		return fmt.Sprintf("-A C%d -d 10.1.%d.%d/32 -p tcp -m tcp --dport %d -j DNAT --to-destination 10.2.0.1\n", c, c%250, r, 1000+r)
	}) + "-A C7 -j MASQUERADE\n-A C300 -j MASQUERADE\nCOMMIT\n"
	rs := parse(t, 4, text)
	if msg := compileErrorsBothWays(t, rs); !strings.Contains(msg, "C300") || !strings.Contains(msg, "PREROUTING") {
		t.Errorf("unexpected errors: %v", msg)
	}
	rs = parse(t, 4, text)
	nat := rs.Table("nat")
	c9, c200 := nat.Chain("C9"), nat.Chain("C200")
	c9.Rules = append(c9.Rules, &model.Rule{Chain: "C9", Pos: len(c9.Rules) + 1, Target: "C200"})
	c200.Rules = append(c200.Rules, &model.Rule{Chain: "C200", Pos: len(c200.Rules) + 1, Target: "C9"})
	if msg := compileErrorsBothWays(t, rs); !strings.Contains(msg, "closes a loop") {
		t.Errorf("unexpected errors: %v", msg)
	}
}

// FuzzParallelCompile compiles every ruleset iptables-save text parses
// to on one core and, with the size threshold shrunk so that any table
// is split, on several: the errors must be the same, in the same order,
// and so must the compiled tables.
func FuzzParallelCompile(f *testing.F) {
	f.Add("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A PREROUTING -j A\n-A A -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080\n-A A -m statistic --mode random --probability 0.5 -j B\n-A B -j MASQUERADE\n-A POSTROUTING -j B\nCOMMIT\n")
	f.Add("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:X - [0:0]\n-A INPUT -j X\n-A FORWARD -o eth0 -j X\n-A X -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n-A X -i eth1 -j ACCEPT\nCOMMIT\n")
	f.Fuzz(func(t *testing.T, text string) {
		rs, err := iptsave.ParseString("fuzz", text, 4)
		if err != nil {
			return
		}
		defer func(n int) { parallelMinRules = n }(parallelMinRules)
		parallelMinRules = 1
		prev := runtime.GOMAXPROCS(1)
		c1, err1 := Compile(rs)
		runtime.GOMAXPROCS(max(prev, 2))
		c2, err2 := Compile(rs)
		runtime.GOMAXPROCS(prev)
		if fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("errors differ\nserial:   %v\nparallel: %v", err1, err2)
		}
		if d := compiledDiff(c1, c2); d != "" {
			t.Fatalf("compiled rulesets differ (-serial +parallel):\n%s", d)
		}
	})
}

// compiledDiff compares two compiled rulesets by content. The chains'
// shared jump and goto targets are made on first use, at addresses that
// differ from one compile to the next: they are compared by what they
// hold. Empty and nil lists are equal.
func compiledDiff(a, b *Compiled) string {
	opts := cmp.Options{
		cmp.Exporter(func(reflect.Type) bool { return true }),
		// A chain without rules may hold a nil or an empty list,
		// depending on the block its compiling core had.
		cmpopts.EquateEmpty(),
		cmp.FilterPath(func(p cmp.Path) bool {
			sf, ok := p.Last().(cmp.StructField)
			return ok && (sf.Name() == "jumpTg" || sf.Name() == "gotoTg")
		}, cmp.Ignore()),
	}
	if d := cmp.Diff(a, b, opts); d != "" || a == nil || b == nil {
		return d
	}
	for name, ta := range a.tables {
		tb := b.tables[name]
		for cname, ca := range ta.chains {
			cb := tb.chains[cname]
			if d := cmp.Diff(ca.jumpTg.Load(), cb.jumpTg.Load(), opts); d != "" {
				return name + " " + cname + " jump target: " + d
			}
			if d := cmp.Diff(ca.gotoTg.Load(), cb.gotoTg.Load(), opts); d != "" {
				return name + " " + cname + " goto target: " + d
			}
		}
	}
	return ""
}
