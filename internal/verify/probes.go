package verify

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// ParseProbe reads a probe written as one string:
//
//	NODE PROTO DEST[:PORT] [ttl=N] [sport=N]
//
// PROTO is icmp, tcp or udp; DEST an IPv4 or IPv6 address or a name of
// the snapshot's names (its IPv4 address if it has one); tcp and udp need
// :PORT, after an IPv6 address in brackets ([2001:db8::1]:443). ttl sets
// the initial TTL and sport the source port (AssignPorts gives one to
// probes without).
func ParseProbe(snap *model.Snapshot, s string) (engine.Probe, error) {
	var p engine.Probe
	f := strings.Fields(s)
	if len(f) < 3 {
		return p, fmt.Errorf("probe %q: want NODE PROTO DEST[:PORT], e.g. \"mayura tcp 192.168.122.120:1443\"", s)
	}
	if snap.Node(f[0]) == nil {
		return p, fmt.Errorf("probe %q: no node %q in the snapshot (nodes: %s)", s, f[0], nodeNames(snap))
	}
	p.From = f[0]
	switch strings.ToLower(f[1]) {
	case "icmp":
		p.Proto = packet.ICMP
	case "tcp":
		p.Proto = packet.TCP
	case "udp":
		p.Proto = packet.UDP
	default:
		return p, fmt.Errorf("probe %q: protocol %q, want icmp, tcp or udp", s, f[1])
	}
	host, port, hasPort := f[2], "", false
	if rest, ok := strings.CutPrefix(host, "["); ok {
		// [IPv6]:PORT, or [IPv6] alone.
		a, after, ok := strings.Cut(rest, "]")
		if !ok || (after != "" && !strings.HasPrefix(after, ":")) {
			return p, fmt.Errorf("probe %q: %q: want [IPv6] or [IPv6]:PORT", s, host)
		}
		host = a
		if after != "" {
			port, hasPort = after[1:], true
		}
	} else if i := strings.LastIndex(host, ":"); i >= 0 && strings.Count(host, ":") == 1 {
		host, port, hasPort = host[:i], host[i+1:], true
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Zone() == "" {
		p.Dst = a.Unmap()
	} else if addrs := snap.Names[host]; len(addrs) > 0 {
		// A name's IPv4 address first, as a dual-stack client that
		// prefers it would pick; its IPv6 one when it has no other.
		p.Dst, p.DstName = addrs[0], host
		for _, a := range addrs {
			if a.Is4() {
				p.Dst = a
				break
			}
		}
	} else {
		return p, fmt.Errorf("probe %q: %q is neither an address (IPv4, or IPv6 in brackets before a port) nor a name in topology.yaml's names", s, host)
	}
	switch {
	case p.Proto == packet.ICMP && hasPort:
		return p, fmt.Errorf("probe %q: icmp takes no port", s)
	case p.Proto != packet.ICMP && !hasPort:
		return p, fmt.Errorf("probe %q: %s needs a port: DEST:PORT ([DEST]:PORT for IPv6)", s, f[1])
	case hasPort:
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return p, fmt.Errorf("probe %q: bad port %q", s, port)
		}
		p.DPort = uint16(n)
	}
	for _, opt := range f[3:] {
		k, v, ok := strings.Cut(opt, "=")
		n, err := strconv.Atoi(v)
		switch {
		case !ok || err != nil:
			return p, fmt.Errorf("probe %q: option %q, want ttl=N or sport=N", s, opt)
		case k == "ttl" && p.Proto == packet.TCP:
			return p, fmt.Errorf("probe %q: ttl= is for icmp and udp (the lab cannot set a TCP probe's TTL yet)", s)
		case k == "ttl" && n >= 1 && n <= 255:
			p.TTL = n
		case k == "sport" && n >= 1 && n <= 65535 && p.Proto != packet.ICMP:
			p.SPort = uint16(n)
		default:
			return p, fmt.Errorf("probe %q: option %q out of range (ttl=1-255, sport=1-65535 for tcp and udp)", s, opt)
		}
	}
	return p, nil
}

// ProbeString writes a probe in ParseProbe's syntax.
func ProbeString(p engine.Probe) string {
	s := p.From + " " + packet.ProtoName(p.Proto) + " "
	if p.Proto == packet.TCP || p.Proto == packet.UDP {
		s += netip.AddrPortFrom(p.Dst, p.DPort).String()
	} else {
		s += p.Dst.String()
	}
	if p.TTL > 0 {
		s += " ttl=" + strconv.Itoa(p.TTL)
	}
	if p.SPort != 0 {
		s += " sport=" + strconv.Itoa(int(p.SPort))
	}
	return s
}

