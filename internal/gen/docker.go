package gen

import (
	"fmt"
	"net/netip"
	"strings"
)

// DockerOptions sizes a Docker host.
type DockerOptions struct {
	// Containers is the number of containers (default 100); each
	// publishes one or two ports.
	Containers int
	// Networks is the number of bridge networks including docker0
	// (default: one more user network per 40 containers, at most 15).
	Networks int
	Seed     uint64
}

// Docker layout names.
const (
	DockerHost     = "docker-host"
	DockerInternet = "internet"
	// DockerName resolves to an address the internet node answers for.
	DockerName = "example.net"
)

// dockerNet is one Docker bridge network.
type dockerNet struct {
	bridge string
	subnet netip.Prefix
	gw     netip.Addr
	next   uint32 // next container address
}

// published is one published port of a container.
type published struct {
	proto      string
	host, ctr  uint16
	ctrAddr    netip.Addr
	bridge     string
	containerN string
}

// dockerCtr is one container.
type dockerCtr struct {
	name  string
	net   *dockerNet
	addr  netip.Addr
	ports []published
}

// ctrPorts are ports containers listen on.
var ctrPorts = []uint16{80, 443, 8080, 3000, 5000, 8000, 9000, 8443}

// dockerHost adds a Docker host with its bridges, containers and the
// rules Docker 24 writes. eth0 is the host's uplink; hostPort is the
// first published host port. It returns the host node and its containers.
func (s *Snapshot) dockerHost(g *gen, name string, eth0 netip.Prefix, gw netip.Addr, networks, containers int, hostPort uint16, names map[string]bool) (*Node, []*dockerCtr) {
	host := &Node{Name: name, Kind: "host",
		// net.bridge.bridge-nf-call-iptables: Docker loads br_netfilter and turns this on.
		Sysctl: [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.bridge.bridge-nf-call-iptables", "1"}},
		Listen: []string{"tcp/22"},
		Ifaces: []*Iface{lo(), {Name: "eth0", Index: 2, MAC: g.mac(), Qdisc: "fq_codel", Addrs: []netip.Prefix{eth0}}},
		Routes: []string{
			fmt.Sprintf("default via %s dev eth0 proto static metric 100", gw),
			connected(eth0, "eth0", 100),
		},
	}
	s.Nodes = append(s.Nodes, host)
	idx := 3
	var nets []*dockerNet
	for k := 0; k < networks; k++ {
		n := &dockerNet{bridge: "docker0", subnet: pfx(fmt.Sprintf("172.%d.0.0/16", 17+k))}
		if k > 0 {
			n.bridge = "br-" + g.hex(12)
		}
		n.gw = addr4(u32(n.subnet.Addr()) + 1)
		n.next = u32(n.subnet.Addr()) + 2
		// Docker bridge MACs start 02:42.
		mac := "02:42" + g.mac()[5:]
		host.Ifaces = append(host.Ifaces, &Iface{Name: n.bridge, Index: idx, MAC: mac, Bridge: true, Addrs: []netip.Prefix{netip.PrefixFrom(n.gw, 16)}})
		host.Routes = append(host.Routes, connected(netip.PrefixFrom(n.gw, 16), n.bridge, 0))
		idx++
		nets = append(nets, n)
	}
	var ctrs []*dockerCtr
	for i := 0; i < containers; i++ {
		n := nets[i%len(nets)]
		id := g.hex(12)
		for names[id] {
			id = g.hex(12)
		}
		names[id] = true
		a := addr4(n.next)
		n.next++
		c := &dockerCtr{name: id, net: n, addr: a}
		np := 1
		if g.rng.IntN(10) < 3 {
			np = 2
		}
		first := g.rng.IntN(len(ctrPorts))
		var listen []string
		for k := 0; k < np; k++ {
			cp := ctrPorts[(first+k)%len(ctrPorts)]
			c.ports = append(c.ports, published{proto: "tcp", host: hostPort, ctr: cp, ctrAddr: a, bridge: n.bridge, containerN: id})
			hostPort++
			listen = append(listen, fmt.Sprintf("tcp/%d", cp))
		}
		ctrs = append(ctrs, c)
		b := a.As4()
		veth := "veth" + g.hex(7)
		hostIdx := idx + 1
		ctrIdx := idx
		idx += 2
		host.Ifaces = append(host.Ifaces, &Iface{Name: veth, Index: hostIdx, PeerIndex: ctrIdx, NetnsID: i, MAC: g.mac(), Master: n.bridge})
		ap := netip.PrefixFrom(a, 16)
		s.Nodes = append(s.Nodes, &Node{Name: id, Kind: "container", Listen: listen,
			Ifaces: []*Iface{lo(), {Name: "eth0", Index: ctrIdx, PeerIndex: hostIdx, NetnsID: 0,
				MAC: fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]), Addrs: []netip.Prefix{ap}}},
			Routes: []string{fmt.Sprintf("default via %s dev eth0", n.gw), connected(ap, "eth0", 0)},
		})
		s.Links = append(s.Links, Link{Kind: "veth", Ends: []string{id + ":eth0", name + ":" + veth}})
	}
	host.IPTables, host.Rules = dockerRules(nets, ctrs)
	s.Rules += host.Rules
	return host, ctrs
}

