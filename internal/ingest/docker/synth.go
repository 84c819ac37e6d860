package docker

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/synth"
)

// Chains Docker creates.
const (
	ChainDocker     = "DOCKER"
	ChainUser       = "DOCKER-USER"
	ChainIsolation1 = "DOCKER-ISOLATION-STAGE-1"
	ChainIsolation2 = "DOCKER-ISOLATION-STAGE-2"
)

// Resolve returns the bridge networks to synthesize: those `docker network
// inspect` described, plus one for every network a container's endpoint
// names that no inspect described (the default "bridge" network becomes
// docker0, others br-<id[:12]>, with the subnet and gateway the endpoint
// shows). The default bridge comes first, then networks by creation time
// and name, the order the daemon sets them up in. The notes say what was
// derived or left out.
func Resolve(nets []*Network, ctrs []*Container) ([]*Network, []string) {
	var notes []string
	known := map[string]*Network{}
	var out []*Network
	for _, n := range nets {
		known[n.Name] = n
		switch n.Driver {
		case "bridge":
			out = append(out, n)
		case "host", "null":
		default:
			notes = append(notes, fmt.Sprintf("docker network %s uses the %s driver, whose rules pktflow does not synthesize (only bridge networks)", n.Name, n.Driver))
		}
	}
	for _, c := range ctrs {
		for _, ep := range c.Endpoints {
			if known[ep.Network] != nil || !ep.IP.IsValid() {
				continue
			}
			n := &Network{Name: ep.Network, ID: ep.NetworkID, Driver: "bridge", File: c.File, Line: c.Line,
				ICC: true, Masquerade: true, Derived: true}
			if ep.Network == "bridge" {
				n.Bridge = defaultBridgeNm
			} else {
				n.Bridge = "br-" + ep.NetworkID[:min(12, len(ep.NetworkID))]
			}
			if !validIfName(n.Bridge) {
				continue
			}
			n.Subnets = []Subnet{{Prefix: ep.IP.Masked(), Gateway: ep.Gateway}}
			known[n.Name] = n
			out = append(out, n)
			notes = append(notes, fmt.Sprintf("docker network %s (bridge %s, %s) derived from container %s's endpoint: no docker network inspect describes it; its options are assumed to be the defaults",
				n.Name, n.Bridge, ep.IP.Masked(), c.Name))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := out[i].Bridge == defaultBridgeNm, out[j].Bridge == defaultBridgeNm
		if di != dj {
			return di
		}
		if out[i].Created != out[j].Created {
			return out[i].Created < out[j].Created
		}
		return out[i].Name < out[j].Name
	})
	return out, notes
}

// GatewayEndpoint returns the endpoint Docker publishes a container's
// ports on: the network of its HostConfig.NetworkMode when it has one,
// else its first network by name (Docker 20.10 to 24 program port
// mappings on the sandbox's gateway endpoint only).
func GatewayEndpoint(c *Container) (Endpoint, bool) {
	mode := c.NetworkMode
	if mode == "default" {
		mode = "bridge"
	}
	for _, ep := range c.Endpoints {
		if ep.Network == mode && ep.IP.IsValid() {
			return ep, true
		}
	}
	for _, ep := range c.Endpoints {
		if ep.IP.IsValid() {
			return ep, true
		}
	}
	return Endpoint{}, false
}

