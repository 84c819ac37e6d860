package conformance

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
)

// maxNodes bounds a scenario so that its lab builds in a second or two.
const maxNodes = 7

// gen is one scenario being generated.
type gen struct {
	r      *rand.Rand
	t      *topo
	used   []netip.Prefix
	names  map[string]bool
	feats  []string
	probes []string // in verify.ParseProbe syntax, without source ports
	budget int      // nodes that may still be added

	inet   *node
	inetIP netip.Addr
	owned  []netip.Addr // addresses the internet answers for
	router *node
	wanIP  netip.Addr
	lans   []*lan
	// routeErrs counts probes aimed at blackhole/unreachable/prohibit
	// routes: the kernel rate-limits the errors of forwarded packets per
	// source (ip_error: a burst of 5, then one a second).
	routeErrs int
	// deep lists nodes behind one or more NATs, for TTL probes.
	deep []string
	// servers are LAN listeners a router may forward a port to.
	servers []server
	// routeProbe are addresses behind the router's blackhole,
	// unreachable and prohibit routes.
	routeProbe []netip.Addr
	// nodePorts are kube NodePort services.
	nodePorts []netip.AddrPort
	// proxy: the router redirects the LAN's port 80 to its own 3128.
	proxy bool
}

type lan struct {
	dev  string // the router's interface
	pfx  netip.Prefix
	gw   netip.Addr
	next int
	ends []string
}

type server struct {
	node  string
	addr  netip.Addr
	proto string
	port  int
}

func (g *gen) feature(f string) {
	if !slices.Contains(g.feats, f) {
		g.feats = append(g.feats, f)
	}
}

func (g *gen) probe(format string, a ...any) { g.probes = append(g.probes, fmt.Sprintf(format, a...)) }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.r.IntN(16)]
	}
	return string(b)
}

// name returns a node name from the list not used yet (with a number
// appended when all are taken).
func (g *gen) name(choices ...string) string {
	for _, i := range g.r.Perm(len(choices)) {
		if !g.names[choices[i]] {
			g.names[choices[i]] = true
			return choices[i]
		}
	}
	for k := 2; ; k++ {
		n := fmt.Sprintf("%s%d", choices[0], k)
		if !g.names[n] {
			g.names[n] = true
			return n
		}
	}
}

// subnet reserves a prefix of the given length inside one of the pools,
// overlapping nothing reserved so far.
func (g *gen) subnet(bits int, pools ...string) netip.Prefix {
	for try := 0; try < 1000; try++ {
		pool := netip.MustParsePrefix(pools[g.r.IntN(len(pools))])
		span := bits - pool.Bits()
		if span < 0 {
			panic("conformance: pool smaller than the subnet")
		}
		off := uint32(0)
		if span > 0 {
			off = uint32(g.r.IntN(1 << min(span, 16)))
		}
		base := pool.Masked().Addr().As4()
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		v += off << (32 - bits)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
		if g.reserve(p) {
			return p
		}
	}
	panic("conformance: address pools exhausted")
}

func (g *gen) reserve(p netip.Prefix) bool {
	for _, u := range g.used {
		if u.Overlaps(p) {
			return false
		}
	}
	g.used = append(g.used, p)
	return true
}

// ownedAddr is the address probes aim at in a prefix the internet owns:
// its first host, unless the prefix is a host or a pair (as
// verify.Addresses picks it).
func ownedAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if p.Bits() < a.BitLen()-1 {
		a = a.Next()
	}
	return a
}

// hostAddr is the n-th address of a prefix.
func hostAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	return a
}

func cidr(a netip.Addr, p netip.Prefix) string { return fmt.Sprintf("%s/%d", a, p.Bits()) }

// host gives the next free address of a LAN.
func (l *lan) host() netip.Addr {
	l.next++
	return hostAddr(l.pfx, l.next)
}

var rejectWith = []string{"icmp-port-unreachable", "icmp-host-prohibited", "icmp-admin-prohibited",
	"icmp-net-unreachable", "icmp-host-unreachable", "icmp-net-prohibited"}

// reject returns a REJECT target with a random variant (tcp-reset only
// when the rule is limited to -p tcp).
func (g *gen) reject(tcp bool) string { return g.rejectOf(rejectWith, "reject ", tcp) }

// rejectOf is reject with the variants of a family, naming the feature
// with prefix.
func (g *gen) rejectOf(variants []string, prefix string, tcp bool) string {
	with := g.pick(variants...)
	if tcp && g.chance(0.5) {
		with = "tcp-reset"
	}
	g.feature(prefix + with)
	return "REJECT --reject-with " + with
}

// --- the internet ---

var ownedPool = []string{"142.250.115.106/32", "93.184.216.34/32", "1.1.1.0/24", "8.8.8.8/32", "151.101.65.69/32", "140.82.112.3/32"}