// dockerRules writes the rules Docker 24 keeps for bridge networks and
// published ports, as iptables-save prints them. Docker inserts each new
// network's rules at the top of the shared chains (so the newest network
// comes first) and appends each published port's rules.
func dockerRules(nets []*dockerNet, ctrs []*dockerCtr) (string, int) {
	nat := newChainSet(builtins("nat", nil))
	filt := newChainSet(builtins("filter", map[string]string{"FORWARD": "DROP"}))
	nat.declare("DOCKER")
	for _, c := range []string{"DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER"} {
		filt.declare(c)
	}
	nat.add("PREROUTING", "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER")
	nat.add("OUTPUT", "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER")
	filt.add("FORWARD", "-A FORWARD -j DOCKER-USER")
	filt.add("FORWARD", "-A FORWARD -j DOCKER-ISOLATION-STAGE-1")
	for k := len(nets) - 1; k >= 0; k-- {
		n := nets[k]
		br := n.bridge
		nat.add("POSTROUTING", fmt.Sprintf("-A POSTROUTING -s %s ! -o %s -j MASQUERADE", n.subnet, br))
		nat.add("DOCKER", fmt.Sprintf("-A DOCKER -i %s -j RETURN", br))
		filt.add("FORWARD", fmt.Sprintf("-A FORWARD -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", br))
		filt.add("FORWARD", fmt.Sprintf("-A FORWARD -o %s -j DOCKER", br))
		filt.add("FORWARD", fmt.Sprintf("-A FORWARD -i %s ! -o %s -j ACCEPT", br, br))
		filt.add("FORWARD", fmt.Sprintf("-A FORWARD -i %s -o %s -j ACCEPT", br, br))
		filt.add("DOCKER-ISOLATION-STAGE-1", fmt.Sprintf("-A DOCKER-ISOLATION-STAGE-1 -i %s ! -o %s -j DOCKER-ISOLATION-STAGE-2", br, br))
		filt.add("DOCKER-ISOLATION-STAGE-2", fmt.Sprintf("-A DOCKER-ISOLATION-STAGE-2 -o %s -j DROP", br))
	}
	filt.add("DOCKER-ISOLATION-STAGE-1", "-A DOCKER-ISOLATION-STAGE-1 -j RETURN")
	filt.add("DOCKER-ISOLATION-STAGE-2", "-A DOCKER-ISOLATION-STAGE-2 -j RETURN")
	filt.add("DOCKER-USER", "-A DOCKER-USER -j RETURN")
	for _, c := range ctrs {
		for _, p := range c.ports {
			nat.add("POSTROUTING", fmt.Sprintf("-A POSTROUTING -s %s/32 -d %s/32 -p %s -m %s --dport %d -j MASQUERADE", p.ctrAddr, p.ctrAddr, p.proto, p.proto, p.ctr))
			nat.add("DOCKER", fmt.Sprintf("-A DOCKER ! -i %s -p %s -m %s --dport %d -j DNAT --to-destination %s:%d", p.bridge, p.proto, p.proto, p.host, p.ctrAddr, p.ctr))
			filt.add("DOCKER", fmt.Sprintf("-A DOCKER -d %s/32 ! -i %s -o %s -p %s -m %s --dport %d -j ACCEPT", p.ctrAddr, p.bridge, p.bridge, p.proto, p.proto, p.ctr))
		}
	}
	var b strings.Builder
	n := render(&b, []table{nat.table("nat", false), filt.table("filter", false)})
	return b.String(), n
}

