// Package docker reads `docker inspect` (containers) and `docker network
// inspect` JSON as Docker 20.10 to 24 print them, and replays the
// iptables commands Docker's bridge driver runs for those networks and
// published ports (AddRules, for `--synthesize`).
//
// Only what changes a packet's path is kept: a container's endpoints
// (network, address, gateway, MAC) and published ports; a network's
// driver, subnets and gateways, bridge device and the options that change
// its rules (enable_icc, enable_ip_masquerade, host_binding_ipv4,
// host_ipv4, mtu), internal, and its member containers.
package docker

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
)

// Container is one element of `docker inspect`.
type Container struct {
	ID   string
	Name string // without Docker's leading "/"
	// Running is State.Running.
	Running bool
	// NetworkMode is HostConfig.NetworkMode ("default", "bridge", a
	// network name, "host", "none", "container:ID").
	NetworkMode string
	// Endpoints are the container's networks, by network name.
	Endpoints []Endpoint
	// Ports are the published ports (NetworkSettings.Ports entries with
	// host bindings); exposed-only ports are left out.
	Ports []Port
	File  string
	Line  int
}

// Endpoint is one entry of NetworkSettings.Networks.
type Endpoint struct {
	Network   string
	NetworkID string
	IP        netip.Prefix // address with IPPrefixLen; invalid when none
	Gateway   netip.Addr
	IPv6      netip.Prefix
	IPv6GW    netip.Addr
	MAC       string
}

// Port is one host binding of a published container port.
type Port struct {
	Proto         string // tcp, udp or sctp
	ContainerPort uint16
	// HostIP is the binding's address; 0.0.0.0 or :: for all.
	HostIP   netip.Addr
	HostPort uint16
	Line     int
}

// Network is one element of `docker network inspect`.
type Network struct {
	Name, ID, Driver string
	Created          string
	Internal         bool
	EnableIPv6       bool
	Options          map[string]string
	Subnets          []Subnet
	Members          []Member
	File             string
	Line             int

	// Bridge is the bridge device (docker0, br-<id[:12]>, or the
	// com.docker.network.bridge.name option).
	Bridge string
	// ICC and Masquerade are the enable_icc and enable_ip_masquerade
	// options (true unless set to false).
	ICC, Masquerade bool
	// BindingIP is host_binding_ipv4: the default host address of
	// published ports (invalid: all).
	BindingIP netip.Addr
	// HostIP is com.docker.network.host_ipv4: SNAT to this address
	// instead of MASQUERADE (invalid: MASQUERADE).
	HostIP netip.Addr
	MTU    int
	// Derived is set for a network pktflow derived from a container's
	// endpoint because no `docker network inspect` described it.
	Derived bool
}

// Subnet is one IPAM.Config entry.
type Subnet struct {
	Prefix  netip.Prefix // the subnet (masked)
	Gateway netip.Addr   // the bridge's address; invalid if not given
}

// Member is one entry of a network's Containers.
type Member struct {
	ID, Name string
	MAC      string
	IPv4     netip.Prefix
	IPv6     netip.Prefix
}

// JSON shapes (only the fields pktflow reads).
type jsonContainer struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State *struct {
		Running bool `json:"Running"`
	} `json:"State"`
	HostConfig *struct {
		NetworkMode string `json:"NetworkMode"`
	} `json:"HostConfig"`
	NetworkSettings *struct {
		Ports    map[string][]jsonBinding `json:"Ports"`
		Networks map[string]jsonEndpoint  `json:"Networks"`
	} `json:"NetworkSettings"`
}

type jsonBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type jsonEndpoint struct {
	NetworkID           string `json:"NetworkID"`
	Gateway             string `json:"Gateway"`
	IPAddress           string `json:"IPAddress"`
	IPPrefixLen         int    `json:"IPPrefixLen"`
	IPv6Gateway         string `json:"IPv6Gateway"`
	GlobalIPv6Address   string `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int    `json:"GlobalIPv6PrefixLen"`
	MacAddress          string `json:"MacAddress"`
}

type jsonNetwork struct {
	Name       string `json:"Name"`
	ID         string `json:"Id"`
	Created    string `json:"Created"`
	Driver     string `json:"Driver"`
	EnableIPv6 bool   `json:"EnableIPv6"`
	Internal   bool   `json:"Internal"`
	IPAM       *struct {
		Config []struct {
			Subnet  string `json:"Subnet"`
			Gateway string `json:"Gateway"`
		} `json:"Config"`
	} `json:"IPAM"`
	Containers map[string]struct {
		Name        string `json:"Name"`
		MacAddress  string `json:"MacAddress"`
		IPv4Address string `json:"IPv4Address"`
		IPv6Address string `json:"IPv6Address"`
	} `json:"Containers"`
	Options map[string]string `json:"Options"`
}

// Option names Docker's bridge driver reads.
const (
	OptBridgeName   = "com.docker.network.bridge.name"
	OptICC          = "com.docker.network.bridge.enable_icc"
	OptMasquerade   = "com.docker.network.bridge.enable_ip_masquerade"
	OptBindingIPv4  = "com.docker.network.bridge.host_binding_ipv4"
	OptHostIPv4     = "com.docker.network.host_ipv4"
	OptMTU          = "com.docker.network.driver.mtu"
	OptDefaultBr    = "com.docker.network.bridge.default_bridge"
	defaultBridgeNm = "docker0"
)

// ParseContainers reads `docker inspect` output for containers.
func ParseContainers(file string, r io.Reader) ([]*Container, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	elems, err := ingest.JSONArrays(file, data)
	if err != nil {
		return nil, err
	}
	var out []*Container
	seen := map[string]bool{}
	for _, e := range elems {
		var j jsonContainer
		if err := ingest.DecodeElem(file, data, e, &j, "docker inspect"); err != nil {
			return nil, err
		}
		line, _ := ingest.LineAt(data, e.Off)
		fail := func(field, value, format string, args ...any) error {
			return ingest.ErrorAt(file, data, ingest.FieldAt(e, field, value), "container %s: %s", strings.TrimPrefix(j.Name, "/"), fmt.Sprintf(format, args...))
		}
		if j.ID == "" || j.NetworkSettings == nil {
			return nil, ingest.ErrorAt(file, data, e.Off, "not a container: expected `docker inspect CONTAINER` output with Id and NetworkSettings (for networks, use docker-network-inspect.json)")
		}
		c := &Container{ID: j.ID, Name: strings.TrimPrefix(j.Name, "/"), File: file, Line: line}
		if seen[c.ID] {
			return nil, ingest.ErrorAt(file, data, e.Off, "container %s is described twice", c.Name)
		}
		seen[c.ID] = true
		if j.State != nil {
			c.Running = j.State.Running
		}
		if j.HostConfig != nil {
			c.NetworkMode = j.HostConfig.NetworkMode
		}
		names := make([]string, 0, len(j.NetworkSettings.Networks))
		for n := range j.NetworkSettings.Networks {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			je := j.NetworkSettings.Networks[n]
			ep := Endpoint{Network: n, NetworkID: je.NetworkID}
			if je.IPAddress != "" {
				a, err := netip.ParseAddr(je.IPAddress)
				if err != nil || !a.Is4() || je.IPPrefixLen < 1 || je.IPPrefixLen > 32 {
					return nil, fail("IPAddress", je.IPAddress, "network %s: IPAddress %q with IPPrefixLen %d: expected an IPv4 address and a length from 1 to 32", n, je.IPAddress, je.IPPrefixLen)
				}
				ep.IP = netip.PrefixFrom(a, je.IPPrefixLen)
			}
			if je.Gateway != "" {
				g, err := netip.ParseAddr(je.Gateway)
				if err != nil || !g.Is4() {
					return nil, fail("Gateway", je.Gateway, "network %s: Gateway %q: expected an IPv4 address", n, je.Gateway)
				}
				ep.Gateway = g
			}
			if je.GlobalIPv6Address != "" {
				a, err := netip.ParseAddr(je.GlobalIPv6Address)
				if err != nil || a.Is4() || je.GlobalIPv6PrefixLen < 1 || je.GlobalIPv6PrefixLen > 128 {
					return nil, fail("GlobalIPv6Address", je.GlobalIPv6Address, "network %s: GlobalIPv6Address %q with prefix length %d: expected an IPv6 address and a length from 1 to 128", n, je.GlobalIPv6Address, je.GlobalIPv6PrefixLen)
				}
				ep.IPv6 = netip.PrefixFrom(a, je.GlobalIPv6PrefixLen)
			}
			if je.IPv6Gateway != "" {
				g, err := netip.ParseAddr(je.IPv6Gateway)
				if err != nil || g.Is4() {
					return nil, fail("IPv6Gateway", je.IPv6Gateway, "network %s: IPv6Gateway %q: expected an IPv6 address", n, je.IPv6Gateway)
				}
				ep.IPv6GW = g
			}
			if je.MacAddress != "" {
				hw, err := net.ParseMAC(je.MacAddress)
				if err != nil || len(hw) != 6 {
					return nil, fail("MacAddress", je.MacAddress, "network %s: MacAddress %q is not an Ethernet address", n, je.MacAddress)
				}
				ep.MAC = hw.String()
			}
			c.Endpoints = append(c.Endpoints, ep)
		}
		keys := make([]string, 0, len(j.NetworkSettings.Ports))
		for k := range j.NetworkSettings.Ports {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(a, b int) bool { return portLess(keys[a], keys[b]) })
		for _, k := range keys {
			port, proto, ok := strings.Cut(k, "/")
			cp, err := strconv.ParseUint(port, 10, 16)
			if !ok || err != nil || cp == 0 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
				return nil, fail("", k, "port %q: expected PORT/tcp, PORT/udp or PORT/sctp", k)
			}
			for _, b := range j.NetworkSettings.Ports[k] {
				p := Port{Proto: proto, ContainerPort: uint16(cp)}
				p.Line, _ = ingest.LineAt(data, ingest.ValueAt(e, k))
				hp, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil || hp == 0 {
					return nil, fail("HostPort", b.HostPort, "port %s: HostPort %q: expected a port number", k, b.HostPort)
				}
				p.HostPort = uint16(hp)
				switch b.HostIP {
				case "":
					p.HostIP = netip.IPv4Unspecified()
				default:
					a, err := netip.ParseAddr(b.HostIP)
					if err != nil || a.Zone() != "" {
						return nil, fail("HostIp", b.HostIP, "port %s: HostIp %q: expected an address", k, b.HostIP)
					}
					p.HostIP = a
				}
				c.Ports = append(c.Ports, p)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// portLess orders "80/tcp" keys by number then protocol, as Docker's
// nat.SortPortMap roughly does, for a stable rule order.
func portLess(a, b string) bool {
	pa, qa, _ := strings.Cut(a, "/")
	pb, qb, _ := strings.Cut(b, "/")
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na != nb {
		return na < nb
	}
	return qa < qb
}

// ParseNetworks reads `docker network inspect` output.
func ParseNetworks(file string, r io.Reader) ([]*Network, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	elems, err := ingest.JSONArrays(file, data)
	if err != nil {
		return nil, err
	}
	var out []*Network
	seen := map[string]bool{}
	for _, e := range elems {
		var j jsonNetwork
		if err := ingest.DecodeElem(file, data, e, &j, "docker network inspect"); err != nil {
			return nil, err
		}
		if j.ID == "" || j.Driver == "" {
			return nil, ingest.ErrorAt(file, data, e.Off, "not a network: expected `docker network inspect` output with Id and Driver (for containers, use docker-inspect.json)")
		}
		fail := func(field, value, format string, args ...any) error {
			return ingest.ErrorAt(file, data, ingest.FieldAt(e, field, value), "network %s: %s", j.Name, fmt.Sprintf(format, args...))
		}
		n := &Network{Name: j.Name, ID: j.ID, Driver: j.Driver, Created: j.Created, Internal: j.Internal,
			EnableIPv6: j.EnableIPv6, Options: j.Options, File: file, ICC: true, Masquerade: true}
		n.Line, _ = ingest.LineAt(data, e.Off)
		if seen[n.Name] {
			return nil, ingest.ErrorAt(file, data, e.Off, "network %s is described twice", n.Name)
		}
		seen[n.Name] = true
		if j.IPAM != nil {
			for _, c := range j.IPAM.Config {
				p, err := netip.ParsePrefix(c.Subnet)
				if err != nil || p.Addr().Zone() != "" {
					return nil, fail("Subnet", c.Subnet, "IPAM subnet %q: expected a prefix such as 172.18.0.0/16", c.Subnet)
				}
				s := Subnet{Prefix: p.Masked()}
				if c.Gateway != "" {
					g, err := netip.ParseAddr(c.Gateway)
					if err != nil || g.Is4() != p.Addr().Is4() || !p.Contains(g) {
						return nil, fail("Gateway", c.Gateway, "IPAM gateway %q: expected an address of %s", c.Gateway, s.Prefix)
					}
					s.Gateway = g
				}
				n.Subnets = append(n.Subnets, s)
			}
		}
		ids := make([]string, 0, len(j.Containers))
		for id := range j.Containers {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			jc := j.Containers[id]
			m := Member{ID: id, Name: jc.Name}
			if jc.MacAddress != "" {
				hw, err := net.ParseMAC(jc.MacAddress)
				if err != nil || len(hw) != 6 {
					return nil, fail("MacAddress", jc.MacAddress, "container %s: MacAddress %q is not an Ethernet address", jc.Name, jc.MacAddress)
				}
				m.MAC = hw.String()
			}
			for _, x := range []struct {
				s   string
				dst *netip.Prefix
				v4  bool
			}{{jc.IPv4Address, &m.IPv4, true}, {jc.IPv6Address, &m.IPv6, false}} {
				if x.s == "" {
					continue
				}
				p, err := netip.ParsePrefix(x.s)
				if err != nil || p.Addr().Is4() != x.v4 {
					return nil, fail("", x.s, "container %s: address %q: expected ADDRESS/PREFIX", jc.Name, x.s)
				}
				*x.dst = p
			}
			n.Members = append(n.Members, m)
		}
		if err := n.options(func(v, format string, args ...any) error { return fail("", v, format, args...) }); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// options applies the bridge driver's options.
func (n *Network) options(fail func(v, format string, args ...any) error) error {
	o := n.Options
	n.Bridge = o[OptBridgeName]
	if n.Driver == "bridge" && n.Bridge == "" {
		if o[OptDefaultBr] == "true" || (n.Name == "bridge" && o[OptDefaultBr] != "false") {
			n.Bridge = defaultBridgeNm
		} else {
			n.Bridge = "br-" + n.ID[:min(12, len(n.ID))]
		}
	}
	if n.Bridge != "" && !validIfName(n.Bridge) {
		return fail(n.Bridge, "bridge name %q is not an interface name pktflow can use", n.Bridge)
	}
	for _, x := range []struct {
		key string
		dst *bool
	}{{OptICC, &n.ICC}, {OptMasquerade, &n.Masquerade}} {
		if v, ok := o[x.key]; ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fail(v, "option %s %q: expected true or false", x.key, v)
			}
			*x.dst = b
		}
	}
	for _, x := range []struct {
		key string
		dst *netip.Addr
	}{{OptBindingIPv4, &n.BindingIP}, {OptHostIPv4, &n.HostIP}} {
		if v, ok := o[x.key]; ok && v != "" {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is4() {
				return fail(v, "option %s %q: expected an IPv4 address", x.key, v)
			}
			if !a.IsUnspecified() {
				*x.dst = a
			}
		}
	}
	if v, ok := o[OptMTU]; ok && v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 68 || m > 65535 {
			return fail(v, "option %s %q: expected an MTU from 68 to 65535", OptMTU, v)
		}
		n.MTU = m
	}
	return nil
}

// validIfName reports whether s is an interface name Linux accepts and
// an iptables rule can match.
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

// V4 returns the network's first IPv4 subnet, if any.
func (n *Network) V4() (Subnet, bool) {
	i := slices.IndexFunc(n.Subnets, func(s Subnet) bool { return s.Prefix.Addr().Is4() })
	if i < 0 {
		return Subnet{}, false
	}
	return n.Subnets[i], true
}
