package netfilter

import (
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/model"
)

func TestChainFlow(t *testing.T) {
	pkt := tcpPkt("10.0.0.1", 40000, "10.0.0.2", 80)
	cases := []struct {
		name    string
		rules   string
		verdict Verdict
		trail   string
	}{
		{"empty chain: policy", ":INPUT DROP\n", Drop, "INPUT#0:policy"},
		{"accept", "-A INPUT -p tcp -j ACCEPT", Accept, "INPUT#1:verdict"},
		{"first match wins", "-A INPUT -p tcp -j DROP\n-A INPUT -j ACCEPT", Drop, "INPUT#1:verdict"},
		{"non-matching rules not recorded", ":INPUT DROP\n-A INPUT -p udp -j ACCEPT\n-A INPUT -s 1.1.1.1 -j ACCEPT", Drop, "INPUT#0:policy"},
		{"jump, implicit return, policy", ":INPUT DROP\n-A INPUT -j A\n-A A -s 1.1.1.1 -j ACCEPT", Drop,
			"INPUT#1:jump A#0:return INPUT#0:policy"},
		{"jump then continue after the jump", "-A INPUT -j A\n-A INPUT -j DROP\n:A - [0:0]", Drop,
			"INPUT#1:jump A#0:return INPUT#2:verdict"},
		{"RETURN in user chain", "-A INPUT -j A\n-A INPUT -j DROP\n-A A -p tcp -j RETURN\n-A A -j ACCEPT", Drop,
			"INPUT#1:jump A#1:return INPUT#2:verdict"},
		{"ACCEPT in user chain ends the table", "-A INPUT -j A\n-A INPUT -j DROP\n-A A -j ACCEPT", Accept,
			"INPUT#1:jump A#1:verdict"},
		{"DROP deep in nested chains", "-A INPUT -j A\n-A A -j B\n-A B -j C\n-A C -j DROP", Drop,
			"INPUT#1:jump A#1:jump B#1:jump C#1:verdict"},
		{"nested returns", "-A INPUT -j A\n-A INPUT -j ACCEPT\n-A A -j B\n-A A -j DROP\n-A B -j RETURN", Drop,
			"INPUT#1:jump A#1:jump B#1:return A#2:verdict"},
		{"goto returns to the caller's caller", "-A INPUT -j A\n-A INPUT -j DROP\n-A A -g B\n-A A -j ACCEPT\n:B - [0:0]", Drop,
			"INPUT#1:jump A#1:goto B#0:return INPUT#2:verdict"},
		{"RETURN after goto", "-A INPUT -j A\n-A INPUT -j DROP\n-A A -g B\n-A A -j ACCEPT\n-A B -j RETURN", Drop,
			"INPUT#1:jump A#1:goto B#1:return INPUT#2:verdict"},
		{"goto from built-in, end of chain: policy", ":INPUT DROP\n-A INPUT -g A\n-A INPUT -j ACCEPT\n:A - [0:0]", Drop,
			"INPUT#1:goto A#0:return INPUT#0:policy"},
		{"RETURN in built-in chain: policy", ":INPUT DROP\n-A INPUT -j RETURN\n-A INPUT -j ACCEPT", Drop,
			"INPUT#1:return INPUT#0:policy"},
		{"counting rule continues", ":INPUT DROP\n-A INPUT -p tcp\n-A INPUT -j ACCEPT", Accept,
			"INPUT#1:match INPUT#2:verdict"},
		{"same chain jumped twice", "-A INPUT -j A\n-A INPUT -j A\n-A INPUT -j DROP\n-A A -j LOG", Drop,
			"INPUT#1:jump A#1:match A#0:return INPUT#2:jump A#1:match A#0:return INPUT#3:verdict"},
		{"non-terminal targets continue", "-A INPUT -j LOG --log-prefix \"in: \"\n-A INPUT -j NFLOG --nflog-group 2\n-A INPUT -j DROP", Drop,
			"INPUT#1:match INPUT#2:match INPUT#3:verdict"},
		{"unknown target continues", "-A INPUT -j NFQUEUE --queue-num 3\n-A INPUT -j DROP", Drop,
			"INPUT#1:uncertain INPUT#2:verdict"},
		{"reject", "-A INPUT -j REJECT", Reject, "INPUT#1:verdict"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCompile(t, 4, tc.rules)
			r := c.Run("filter", Input, newCtx(pkt))
			if r.Verdict != tc.verdict || trail(r) != tc.trail {
				t.Errorf("got %v %q\nwant %v %q\n%s", r.Verdict, trail(r), tc.verdict, tc.trail, dump(r))
			}
			last := r.Steps[len(r.Steps)-1]
			if last.What != "verdict" && last.What != "policy" {
				t.Errorf("last step %q is not the decider", last.What)
			}
		})
	}
}

