package netfilter

import (
	"fmt"
	"math/rand"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/packet"
)

// compareIndexed runs the same probe with and without the index and
// requires identical results, marks included.
func compareIndexed(t *testing.T, c *Compiled, table string, hook Hook, mk func() *Ctx) Result {
	t.Helper()
	c.SetIndexing(true)
	a := mk()
	ra := c.Run(table, hook, a)
	c.SetIndexing(false)
	b := mk()
	rb := c.Run(table, hook, b)
	c.SetIndexing(true)
	if !reflect.DeepEqual(ra, rb) || a.Mark != b.Mark || a.CTMark != b.CTMark {
		t.Fatalf("%s %s: indexed and plain walks differ\nindexed: %s\nplain:   %s", table, hook, dump(ra), dump(rb))
	}
	return ra
}

func TestIndexEquivalenceKube(t *testing.T) {
	const services = 5000
	text, n := kubeRuleset(services, 3, 4)
	c := parseFull(t, 4, text)
	nat := c.tables["nat"]
	if ix := nat.chains["KUBE-SERVICES"].idx; ix == nil || ix.byDst == nil {
		t.Fatal("KUBE-SERVICES is not indexed by destination")
	}
	if ix := nat.chains["KUBE-NODEPORTS"].idx; ix == nil || ix.byPort == nil {
		t.Fatal("KUBE-NODEPORTS is not indexed by port")
	}
	if ix := c.tables["filter"].chains["KUBE-SERVICES"].idx; ix == nil {
		t.Fatal("filter KUBE-SERVICES is not indexed")
	}
	t.Logf("%d rules, KUBE-SERVICES %d rules (%d unindexed)", n, len(nat.chains["KUBE-SERVICES"].rules), len(nat.chains["KUBE-SERVICES"].idx.rest))
	probes := 20000
	if testing.Short() {
		probes = 2000
	}
	kinds := map[string]int{}
	for i := 0; i < probes; i++ {
		seed := uint64(i)
		mk := func() *Ctx { return kubeProbe(services, seed) }
		r := compareIndexed(t, c, "nat", PreRouting, mk)
		out := func() *Ctx { x := mk(); x.InIface, x.OutIface = "", "eth0"; return x }
		compareIndexed(t, c, "nat", Output, out)
		compareIndexed(t, c, "filter", Forward, func() *Ctx { x := mk(); x.OutIface = "cni0"; return x })
		switch {
		case r.NAT != nil:
			kinds["dnat"]++
		case r.Steps[len(r.Steps)-1].What == "policy":
			kinds["policy"]++
		}
		if len(r.Uncertain) > 0 {
			kinds["uncertain"]++
		}
	}
	t.Logf("probe outcomes: %v", kinds)
	if kinds["dnat"] < probes/3 || kinds["policy"] < probes/10 {
		t.Errorf("probes do not exercise the ruleset: %v", kinds)
	}
}