func (g *gen) internet() {
	n := g.t.add(g.name("internet", "isp", "wan"), "external")
	g.budget--
	g.inet = n
	wan := g.subnet(24, "203.0.113.0/24", "198.51.100.0/24", "100.64.0.0/12")
	g.inetIP = hostAddr(wan, 1)
	n.iface("eth0", cidr(g.inetIP, wan))
	n.route("%s dev eth0 proto kernel scope link src %s", wan, g.inetIP)
	k := 1 + g.r.IntN(2)
	for _, i := range g.r.Perm(len(ownedPool))[:k] {
		p := netip.MustParsePrefix(ownedPool[i])
		if !g.reserve(p) {
			continue
		}
		n.owns = append(n.owns, p.String())
		g.owned = append(g.owned, ownedAddr(p))
	}
	g.t.names = map[string][]string{"www.example.com": {g.owned[0].String()}}
	for _, l := range []string{"tcp/443", "tcp/80", "udp/53"} {
		if g.chance(0.7) || len(n.listen) == 0 && l == "udp/53" {
			n.listens(l)
		}
	}
	if g.chance(0.5) {
		n.ttl = []int{54, 106, 128, 255}[g.r.IntN(4)]
	}
	// The router's WAN address comes from the same segment.
	g.wanIP = hostAddr(wan, 2+g.r.IntN(200))
}

// --- the router ---