// AddRules replays into b (iptables: Docker 20.10 to 24 only program
// IPv4 unless ip6tables is enabled, which was experimental) the commands
// Docker's bridge driver runs: its chains (DOCKER in nat and filter,
// DOCKER-ISOLATION-STAGE-1/2, DOCKER-USER), for each network the
// MASQUERADE (or SNAT for host_ipv4) of its subnet, the RETURN that keeps
// traffic from the bridge out of DNAT, the FORWARD rules (RELATED,
// ESTABLISHED in; jump to DOCKER; out; inter-container), the isolation
// rules between networks; for each published port of a running container
// the DNAT, the ACCEPT in filter DOCKER and the hairpin MASQUERADE; and
// the FORWARD policy DROP Docker sets when it turns forwarding on.
//
// hairpin is the daemon's --userland-proxy=false: DNAT then also applies
// to traffic from the bridge and to loopback destinations, and traffic
// from the host to a container is masqueraded. Docker's default is the
// userland proxy (hairpin false).
func AddRules(b *synth.Builder, nets []*Network, ctrs []*Container, hairpin bool) []string {
	var notes []string
	if len(nets) == 0 {
		return nil
	}
	first := synth.Source{File: nets[0].File, Line: nets[0].Line}
	// setupIPChains, at driver start.
	b.NewChain("nat", ChainDocker, first)
	b.NewChain("filter", ChainDocker, first)
	b.NewChain("filter", ChainIsolation1, first)
	b.NewChain("filter", ChainIsolation2, first)
	b.AppendUnless("filter", ChainIsolation1, "-j RETURN", first)
	b.AppendUnless("filter", ChainIsolation2, "-j RETURN", first)
	// setupIPForwarding: Docker turns ip_forward on and, when it had to,
	// sets the FORWARD policy to DROP.
	b.Policy("filter", "FORWARD", "DROP", first)
	byName := map[string]*Network{}
	for _, n := range nets {
		byName[n.Name] = n
		if err := n.rules(b, hairpin); err != "" {
			notes = append(notes, err)
		}
	}
	// arrangeUserFilterRule, after every network.
	b.NewChain("filter", ChainUser, first)
	b.AppendUnless("filter", ChainUser, "-j RETURN", first)
	b.EnsureFirst("filter", "FORWARD", "-j "+ChainUser, first)
	// Published ports, container by container.
	for _, c := range ctrs {
		if len(c.Ports) == 0 {
			continue
		}
		if !c.Running {
			notes = append(notes, fmt.Sprintf("container %s is not running: Docker installs no rules for its published ports", c.Name))
			continue
		}
		ep, ok := GatewayEndpoint(c)
		if !ok {
			continue
		}
		n := byName[ep.Network]
		if n == nil {
			continue
		}
		if len(c.Endpoints) > 1 {
			notes = append(notes, fmt.Sprintf("container %s is on several networks: its ports are published on network %s, as Docker publishes them on the gateway endpoint", c.Name, n.Name))
		}
		ports := slices.Clone(c.Ports)
		// go-connections' SortPortMap: higher host ports first.
		sort.SliceStable(ports, func(i, j int) bool {
			if ports[i].HostPort != ports[j].HostPort {
				return ports[i].HostPort > ports[j].HostPort
			}
			if ports[i].ContainerPort != ports[j].ContainerPort {
				return ports[i].ContainerPort < ports[j].ContainerPort
			}
			return ports[i].Proto == "tcp" && ports[j].Proto != "tcp"
		})
		v6 := false
		for _, p := range ports {
			if !p.HostIP.Is4() {
				v6 = true
				continue
			}
			forward(b, n, ep.IP.Addr(), p, hairpin, synth.Source{File: c.File, Line: p.Line})
		}
		if v6 {
			notes = append(notes, fmt.Sprintf("container %s publishes ports on IPv6 addresses: Docker 20.10 to 24 install no ip6tables rules for them (docker-proxy forwards them)", c.Name))
		}
	}
	return notes
}

