package netfilter

import (
	"fmt"
	"hash/fnv"
	"math/rand"
	"net/netip"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/packet"
)

// A generated kube-proxy (iptables mode) ruleset: every service port has
// a KUBE-SERVICES rule matching its cluster IP and port, a KUBE-SVC chain
// choosing an endpoint with -m statistic, and a KUBE-SEP chain per
// endpoint doing the DNAT; some services have node ports and external
// IPs; services without endpoints get a REJECT in filter. The layout is
// a function of the service index, so probes can aim at it.

const kubeNodeIP = "192.168.0.10"

func svcIP(i int) string        { return fmt.Sprintf("10.96.%d.%d", i/250, i%250+1) }
func svcExtIP(i int) string     { return fmt.Sprintf("203.0.113.%d", i%250+1) }
func svcPort(i int) uint16      { return uint16(80 + i%7) }
func svcProto(i int) string     { return map[bool]string{true: "udp", false: "tcp"}[i%10 == 9] }
func svcHasExt(i int) bool      { return i%7 == 3 }
func svcNoEndpoints(i int) bool { return i%13 == 5 }
func svcNodePort(i int) uint16  { return uint16(30000 + i%2700) }

func kubeChain(kind string, parts ...int) string {
	h := fnv.New64a()
	fmt.Fprint(h, kind, parts)
	return fmt.Sprintf("KUBE-%s-%016X", kind, h.Sum64())[:len("KUBE-")+len(kind)+1+16]
}

