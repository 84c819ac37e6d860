// Package libvirt reads what virsh prints about libvirt's virtual
// networks and guests:
//
//   - `virsh net-dumpxml NETWORK` (ParseNetworks): the network's forward
//     mode (nat, route, open, isolated, or a mode that uses a host bridge
//     or device: bridge, private, vepa, passthrough, hostdev), its bridge
//     device and MAC, its IPv4 and IPv6 addresses with DHCP ranges and
//     hosts, static routes and the NAT address and port range;
//   - `virsh net-dhcp-leases NETWORK` (ParseLeases);
//   - `virsh dumpxml DOMAIN` (ParseDomains): which host device (target
//     dev, the tap "vnet0") carries which guest NIC (by MAC).
//
// XML is read with libvirt's own Go types (libvirt.org/go/libvirtxml);
// this package checks what pktflow relies on (addresses, prefixes, MACs,
// modes) and records the line of every element it uses, so that errors
// and synthesized rules point at the XML line they come from.
//
// AddRules (synth.go) replays the iptables commands libvirt runs for a
// network, for `--synthesize`.
package libvirt

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/pktflow/pktflow/internal/ingest"
)

// Forward modes as libvirt names them; Isolated is a network without a
// <forward> element.
const (
	ModeNAT         = "nat"
	ModeRoute       = "route"
	ModeOpen        = "open"
	ModeIsolated    = "isolated"
	ModeBridge      = "bridge"
	ModePrivate     = "private"
	ModeVEPA        = "vepa"
	ModePassthrough = "passthrough"
	ModeHostdev     = "hostdev"
)

// Network is one `virsh net-dumpxml` document, checked.
type Network struct {
	// Def is the document as libvirt's Go types read it.
	Def *libvirtxml.Network
	// File and Line say where its <network> element is.
	File string
	Line int
	Name string
	// Mode is the forward mode (ModeNAT ...).
	Mode string
	// Bridge is the bridge device libvirt created (virbr0); empty for
	// modes that use a device of the host.
	Bridge string
	// MAC is the bridge's MAC (<mac address=...>), lower-case; empty
	// when the XML has none.
	MAC string
	// MTU is the bridge's MTU (<mtu size=...>), zero when not given.
	MTU int
	// ForwardDev is the device forwarding is limited to (<forward
	// dev=...> or its first <interface dev=...>), empty for any.
	ForwardDev  string
	ForwardLine int
	// NAT's address and port range (<nat><address start end/><port
	// start end/></nat>); invalid and zero when not given.
	NATStart, NATEnd netip.Addr
	NATPortMin       uint16
	NATPortMax       uint16
	// NATIPv6 is <nat ipv6='yes'>: IPv6 is masqueraded too.
	NATIPv6 bool
	// IPv6NoGW is <network ipv6='yes'>: guest-to-guest IPv6 without an
	// IPv6 address on the bridge.
	IPv6NoGW bool
	IPs      []IP
	Routes   []Route
}

// IP is one <ip> element: the bridge's address with its prefix length.
type IP struct {
	Prefix netip.Prefix
	Line   int
	// Ranges and Hosts are the DHCP ranges and static hosts.
	Ranges [][2]netip.Addr
	Hosts  []Host
	// TFTP is set when the element has <tftp root=...>.
	TFTP bool
}

// DHCP reports whether libvirt serves DHCP on this address.
func (ip IP) DHCP() bool { return len(ip.Ranges) > 0 || len(ip.Hosts) > 0 }

// Host is a static DHCP host: <host mac name ip/>.
type Host struct {
	MAC  string
	Name string
	IP   netip.Addr
	Line int
}

// Route is a static route libvirt adds through the bridge: <route
// address prefix gateway/>.
type Route struct {
	Prefix  netip.Prefix
	Gateway netip.Addr
	Metric  int
	Line    int
}

// ParseNetworks reads one or more `virsh net-dumpxml` documents.
func ParseNetworks(file string, r io.Reader) ([]*Network, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	docs, err := documents(file, data, "network", "virsh net-dumpxml")
	if err != nil {
		return nil, err
	}
	var out []*Network
	seen := map[string]int{}
	for _, d := range docs {
		n, err := parseNetwork(file, data, d)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[n.Name]; dup {
			return nil, ingest.ErrorAt(file, data, d.off, "network %s is described twice (first at line %d): expected each network once", n.Name, prev)
		}
		seen[n.Name] = n.Line
		out = append(out, n)
	}
	return out, nil
}

