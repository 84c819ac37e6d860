package conformance

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// The IPv6 layer: a scenario may run IPv6 beside IPv4 on its internet,
// router and first LAN — global addresses on both links, a routed or
// masqueraded (NAT66) LAN, ip6tables firewalls on the router and on LAN
// hosts with the ICMPv6 REJECT variants, route types and hop-limit
// expiry. The layer draws from its own random stream, so a seed's IPv4
// network is the same whether or not it gets IPv6.

// v6 is what the IPv6 layer made.
type v6 struct {
	inet  netip.Addr   // the internet's address on the WAN link
	owned []netip.Addr // addresses the internet answers for
	wan   netip.Addr   // the router's
	gw    netip.Addr   // the router's address on the first LAN
	hosts []string     // LAN nodes with an IPv6 address
	addrs []netip.Addr // their addresses, in the same order
}

// ownedPool6 are the internet's IPv6 prefixes, in the documentation range.
var ownedPool6 = []string{"2001:db8:f00d::/48", "2001:db8:beef::/48", "2001:db8:cafe::53/128"}

var rejectWith6 = []string{"icmp6-adm-prohibited", "icmp6-port-unreachable", "icmp6-no-route", "icmp6-addr-unreachable"}

// reject6 returns an ip6tables REJECT target with a random variant
// (tcp-reset only when the rule is limited to -p tcp).
func (g *gen) reject6(tcp bool) string { return g.rejectOf(rejectWith6, "ip6tables reject ", tcp) }

// dualStack adds the IPv6 layer to about two scenarios in five.
func (g *gen) dualStack(seed int64) {
	main := g.r
	g.r = rand.New(rand.NewPCG(uint64(seed), 0x1b6d0a11))
	defer func() { g.r = main }()
	if !g.chance(0.4) || g.router == nil || len(g.lans) == 0 {
		return
	}
	g.feature("IPv6 (dual stack)")
	x := &v6{}
	wan := netip.MustParsePrefix(fmt.Sprintf("2001:db8:ff%02x::/64", g.r.IntN(256)))
	x.inet = hostAddr(wan, 1)
	x.wan = hostAddr(wan, 2+g.r.IntN(200))
	lan := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/64", 0x100+g.r.IntN(0xe00)))
	x.gw = hostAddr(lan, 1)

	inet := g.inet
	addAddr(inet, "eth0", cidr(x.inet, wan))
	inet.route("%s dev eth0 proto kernel metric 256", wan)
	for _, i := range g.r.Perm(len(ownedPool6))[:1+g.r.IntN(2)] {
		p := netip.MustParsePrefix(ownedPool6[i])
		inet.owns = append(inet.owns, p.String())
		x.owned = append(x.owned, ownedAddr(p))
	}

	r := g.router
	addAddr(r, "eth0", cidr(x.wan, wan))
	addAddr(r, g.lans[0].dev, cidr(x.gw, lan))
	r.route("%s dev eth0 proto kernel metric 256", wan)
	r.route("%s dev %s proto kernel metric 256", lan, g.lans[0].dev)
	r.route("default via %s dev eth0 metric 1024", x.inet)
	if g.chance(0.08) {
		r.set("net.ipv6.conf.all.forwarding", "0")
		g.feature("IPv6 forwarding disabled")
	} else {
		r.set("net.ipv6.conf.all.forwarding", "1")
	}

	for k, end := range g.lans[0].ends[1:] {
		name, dev, _ := strings.Cut(end, ":")
		n := g.t.node(name)
		a := hostAddr(lan, 0x10+k)
		addAddr(n, dev, cidr(a, lan))
		n.route("%s dev %s proto kernel metric 256", lan, dev)
		n.route("default via %s dev %s metric 1024", x.gw, dev)
		x.hosts, x.addrs = append(x.hosts, name), append(x.addrs, a)
		if g.chance(0.3) {
			g.hostFirewall6(n)
		}
	}

	if g.chance(0.25) {
		// The internet has no route back to the LAN's prefix.
		g.feature("NAT66 (MASQUERADE)")
		r.firewall6().A("nat", "POSTROUTING", "-o eth0 -j MASQUERADE")
	} else {
		inet.route("%s via %s dev eth0 metric 1024", lan, x.wan)
	}
	if g.chance(0.6) {
		g.routerFirewall6()
	}
	if g.chance(0.3) {
		for i, typ := range []string{"blackhole", "unreachable", "prohibit"} {
			if !g.chance(0.6) {
				continue
			}
			p := netip.MustParsePrefix(fmt.Sprintf("2001:db8:dead:%x::/64", i+1))
			r.route("%s %s", typ, p)
			g.feature("IPv6 " + typ + " route")
			g.probe6(x, "icmp", hostAddr(p, 7), 0)
			g.probe6(x, g.pick("tcp", "udp"), hostAddr(p, 9), 7000+g.r.IntN(100))
		}
	}
	g.probes6(x)
}