// kubeRuleset returns iptables-save text and its number of rules.
func kubeRuleset(services, endpoints, nodePortEvery int) (string, int) {
	var decl, nat, filt strings.Builder
	rules := 0
	add := func(b *strings.Builder, format string, args ...any) {
		fmt.Fprintf(b, format+"\n", args...)
		rules++
	}
	for _, c := range []string{"KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-SERVICES"} {
		fmt.Fprintf(&decl, ":%s - [0:0]\n", c)
	}
	add(&nat, `-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	add(&nat, `-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	add(&nat, `-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`)
	add(&nat, `-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000`)
	add(&nat, `-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN`)
	add(&nat, `-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0`)
	add(&nat, `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`)
	ep := 0
	for i := 0; i < services; i++ {
		name := fmt.Sprintf("ns%d/svc%d:p", i%17, i)
		ip, port, proto := svcIP(i), svcPort(i), svcProto(i)
		if svcNoEndpoints(i) {
			add(&filt, `-A KUBE-SERVICES -d %s/32 -p %s -m comment --comment "%s has no endpoints" -m %s --dport %d -j REJECT --reject-with icmp-port-unreachable`, ip, proto, name, proto, port)
			continue
		}
		svc := kubeChain("SVC", i)
		fmt.Fprintf(&decl, ":%s - [0:0]\n", svc)
		add(&nat, `-A KUBE-SERVICES -d %s/32 -p %s -m comment --comment "%s cluster IP" -m %s --dport %d -j %s`, ip, proto, name, proto, port, svc)
		add(&nat, `-A %s ! -s 10.244.0.0/16 -d %s/32 -p %s -m comment --comment "%s cluster IP" -m %s --dport %d -j KUBE-MARK-MASQ`, svc, ip, proto, name, proto, port)
		if svcHasExt(i) || (nodePortEvery > 0 && i%nodePortEvery == 0) {
			ext := kubeChain("EXT", i)
			fmt.Fprintf(&decl, ":%s - [0:0]\n", ext)
			add(&nat, `-A %s -m comment --comment "masquerade traffic for %s external destinations" -j KUBE-MARK-MASQ`, ext, name)
			add(&nat, `-A %s -j %s`, ext, svc)
			if svcHasExt(i) {
				add(&nat, `-A KUBE-SERVICES -d %s/32 -p %s -m comment --comment "%s external IP" -m %s --dport %d -j %s`, svcExtIP(i), proto, name, proto, port, ext)
			}
			if nodePortEvery > 0 && i%nodePortEvery == 0 {
				add(&nat, `-A KUBE-NODEPORTS -p %s -m comment --comment "%s" -m %s --dport %d -j %s`, proto, name, proto, svcNodePort(i), ext)
			}
		}
		if i%1000 == 500 {
			// Rules the index cannot place: a prefix and a negation.
			add(&nat, `-A KUBE-SERVICES -d 10.97.0.0/16 -m comment --comment "odd prefix rule" -j KUBE-MARK-MASQ`)
			add(&nat, `-A KUBE-SERVICES ! -d 10.96.0.0/12 -p udp -m comment --comment "odd negated rule" -j KUBE-MARK-MASQ`)
		}
		for e := 0; e < endpoints; e++ {
			epIP := fmt.Sprintf("10.244.%d.%d", ep/250, ep%250+2)
			ep++
			sep := kubeChain("SEP", i, e)
			fmt.Fprintf(&decl, ":%s - [0:0]\n", sep)
			if e < endpoints-1 {
				add(&nat, `-A %s -m comment --comment "%s -> %s:8080" -m statistic --mode random --probability %.11f -j %s`, svc, name, epIP, 1/float64(endpoints-e), sep)
			} else {
				add(&nat, `-A %s -m comment --comment "%s -> %s:8080" -j %s`, svc, name, epIP, sep)
			}
			add(&nat, `-A %s -s %s/32 -m comment --comment "%s" -j KUBE-MARK-MASQ`, sep, epIP, name)
			add(&nat, `-A %s -p %s -m comment --comment "%s" -m %s -j DNAT --to-destination %s:8080`, sep, proto, name, proto, epIP)
		}
	}
	add(&nat, `-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`)
	text := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n" +
		"-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
		"-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
		"-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
		filt.String() + "COMMIT\n" +
		"*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" +
		decl.String() + nat.String() + "COMMIT\n"
	return text, rules + 3
}

// kubeServicesFor returns how many services make about n rules.
func kubeServicesFor(n int) int {
	_, per := kubeRuleset(13, 3, 4)
	return n * 13 / per
}

func nodeAddrType(a netip.Addr, dev string) AddrType {
	switch {
	case a == netip.MustParseAddr(kubeNodeIP) || a.IsLoopback():
		return AddrLocal
	case a.IsMulticast():
		return AddrMulticast
	}
	return AddrUnicast
}

// kubeProbe builds a pseudo-random NEW packet aimed at the generated
// layout: cluster IPs (hits and misses), external IPs, node ports,
// pods and ICMP.
func kubeProbe(services int, seed uint64) *Ctx {
	rng := rand.New(rand.NewSource(int64(seed)))
	s := rng.Intn(services)
	src := fmt.Sprintf("10.244.%d.%d", rng.Intn(4), rng.Intn(250)+2)
	if rng.Intn(2) == 0 {
		src = fmt.Sprintf("172.16.%d.%d", rng.Intn(250), rng.Intn(250)+1)
	}
	dst, port, proto := svcIP(s), svcPort(s), uint8(packet.TCP)
	if svcProto(s) == "udp" {
		proto = packet.UDP
	}
	switch k := rng.Intn(10); {
	case k < 5:
	case k == 5:
		dst = svcExtIP(s)
	case k == 6:
		dst, port = kubeNodeIP, svcNodePort(s)
	case k == 7:
		port = uint16(rng.Intn(100))
	case k == 8:
		dst = fmt.Sprintf("10.97.%d.%d", rng.Intn(250), rng.Intn(250))
	default:
		proto = packet.ICMP
	}
	p := &packet.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: proto, SPort: uint16(30000 + rng.Intn(30000)), DPort: port, TTL: 64}
	if proto == packet.TCP {
		p.TCPFlags = packet.SYN
	}
	if proto == packet.ICMP {
		p.SPort, p.DPort, p.ICMPType = 0, 0, packet.ICMPEchoRequest
	}
	ctx := newCtx(p)
	ctx.AddrType = nodeAddrType
	ctx.InIface = "eth0"
	ctx.Choose = hashChoice(seed)
	return ctx
}

// hashChoice is a deterministic Ctx.Choose: its answer depends on the
// choice's description and the seed only, never on call order.
func hashChoice(seed uint64) func(string, float64) bool {
	return func(what string, p float64) bool {
		h := fnv.New64a()
		fmt.Fprint(h, what, seed)
		return float64(h.Sum64()%1_000_000)/1_000_000 < p
	}
}

func parseFull(t testing.TB, family int, text string) *Compiled {
	t.Helper()
	rs, err := iptsave.ParseString("kube.rules", text, family)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