func (g *gen) makeRouter() {
	r := g.t.add(g.name("router", "gw", "edge", "fw1", "rtr"), "router")
	g.budget--
	g.router = r
	wan := g.inet.ifaces[0].addrs[0]
	wanP := netip.MustParsePrefix(wan)
	r.iface("eth0", cidr(g.wanIP, wanP))
	g.t.wire("segment", g.inet.name+":eth0", r.name+":eth0")
	r.route("default via %s dev eth0 proto static", g.inetIP)
	r.route("%s dev eth0 proto kernel scope link src %s", wanP.Masked(), g.wanIP)
	g.addLAN()

	fwd := "1"
	switch x := g.r.Float64(); {
	case x < 0.06:
		fwd = "0"
		g.feature("forwarding disabled")
	case x < 0.12:
		r.set("net.ipv4.ip_forward", "1")
		r.set("net.ipv4.conf.eth1.forwarding", "0")
		g.feature("forwarding disabled on one interface")
		fwd = ""
	}
	if fwd != "" {
		r.set("net.ipv4.ip_forward", fwd)
	}
	fw := r.firewall()
	switch x := g.r.Float64(); {
	case x < 0.8:
		fw.A("nat", "POSTROUTING", "-o eth0 -j MASQUERADE")
		g.feature("router MASQUERADE")
	case x < 0.92:
		to := g.wanIP
		if g.chance(0.5) {
			to = hostAddr(wanP, 210+g.r.IntN(40))
			r.getIface("eth0").addrs = append(r.getIface("eth0").addrs, cidr(to, wanP))
			g.feature("SNAT to a secondary address")
		}
		fw.A("nat", "POSTROUTING", "-o eth0 -j SNAT --to-source %s", to)
		g.feature("router SNAT")
	default:
		g.feature("routed LAN (no NAT)")
		g.inet.route("%s via %s dev eth0", g.lans[0].pfx, g.wanIP)
	}
	if g.chance(0.6) {
		g.feature("stateful router firewall")
		fw.P("filter", "FORWARD", "DROP")
		fw.A("filter", "FORWARD", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
		if g.chance(0.5) {
			fw.A("filter", "FORWARD", "-m conntrack --ctstate INVALID -j DROP")
		}
		fw.A("filter", "FORWARD", "-i eth1 -o eth0 -j ACCEPT")
		fw.A("filter", "INPUT", "-i lo -j ACCEPT")
		fw.A("filter", "INPUT", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
		fw.A("filter", "INPUT", "-i eth1 -p icmp -m icmp --icmp-type 8 -j ACCEPT")
		if g.chance(0.6) {
			fw.A("filter", "INPUT", "-i eth1 -p tcp -m tcp --dport 22 -j ACCEPT")
			r.listens("tcp/22")
		}
		if g.chance(0.5) {
			fw.A("filter", "INPUT", "-p tcp -j %s", g.reject(true))
			fw.A("filter", "INPUT", "-j %s", g.reject(false))
		} else {
			fw.P("filter", "INPUT", "DROP")
		}
		g.feature("conntrack state")
	} else if g.chance(0.5) {
		r.listens("tcp/22")
	}
	if g.chance(0.15) {
		g.feature("REDIRECT (transparent proxy)")
		r.listens("tcp/3128")
		fw.A("nat", "PREROUTING", "-i eth1 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 3128")
		if fw.chain("filter", "INPUT").policy == "DROP" || len(fw.chain("filter", "INPUT").rules) > 0 {
			fw.I("filter", "INPUT", "-i eth1 -p tcp -m tcp --dport 3128 -j ACCEPT")
		}
		g.proxy = true
	}
	if g.chance(0.35) {
		for _, typ := range []string{"blackhole", "unreachable", "prohibit"} {
			if !g.chance(0.6) {
				continue
			}
			p := g.subnet(24, "198.18.0.0/15")
			r.route("%s %s", typ, p)
			g.feature(typ + " route")
			g.routeProbe = append(g.routeProbe, hostAddr(p, 1+g.r.IntN(250)))
		}
	}
}

func (g *gen) addLAN() *lan {
	dev := fmt.Sprintf("eth%d", len(g.lans)+1)
	p := g.subnet(24, "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12")
	l := &lan{dev: dev, pfx: p}
	l.next = g.r.IntN(3) * 50 // .1, .51 or .101 for the gateway
	l.gw = l.host()
	g.router.iface(dev, cidr(l.gw, p))
	g.router.route("%s dev %s proto kernel scope link src %s", p, dev, l.gw)
	l.ends = []string{g.router.name + ":" + dev}
	g.lans = append(g.lans, l)
	return l
}

// joinLAN puts a node's interface on a LAN with the next address and a
// default route through the router.
func (g *gen) joinLAN(l *lan, n *node, dev string, metric int) netip.Addr {
	a := l.host()
	n.iface(dev, cidr(a, l.pfx))
	n.route("%s dev %s proto kernel scope link src %s", l.pfx, dev, a)
	if metric >= 0 {
		if metric > 0 {
			n.route("default via %s dev %s proto static metric %d", l.gw, dev, metric)
		} else {
			n.route("default via %s dev %s", l.gw, dev)
		}
	}
	l.ends = append(l.ends, n.name+":"+dev)
	return a
}

func (g *gen) wireLANs() {
	for _, l := range g.lans {
		g.t.wire("segment", l.ends...)
	}
}

// --- hosts ---

var hostNames = []string{"mayura", "atlas", "orion", "vega", "lyra", "nova", "kepler", "sirius", "deneb", "rigel"}

func (g *gen) plainHost() {
	n := g.t.add(g.name(hostNames...), "host")
	g.budget--
	dev := g.pick("eth0", "ens3", "enp1s0")
	a := g.joinLAN(g.lans[0], n, dev, 0)
	n.listens("tcp/22")
	if g.chance(0.2) {
		l := g.lans[0]
		n.getIface(dev).addrs = append(n.getIface(dev).addrs, cidr(l.host(), l.pfx))
		g.feature("secondary address")
	}
	if g.chance(0.5) {
		n.listens("tcp/8080")
		g.servers = append(g.servers, server{n.name, a, "tcp", 8080})
	}
	if g.chance(0.4) {
		n.listens("udp/5353")
	}
	if g.chance(0.45) {
		g.hostFirewall(n)
	}
	if g.chance(0.2) {
		g.feature("NOTRACK")
		n.listens("udp/53")
		fw := n.firewall()
		fw.A("raw", "PREROUTING", "-p udp -m udp --dport 53 -j CT --notrack")
		fw.A("raw", "OUTPUT", "-p udp -m udp --sport 53 -j CT --notrack")
		if len(fw.chain("filter", "INPUT").rules) > 0 {
			fw.I("filter", "INPUT", "-p udp -m udp --dport 53 -j ACCEPT")
		}
	}
	if g.chance(0.15) {
		p := g.subnet(24, "198.18.0.0/15")
		n.route("unreachable %s", p)
		g.feature("unreachable route on a host")
		g.probe("%s icmp %s", n.name, hostAddr(p, 7))
	}
	if g.chance(0.15) {
		fw := n.firewall()
		fw.A("filter", "OUTPUT", "-p tcp -m tcp --dport 25 -j %s", g.reject(true))
		g.feature("REJECT in OUTPUT")
		g.probe("%s tcp %s:25", n.name, g.owned[0])
	}
}

// hostFirewall is the classic RHEL iptables-services ruleset, with a
// random REJECT.
func (g *gen) hostFirewall(n *node) {
	fw := n.firewall()
	g.feature("host firewall")
	g.feature("conntrack state")
	fw.A("filter", "INPUT", "-m state --state RELATED,ESTABLISHED -j ACCEPT")
	if g.chance(0.7) {
		fw.A("filter", "INPUT", "-p icmp -j ACCEPT")
	}
	fw.A("filter", "INPUT", "-i lo -j ACCEPT")
	fw.A("filter", "INPUT", "-p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT")
	if g.chance(0.3) {
		fw.A("filter", "INPUT", "-p tcp -j %s", g.reject(true))
	}
	fw.A("filter", "INPUT", "-j %s", g.reject(false))
	if g.chance(0.5) {
		fw.A("filter", "FORWARD", "-j %s", g.reject(false))
	}
}

// --- docker ---

type dockerNet struct {
	bridge string
	pfx    netip.Prefix
	next   int
}

type mapping struct {
	proto          string
	host, ctr      int
	ctrAddr        netip.Addr
	bridge, ctrNod string
}

var ctrPorts = []string{"tcp/80", "tcp/443", "tcp/5432", "tcp/6379", "udp/53", "tcp/3000"}

// dockerize makes n a Docker 24 host with containers on docker0 (and
// maybe a user-defined network), publishing some of their ports.
func (g *gen) dockerize(n *node, maxCtrs int) {
	g.feature("docker bridge")
	n.set("net.ipv4.ip_forward", "1")
	nets := []*dockerNet{{bridge: "docker0", pfx: g.subnet(16, "172.17.0.0/16", "172.18.0.0/15", "172.20.0.0/14")}}
	if maxCtrs >= 2 && g.chance(0.3) {
		nets = append(nets, &dockerNet{bridge: "br-" + g.hex(12), pfx: g.subnet(16, "172.16.0.0/12")})
		g.feature("docker user network")
	}
	for _, dn := range nets {
		dn.next = 1
		n.iface(dn.bridge, cidr(hostAddr(dn.pfx, 1), dn.pfx)).kind = "bridge"
		n.route("%s dev %s proto kernel scope link src %s", dn.pfx, dn.bridge, hostAddr(dn.pfx, 1))
	}
	hairpin := g.chance(0.4) // userland-proxy=false
	if hairpin {
		g.feature("docker hairpin (userland-proxy=false)")
	}
	icc := !g.chance(0.15)
	if !icc {
		g.feature("docker icc=false")
	}
	brnf := g.chance(0.6) // Docker loads br_netfilter
	if brnf {
		n.set("net.bridge.bridge-nf-call-iptables", "1")
		g.feature("br_netfilter on")
	} else {
		n.set("net.bridge.bridge-nf-call-iptables", "0")
	}
	k := 1 + g.r.IntN(maxCtrs)
	var maps []mapping
	hostPorts := map[string]bool{}
	for i := 0; i < k && g.budget > 0; i++ {
		dn := nets[i%len(nets)]
		c := g.t.add(g.name(g.hex(12)), "container")
		g.budget--
		dn.next++
		a := hostAddr(dn.pfx, dn.next)
		c.iface("eth0", cidr(a, dn.pfx)).mac = fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", a.As4()[0], a.As4()[1], a.As4()[2], a.As4()[3])
		c.route("default via %s dev eth0", hostAddr(dn.pfx, 1))
		c.route("%s dev eth0 proto kernel scope link src %s", dn.pfx, a)
		veth := "veth" + g.hex(7)
		port := n.iface(veth)
		port.master = dn.bridge
		port.hairpin = hairpin // docker sets hairpin mode without userland-proxy
		g.t.wire("veth", c.name+":eth0", n.name+":"+veth)
		ls := g.r.Perm(len(ctrPorts))[:1+g.r.IntN(2)]
		for j, li := range ls {
			spec := ctrPorts[li]
			c.listens(spec)
			if j == 0 || g.chance(0.4) {
				proto, port, _ := strings.Cut(spec, "/")
				var cp int
				fmt.Sscan(port, &cp)
				hp := []int{8080, 8443, 9000, 15432, 16379, 2053, 3000, 1443}[g.r.IntN(8)]
				for hostPorts[fmt.Sprint(proto, hp)] {
					hp++
				}
				hostPorts[fmt.Sprint(proto, hp)] = true
				maps = append(maps, mapping{proto: proto, host: hp, ctr: cp, ctrAddr: a, bridge: dn.bridge, ctrNod: c.name})
			}
		}
		g.deep = append(g.deep, c.name)
	}
	g.feature("docker published ports")
	fw := n.firewall()
	fw.N("nat", "DOCKER")
	for _, c := range []string{"DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER"} {
		fw.N("filter", c)
	}
	fw.P("filter", "FORWARD", "DROP")
	fw.A("nat", "PREROUTING", "-m addrtype --dst-type LOCAL -j DOCKER")
	fw.A("nat", "OUTPUT", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER")
	fw.A("filter", "FORWARD", "-j DOCKER-USER")
	fw.A("filter", "FORWARD", "-j DOCKER-ISOLATION-STAGE-1")
	for i := len(nets) - 1; i >= 0; i-- {
		br := nets[i].bridge
		fw.A("nat", "POSTROUTING", "-s %s ! -o %s -j MASQUERADE", nets[i].pfx, br)
		if !hairpin {
			fw.A("nat", "DOCKER", "-i %s -j RETURN", br)
		}
		fw.A("filter", "FORWARD", "-o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", br)
		fw.A("filter", "FORWARD", "-o %s -j DOCKER", br)
		fw.A("filter", "FORWARD", "-i %s ! -o %s -j ACCEPT", br, br)
		if icc {
			fw.A("filter", "FORWARD", "-i %s -o %s -j ACCEPT", br, br)
		} else {
			fw.A("filter", "FORWARD", "-i %s -o %s -j DROP", br, br)
		}
		fw.A("filter", "DOCKER-ISOLATION-STAGE-1", "-i %s ! -o %s -j DOCKER-ISOLATION-STAGE-2", br, br)
		fw.A("filter", "DOCKER-ISOLATION-STAGE-2", "-o %s -j DROP", br)
	}
	if hairpin {
		fw.A("nat", "POSTROUTING", "-o docker0 -m addrtype --src-type LOCAL -j MASQUERADE")
	}
	fw.A("filter", "DOCKER-ISOLATION-STAGE-1", "-j RETURN")
	fw.A("filter", "DOCKER-ISOLATION-STAGE-2", "-j RETURN")
	fw.A("filter", "DOCKER-USER", "-j RETURN")
	for _, m := range maps {
		fw.A("nat", "POSTROUTING", "-s %s/32 -d %s/32 -p %s -m %s --dport %d -j MASQUERADE", m.ctrAddr, m.ctrAddr, m.proto, m.proto, m.ctr)
		if hairpin {
			fw.A("nat", "DOCKER", "-p %s -m %s --dport %d -j DNAT --to-destination %s:%d", m.proto, m.proto, m.host, m.ctrAddr, m.ctr)
		} else {
			fw.A("nat", "DOCKER", "! -i %s -p %s -m %s --dport %d -j DNAT --to-destination %s:%d", m.bridge, m.proto, m.proto, m.host, m.ctrAddr, m.ctr)
			// docker-proxy listens on the published port too.
			n.listens(fmt.Sprintf("%s/%d", m.proto, m.host))
		}
		fw.A("filter", "DOCKER", "-d %s/32 ! -i %s -o %s -p %s -m %s --dport %d -j ACCEPT", m.ctrAddr, m.bridge, m.bridge, m.proto, m.proto, m.ctr)
	}
}

func (g *gen) dockerHost() {
	n := g.t.add(g.name(hostNames...), "host")
	g.budget--
	g.joinLAN(g.lans[0], n, g.pick("eth0", "ens3", "enp1s0"), 0)
	n.listens("tcp/22")
	g.dockerize(n, min(2, g.budget))
}

// --- libvirt ---

func (g *gen) libvirtHost() {
	n := g.t.add(g.name(hostNames...), "host")
	g.budget--
	up := g.pick("enp7s0", "eth0", "eno1")
	hostIP := g.joinLAN(g.lans[0], n, up, 0)
	n.listens("tcp/22")
	n.set("net.ipv4.ip_forward", "1")
	g.feature("libvirt NAT network")
	p := g.subnet(24, "192.168.122.0/24", "192.168.120.0/22", "192.168.100.0/22")
	gw := hostAddr(p, 1)
	n.iface("virbr0", cidr(gw, p)).kind = "bridge"
	n.route("%s dev virbr0 proto kernel scope link src %s", p, gw)
	fw := n.firewall()
	libvirtRules(fw, p.String())
	vms := 1
	if g.budget >= 2 && g.chance(0.4) {
		vms = 2
	}
	for i := 0; i < vms && g.budget > 0; i++ {
		vm := g.t.add(g.name("rhel8a", "web1", "db1", "vm1", "ubuntu22", "fedora"), "vm")
		g.budget--
		a := hostAddr(p, 100+g.r.IntN(150)+i)
		vm.iface("eth0", cidr(a, p))
		vm.route("default via %s dev eth0 proto dhcp metric 100", gw)
		vm.route("%s dev eth0 proto kernel scope link src %s", p, a)
		vm.listens("tcp/22")
		tap := fmt.Sprintf("vnet%d", i)
		n.iface(tap).master = "virbr0"
		g.t.wire("tap", n.name+":"+tap, vm.name+":eth0")
		g.deep = append(g.deep, vm.name)
		if i == 0 && g.chance(0.35) {
			hp := 2222 + g.r.IntN(10)
			fw.I("filter", "FORWARD", "-d %s/32 -p tcp -m tcp --dport 22 -j ACCEPT", a)
			fw.A("nat", "PREROUTING", "-i %s -p tcp -m tcp --dport %d -j DNAT --to-destination %s:22", up, hp, a)
			g.feature("libvirt port forward hook")
			g.servers = append(g.servers, server{n.name, hostIP, "tcp", hp})
		}
		if g.budget > 0 && g.chance(0.5) {
			g.feature("nested NAT (container in VM)")
			g.dockerize(vm, min(1, g.budget))
		} else if g.chance(0.3) {
			vm.listens("tcp/80")
		}
	}
}

// libvirtRules are libvirt 6+'s rules for a NAT network on virbr0.
func libvirtRules(fw *ipt, s string) {
	fw.A("mangle", "POSTROUTING", "-j LIBVIRT_PRT")
	fw.A("mangle", "LIBVIRT_PRT", "-o virbr0 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill")
	fw.A("nat", "POSTROUTING", "-j LIBVIRT_PRT")
	fw.A("nat", "LIBVIRT_PRT", "-s %s -d 224.0.0.0/24 -j RETURN", s)
	fw.A("nat", "LIBVIRT_PRT", "-s %s -d 255.255.255.255/32 -j RETURN", s)
	fw.A("nat", "LIBVIRT_PRT", "-s %s ! -d %s -p tcp -j MASQUERADE --to-ports 1024-65535", s, s)
	fw.A("nat", "LIBVIRT_PRT", "-s %s ! -d %s -p udp -j MASQUERADE --to-ports 1024-65535", s, s)
	fw.A("nat", "LIBVIRT_PRT", "-s %s ! -d %s -j MASQUERADE", s, s)
	fw.A("filter", "INPUT", "-j LIBVIRT_INP")
	fw.A("filter", "FORWARD", "-j LIBVIRT_FWX")
	fw.A("filter", "FORWARD", "-j LIBVIRT_FWI")
	fw.A("filter", "FORWARD", "-j LIBVIRT_FWO")
	fw.A("filter", "OUTPUT", "-j LIBVIRT_OUT")
	fw.A("filter", "LIBVIRT_FWI", "-d %s -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", s)
	fw.A("filter", "LIBVIRT_FWI", "-o virbr0 -j REJECT --reject-with icmp-port-unreachable")
	fw.A("filter", "LIBVIRT_FWO", "-s %s -i virbr0 -j ACCEPT", s)
	fw.A("filter", "LIBVIRT_FWO", "-i virbr0 -j REJECT --reject-with icmp-port-unreachable")
	fw.A("filter", "LIBVIRT_FWX", "-i virbr0 -o virbr0 -j ACCEPT")
	for _, p := range []string{"udp -m udp --dport 53", "tcp -m tcp --dport 53", "udp -m udp --dport 67", "tcp -m tcp --dport 67"} {
		fw.A("filter", "LIBVIRT_INP", "-i virbr0 -p %s -j ACCEPT", p)
	}
	for _, p := range []string{"udp -m udp --dport 53", "tcp -m tcp --dport 53", "udp -m udp --dport 68", "tcp -m tcp --dport 68"} {
		fw.A("filter", "LIBVIRT_OUT", "-o virbr0 -p %s -j ACCEPT", p)
	}
}

// --- kubernetes ---

func (g *gen) kubeNode() {
	n := g.t.add(g.name("k8s-node1", "worker1", "kube1", "node-a"), "host")
	g.budget--
	g.joinLAN(g.lans[0], n, g.pick("eth0", "ens192"), 0)
	n.listens("tcp/22")
	n.set("net.ipv4.ip_forward", "1")
	g.feature("kube-proxy service chains")
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	podNet := g.subnet(24, "10.244.0.0/16")
	g.reserve(cluster) // nothing else may use the cluster range
	gw := hostAddr(podNet, 1)
	n.iface("cni0", cidr(gw, podNet)).kind = "bridge"
	n.route("%s dev cni0 proto kernel scope link src %s", podNet, gw)
	svcNet := netip.MustParsePrefix("10.96.0.0/12")
	g.reserve(svcNet)
	// Kubernetes wants br_netfilter; the bridge CNI plugin's hairpinMode
	// lets a pod reach itself through its service.
	if g.chance(0.7) {
		n.set("net.bridge.bridge-nf-call-iptables", "1")
		g.feature("br_netfilter on")
	} else {
		n.set("net.bridge.bridge-nf-call-iptables", "0")
	}
	hairpinMode := g.chance(0.6)
	if hairpinMode {
		g.feature("bridge port hairpin mode")
	}
	var pods []netip.Addr
	var podNames []string
	k := 1 + g.r.IntN(min(2, g.budget))
	for i := 0; i < k && g.budget > 0; i++ {
		p := g.t.add(g.name(fmt.Sprintf("web-%s-%s", g.hex(5), g.hex(5))), "container")
		g.budget--
		a := hostAddr(podNet, 2+i+g.r.IntN(20)*2)
		p.iface("eth0", cidr(a, podNet))
		p.route("default via %s dev eth0", gw)
		p.route("%s dev eth0 proto kernel scope link src %s", podNet, a)
		p.listens("tcp/8080")
		veth := "veth" + g.hex(8)
		port := n.iface(veth)
		port.master = "cni0"
		port.hairpin = hairpinMode
		g.t.wire("veth", p.name+":eth0", n.name+":"+veth)
		pods, podNames = append(pods, a), append(podNames, p.name)
		g.deep = append(g.deep, p.name)
	}
	fw := n.firewall()
	for _, c := range []string{"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"} {
		fw.N("nat", c)
	}
	for _, c := range []string{"KUBE-FORWARD", "KUBE-SERVICES", "KUBE-FIREWALL"} {
		fw.N("filter", c)
	}
	fw.A("nat", "PREROUTING", `-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	fw.A("nat", "OUTPUT", `-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	fw.A("nat", "POSTROUTING", `-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`)
	fw.A("nat", "KUBE-MARK-MASQ", "-j MARK --or-mark 0x4000")
	fw.A("nat", "KUBE-POSTROUTING", "-m mark ! --mark 0x4000/0x4000 -j RETURN")
	fw.A("nat", "KUBE-POSTROUTING", "-j MARK --xor-mark 0x4000")
	masq := "MASQUERADE"
	if g.chance(0.5) { // kube-proxy adds --random-fully where iptables has it
		masq += " --random-fully"
		g.feature("MASQUERADE --random-fully")
	}
	fw.A("nat", "KUBE-POSTROUTING", `-m comment --comment "kubernetes service traffic requiring SNAT" -j %s`, masq)
	// The CNI bridge plugin's masquerade, one chain per pod.
	for _, a := range pods {
		id, ch := g.hex(64), "CNI-"+g.hex(24)
		fw.N("nat", ch)
		cm := fmt.Sprintf(`-m comment --comment "name: \"cbr0\" id: \"%s\""`, id)
		fw.A("nat", "POSTROUTING", "-s %s/32 %s -j %s", a, cm, ch)
		fw.A("nat", ch, "-d %s %s -j ACCEPT", podNet, cm)
		fw.A("nat", ch, "! -d 224.0.0.0/4 %s -j MASQUERADE", cm)
	}
	fw.A("filter", "INPUT", "-j KUBE-FIREWALL")
	fw.A("filter", "FORWARD", `-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`)
	fw.A("filter", "FORWARD", `-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	fw.A("filter", "OUTPUT", `-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	fw.A("filter", "OUTPUT", "-j KUBE-FIREWALL")
	fw.A("filter", "KUBE-FIREWALL", `! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`)
	fw.A("filter", "KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP")
	fw.A("filter", "KUBE-FORWARD", `-m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT`)
	fw.A("filter", "KUBE-FORWARD", `-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)

	nodeIP := netip.MustParsePrefix(n.ifaces[0].addrs[0]).Addr()
	svcs := 1 + g.r.IntN(2)
	for s := 0; s < svcs; s++ {
		name := g.pick("default/web:http", "shop/api:http", "kube-system/metrics:http", "default/frontend:http")
		name = fmt.Sprintf("%s%d", name, s)
		vip := hostAddr(svcNet, 10+g.r.IntN(4000))
		svc, ext := "KUBE-SVC-"+strings.ToUpper(g.hex(16)), "KUBE-EXT-"+strings.ToUpper(g.hex(16))
		fw.N("nat", svc)
		fw.A("nat", "KUBE-SERVICES", `-d %s/32 -p tcp -m comment --comment "%s cluster IP" -m tcp --dport 80 -j %s`, vip, name, svc)
		fw.A("nat", svc, `! -s %s -d %s/32 -p tcp -m comment --comment "%s cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`, cluster, vip, name)
		eps := pods
		if len(pods) > 1 && g.chance(0.5) {
			eps = pods[:1]
		}
		if len(eps) > 1 {
			g.feature("kube-proxy statistic random")
		}
		for i, ep := range eps {
			sep := "KUBE-SEP-" + strings.ToUpper(g.hex(16))
			fw.N("nat", sep)
			stat := ""
			if i < len(eps)-1 {
				stat = fmt.Sprintf(" -m statistic --mode random --probability %.11f", 1/float64(len(eps)-i))
			}
			fw.A("nat", svc, `-m comment --comment "%s -> %s:8080"%s -j %s`, name, ep, stat, sep)
			fw.A("nat", sep, `-s %s/32 -m comment --comment "%s" -j KUBE-MARK-MASQ`, ep, name)
			fw.A("nat", sep, `-p tcp -m comment --comment "%s" -m tcp -j DNAT --to-destination %s:8080`, name, ep)
		}
		g.probe("%s tcp %s:80", n.name, vip)
		g.probe("%s tcp %s:80", podNames[g.r.IntN(len(podNames))], vip)
		if g.chance(0.7) {
			np := 30000 + g.r.IntN(2767)
			fw.N("nat", ext)
			fw.A("nat", "KUBE-NODEPORTS", `-p tcp -m comment --comment "%s" -m tcp --dport %d -j %s`, name, np, ext)
			fw.A("nat", ext, `-m comment --comment "masquerade traffic for %s external destinations" -j KUBE-MARK-MASQ`, name)
			fw.A("nat", ext, "-j %s", svc)
			g.feature("kube NodePort")
			g.nodePorts = append(g.nodePorts, netip.AddrPortFrom(nodeIP, uint16(np)))
		}
	}
	fw.A("nat", "KUBE-SERVICES", `-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`)
	if g.chance(0.4) {
		vip := hostAddr(svcNet, 5000+g.r.IntN(1000))
		fw.A("filter", "KUBE-SERVICES", `-d %s/32 -p tcp -m comment --comment "default/empty:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable`, vip)
		g.feature("kube service without endpoints")
		g.probe("%s tcp %s:80", podNames[0], vip)
	}
}

// --- multi-homed host with policy routing ---

func (g *gen) multiHomed() {
	n := g.t.add(g.name(hostNames...), "host")
	g.budget--
	g.feature("multi-homed host with metrics")
	lan2 := g.lans[len(g.lans)-1]
	if len(g.lans) < 2 {
		lan2 = g.addLAN()
		fw := g.router.firewall()
		if fw.chain("filter", "FORWARD").policy == "DROP" {
			fw.A("filter", "FORWARD", "-i %s -o eth0 -j ACCEPT", lan2.dev)
			fw.A("filter", "FORWARD", "-i %s -o eth1 -j ACCEPT", lan2.dev)
			fw.A("filter", "FORWARD", "-i eth1 -o %s -j ACCEPT", lan2.dev)
		}
		if slices.Contains(g.feats, "routed LAN (no NAT)") {
			g.inet.route("%s via %s dev eth0", lan2.pfx, g.wanIP)
		}
	}
	m1, m2 := 100, 200
	if g.chance(0.3) {
		m1, m2 = 600, 100 // the second uplink is preferred
	}
	g.joinLAN(g.lans[0], n, "eth0", m1)
	a2 := g.joinLAN(lan2, n, "eth1", m2)
	n.listens("tcp/22")
	if g.chance(0.5) {
		n.listens("udp/53")
	}
	var rules []string
	table100 := false
	if g.chance(0.6) {
		g.feature("policy routing (from)")
		rules = append(rules, fmt.Sprintf("100:\tfrom %s lookup 100", a2))
		table100 = true
	}
	if g.chance(0.3) {
		g.feature("CONNMARK restore")
		fw := n.firewall()
		fw.A("mangle", "PREROUTING", "-i eth1 -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x2/0xffffffff")
		fw.A("mangle", "OUTPUT", "-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff")
		rules = append(rules, "150:\tfrom all fwmark 0x2 lookup 100")
		table100 = true
	}
	if g.chance(0.35) {
		g.feature("policy routing (fwmark)")
		rules = append(rules, "200:\tfrom all fwmark 0x1 lookup 101")
		gw, dev := lan2.gw, "eth1"
		if m2 < m1 {
			gw, dev = g.lans[0].gw, "eth0"
		}
		n.route("default via %s dev %s table 101", gw, dev)
		n.firewall().A("mangle", "OUTPUT", "-p tcp -m tcp --dport 443 -j MARK --set-xmark 0x1/0xffffffff")
		g.probe("%s tcp %s:443", n.name, g.owned[0])
	}
	if g.chance(0.25) {
		g.feature("policy routing (to)")
		rules = append(rules, fmt.Sprintf("300:\tfrom all to %s lookup 100", g.owned[0]))
		table100 = true
		g.probe("%s icmp %s", n.name, g.owned[0])
	}
	if g.chance(0.25) {
		g.feature("policy routing (ipproto, dport)")
		rules = append(rules, "400:\tfrom all ipproto udp dport 53 lookup 100")
		table100 = true
		g.probe("%s udp %s:53", n.name, g.owned[len(g.owned)-1])
	}
	if table100 {
		n.route("default via %s dev eth1 table 100", lan2.gw)
	}
	if len(rules) > 0 {
		n.rules = append([]string{"0:\tfrom all lookup local"}, rules...)
		n.rules = append(n.rules, "32766:\tfrom all lookup main", "32767:\tfrom all lookup default")
	}
	g.probe("%s icmp %s", n.name, g.owned[len(g.owned)-1])
}