// addAddr adds an address to a node's interface.
func addAddr(n *node, dev, a string) {
	i := n.getIface(dev)
	if i == nil {
		i = n.iface(dev)
	}
	i.addrs = append(i.addrs, a)
}

// hostFirewall6 is RHEL's ip6tables-services ruleset.
func (g *gen) hostFirewall6(n *node) {
	g.feature("ip6tables host firewall")
	fw := n.firewall6()
	fw.A("filter", "INPUT", "-m state --state RELATED,ESTABLISHED -j ACCEPT")
	fw.A("filter", "INPUT", "-p ipv6-icmp -j ACCEPT")
	fw.A("filter", "INPUT", "-i lo -j ACCEPT")
	fw.A("filter", "INPUT", "-p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT")
	fw.A("filter", "INPUT", "-d fe80::/64 -p udp -m udp --dport 546 -m state --state NEW -j ACCEPT")
	fw.A("filter", "INPUT", "-j %s", g.reject6(false))
	fw.A("filter", "FORWARD", "-j REJECT --reject-with icmp6-adm-prohibited")
}

// routerFirewall6 is a stateful ip6tables firewall on the router: the LAN
// goes out, replies come back, and maybe ICMPv6 and SSH come in.
func (g *gen) routerFirewall6() {
	g.feature("stateful ip6tables router firewall")
	fw := g.router.firewall6()
	lan := g.lans[0].dev
	fw.P("filter", "FORWARD", "DROP")
	fw.A("filter", "FORWARD", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
	if g.chance(0.5) {
		fw.A("filter", "FORWARD", "-p ipv6-icmp -j ACCEPT")
		g.feature("ICMPv6 forwarded")
	}
	fw.A("filter", "FORWARD", "-i %s -o eth0 -j ACCEPT", lan)
	if g.chance(0.5) {
		fw.A("filter", "FORWARD", "-i eth0 -o %s -p tcp -m tcp --dport 22 -j ACCEPT", lan)
	}
	if g.chance(0.5) {
		fw.A("filter", "FORWARD", "-p tcp -j %s", g.reject6(true))
		fw.A("filter", "FORWARD", "-j %s", g.reject6(false))
	}
	fw.A("filter", "INPUT", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
	fw.A("filter", "INPUT", "-i lo -j ACCEPT")
	if g.chance(0.85) {
		fw.A("filter", "INPUT", "-p ipv6-icmp -j ACCEPT")
	} else {
		// Neighbour discovery is ICMPv6 too: without this rule the
		// router answers no neighbour solicitation.
		g.feature("ICMPv6 not accepted in INPUT")
	}
	if g.chance(0.5) {
		fw.A("filter", "INPUT", "-i %s -p tcp -m tcp --dport 22 -j ACCEPT", lan)
		g.router.listens("tcp/22")
	}
	if g.chance(0.5) {
		fw.A("filter", "INPUT", "-j %s", g.reject6(false))
	} else {
		fw.P("filter", "INPUT", "DROP")
	}
}

// probe6 adds a probe from a random IPv6 LAN host.
func (g *gen) probe6(x *v6, proto string, dst netip.Addr, port int) {
	if len(x.hosts) == 0 {
		return
	}
	from := x.hosts[g.r.IntN(len(x.hosts))]
	if proto == "icmp" {
		g.probe("%s icmp %s", from, dst)
		return
	}
	g.probe("%s %s %s", from, proto, netip.AddrPortFrom(dst, uint16(port)))
}

// probes6 adds what the default probes do not cover over IPv6: hop-limit
// expiry, closed ports, and the internet reaching into the LAN.
func (g *gen) probes6(x *v6) {
	if len(x.hosts) == 0 {
		return
	}
	g.feature("hop-limit expiry")
	g.expiryProbes(x.hosts, x.owned, 3)
	k := g.r.IntN(len(x.hosts))
	g.probe6(x, g.pick("tcp", "udp"), x.addrs[k], 6000+g.r.IntN(50))
	g.probe("%s %s %s", g.inet.name, g.pick("tcp", "udp"), netip.AddrPortFrom(x.addrs[k], uint16(6000+g.r.IntN(50))))
	g.probe("%s tcp %s", g.inet.name, netip.AddrPortFrom(x.addrs[k], 22))
	g.probe("%s icmp %s", g.inet.name, x.addrs[k])
}
