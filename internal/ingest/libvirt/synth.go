package libvirt

import (
	"fmt"
	"net/netip"

	"github.com/pktflow/pktflow/internal/synth"
)

// Private chains libvirt (5.1 and later) creates in every table it uses,
// and the built-in chain each is jumped to from. libvirt inserts the
// jumps at the top of the built-in chains, in this order (so FORWARD ends
// up with LIBVIRT_FWX, LIBVIRT_FWI, LIBVIRT_FWO).
var privateChains = []struct{ table, parent, child string }{
	{"filter", "INPUT", "LIBVIRT_INP"},
	{"filter", "OUTPUT", "LIBVIRT_OUT"},
	{"filter", "FORWARD", "LIBVIRT_FWO"},
	{"filter", "FORWARD", "LIBVIRT_FWI"},
	{"filter", "FORWARD", "LIBVIRT_FWX"},
	{"nat", "POSTROUTING", "LIBVIRT_PRT"},
	{"mangle", "POSTROUTING", "LIBVIRT_PRT"},
}

// AddRules replays, into b4 (iptables) and b6 (ip6tables), the commands
// libvirt's iptables firewall backend (libvirt 5.1 to 10.x:
// src/network/network_iptables.c, formerly src/util/viriptables.c) runs
// when the networks start, in the order given: the LIBVIRT_* chains and
// their jumps, then for each network the general rules (DHCP, DNS and
// TFTP to dnsmasq, REJECT of other forwarding to and from the bridge,
// guest-to-guest), the rules of each address (MASQUERADE for nat, ACCEPT
// both ways for route; IPv6 in nat mode is routed unless <nat ipv6='yes'>)
// and the DHCP checksum fix in mangle. Every rule is inserted at the top
// of its chain, as libvirt does, so the chains end up in the order
// iptables-save shows on such a host.
//
// Networks in mode open get no rules (libvirt adds none); bridge,
// private, vepa, passthrough and hostdev networks use a device of the
// host and get none either. libvirt's nftables backend (the default from
// libvirt 10.4 on some distributions) installs equivalent rules in an
// nftables table that `iptables-save` does not show; pktflow models the
// iptables ones.
func AddRules(b4, b6 *synth.Builder, nets []*Network) {
	any4, any6 := false, false
	for _, n := range nets {
		if hasRules(n) {
			any4 = true
			any6 = any6 || n.hasIPv6() || n.IPv6NoGW
		}
	}
	if !any4 {
		return
	}
	src := synth.Source{File: nets[0].File, Line: nets[0].Line}
	for _, n := range nets {
		if hasRules(n) {
			src = synth.Source{File: n.File, Line: n.Line}
			break
		}
	}
	setup := func(b *synth.Builder) {
		for _, c := range privateChains {
			b.NewChain(c.table, c.child, src)
			b.Insert(c.table, c.parent, "-j "+c.child, src)
		}
	}
	setup(b4)
	if any6 {
		setup(b6)
	}
	for _, n := range nets {
		if !hasRules(n) {
			continue
		}
		n.generalRules(b4, b6)
		for _, ip := range n.IPs {
			n.ipRules(b4, b6, ip)
		}
		n.checksumRules(b4)
	}
}

// hasRules reports whether libvirt installs firewall rules for n.
func hasRules(n *Network) bool {
	switch n.Mode {
	case ModeNAT, ModeRoute, ModeIsolated:
		return n.Bridge != ""
	}
	return false
}

func (n *Network) hasIPv6() bool {
	for _, ip := range n.IPs {
		if !ip.Prefix.Addr().Is4() {
			return true
		}
	}
	return false
}

func (n *Network) src(line int) synth.Source { return synth.Source{File: n.File, Line: line} }

// generalRules is iptablesAddGeneralFirewallRules.
func (n *Network) generalRules(b4, b6 *synth.Builder) {
	br := n.Bridge
	s := n.src(n.Line)
	in := func(b *synth.Builder, proto string, port int) {
		b.Insert("filter", "LIBVIRT_INP", fmt.Sprintf("-i %s -p %s -m %s --dport %d -j ACCEPT", br, proto, proto, port), s)
	}
	out := func(b *synth.Builder, proto string, port int) {
		b.Insert("filter", "LIBVIRT_OUT", fmt.Sprintf("-o %s -p %s -m %s --dport %d -j ACCEPT", br, proto, proto, port), s)
	}
	tftp := false
	for _, ip := range n.IPs {
		if ip.Prefix.Addr().Is4() && (ip.DHCP() || ip.TFTP) {
			tftp = ip.TFTP
			break
		}
	}
	in(b4, "tcp", 67)
	in(b4, "udp", 67)
	out(b4, "tcp", 68)
	out(b4, "udp", 68)
	in(b4, "tcp", 53)
	in(b4, "udp", 53)
	out(b4, "tcp", 53)
	out(b4, "udp", 53)
	if tftp {
		in(b4, "udp", 69)
		out(b4, "udp", 69)
	}
	rejects := func(b *synth.Builder, with string) {
		b.Insert("filter", "LIBVIRT_FWO", "-i "+br+" -j REJECT --reject-with "+with, s)
		b.Insert("filter", "LIBVIRT_FWI", "-o "+br+" -j REJECT --reject-with "+with, s)
		b.Insert("filter", "LIBVIRT_FWX", "-i "+br+" -o "+br+" -j ACCEPT", s)
	}
	rejects(b4, "icmp-port-unreachable")
	if !n.hasIPv6() && !n.IPv6NoGW {
		return
	}
	rejects(b6, "icmp6-port-unreachable")
	if n.hasIPv6() {
		in(b6, "tcp", 53)
		in(b6, "udp", 53)
		out(b6, "tcp", 53)
		out(b6, "udp", 53)
		in(b6, "udp", 547)
		out(b6, "udp", 546)
	}
}

