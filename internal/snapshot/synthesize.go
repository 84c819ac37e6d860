package snapshot

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest/docker"
	"github.com/pktflow/pktflow/internal/ingest/libvirt"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/synth"
)

// platforms reads a node's libvirt network and Docker descriptions and,
// with LoadOptions.Synthesize, fills in what those platforms install:
// iptables and ip6tables rules (unless the node has a real ruleset, which
// wins), bridge devices with their addresses and routes, the forwarding
// sysctls, and the listeners of dnsmasq and docker-proxy.
func (ld *loader) platforms(n *model.Node, spec *nodeSpec, files nodeFiles) {
	var nets []*libvirt.Network
	for _, rel := range files[factLibvirt] {
		ns, _ := readFile(ld, rel, libvirt.ParseNetworks)
		for _, x := range ns {
			if i := slices.IndexFunc(nets, func(o *libvirt.Network) bool { return o.Name == x.Name }); i >= 0 {
				ld.fail(rel, x.Line, "network %s is also described in %s (line %d): keep one", x.Name, nets[i].File, nets[i].Line)
				continue
			}
			nets = append(nets, x)
		}
	}
	ctrs, _ := readFile(ld, files.first(factDockerCtrs), docker.ParseContainers)
	dnets, _ := readFile(ld, files.first(factDockerNets), docker.ParseNetworks)
	var inputs []string
	for _, f := range []string{factLibvirt, factDockerCtrs, factDockerNets} {
		inputs = append(inputs, files[f]...)
	}
	if len(inputs) == 0 {
		return
	}
	if !ld.opts.Synthesize {
		ld.note(n.Name, "%s read but not used: with --synthesize pktflow fills in the rules, bridges and sysctls libvirt and Docker install", strings.Join(inputs, ", "))
		return
	}
	b4, b6 := synth.New(4), synth.New(6)
	// libvirt first, then Docker: Docker puts its jumps at the top of
	// FORWARD when it starts, as on a host where it starts last.
	libvirt.AddRules(b4, b6, nets)
	dn, dnotes := docker.Resolve(dnets, ctrs)
	dnotes = append(dnotes, docker.AddRules(b4, dn, ctrs, false)...)
	for _, s := range dnotes {
		ld.note(n.Name, "%s", s)
	}
	if len(dn) > 0 {
		ld.note(n.Name, "Docker rules synthesized for the daemon's defaults (iptables on, userland proxy on, ip6tables off)")
	}
	ld.synthRuleset(n, &n.IPv4, b4, files[factIPv4], spec.keyLine["iptables"], inputs)
	ld.synthRuleset(n, &n.IPv6, b6, files[factIPv6], spec.keyLine["ip6tables"], inputs)
	ld.synthBridges(n, nets, dn, ctrs)
	ld.synthSysctls(n, nets, dn)
	ld.synthListeners(n, nets, ctrs, files.first(factListen) != "" || spec.keyLine["listen"] != 0)
}

// synthRuleset uses a synthesized ruleset unless the node has a real one.
func (ld *loader) synthRuleset(n *model.Node, dst **model.Ruleset, b *synth.Builder, real []string, inlineLine int, inputs []string) {
	if b.Empty() {
		return
	}
	cmd := map[int]string{4: "iptables", 6: "ip6tables"}[b.Family()]
	if *dst != nil {
		from := strings.Join(real, ", ")
		if from == "" {
			from = fmt.Sprintf("%s:%d", TopologyFile, inlineLine)
		}
		ld.note(n.Name, "the real %s ruleset (%s) wins: the rules synthesized from %s are not used", cmd, from, strings.Join(inputs, ", "))
		return
	}
	rs, err := b.Ruleset()
	if err != nil {
		ld.fail(inputs[0], 0, "%v", err)
		return
	}
	*dst = rs
	count := 0
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			count += len(c.Rules)
		}
	}
	ld.note(n.Name, "%d %s rules synthesized from %s (marked synthesized in traces)", count, cmd, strings.Join(inputs, ", "))
}