func parseNetwork(file string, data []byte, d *doc) (*Network, error) {
	def := &libvirtxml.Network{}
	if err := def.Unmarshal(string(d.raw)); err != nil {
		return nil, ingest.ErrorAt(file, data, d.off, "reading the network XML: %v", err)
	}
	n := &Network{Def: def, File: file, Line: d.line, Name: def.Name}
	at := func(path string, k int) *ingest.Error {
		l := d.elementLine(path, k)
		lines := strings.Split(string(data), "\n")
		return ingest.Errorf(file, l, strings.TrimSuffix(lines[l-1], "\r"), "")
	}
	fail := func(path string, k int, format string, args ...any) error {
		e := at(path, k)
		e.Msg = fmt.Sprintf(format, args...)
		return e
	}
	if n.Name == "" {
		return nil, fail("network", 0, "network without a <name>: expected the output of virsh net-dumpxml")
	}
	n.IPv6NoGW = def.IPv6 == "yes"
	switch {
	case def.Forward == nil:
		n.Mode = ModeIsolated
	case def.Forward.Mode == "":
		n.Mode = ModeNAT // libvirt's default for <forward/>
	default:
		n.Mode = def.Forward.Mode
	}
	switch n.Mode {
	case ModeNAT, ModeRoute, ModeOpen, ModeIsolated, ModeBridge, ModePrivate, ModeVEPA, ModePassthrough, ModeHostdev:
	default:
		return nil, fail("network/forward", 0, "network %s: unknown forward mode %q: expected nat, route, open, bridge, private, vepa, passthrough or hostdev", n.Name, n.Mode)
	}
	n.ForwardLine = d.elementLine("network/forward", 0)
	if f := def.Forward; f != nil {
		n.ForwardDev = f.Dev
		if n.ForwardDev == "" && len(f.Interfaces) > 0 {
			n.ForwardDev = f.Interfaces[0].Dev
		}
		if nat := f.NAT; nat != nil {
			n.NATIPv6 = nat.IPv6 == "yes"
			if len(nat.Addresses) > 0 {
				a := nat.Addresses[0]
				s, err1 := netip.ParseAddr(a.Start)
				e, err2 := netip.ParseAddr(a.End)
				if err1 != nil || err2 != nil || !s.Is4() || !e.Is4() || e.Less(s) {
					return nil, fail("network/forward/nat/address", 0, "network %s: NAT address range %q-%q: expected two IPv4 addresses, start first", n.Name, a.Start, a.End)
				}
				n.NATStart, n.NATEnd = s, e
			}
			if len(nat.Ports) > 0 {
				p := nat.Ports[0]
				if p.Start == 0 || p.End > 65535 || p.End < p.Start {
					return nil, fail("network/forward/nat/port", 0, "network %s: NAT port range %d-%d: expected 1 <= start <= end <= 65535", n.Name, p.Start, p.End)
				}
				n.NATPortMin, n.NATPortMax = uint16(p.Start), uint16(p.End)
			}
		}
	}
	if b := def.Bridge; b != nil {
		n.Bridge = b.Name
	}
	if usesBridge(n.Mode) && n.Bridge == "" {
		return nil, fail("network", 0, "network %s (mode %s) has no <bridge name=...>: expected the XML of a defined network, as virsh net-dumpxml prints it", n.Name, n.Mode)
	}
	if n.Bridge != "" && !validIfName(n.Bridge) {
		return nil, fail("network/bridge", 0, "network %s: bridge name %q is not an interface name pktflow can use (at most 15 characters, no blanks, quotes, '/' or ':', not starting with '!' or '-')", n.Name, n.Bridge)
	}
	if n.ForwardDev != "" && !validIfName(n.ForwardDev) {
		return nil, fail("network/forward", 0, "network %s: forward dev %q is not an interface name pktflow can use", n.Name, n.ForwardDev)
	}
	if m := def.MAC; m != nil && m.Address != "" {
		hw, err := net.ParseMAC(m.Address)
		if err != nil || len(hw) != 6 {
			return nil, fail("network/mac", 0, "network %s: MAC %q is not an Ethernet address", n.Name, m.Address)
		}
		n.MAC = hw.String()
	}
	if def.MTU != nil {
		if def.MTU.Size < 68 || def.MTU.Size > 65535 {
			return nil, fail("network/mtu", 0, "network %s: mtu %d: expected 68 to 65535", n.Name, def.MTU.Size)
		}
		n.MTU = int(def.MTU.Size)
	}
	hostK := 0
	rangeK := 0
	for k, ipdef := range def.IPs {
		p, msg := ipPrefix(ipdef)
		if msg != "" {
			return nil, fail("network/ip", k, "network %s: %s", n.Name, msg)
		}
		ip := IP{Prefix: p, Line: d.elementLine("network/ip", k), TFTP: ipdef.TFTP != nil}
		if dh := ipdef.DHCP; dh != nil {
			for _, rg := range dh.Ranges {
				s, err1 := netip.ParseAddr(rg.Start)
				e, err2 := netip.ParseAddr(rg.End)
				if err1 != nil || err2 != nil || s.Is4() != p.Addr().Is4() || e.Is4() != p.Addr().Is4() || !p.Contains(s) || !p.Contains(e) || e.Less(s) {
					return nil, fail("network/ip/dhcp/range", rangeK, "network %s: DHCP range %q-%q: expected two addresses of %s, start first", n.Name, rg.Start, rg.End, p.Masked())
				}
				ip.Ranges = append(ip.Ranges, [2]netip.Addr{s, e})
				rangeK++
			}
			for _, h := range dh.Hosts {
				host := Host{Name: h.Name, Line: d.elementLine("network/ip/dhcp/host", hostK)}
				if h.MAC != "" {
					hw, err := net.ParseMAC(h.MAC)
					if err != nil || len(hw) != 6 {
						return nil, fail("network/ip/dhcp/host", hostK, "network %s: DHCP host MAC %q is not an Ethernet address", n.Name, h.MAC)
					}
					host.MAC = hw.String()
				}
				if h.IP != "" {
					a, err := netip.ParseAddr(h.IP)
					if err != nil || a.Zone() != "" || a.Is4() != p.Addr().Is4() {
						return nil, fail("network/ip/dhcp/host", hostK, "network %s: DHCP host address %q: expected an address of %s", n.Name, h.IP, p.Masked())
					}
					host.IP = a
				}
				ip.Hosts = append(ip.Hosts, host)
				hostK++
			}
		}
		n.IPs = append(n.IPs, ip)
	}
	if (n.Mode == ModeNAT || n.Mode == ModeRoute || n.Mode == ModeOpen) && len(n.IPs) == 0 {
		return nil, fail("network", 0, "network %s: %s forwarding without an <ip> element: libvirt refuses such a network", n.Name, n.Mode)
	}
	for k, rt := range def.Routes {
		ipdef := libvirtxml.NetworkIP{Address: rt.Address, Family: rt.Family, Netmask: rt.Netmask, Prefix: rt.Prefix}
		p, msg := ipPrefix(ipdef)
		if msg != "" {
			return nil, fail("network/route", k, "network %s: route: %s", n.Name, msg)
		}
		gw, err := netip.ParseAddr(rt.Gateway)
		if err != nil || gw.Is4() != p.Addr().Is4() {
			return nil, fail("network/route", k, "network %s: route gateway %q: expected an address of the route's family", n.Name, rt.Gateway)
		}
		r := Route{Prefix: p.Masked(), Gateway: gw, Line: d.elementLine("network/route", k)}
		if rt.Metric != "" {
			m, err := strconv.Atoi(rt.Metric)
			if err != nil || m < 0 {
				return nil, fail("network/route", k, "network %s: route metric %q: expected a number", n.Name, rt.Metric)
			}
			r.Metric = m
		}
		n.Routes = append(n.Routes, r)
	}
	return n, nil
}

