package snapshot

import (
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/ingest/conntrack"
	"github.com/pktflow/pktflow/internal/ingest/iprojson"
	"github.com/pktflow/pktflow/internal/ingest/iproute"
	"github.com/pktflow/pktflow/internal/ingest/iptlist"
	"github.com/pktflow/pktflow/internal/ingest/libvirt"
	"github.com/pktflow/pktflow/internal/ingest/ss"
	"github.com/pktflow/pktflow/internal/model"
)

// isJSON reports whether a file is one of the JSON forms.
func isJSON(rel string) bool { return strings.HasSuffix(rel, ".json") }

// readFile opens rel and runs parse on it; errors are recorded and give
// the zero value.
func readFile[T any](ld *loader, rel string, parse func(string, io.Reader) (T, error)) (T, bool) {
	var zero T
	if rel == "" {
		return zero, false
	}
	r, ok := ld.open(rel)
	if !ok {
		return zero, false
	}
	defer r.Close()
	v, err := parse(rel, r)
	if err != nil {
		ld.add(err)
		return zero, false
	}
	return v, true
}

// interfacesFile reads `ip addr show` or `ip -j addr`.
func (ld *loader) interfacesFile(rel string) []*model.Interface {
	parse := iproute.ParseAddr
	if isJSON(rel) {
		parse = iprojson.ParseAddr
	}
	ifs, _ := readFile(ld, rel, parse)
	return ifs
}

// applyLinks reads `ip -d link` (text or JSON). Without an address file it
// gives the node's interfaces; with one it refines them: the exact kind,
// the veth peer and its namespace, bridge port state and hairpin mode. A
// device the two disagree about (MAC, master) is an error, as is one only
// one of them lists: they should be taken together.
func (ld *loader) applyLinks(n *model.Node, rel string) {
	parse := iproute.ParseAddr
	if isJSON(rel) {
		parse = iprojson.ParseAddr
	}
	links, ok := readFile(ld, rel, parse)
	if !ok {
		return
	}
	if n.Interfaces == nil {
		n.Interfaces = links
		return
	}
	for _, l := range links {
		ifc := n.Iface(l.Name)
		if ifc == nil {
			ld.add(ingest.Errorf(l.Origin.File, l.Origin.Line, l.Origin.Text, "interface %s is in the link listing but not in the address listing (%s): take both from the same moment", l.Name, ifaceNames(n)))
			continue
		}
		if l.MAC != "" && ifc.MAC != "" && l.MAC != ifc.MAC {
			ld.add(ingest.Errorf(l.Origin.File, l.Origin.Line, l.Origin.Text, "interface %s has MAC %s here but %s in %s", l.Name, l.MAC, ifc.MAC, ifc.Origin.File))
			continue
		}
		if l.Master != ifc.Master {
			ld.add(ingest.Errorf(l.Origin.File, l.Origin.Line, l.Origin.Text, "interface %s has master %q here but %q in %s", l.Name, l.Master, ifc.Master, ifc.Origin.File))
			continue
		}
		// The link listing knows kinds exactly when made with -d; its
		// guesses are the address listing's anyway.
		if l.Kind != model.IfUnknown {
			ifc.Kind = l.Kind
		}
		if l.PeerIndex != 0 {
			ifc.PeerIndex = l.PeerIndex
		}
		if l.LinkNetns != "" {
			ifc.LinkNetns = l.LinkNetns
		}
		if l.PortState != "" {
			ifc.PortState = l.PortState
		}
		if l.Hairpin != nil {
			ifc.Hairpin = l.Hairpin
		}
	}
}

// applyBridgePorts reads `bridge -j link`: ports' masters, STP states and
// hairpin modes.
func (ld *loader) applyBridgePorts(n *model.Node, rel string) {
	ports, ok := readFile(ld, rel, iprojson.ParseBridgeLink)
	if !ok {
		return
	}
	for _, p := range ports {
		ifc := n.Iface(p.Dev)
		if ifc == nil {
			ld.add(ingest.Errorf(p.Origin.File, p.Origin.Line, p.Origin.Text, "bridge port %s: node %s has no such interface (it has: %s)", p.Dev, n.Name, ifaceNames(n)))
			continue
		}
		if ifc.Master != "" && ifc.Master != p.Master {
			ld.add(ingest.Errorf(p.Origin.File, p.Origin.Line, p.Origin.Text, "bridge port %s has master %s here but %s in %s", p.Dev, p.Master, ifc.Master, ifc.Origin.File))
			continue
		}
		ifc.Master = p.Master
		if p.State != "" {
			ifc.PortState = p.State
		}
		if p.Hairpin != nil {
			ifc.Hairpin = p.Hairpin
		}
	}
}