// rules is setupIPTables for one network: setupIPTablesInternal (or
// setupInternalNetworkRules), ProgramChain for nat and filter, the
// isolation jump and isolateNetwork.
func (n *Network) rules(b *synth.Builder, hairpin bool) string {
	sub, ok := n.V4()
	if !ok {
		return fmt.Sprintf("docker network %s has no IPv4 subnet: no rules synthesized for it", n.Name)
	}
	br := n.Bridge
	s := synth.Source{File: n.File, Line: n.Line}
	addr := sub.Prefix.String()
	if n.Internal {
		b.InsertUnless("filter", ChainIsolation1, "! -d "+addr+" -i "+br+" -j DROP", s)
		b.InsertUnless("filter", ChainIsolation1, "! -s "+addr+" -o "+br+" -j DROP", s)
		n.icc(b, s)
		b.EnsureFirst("filter", "FORWARD", "-j "+ChainIsolation1, s)
		return ""
	}
	if n.Masquerade {
		if n.HostIP.IsValid() {
			b.InsertUnless("nat", "POSTROUTING", "-s "+addr+" ! -o "+br+" -j SNAT --to-source "+n.HostIP.String(), s)
		} else {
			b.InsertUnless("nat", "POSTROUTING", "-s "+addr+" ! -o "+br+" -j MASQUERADE", s)
		}
		if !hairpin {
			b.InsertUnless("nat", ChainDocker, "-i "+br+" -j RETURN", s)
		}
	}
	if hairpin {
		if n.HostIP.IsValid() {
			b.InsertUnless("nat", "POSTROUTING", "-o "+br+" -m addrtype --src-type LOCAL -j SNAT --to-source "+n.HostIP.String(), s)
		} else {
			b.InsertUnless("nat", "POSTROUTING", "-o "+br+" -m addrtype --src-type LOCAL -j MASQUERADE", s)
		}
	}
	n.icc(b, s)
	b.InsertUnless("filter", "FORWARD", "-i "+br+" ! -o "+br+" -j ACCEPT", s)
	// ProgramChain(nat).
	b.AppendUnless("nat", "PREROUTING", "-m addrtype --dst-type LOCAL -j "+ChainDocker, s)
	if hairpin {
		b.AppendUnless("nat", "OUTPUT", "-m addrtype --dst-type LOCAL -j "+ChainDocker, s)
	} else {
		b.AppendUnless("nat", "OUTPUT", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j "+ChainDocker, s)
	}
	// ProgramChain(filter).
	b.InsertUnless("filter", "FORWARD", "-o "+br+" -j "+ChainDocker, s)
	b.InsertUnless("filter", "FORWARD", "-o "+br+" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", s)
	b.EnsureFirst("filter", "FORWARD", "-j "+ChainIsolation1, s)
	// isolateNetwork.
	b.InsertUnless("filter", ChainIsolation1, "-i "+br+" ! -o "+br+" -j "+ChainIsolation2, s)
	b.InsertUnless("filter", ChainIsolation2, "-o "+br+" -j DROP", s)
	return ""
}

// icc is setIcc: allow (inserted) or drop (appended) traffic between the
// network's containers.
func (n *Network) icc(b *synth.Builder, s synth.Source) {
	br := n.Bridge
	if n.ICC {
		b.InsertUnless("filter", "FORWARD", "-i "+br+" -o "+br+" -j ACCEPT", s)
	} else {
		b.AppendUnless("filter", "FORWARD", "-i "+br+" -o "+br+" -j DROP", s)
	}
}

// forward is ChainInfo.Forward for one host binding.
func forward(b *synth.Builder, n *Network, cip netip.Addr, p Port, hairpin bool, s synth.Source) {
	br := n.Bridge
	pr := p.Proto
	dst := ""
	if !p.HostIP.IsUnspecified() {
		dst = "-d " + p.HostIP.String() + "/32 "
	}
	in := ""
	if !hairpin {
		in = "! -i " + br + " "
	}
	b.AppendUnless("nat", ChainDocker, fmt.Sprintf("%s%s-p %s -m %s --dport %d -j DNAT --to-destination %s",
		dst, in, pr, pr, p.HostPort, netip.AddrPortFrom(cip, p.ContainerPort)), s)
	b.AppendUnless("filter", ChainDocker, fmt.Sprintf("-d %s/32 ! -i %s -o %s -p %s -m %s --dport %d -j ACCEPT",
		cip, br, br, pr, pr, p.ContainerPort), s)
	b.AppendUnless("nat", "POSTROUTING", fmt.Sprintf("-s %s/32 -d %s/32 -p %s -m %s --dport %d -j MASQUERADE",
		cip, cip, pr, pr, p.ContainerPort), s)
	if pr == "sctp" {
		b.AppendUnless("mangle", "POSTROUTING", fmt.Sprintf("-p sctp -m sctp --sport %d -j CHECKSUM --checksum-fill", p.ContainerPort), s)
	}
}

// Listeners are the sockets docker-proxy (the userland proxy, Docker's
// default) opens on the host for each published port of a running
// container.
func Listeners(ctrs []*Container) []model.Listener {
	var out []model.Listener
	for _, c := range ctrs {
		if !c.Running {
			continue
		}
		for _, p := range c.Ports {
			if p.Proto != "tcp" && p.Proto != "udp" {
				continue
			}
			l := model.Listener{Proto: p.Proto, Port: p.HostPort, Process: "docker-proxy for container " + c.Name,
				Origin: synth.Source{File: c.File, Line: p.Line}.Origin(fmt.Sprintf("docker-proxy listening on %s", netip.AddrPortFrom(p.HostIP, p.HostPort)))}
			if !p.HostIP.IsUnspecified() {
				l.Addr = p.HostIP
			}
			out = append(out, l)
		}
	}
	return out
}

// BridgeMAC is the MAC pktflow gives a synthesized Docker bridge: Docker
// picks a random 02:42:xx:xx:xx:xx one; this one is derived from the
// bridge name so traces are stable.
func BridgeMAC(bridge string) string {
	h := sha256.Sum256([]byte("docker/" + bridge))
	return net.HardwareAddr{0x02, 0x42, h[0], h[1], h[2], h[3]}.String()
}

// Attached reports whether a running container is on the network (the
// bridge then has a port and carrier).
func Attached(n *Network, ctrs []*Container) bool {
	if len(n.Members) > 0 {
		return true
	}
	for _, c := range ctrs {
		if !c.Running {
			continue
		}
		for _, ep := range c.Endpoints {
			if ep.Network == n.Name {
				return true
			}
		}
	}
	return false
}

// Describe says in a few words what a network is, for notes.
func (n *Network) Describe() string {
	var subs []string
	for _, s := range n.Subnets {
		subs = append(subs, s.Prefix.String())
	}
	return fmt.Sprintf("docker network %s (bridge %s, %s)", n.Name, n.Bridge, strings.Join(subs, ", "))
}