func nodeNames(snap *model.Snapshot) string {
	var names []string
	for _, n := range snap.Nodes {
		names = append(names, n.Name)
	}
	return strings.Join(names, ", ")
}

// FirstPort is where AssignPorts starts numbering source ports.
const FirstPort = 41000

// AssignPorts gives every TCP and UDP probe without a source port its own
// one, counting from FirstPort and skipping ports probes already use. The
// probes of one lab then never share a connection: the kernel keeps
// conntrack entries (and NAT bindings) between probes, the engine starts
// every trace afresh, and a shared tuple would make the second probe
// ESTABLISHED or move its NAT port.
func AssignPorts(ps []engine.Probe) {
	used := map[uint16]bool{}
	for _, p := range ps {
		if p.SPort != 0 {
			used[p.SPort] = true
		}
	}
	next := uint16(FirstPort)
	for i := range ps {
		if ps[i].Proto == packet.ICMP || ps[i].SPort != 0 {
			continue
		}
		for used[next] {
			next++
		}
		ps[i].SPort = next
		used[next] = true
		next++
	}
}

// checkable reports whether an address is one the default probes aim at:
// IPv4 or IPv6, not loopback, link-local, multicast or unspecified (a
// link-local destination needs a zone, which a probe does not carry).
func checkable(a netip.Addr) bool {
	return a.IsValid() && !a.Is4In6() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsMulticast() && !a.IsUnspecified()
}

// hasIPv6 reports whether a node has an IPv6 address probes can come
// from: the lab turns IPv6 off on the others, where an IPv6 probe would
// only fail to leave.
func hasIPv6(n *model.Node) bool {
	return slices.ContainsFunc(Addresses(n), netip.Addr.Is6)
}

// addresses4 is Addresses, IPv4 only.
func addresses4(n *model.Node) []netip.Addr {
	return slices.DeleteFunc(Addresses(n), netip.Addr.Is6)
}