// routesFile reads `ip route show` or `ip -j route` (either family).
func (ld *loader) routesFile(rel string) []model.Route {
	parse := func(f string, r io.Reader) ([]model.Route, error) { return iproute.ParseRoutes(f, r, model.TableMain) }
	if isJSON(rel) {
		parse = func(f string, r io.Reader) ([]model.Route, error) { return iprojson.ParseRoutes(f, r, model.TableMain) }
	}
	routes, _ := readFile(ld, rel, parse)
	return routes
}

// parseNeigh and parseRules pick the reader for a file's form.
func parseNeigh(rel string) func(string, io.Reader) ([]model.Neighbor, error) {
	if isJSON(rel) {
		return iprojson.ParseNeigh
	}
	return iproute.ParseNeigh
}

func parseRules(rel string) func(string, io.Reader) ([]model.PolicyRule, error) {
	if isJSON(rel) {
		return iprojson.ParseRules
	}
	return iproute.ParseRules
}

func (ld *loader) fdbFile(rel string) []model.FDBEntry {
	fdb, _ := readFile(ld, rel, iprojson.ParseFDB)
	return fdb
}

func (ld *loader) ssFile(rel string) []model.Listener {
	ls, _ := readFile(ld, rel, ss.Parse)
	return ls
}

func (ld *loader) conntrackFile(rel string) []model.ConntrackEntry {
	es, _ := readFile(ld, rel, conntrack.Parse)
	return es
}

func (ld *loader) leasesFile(rel string) []model.DHCPLease {
	ls, _ := readFile(ld, rel, libvirt.ParseLeases)
	return ls
}

func (ld *loader) domainFiles(rels []string) []*libvirt.Domain {
	var out []*libvirt.Domain
	for _, rel := range rels {
		ds, _ := readFile(ld, rel, libvirt.ParseDomains)
		out = append(out, ds...)
	}
	return out
}

// rulesetFiles reads a family's ruleset: an iptables-save file, one or
// more iptables -L listings (merged: each table from one listing), or
// the inline block.
func (ld *loader) rulesetFiles(n *model.Node, rels []string, v *yaml.Node, family int) *model.Ruleset {
	if len(rels) == 0 {
		return ld.ruleset("", v, family)
	}
	if kindOf(rels[0]).format == "save" {
		return ld.ruleset(rels[0], nil, family)
	}
	var rs *model.Ruleset
	ok := true
	for _, rel := range rels {
		table := kindOf(rel).table
		part, good := readFile(ld, rel, func(f string, r io.Reader) (*model.Ruleset, error) {
			return iptlist.Parse(f, r, family, table)
		})
		if !good {
			ok = false
			continue
		}
		if rs == nil {
			rs = part
			continue
		}
		for _, t := range part.Tables {
			if prev := rs.Table(t.Name); prev != nil {
				ld.add(ingest.Errorf(t.Origin.File, t.Origin.Line, t.Origin.Text, "table %s is listed here and in %s: keep one listing of each table", t.Name, prev.Origin.File))
				ok = false
				continue
			}
			rs.Tables = append(rs.Tables, t)
		}
	}
	if !ok || rs == nil {
		return nil
	}
	iptlist.FillUnlisted(rs, rels[0])
	iptlist.ResolveInterfaces(rs, func(name string) bool { return n.Iface(name) != nil })
	cmd := map[int]string{4: "iptables", 6: "ip6tables"}[family]
	ld.note(n.Name, "%s rules read back from `%s -L` (%s): what a listing does not show is reported as uncertain when a rule is used",
		cmd, cmd, strings.Join(rels, ", "))
	return rs
}