// synthBridges adds the bridges libvirt and Docker create when the node's
// interfaces lack them, with their addresses; libvirt's static <route>s
// join the main table when missing.
func (ld *loader) synthBridges(n *model.Node, nets []*libvirt.Network, dn []*docker.Network, ctrs []*docker.Container) {
	next := 1
	for _, i := range n.Interfaces {
		next = max(next, i.Index+1)
	}
	add := func(ifc *model.Interface) {
		ifc.Index = next
		next++
		n.Interfaces = append(n.Interfaces, ifc)
		var addrs []string
		for _, a := range ifc.Addrs {
			addrs = append(addrs, a.Prefix.String())
		}
		ld.note(n.Name, "bridge %s (%s) synthesized from %s: the node's interfaces lack it", ifc.Name, strings.Join(addrs, ", "), ifc.Origin.File[len("synthesized from "):])
	}
	for _, nw := range nets {
		switch nw.Mode {
		case libvirt.ModeNAT, libvirt.ModeRoute, libvirt.ModeOpen, libvirt.ModeIsolated:
		default:
			continue
		}
		if nw.Bridge != "" && n.Iface(nw.Bridge) == nil {
			src := synth.Source{File: nw.File, Line: nw.Line}
			ifc := &model.Interface{Name: nw.Bridge, Kind: model.IfBridge, MAC: nw.MAC, MTU: nw.MTU, Up: true,
				Flags:  []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"},
				Origin: src.Origin(fmt.Sprintf("bridge %s of libvirt network %s", nw.Bridge, nw.Name))}
			if ifc.MAC == "" {
				ifc.MAC = synthMAC(n.Name, nw.Bridge)
			}
			if ifc.MTU == 0 {
				ifc.MTU = 1500
			}
			for _, ip := range nw.IPs {
				ifc.Addrs = append(ifc.Addrs, bridgeAddr(ip.Prefix, synth.Source{File: nw.File, Line: ip.Line}))
			}
			add(ifc)
		}
		for _, rt := range nw.Routes {
			if slices.ContainsFunc(n.Routes, func(r model.Route) bool { return r.Dst == rt.Prefix && (r.Table == model.TableMain || r.Table == 0) }) {
				continue
			}
			src := synth.Source{File: nw.File, Line: rt.Line}
			n.Routes = append(n.Routes, model.Route{Table: model.TableMain, Type: model.RouteUnicast, Dst: rt.Prefix, Via: rt.Gateway,
				Dev: nw.Bridge, Metric: rt.Metric, Proto: "static", Scope: "global",
				Origin: src.Origin(fmt.Sprintf("%s via %s dev %s proto static", rt.Prefix, rt.Gateway, nw.Bridge))})
		}
	}
	for _, d := range dn {
		if n.Iface(d.Bridge) != nil {
			continue
		}
		src := synth.Source{File: d.File, Line: d.Line}
		up := docker.Attached(d, ctrs)
		ifc := &model.Interface{Name: d.Bridge, Kind: model.IfBridge, MAC: docker.BridgeMAC(d.Bridge), MTU: d.MTU, Up: up,
			Origin: src.Origin(fmt.Sprintf("bridge %s of docker network %s", d.Bridge, d.Name))}
		if ifc.MTU == 0 {
			ifc.MTU = 1500
		}
		ifc.Flags = []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}
		if !up {
			// Docker's bridge has no carrier until a container joins.
			ifc.Flags = []string{"NO-CARRIER", "BROADCAST", "MULTICAST", "UP"}
		}
		for _, s := range d.Subnets {
			if !s.Gateway.IsValid() || (!s.Prefix.Addr().Is4() && !d.EnableIPv6) {
				continue
			}
			ifc.Addrs = append(ifc.Addrs, bridgeAddr(netip.PrefixFrom(s.Gateway, s.Prefix.Bits()), src))
		}
		add(ifc)
	}
}

// bridgeAddr is an address as the kernel shows it on a bridge.
func bridgeAddr(p netip.Prefix, src synth.Source) model.IfAddr {
	a := model.IfAddr{Prefix: p, Scope: "global", Origin: src.Origin(p.String())}
	if p.Addr().Is4() && p.Bits() <= 30 {
		b := p.Masked().Addr().As4()
		for i := range b {
			bits := min(max(p.Bits()-8*i, 0), 8)
			b[i] |= byte(0xff >> bits)
		}
		a.Broadcast = netip.AddrFrom4(b)
	}
	return a
}

// synthSysctls sets the forwarding sysctls libvirt and Docker turn on,
// unless the input gives them (the input wins, and a note says when it
// contradicts the platform).
func (ld *loader) synthSysctls(n *model.Node, nets []*libvirt.Network, dn []*docker.Network) {
	want := map[string]synth.Source{}
	var why = map[string]string{}
	for _, nw := range nets {
		v4, v6 := nw.Forwarding()
		src := synth.Source{File: nw.File, Line: nw.Line}
		if v4 {
			want["net.ipv4.ip_forward"], why["net.ipv4.ip_forward"] = src, "libvirt network "+nw.Name
		}
		if v6 {
			want["net.ipv6.conf.all.forwarding"], why["net.ipv6.conf.all.forwarding"] = src, "libvirt network "+nw.Name
		}
	}
	for _, d := range dn {
		src := synth.Source{File: d.File, Line: d.Line}
		if _, ok := want["net.ipv4.ip_forward"]; !ok {
			want["net.ipv4.ip_forward"], why["net.ipv4.ip_forward"] = src, "docker network "+d.Name
		}
		if d.EnableIPv6 {
			want["net.ipv6.conf.all.forwarding"], why["net.ipv6.conf.all.forwarding"] = src, "docker network "+d.Name
		}
	}
	for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		src, ok := want[k]
		if !ok {
			continue
		}
		if cur, set := n.Sysctls[k]; set {
			if cur.Value != "1" {
				ld.note(n.Name, "%s = %s from %s, though %s turns it on when it starts: the input's value is used", k, cur.Value, cur.Origin.File, why[k])
			}
			continue
		}
		if n.Sysctls == nil {
			n.Sysctls = map[string]model.Sysctl{}
		}
		n.Sysctls[k] = model.Sysctl{Value: "1", Origin: src.Origin(k + " = 1: " + why[k] + " turns forwarding on")}
		ld.note(n.Name, "%s = 1 synthesized: %s turns it on", k, why[k])
	}
}

