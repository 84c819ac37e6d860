package libvirt

import (
	"fmt"
	"io"
	"net"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/pktflow/pktflow/internal/ingest"
)

// Domain is one `virsh dumpxml DOMAIN` document: the guest and its NICs.
type Domain struct {
	Def  *libvirtxml.Domain
	File string
	Line int
	Name string
	NICs []NIC
}

// NIC is one <interface> of a domain.
type NIC struct {
	// MAC is the guest NIC's MAC (52:54:00:...), lower-case.
	MAC string
	// Target is the host device that carries it (<target dev='vnet0'/>):
	// a tap for network and bridge interfaces, a macvtap for direct
	// ones. Empty when the domain is not running.
	Target string
	// Type is the interface type: network, bridge, direct, ethernet,
	// user, vhostuser, hostdev ...
	Type string
	// Network and Bridge are the libvirt network and the host bridge it
	// is attached to, when known.
	Network, Bridge string
	Model           string
	Line            int
}

// TapMAC is the MAC libvirt gives the host tap of a guest NIC: the guest
// MAC with its first byte replaced by 0xfe, so that the bridge never
// takes the guest's MAC as its own.
func TapMAC(guest string) string {
	hw, err := net.ParseMAC(guest)
	if err != nil || len(hw) != 6 {
		return ""
	}
	hw[0] = 0xfe
	return hw.String()
}

// ParseDomains reads one or more `virsh dumpxml DOMAIN` documents.
func ParseDomains(file string, r io.Reader) ([]*Domain, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	docs, err := documents(file, data, "domain", "virsh dumpxml DOMAIN")
	if err != nil {
		return nil, err
	}
	var out []*Domain
	seen := map[string]int{}
	lines := strings.Split(string(data), "\n")
	for _, d := range docs {
		def := &libvirtxml.Domain{}
		if err := def.Unmarshal(string(d.raw)); err != nil {
			return nil, ingest.ErrorAt(file, data, d.off, "reading the domain XML: %v", err)
		}
		dom := &Domain{Def: def, File: file, Line: d.line, Name: def.Name}
		if dom.Name == "" {
			return nil, ingest.ErrorAt(file, data, d.off, "domain without a <name>: expected the output of virsh dumpxml")
		}
		if prev, dup := seen[dom.Name]; dup {
			return nil, ingest.ErrorAt(file, data, d.off, "domain %s is described twice (first at line %d)", dom.Name, prev)
		}
		seen[dom.Name] = dom.Line
		if def.Devices != nil {
			for k, ifc := range def.Devices.Interfaces {
				l := d.elementLine("domain/devices/interface", k)
				nic := NIC{Line: l, Type: ifaceType(ifc)}
				fail := func(format string, args ...any) error {
					return ingest.Errorf(file, l, strings.TrimSuffix(lines[l-1], "\r"), "domain %s: %s", dom.Name, fmt.Sprintf(format, args...))
				}
				if ifc.MAC != nil {
					hw, err := net.ParseMAC(ifc.MAC.Address)
					if err != nil || len(hw) != 6 {
						return nil, fail("interface MAC %q is not an Ethernet address", ifc.MAC.Address)
					}
					nic.MAC = hw.String()
				}
				if ifc.Target != nil {
					nic.Target = ifc.Target.Dev
					if nic.Target != "" && !validIfName(nic.Target) {
						return nil, fail("target dev %q is not a Linux interface name", nic.Target)
					}
				}
				if s := ifc.Source; s != nil {
					switch {
					case s.Network != nil:
						nic.Network, nic.Bridge = s.Network.Network, s.Network.Bridge
					case s.Bridge != nil:
						nic.Bridge = s.Bridge.Bridge
					case s.Direct != nil:
						nic.Bridge = s.Direct.Dev
					}
				}
				if ifc.Model != nil {
					nic.Model = ifc.Model.Type
				}
				dom.NICs = append(dom.NICs, nic)
			}
		}
		out = append(out, dom)
	}
	return out, nil
}

// ifaceType names an interface's type from the source variant libvirt's
// types decoded.
func ifaceType(ifc libvirtxml.DomainInterface) string {
	s := ifc.Source
	if s == nil {
		return ""
	}
	switch {
	case s.Network != nil:
		return "network"
	case s.Bridge != nil:
		return "bridge"
	case s.Direct != nil:
		return "direct"
	case s.Ethernet != nil:
		return "ethernet"
	case s.User != nil:
		return "user"
	case s.VHostUser != nil:
		return "vhostuser"
	case s.Hostdev != nil:
		return "hostdev"
	case s.Internal != nil:
		return "internal"
	case s.UDP != nil:
		return "udp"
	case s.MCast != nil:
		return "mcast"
	case s.Server != nil:
		return "server"
	case s.Client != nil:
		return "client"
	case s.VDPA != nil:
		return "vdpa"
	case s.Null != nil:
		return "null"
	case s.VDS != nil:
		return "vds"
	}
	return ""
}