// validIfName reports whether s is an interface name that Linux accepts
// and iptables can match: 1 to 15 characters without blanks, quotes, '/'
// or ':', not "." or "..", and not starting with '!' or '-' (which an
// iptables rule would read as negation or an option).
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." || s[0] == '!' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '/' || c == ':' || c == '"' || c == '\'' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}

// usesBridge reports whether libvirt creates and manages a bridge for the
// mode (the other modes attach guests to a device of the host).
func usesBridge(mode string) bool {
	switch mode {
	case ModeNAT, ModeRoute, ModeOpen, ModeIsolated:
		return true
	}
	return false
}

// ipPrefix reads an <ip>'s address and prefix length: prefix=, or
// netmask= for IPv4, or the defaults libvirt applies (the classful length
// for IPv4, 64 for IPv6).
func ipPrefix(ip libvirtxml.NetworkIP) (netip.Prefix, string) {
	a, err := netip.ParseAddr(ip.Address)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Sprintf("address %q: expected an IP address", ip.Address)
	}
	switch ip.Family {
	case "", "ipv4":
		if ip.Family == "ipv4" && !a.Is4() {
			return netip.Prefix{}, fmt.Sprintf("address %s is not IPv4, but family is ipv4", a)
		}
		if ip.Family == "" && !a.Is4() {
			return netip.Prefix{}, fmt.Sprintf("address %s is IPv6: expected family='ipv6' on the element", a)
		}
	case "ipv6":
		if !a.Is6() || a.Is4In6() {
			return netip.Prefix{}, fmt.Sprintf("address %s is not IPv6, but family is ipv6", a)
		}
	default:
		return netip.Prefix{}, fmt.Sprintf("family %q: expected ipv4 or ipv6", ip.Family)
	}
	bits := -1
	switch {
	case ip.Prefix != 0:
		bits = int(ip.Prefix)
		if bits > a.BitLen() {
			return netip.Prefix{}, fmt.Sprintf("prefix %d is longer than a %d-bit address", bits, a.BitLen())
		}
	case ip.Netmask != "":
		m, err := netip.ParseAddr(ip.Netmask)
		if err != nil || !m.Is4() || !a.Is4() {
			return netip.Prefix{}, fmt.Sprintf("netmask %q: expected an IPv4 netmask such as 255.255.255.0", ip.Netmask)
		}
		b := m.As4()
		ones, zeros := net.IPv4Mask(b[0], b[1], b[2], b[3]).Size()
		if zeros == 0 && ones == 0 {
			return netip.Prefix{}, fmt.Sprintf("netmask %s is not contiguous", ip.Netmask)
		}
		bits = ones
	case a.Is4():
		switch b := a.As4()[0]; {
		case b < 128:
			bits = 8
		case b < 192:
			bits = 16
		default:
			bits = 24
		}
	default:
		bits = 64
	}
	return netip.PrefixFrom(a, bits), ""
}
