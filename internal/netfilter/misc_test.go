package netfilter

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

func loopRuleset(reachable bool) *model.Ruleset {
	jump := func(chain string, pos int, to string) *model.Rule {
		return &model.Rule{Chain: chain, Pos: pos, Target: to, Origin: model.Origin{File: "loop.rules", Line: 10 + pos, Text: "-A " + chain + " -j " + to}}
	}
	input := &model.Chain{Name: "INPUT", Builtin: true, Policy: "ACCEPT"}
	if reachable {
		input.Rules = []*model.Rule{jump("INPUT", 1, "A")}
	}
	return &model.Ruleset{Family: 4, Tables: []*model.Table{{Name: "filter", Chains: []*model.Chain{
		input,
		{Name: "A", Rules: []*model.Rule{jump("A", 1, "B")}},
		{Name: "B", Rules: []*model.Rule{jump("B", 2, "A")}},
	}}}}
}

// The kernel refuses a table whose chains loop (the walk would never
// end); loops no hook reaches are never walked and are accepted.
func TestLoops(t *testing.T) {
	_, err := Compile(loopRuleset(true))
	if err == nil || !strings.Contains(err.Error(), "loop.rules:12") || !strings.Contains(err.Error(), "closes a loop") {
		t.Fatalf("reachable loop: %v", err)
	}
	var ie *ingest.Error
	if !errors.As(err, &ie) || ie.Line != 12 {
		t.Errorf("error is not an *ingest.Error for line 12: %#v", err)
	}
	if _, err := Compile(loopRuleset(false)); err != nil {
		t.Fatalf("unreachable loop: %v", err)
	}
}

func TestIPv6Ruleset(t *testing.T) {
	c := mustCompile(t, 6, `
*filter
:INPUT DROP [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -j ACCEPT
-A INPUT -s fd00:1::/64 -d fd00:2::1/128 -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -s fd00::/ffff:ff00:: -j LOG
-A INPUT -p tcp -j REJECT --reject-with tcp-reset
*nat
-A PREROUTING -d 2001:db8::10/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00:2::5]:8080
`)
	ssh := newCtx(tcpPkt("fd00:1::7", 40000, "fd00:2::1", 22))
	if r := c.Run("filter", Input, ssh); r.Verdict != Accept || trail(r) != "INPUT#3:verdict" ||
		!strings.HasPrefix(r.Steps[0].Message, "-s fd00:1::/64 matched src fd00:1::7; -d fd00:2::1/128 matched dst fd00:2::1") {
		t.Errorf("ssh: %s", dump(r))
	}
	other := newCtx(tcpPkt("fd00:ff::7", 40000, "fd00:2::1", 80))
	if r := c.Run("filter", Input, other); r.Verdict != Reject || r.Reject != "tcp-reset" || trail(r) != "INPUT#4:match INPUT#5:verdict" {
		t.Errorf("other: %s", dump(r))
	}
	ns := newCtx(icmpPkt("fe80::1", "ff02::1:ff00:1", 135, 0))
	if r := c.Run("filter", Input, ns); r.Verdict != Accept {
		t.Errorf("ns: %s", dump(r))
	}
	web := newCtx(tcpPkt("2001:db8::99", 40000, "2001:db8::10", 80))
	r := c.Run("nat", PreRouting, web)
	if r.NAT == nil || r.NAT.AddrMin.String() != "fd00:2::5" || r.NAT.PortMin != 8080 {
		t.Errorf("dnat: %s", dump(r))
	}
	// An IPv4-mapped address never equals a real IPv6 one.
	v4 := newCtx(tcpPkt("::ffff:10.0.0.1", 1, "fd00:2::1", 22))
	if r := c.Run("filter", Input, v4); r.Verdict == Accept {
		t.Errorf("mapped: %s", dump(r))
	}
}

// Compiled is read-only during Run: walk it from many goroutines (run
// with -race).
func TestConcurrentRuns(t *testing.T) {
	text, _ := kubeRuleset(200, 3, 4)
	c, err := Compile(parse(t, 4, text))
	if err != nil {
		t.Fatal(err)
	}
	want := c.Run("nat", PreRouting, kubeProbe(200, 7))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if g%2 == 0 {
					c.SetIndexing(i%3 != 0)
				}
				r := c.Run("nat", PreRouting, kubeProbe(200, 7))
				if trail(r) != trail(want) || r.NAT == nil || *r.NAT != *want.NAT {
					t.Errorf("concurrent run differs: %s", dump(r))
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