// TestIndexEquivalenceRandom builds random long chains mixing indexable
// and unindexable rules, impure matches before and after the keyed test,
// terminal and non-terminal targets and jumps, and compares indexed and
// plain walks for random packets.
func TestIndexEquivalenceRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1", "192.168.5.5", "10.0.0.9"}
	ports := []int{22, 53, 80, 443, 8080}
	pick := func(n int) int { return rng.Intn(n) }
	rule := func(chain string, subchains []string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "-A %s", chain)
		switch k := pick(10); {
		case k < 5:
			fmt.Fprintf(&b, " -d %s/32", addrs[pick(len(addrs))])
		case k == 5:
			b.WriteString(" -d 10.0.0.0/24")
		case k == 6:
			fmt.Fprintf(&b, " ! -d %s/32", addrs[pick(len(addrs))])
		}
		if pick(5) == 0 {
			b.WriteString(" -s 172.16.0.0/12")
		}
		proto := ""
		switch pick(5) {
		case 0, 1, 2:
			proto = "tcp"
		case 3:
			proto = "udp"
		}
		if proto != "" {
			fmt.Fprintf(&b, " -p %s", proto)
		}
		mods := []string{}
		if pick(4) == 0 {
			mods = append(mods, fmt.Sprintf("-m statistic --mode random --probability 0.%d", 1+pick(8)))
		}
		if pick(8) == 0 {
			mods = append(mods, "-m set --match-set X dst")
		}
		if pick(6) == 0 {
			mods = append(mods, "-m mark --mark 0x1/0x1")
		}
		if pick(6) == 0 {
			mods = append(mods, `-m comment --comment "c"`)
		}
		if proto != "" {
			switch pick(6) {
			case 0, 1, 2:
				mods = append(mods, fmt.Sprintf("-m %s --dport %d", proto, ports[pick(len(ports))]))
			case 3:
				mods = append(mods, fmt.Sprintf("-m %s --dport 50:100", proto))
			case 4:
				mods = append(mods, fmt.Sprintf("-m multiport --dports %d,%d", ports[pick(len(ports))], ports[pick(len(ports))]))
			}
		}
		rng.Shuffle(len(mods), func(i, j int) { mods[i], mods[j] = mods[j], mods[i] })
		for _, m := range mods {
			b.WriteString(" " + m)
		}
		switch k := pick(20); {
		case k < 3:
			b.WriteString(" -j ACCEPT")
		case k < 5:
			b.WriteString(" -j DROP")
		case k < 9:
			fmt.Fprintf(&b, " -j MARK --set-xmark 0x%x/0x%x", pick(4), pick(4))
		case k < 13 && len(subchains) > 0:
			fmt.Fprintf(&b, " -j %s", subchains[pick(len(subchains))])
		case k < 14 && len(subchains) > 0:
			fmt.Fprintf(&b, " -g %s", subchains[pick(len(subchains))])
		case k < 15:
			b.WriteString(" -j RETURN")
		case k < 17:
			b.WriteString(` -j LOG --log-prefix "x"`)
		case k < 18:
			b.WriteString(" -j NFQUEUE --queue-num 1")
		}
		return b.String()
	}
	indexed := 0
	defer func() {
		if indexed < 20 {
			t.Errorf("only %d of 30 random rulesets were indexed", indexed)
		}
	}()
	for round := 0; round < 30; round++ {
		var src strings.Builder
		src.WriteString("*mangle\n:PREROUTING DROP [0:0]\n:SUB1 - [0:0]\n:SUB2 - [0:0]\n:BIG - [0:0]\n")
		for i := 0; i < 5; i++ {
			src.WriteString(rule("SUB1", nil) + "\n")
			src.WriteString(rule("SUB2", nil) + "\n")
		}
		for i := 0; i < 150+pick(150); i++ {
			src.WriteString(rule("BIG", []string{"SUB1", "SUB2"}) + "\n")
		}
		for i := 0; i < 100; i++ {
			src.WriteString(rule("PREROUTING", []string{"BIG", "SUB1"}) + "\n")
		}
		c := mustCompile(t, 4, src.String())
		if c.tables["mangle"].chains["BIG"].idx == nil && c.tables["mangle"].chains["PREROUTING"].idx == nil {
			continue
		}
		indexed++
		for i := 0; i < 300; i++ {
			seed := uint64(round*1000 + i)
			p := &packet.Packet{Src: netip.MustParseAddr([]string{"172.16.1.1", "10.9.9.9"}[pick(2)]),
				Dst: netip.MustParseAddr(addrs[pick(len(addrs))]), Proto: []uint8{packet.TCP, packet.UDP, packet.ICMP}[pick(3)],
				SPort: 1000, DPort: uint16(ports[pick(len(ports))]), TTL: 64}
			if pick(4) == 0 {
				p.DPort = uint16(50 + pick(60))
			}
			mark := uint32(pick(4))
			compareIndexed(t, c, "mangle", PreRouting, func() *Ctx {
				x := newCtx(p)
				x.Mark = mark
				x.Choose = hashChoice(seed)
				return x
			})
		}
	}
}