// Docker builds one Docker host with many containers on docker0 and user
// bridge networks, publishing ports, next to an external node that is
// both its gateway and a client of its published ports.
func Docker(o DockerOptions) *Snapshot {
	if o.Containers <= 0 {
		o.Containers = 100
	}
	if o.Networks <= 0 {
		o.Networks = min(1+(o.Containers+39)/40, 15)
	}
	o.Networks = min(o.Networks, 15, o.Containers)
	g := newGen(o.Seed, 2)
	s := &Snapshot{Comment: fmt.Sprintf("Generated by pktflow gen docker --containers %d --seed %d:\n"+
		"a Docker 24 host with %d bridge networks and published ports, and the internet (its gateway).", o.Containers, o.Seed, o.Networks)}
	host, ctrs := s.dockerHost(g, DockerHost, pfx("192.168.1.10/24"), ip("192.168.1.1"), o.Networks, o.Containers, 8000, map[string]bool{})
	s.BigNode = host.Name
	s.Nodes = append(s.Nodes, internetNode(g, DockerInternet, pfx("192.168.1.1/24"), nil))
	s.Links = append(s.Links, Link{Kind: "segment", Ends: []string{DockerHost + ":eth0", DockerInternet + ":eth0"}})
	s.Names = []Name{{DockerName, []netip.Addr{ip("198.51.100.10")}}}
	for k := 0; k < 4 && k < len(ctrs); k++ {
		c := ctrs[(k*len(ctrs))/4]
		p := c.ports[0]
		s.Probes = append(s.Probes,
			Probe{What: "the internet to a published port", From: DockerInternet, Proto: "tcp", Dst: ip("192.168.1.10"), DPort: p.host, Expect: "answered"},
			Probe{What: "a container to the internet", From: c.name, Proto: "tcp", Dst: ip("198.51.100.10"), DPort: 443, Expect: "answered"})
	}
	if n := o.Networks; len(ctrs) > n {
		// Round robin: containers 0 and n share a bridge.
		a, b := ctrs[0], ctrs[n]
		s.Probes = append(s.Probes, Probe{What: "a container to a neighbour on its bridge (bridged, br_netfilter)", From: a.name, Proto: "tcp", Dst: b.addr, DPort: b.ports[0].ctr, Expect: "answered"})
	}
	if len(ctrs) > 0 {
		s.Probes = append(s.Probes, Probe{What: "the host to its own published port", From: DockerHost, Proto: "tcp", Dst: ip("192.168.1.10"), DPort: ctrs[len(ctrs)-1].ports[0].host, Expect: "answered"})
	}
	return s
}

// internetNode is the external node standing for the internet: it owns
// 198.51.100.0/24 and answers web and DNS there.
func internetNode(g *gen, name string, addr netip.Prefix, routes []string) *Node {
	return &Node{Name: name, Kind: "external", Owns: []string{"198.51.100.0/24"}, Listen: []string{"tcp/80", "tcp/443", "udp/53"},
		Ifaces: []*Iface{lo(), {Name: "eth0", Index: 2, MAC: g.mac(), Addrs: []netip.Prefix{addr}}},
		Routes: append([]string{connected(addr, "eth0", 0)}, routes...),
	}
}