// synthListeners adds dnsmasq's DNS and DHCP sockets for libvirt networks
// and docker-proxy's published ports, when the node has no listener
// information of its own.
func (ld *loader) synthListeners(n *model.Node, nets []*libvirt.Network, ctrs []*docker.Container, known bool) {
	var ls []model.Listener
	for _, nw := range nets {
		switch nw.Mode {
		case libvirt.ModeNAT, libvirt.ModeRoute, libvirt.ModeOpen, libvirt.ModeIsolated:
		default:
			continue
		}
		for _, ip := range nw.IPs {
			src := synth.Source{File: nw.File, Line: ip.Line}
			for _, proto := range []string{"udp", "tcp"} {
				ls = append(ls, model.Listener{Proto: proto, Addr: ip.Prefix.Addr(), Port: 53, Process: "dnsmasq for libvirt network " + nw.Name,
					Origin: src.Origin(fmt.Sprintf("dnsmasq DNS on %s", netip.AddrPortFrom(ip.Prefix.Addr(), 53)))})
			}
			if ip.DHCP() {
				any, port := netip.IPv4Unspecified(), uint16(67)
				if !ip.Prefix.Addr().Is4() {
					any, port = netip.IPv6Unspecified(), 547
				}
				ls = append(ls, model.Listener{Proto: "udp", Addr: any, Port: port, Dev: nw.Bridge, Process: "dnsmasq for libvirt network " + nw.Name,
					Origin: src.Origin(fmt.Sprintf("dnsmasq DHCP on %s%%%s", netip.AddrPortFrom(any, port), nw.Bridge))})
			}
		}
	}
	ls = append(ls, docker.Listeners(ctrs)...)
	if len(ls) == 0 {
		return
	}
	if known {
		ld.note(n.Name, "the node's own listeners are used; the %d sockets dnsmasq and docker-proxy would open are not added", len(ls))
		return
	}
	n.Listeners = append(n.Listeners, ls...)
	ld.note(n.Name, "%d listening sockets of dnsmasq and docker-proxy synthesized", len(ls))
}

// domainLinks wires each host tap that `virsh dumpxml` says carries a
// guest NIC to the node that has an interface with that MAC, unless
// topology.yaml wires either end already.
func (ld *loader) domainLinks(topo *topology, snap *model.Snapshot, broken map[string]bool) []*model.Link {
	used := map[model.Endpoint]bool{}
	for _, l := range snap.Links {
		for _, e := range l.Ends {
			used[e] = true
		}
	}
	var out []*model.Link
	for _, host := range snap.Nodes {
		doms := ld.domains[host.Name]
		if len(doms) == 0 || broken[host.Name] {
			continue
		}
		for _, d := range doms {
			for _, nic := range d.NICs {
				if nic.Target == "" || nic.MAC == "" {
					continue
				}
				if host.Iface(nic.Target) == nil {
					ld.note(host.Name, "%s: domain %s's NIC %s is carried by %s, which node %s does not have", d.File, d.Name, nic.MAC, nic.Target, host.Name)
					continue
				}
				tap := model.Endpoint{Node: host.Name, Iface: nic.Target}
				if used[tap] {
					continue
				}
				var guests []model.Endpoint
				for _, g := range snap.Nodes {
					if g == host || broken[g.Name] {
						continue
					}
					for _, i := range g.Interfaces {
						if i.MAC == nic.MAC {
							guests = append(guests, model.Endpoint{Node: g.Name, Iface: i.Name})
						}
					}
				}
				switch {
				case len(guests) == 0:
					ld.note(host.Name, "%s: no node has the NIC %s of domain %s that %s carries; declare the tap link in %s if the guest is in the snapshot", d.File, nic.MAC, d.Name, nic.Target, TopologyFile)
					continue
				case len(guests) > 1:
					ld.note(host.Name, "%s: several interfaces have MAC %s (%v): %s is not wired", d.File, nic.MAC, guests, nic.Target)
					continue
				case used[guests[0]]:
					continue
				}
				src := synth.Source{File: d.File, Line: nic.Line}
				link := &model.Link{Kind: model.LinkTap, Ends: []model.Endpoint{tap, guests[0]},
					Origin: src.Origin(fmt.Sprintf("tap: [%s, %s]: domain %s's NIC %s is carried by %s", tap, guests[0], d.Name, nic.MAC, nic.Target))}
				used[tap], used[guests[0]] = true, true
				linkKinds(topo, snap, link)
				out = append(out, link)
				ld.note(host.Name, "%s wired to %s: %s says it carries domain %s's NIC %s", tap, guests[0], d.File, d.Name, nic.MAC)
			}
		}
	}
	return out
}
