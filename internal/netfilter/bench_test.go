package netfilter

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/packet"
)

type kubeBench struct {
	c        *Compiled
	services int
	rules    int
}

var (
	kubeBenchMu    sync.Mutex
	kubeBenchCache = map[int]*kubeBench{}
)

// kubeFor compiles (once) a generated kube-proxy ruleset of about n
// rules: 3 endpoints per service, a node port for every 4th service.
func kubeFor(b *testing.B, n int) *kubeBench {
	kubeBenchMu.Lock()
	defer kubeBenchMu.Unlock()
	if kb := kubeBenchCache[n]; kb != nil {
		return kb
	}
	services := kubeServicesFor(n)
	text, rules := kubeRuleset(services, 3, 4)
	rs, err := iptsave.ParseString("kube.rules", text, 4)
	if err != nil {
		b.Fatal(err)
	}
	c, err := Compile(rs)
	if err != nil {
		b.Fatal(err)
	}
	kb := &kubeBench{c: c, services: services, rules: rules}
	kubeBenchCache[n] = kb
	return kb
}

// benchKube traces a NEW TCP connection from outside the pod network to
// the last service with endpoints (the worst case for a rule-by-rule
// walk) through nat PREROUTING: KUBE-SERVICES, KUBE-SVC (masquerade mark,
// endpoint choice), KUBE-SEP (DNAT).
func benchKube(b *testing.B, n int, indexed bool) {
	kb := kubeFor(b, n)
	kb.c.SetIndexing(indexed)
	defer kb.c.SetIndexing(true)
	s := kb.services - 1
	for svcNoEndpoints(s) || svcProto(s) != "tcp" {
		s--
	}
	p := &packet.Packet{Src: netip.MustParseAddr("172.16.0.5"), Dst: netip.MustParseAddr(svcIP(s)), Proto: packet.TCP,
		SPort: 40000, DPort: svcPort(s), TCPFlags: packet.SYN, TTL: 64}
	choose := func(string, float64) bool { return false } // the last endpoint: every statistic rule evaluated
	ctx := Ctx{Pkt: p, State: CTNew, InIface: "eth0", AddrType: nodeAddrType, Choose: choose}
	if r := kb.c.Run("nat", PreRouting, &ctx); r.NAT == nil || len(r.Steps) != 7 {
		b.Fatalf("unexpected walk:\n%s", dump(r))
	}
	b.ReportMetric(float64(kb.rules), "rules")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := ctx
		kb.c.Run("nat", PreRouting, &c)
	}
}

func BenchmarkRunKubeServices1k(b *testing.B)   { benchKube(b, 1_000, true) }
func BenchmarkRunKubeServices10k(b *testing.B)  { benchKube(b, 10_000, true) }
func BenchmarkRunKubeServices100k(b *testing.B) { benchKube(b, 100_000, true) }

// The same walks rule by rule, as the kernel does, for comparison.
func BenchmarkRunKubeServicesPlain1k(b *testing.B)   { benchKube(b, 1_000, false) }
func BenchmarkRunKubeServicesPlain10k(b *testing.B)  { benchKube(b, 10_000, false) }
func BenchmarkRunKubeServicesPlain100k(b *testing.B) { benchKube(b, 100_000, false) }

// BenchmarkRunFilterPolicy is the cheapest walk: a short filter chain
// ending in its policy.
func BenchmarkRunFilterPolicy(b *testing.B) {
	c := mustCompile(b, 4, ":INPUT DROP\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT")
	ctx := newCtx(tcpPkt("10.0.0.1", 40000, "10.0.0.2", 80))
	ctx.InIface = "eth0"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Run("filter", Input, ctx)
	}
}

func BenchmarkCompileKube100k(b *testing.B) {
	text, rules := kubeRuleset(kubeServicesFor(100_000), 3, 4)
	rs, err := iptsave.ParseString("kube.rules", text, 4)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rules), "rules")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(rs); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKubeServicesFor(t *testing.T) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		_, rules := kubeRuleset(kubeServicesFor(n), 3, 4)
		if rules < n*9/10 || rules > n*11/10 {
			t.Errorf("%d: generated %d rules", n, rules)
		}
	}
	_ = fmt.Sprint()
}