// Addresses lists a node's addresses that probes aim at, in order: its
// interfaces' IPv4 and IPv6 addresses (not loopback or link-local), then
// for an external node the first address of each prefix it owns.
func Addresses(n *model.Node) []netip.Addr {
	var out []netip.Addr
	add := func(a netip.Addr) {
		if checkable(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, i := range n.Interfaces {
		if i.Kind == model.IfLoopback || i.Name == "lo" {
			continue
		}
		for _, a := range i.Addrs {
			add(a.Prefix.Addr())
		}
	}
	for _, p := range n.Owns {
		// The first host of the prefix (not its subnet-router anycast
		// or network address), unless it is a host prefix or pair.
		a := p.Masked().Addr()
		if p.Bits() < a.BitLen()-1 {
			a = a.Next()
		}
		add(a)
	}
	return out
}

// local reports whether a is one of n's own addresses (probing it from n
// goes through lo only).
func local(n *model.Node, a netip.Addr) bool {
	for _, i := range n.Interfaces {
		for _, ad := range i.Addrs {
			if ad.Prefix.Addr() == a {
				return true
			}
		}
	}
	for _, p := range n.Owns {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// DefaultProbes lists what `pktflow verify` checks when given no probes:
// ICMP echo from every node to every other node's addresses (Addresses);
// TCP and UDP from every other node to every declared listener on each
// address it listens on; and published ports: for each DNAT rule of a
// node's nat table whose --to-destination is a listener, its -p/--dport
// on each of the node's addresses (the rule's -d if it has one) from
// every other node. Probes to an address the sender has itself are left
// out, and so are duplicates; IPv6 destinations are probed only from nodes
// with an IPv6 address of their own. Source ports are assigned by
// AssignPorts.
func DefaultProbes(snap *model.Snapshot) []engine.Probe {
	var ps []engine.Probe
	seen := map[string]bool{}
	v6 := map[*model.Node]bool{}
	for _, n := range snap.Nodes {
		v6[n] = hasIPv6(n)
	}
	add := func(p engine.Probe) {
		from := snap.Node(p.From)
		if from == nil || local(from, p.Dst) || p.Dst.Is6() && !v6[from] {
			return
		}
		k := ProbeString(p)
		if seen[k] {
			return
		}
		seen[k] = true
		ps = append(ps, p)
	}
	for _, s := range snap.Nodes {
		for _, t := range snap.Nodes {
			if t == s {
				continue
			}
			for _, a := range Addresses(t) {
				add(engine.Probe{From: s.Name, Proto: packet.ICMP, Dst: a})
			}
		}
	}
	for _, t := range snap.Nodes {
		for _, l := range t.Listeners {
			proto, ok := protoNum(l.Proto)
			if !ok {
				continue
			}
			var dsts []netip.Addr
			if l.Addr.IsValid() && !l.Addr.IsUnspecified() {
				if checkable(l.Addr) {
					dsts = []netip.Addr{l.Addr}
				}
			} else if l.Addr == netip.IPv4Unspecified() {
				// 0.0.0.0 is IPv4 only; a bare port and :: take both
				// (net.ipv6.bindv6only=0).
				dsts = addresses4(t)
			} else {
				dsts = Addresses(t)
			}
			for _, s := range snap.Nodes {
				if s == t {
					continue
				}
				for _, a := range dsts {
					add(engine.Probe{From: s.Name, Proto: proto, Dst: a, DPort: l.Port})
				}
			}
		}
	}
	for _, n := range snap.Nodes {
		for _, pub := range Published(snap, n) {
			// An iptables (IPv4) DNAT publishes on IPv4 addresses only.
			dsts := addresses4(n)
			if pub.Dst.IsValid() {
				dsts = []netip.Addr{pub.Dst}
			}
			for _, s := range snap.Nodes {
				if s == n {
					continue
				}
				for _, a := range dsts {
					add(engine.Probe{From: s.Name, Proto: pub.Proto, Dst: a, DPort: pub.Port})
				}
			}
		}
	}
	AssignPorts(ps)
	return ps
}

func protoNum(s string) (uint8, bool) {
	switch strings.ToLower(s) {
	case "tcp":
		return packet.TCP, true
	case "udp":
		return packet.UDP, true
	}
	return 0, false
}

// Publish is a port a node publishes with DNAT to a listener.
type Publish struct {
	Proto uint8
	// Dst is the rule's -d address when it names one host, else invalid.
	Dst  netip.Addr
	Port uint16
	// To is where the rule sends it: a node's listener.
	To     netip.AddrPort
	ToNode string
}

// Published lists the DNAT rules of n's nat table (in any chain) that
// send a -p tcp/udp --dport to an address and port some node of the
// snapshot listens on.
func Published(snap *model.Snapshot, n *model.Node) []Publish {
	nat := n.IPv4.Table("nat")
	if nat == nil {
		return nil
	}
	var out []Publish
	for _, c := range nat.Chains {
		for _, r := range c.Rules {
			if r.Target != "DNAT" {
				continue
			}
			pub, ok := publishOf(r)
			if !ok {
				continue
			}
			for _, t := range snap.Nodes {
				if !local(t, pub.To.Addr()) {
					continue
				}
				for _, l := range t.Listeners {
					proto, _ := protoNum(l.Proto)
					if proto == pub.Proto && l.Port == pub.To.Port() &&
						(!l.Addr.IsValid() || l.Addr.IsUnspecified() || l.Addr == pub.To.Addr()) {
						pub.ToNode = t.Name
						break
					}
				}
				if pub.ToNode != "" {
					out = append(out, pub)
					break
				}
			}
		}
	}
	return out
}

// publishOf reads a DNAT rule's protocol, destination port, optional
// single -d address and --to-destination.
func publishOf(r *model.Rule) (Publish, bool) {
	var pub Publish
	for _, m := range r.Matches {
		for _, o := range m.Options {
			if len(o.Args) == 0 {
				continue
			}
			switch o.Name {
			case "-p", "--protocol":
				if o.Negate {
					return pub, false
				}
				pub.Proto, _ = protoNum(o.Args[0])
			case "-d", "--destination":
				if o.Negate {
					continue
				}
				pf, err := netip.ParsePrefix(o.Args[0])
				if err != nil {
					a, aerr := netip.ParseAddr(o.Args[0])
					if aerr != nil {
						return pub, false
					}
					pf = netip.PrefixFrom(a, a.BitLen())
				}
				if pf.IsSingleIP() {
					pub.Dst = pf.Addr()
				}
			case "--dport", "--destination-port":
				if o.Negate || strings.ContainsAny(o.Args[0], ":,") {
					return pub, false
				}
				n, err := strconv.ParseUint(o.Args[0], 10, 16)
				if err != nil {
					return pub, false
				}
				pub.Port = uint16(n)
			}
		}
	}
	for _, o := range r.TargetOpts {
		if o.Name != "--to-destination" || len(o.Args) == 0 {
			continue
		}
		to := o.Args[0]
		host, port, hasPort := strings.Cut(to, ":")
		a, err := netip.ParseAddr(host)
		if err != nil {
			return pub, false
		}
		p := pub.Port
		if hasPort {
			if strings.Contains(port, "-") {
				return pub, false
			}
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return pub, false
			}
			p = uint16(n)
		}
		pub.To = netip.AddrPortFrom(a, p)
	}
	return pub, pub.Proto != 0 && pub.Port != 0 && pub.To.IsValid() && pub.To.Port() != 0
}