// ipRules is iptablesAddIPSpecificFirewallRules.
func (n *Network) ipRules(b4, b6 *synth.Builder, ip IP) {
	b := b4
	if !ip.Prefix.Addr().Is4() {
		b = b6
	}
	switch n.Mode {
	case ModeNAT:
		if ip.Prefix.Addr().Is4() || n.NATIPv6 {
			n.masquerade(b, ip)
		} else {
			n.routing(b, ip)
		}
	case ModeRoute:
		n.routing(b, ip)
	}
}

// netStr is the network of an address as libvirt formats it: masked, with
// its prefix length.
func netStr(p netip.Prefix) string { return p.Masked().String() }

// forwardAllowOut and forwardAllowRelatedIn / forwardAllowIn.
func (n *Network) allowOut(b *synth.Builder, ip IP) {
	body := "-s " + netStr(ip.Prefix) + " -i " + n.Bridge
	if n.ForwardDev != "" {
		body += " -o " + n.ForwardDev
	}
	b.Insert("filter", "LIBVIRT_FWO", body+" -j ACCEPT", n.src(ip.Line))
}

func (n *Network) allowIn(b *synth.Builder, ip IP, related bool) {
	body := "-d " + netStr(ip.Prefix)
	if n.ForwardDev != "" {
		body += " -i " + n.ForwardDev
	}
	body += " -o " + n.Bridge
	if related {
		body += " -m conntrack --ctstate RELATED,ESTABLISHED"
	}
	b.Insert("filter", "LIBVIRT_FWI", body+" -j ACCEPT", n.src(ip.Line))
}

// masquerade is iptablesAddMasqueradingFirewallRules.
func (n *Network) masquerade(b *synth.Builder, ip IP) {
	n.allowOut(b, ip)
	n.allowIn(b, ip, true)
	s := n.src(ip.Line)
	nw := netStr(ip.Prefix)
	dev := ""
	if n.ForwardDev != "" {
		dev = " -o " + n.ForwardDev
	}
	v4 := ip.Prefix.Addr().Is4()
	masq := func(proto string) {
		body := "-s " + nw + " ! -d " + nw + dev
		if proto != "" {
			body += " -p " + proto
		}
		ports := ""
		if proto != "" {
			lo, hi := n.NATPortMin, n.NATPortMax
			if lo == 0 && hi == 0 {
				lo, hi = 1024, 65535
			}
			ports = fmt.Sprintf("%d-%d", lo, hi)
		}
		if n.NATStart.IsValid() && v4 {
			to := n.NATStart.String()
			if n.NATEnd.IsValid() && n.NATEnd != n.NATStart {
				to += "-" + n.NATEnd.String()
			}
			if ports != "" {
				to += ":" + ports
			}
			body += " -j SNAT --to-source " + to
		} else {
			body += " -j MASQUERADE"
			if ports != "" {
				body += " --to-ports " + ports
			}
		}
		b.Insert("nat", "LIBVIRT_PRT", body, s)
	}
	masq("")
	masq("udp")
	masq("tcp")
	dontMasq := func(dst string) {
		b.Insert("nat", "LIBVIRT_PRT", "-s "+nw+" -d "+dst+dev+" -j RETURN", s)
	}
	if v4 {
		dontMasq("255.255.255.255/32")
		dontMasq("224.0.0.0/24")
	} else {
		dontMasq("ff02::/16")
	}
}

// routing is iptablesAddRoutingFirewallRules.
func (n *Network) routing(b *synth.Builder, ip IP) {
	n.allowOut(b, ip)
	n.allowIn(b, ip, false)
}

// checksumRules is iptablesAddChecksumFirewallRules: for the first IPv4
// address that serves DHCP, fill in the checksum of DHCP replies.
func (n *Network) checksumRules(b4 *synth.Builder) {
	for _, ip := range n.IPs {
		if ip.Prefix.Addr().Is4() && ip.DHCP() {
			b4.Insert("mangle", "LIBVIRT_PRT", "-o "+n.Bridge+" -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill", n.src(ip.Line))
			return
		}
	}
}

// Forwarding reports the forwarding sysctls libvirt turns on when it
// starts the network (nat, route and open networks): IPv4 forwarding when
// the network has an IPv4 address, IPv6 forwarding when it has an IPv6
// one.
func (n *Network) Forwarding() (v4, v6 bool) {
	switch n.Mode {
	case ModeNAT, ModeRoute, ModeOpen:
	default:
		return false, false
	}
	for _, ip := range n.IPs {
		if ip.Prefix.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}