func TestMissingTablesAndHooks(t *testing.T) {
	var nilC, _ = Compile(nil)
	if nilC.HasTable("filter") {
		t.Error("nil ruleset has filter")
	}
	ctx := newCtx(tcpPkt("1.1.1.1", 1, "2.2.2.2", 2))
	if r := nilC.Run("filter", Input, ctx); r.Verdict != Accept || len(r.Steps) != 0 {
		t.Errorf("nil ruleset: %s", dump(r))
	}
	c := mustCompile(t, 4, "*nat\n:PREROUTING DROP [0:0]\n")
	if !c.HasTable("nat") || c.HasTable("filter") {
		t.Error("HasTable")
	}
	if r := c.Run("filter", Input, ctx); r.Verdict != Accept || len(r.Steps) != 0 {
		t.Errorf("missing table: %s", dump(r))
	}
	if r := c.Run("nat", Forward, ctx); r.Verdict != Accept || len(r.Steps) != 0 {
		t.Errorf("nat has no FORWARD: %s", dump(r))
	}
	if r := c.Run("nat", PreRouting, ctx); r.Verdict != Drop {
		t.Errorf("policy: %s", dump(r))
	}
}

// -i in a user chain reached from OUTPUT compares with no device, as the
// kernel does (iptables only refuses -i in OUTPUT/POSTROUTING themselves).
func TestIfaceAtHooksWithoutDevice(t *testing.T) {
	c := mustCompile(t, 4, ":OUTPUT DROP\n-A OUTPUT -j X\n-A X -i eth0 -j DROP\n-A X ! -i eth0 -j ACCEPT")
	r := c.Run("filter", Output, withIf(newCtx(tcpPkt("1.1.1.1", 1, "2.2.2.2", 2)), "", "eth0"))
	if r.Verdict != Accept || trail(r) != "OUTPUT#1:jump X#2:verdict" {
		t.Fatalf("%s", dump(r))
	}
	if !strings.Contains(r.Steps[1].Message, "! -i eth0 matched in (none)") {
		t.Errorf("message %q", r.Steps[1].Message)
	}
}

func TestStepMessages(t *testing.T) {
	c := mustCompile(t, 4, `
*nat
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
*filter
:INPUT DROP [0:0]
-A INPUT -j A
-A INPUT -g B
-A A -p udp -j ACCEPT
-A B -j MARK --set-xmark 0x4000/0x4000
-A B -j RETURN
`)
	ctx := withIf(newCtx(tcpPkt("172.17.0.2", 40000, "1.1.1.1", 443)), "docker0", "enp1s0")
	r := c.Run("nat", PostRouting, ctx)
	want := []string{"-s 172.17.0.0/16 matched src 172.17.0.2; ! -o docker0 matched out enp1s0 → MASQUERADE"}
	checkMessages(t, r, want)

	r = c.Run("filter", Input, ctx)
	checkMessages(t, r, []string{
		"no conditions (matches every packet) → jump to A",
		"end of chain A: return to INPUT",
		"no conditions (matches every packet) → goto B",
		"no conditions (matches every packet) → MARK --set-xmark 0x4000/0x4000: mark 0x0 becomes 0x4000",
		"no conditions (matches every packet) → RETURN: no calling chain left, so the policy of INPUT applies",
		"no calling chain left: policy DROP of chain INPUT",
	})
	if r.Steps[0].Table != "filter" || r.Steps[0].Chain != "INPUT" || r.Steps[0].Rule == nil || r.Steps[0].Rule.Pos != 1 {
		t.Errorf("step fields: %+v", r.Steps[0])
	}
	if r.Steps[1].Rule != nil || r.Steps[5].Rule != nil {
		t.Error("implicit return and policy steps must have no rule")
	}

	c = mustCompile(t, 4, ":INPUT DROP\n-A INPUT -j X\n-A X -j RETURN")
	r = c.Run("filter", Input, ctx)
	checkMessages(t, r, []string{
		"no conditions (matches every packet) → jump to X",
		"no conditions (matches every packet) → RETURN to INPUT",
		"end of chain INPUT: policy DROP",
	})
}

func checkMessages(t *testing.T, r Result, want []string) {
	t.Helper()
	if len(r.Steps) != len(want) {
		t.Fatalf("%d steps, want %d\n%s", len(r.Steps), len(want), dump(r))
	}
	for i, s := range r.Steps {
		if s.Message != want[i] {
			t.Errorf("step %d message\n got %q\nwant %q", i, s.Message, want[i])
		}
	}
}

func TestExplain(t *testing.T) {
	c := mustCompile(t, 4, `
:INPUT DROP [0:0]
-A INPUT -p udp -j DROP
-A INPUT -j CHECK
-A INPUT -s 10.0.0.0/8 -j ACCEPT
-A CHECK -p tcp -m tcp --dport 22 -j ACCEPT
-A CHECK -j MARK --set-mark 0x7
`)
	ctx := newCtx(tcpPkt("192.168.1.1", 40000, "10.0.0.2", 80))
	checks := c.Explain("filter", Input, ctx)
	type got struct {
		chain   string
		pos     int
		matched bool
		msg     string
	}
	want := []got{
		{"INPUT", 1, false, "-p udp did not match tcp"},
		{"INPUT", 2, true, "no conditions (matches every packet)"},
		{"CHECK", 1, false, "--dport 22 did not match dport 80"},
		{"CHECK", 2, true, "no conditions (matches every packet)"},
		{"INPUT", 3, false, "-s 10.0.0.0/8 did not match src 192.168.1.1"},
	}
	if len(checks) != len(want) {
		t.Fatalf("checks: %+v", checks)
	}
	for i, ch := range checks {
		g := got{ch.Chain, ch.Rule.Pos, ch.Matched, ch.Message}
		if g != want[i] {
			t.Errorf("check %d: got %+v, want %+v", i, g, want[i])
		}
	}
	if ctx.Mark != 0 {
		t.Errorf("Explain changed the caller's mark to %#x", ctx.Mark)
	}
	if c.Run("filter", Input, ctx); ctx.Mark != 7 {
		t.Errorf("Run should set the mark, got %#x", ctx.Mark)
	}
}

// Rules built by hand (not by the parser) compile too: base options in
// long form, several in one Match.
func TestHandBuiltModel(t *testing.T) {
	rs := &model.Ruleset{Family: 4, Tables: []*model.Table{{Name: "filter", Chains: []*model.Chain{
		{Name: "INPUT", Builtin: true, Policy: "DROP", Rules: []*model.Rule{
			{Chain: "INPUT", Pos: 1, Matches: []model.Match{{Options: []model.Option{
				{Name: "--source", Args: []string{"10.0.0.0/8"}},
				{Name: "--protocol", Args: []string{"tcp"}},
			}}, {Module: "tcp", Options: []model.Option{{Name: "--dport", Args: []string{"22"}}}}}, Target: "ACCEPT"},
		}},
	}}}}
	c, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Run("filter", Input, newCtx(tcpPkt("10.1.1.1", 1, "10.0.0.1", 22))); r.Verdict != Accept {
		t.Errorf("%s", dump(r))
	}
	if r := c.Run("filter", Input, newCtx(tcpPkt("11.1.1.1", 1, "10.0.0.1", 22))); r.Verdict != Drop {
		t.Errorf("%s", dump(r))
	}
}
