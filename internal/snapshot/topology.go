package snapshot

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pktflow/pktflow/internal/model"
)

// topology is topology.yaml after its structure was checked: the nodes in
// order with their raw values, the links, and the resolved names.
type topology struct {
	nodes []*nodeSpec
	links []*linkSpec
	names map[string][]netip.Addr
}

// nodeSpec is one node's entry in topology.yaml.
type nodeSpec struct {
	name string
	line int
	kind model.NodeKind
	// keys holds the node's keys (other than kind) and their values.
	keys map[string]*yaml.Node
	// keyLine is where each key is written, for "both file and inline".
	keyLine map[string]int
	// kindSet lists interfaces whose kind topology.yaml states (interfaces:
	// kind or iface_kinds): link types do not override them.
	kindSet map[string]bool
}

// node returns the spec of the named node, or nil.
func (t *topology) node(name string) *nodeSpec {
	for _, s := range t.nodes {
		if s.name == name {
			return s
		}
	}
	return nil
}

// linkSpec is one entry of links: its kind and endpoint scalars.
type linkSpec struct {
	kind model.LinkKind
	line int
	ends []*yaml.Node
}

var (
	topKeys  = []string{"nodes", "links", "names"}
	nodeKeys = []string{"kind", "interfaces", "routes", "neighbors", "rules", "iptables", "ip6tables",
		"sysctl", "listen", "owns", "ttl", "iface_kinds"}
	nodeKinds     = []model.NodeKind{model.KindHost, model.KindVM, model.KindContainer, model.KindRouter, model.KindExternal}
	linkKindNames = []model.LinkKind{model.LinkVeth, model.LinkTap, model.LinkSegment}
	// nodeName keeps node names usable as folder names and in "node:iface".
	nodeName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
)

// resolve follows YAML aliases to the node they name. It never turns a
// non-nil node into nil (an alias without a target stays an alias, which
// every kind check then rejects with its line), and the loop is bounded:
// an alias never names another alias, but fuzzed input must not hang.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// pairs returns a mapping's key/value pairs after checking that keys are
// plain scalars and unique. what names the mapping in errors.
func (ld *loader) pairs(n *yaml.Node, what string) (keys, vals []*yaml.Node, ok bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, nil, true
	}
	if n.Kind != yaml.MappingNode {
		ld.fail(TopologyFile, n.Line, "%s must be a mapping (key: value lines)", what)
		return nil, nil, false
	}
	seen := map[string]int{}
	ok = true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode || k.Value == "" {
			ld.fail(TopologyFile, n.Content[i].Line, "keys of %s must be plain names", what)
			ok = false
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			ld.fail(TopologyFile, k.Line, "%q appears twice in %s (first at line %d)", k.Value, what, prev)
			ok = false
			continue
		}
		seen[k.Value] = k.Line
		keys = append(keys, k)
		vals = append(vals, v)
	}
	return keys, vals, ok
}

// seq returns a sequence's items; a null value is an empty sequence.
func (ld *loader) seq(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		ld.fail(TopologyFile, n.Line, "%s must be a list ([a, b] or - lines)", what)
		return nil, false
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, resolve(c))
	}
	return out, true
}

// scalar returns a scalar's text, failing for lists, mappings and nulls.
func (ld *loader) scalar(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) {
		line := 0
		if n != nil {
			line = n.Line
		}
		ld.fail(TopologyFile, line, "%s must be a single value", what)
		return "", false
	}
	return n.Value, true
}

// parseTopology checks topology.yaml's structure and returns its parts;
// nil if it cannot be read at all.
func (ld *loader) parseTopology(data []byte) *topology {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlErr(err.Error())
		ld.fail(TopologyFile, line, "%s", msg)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		ld.fail(TopologyFile, 0, "empty topology; expected at least a nodes: mapping")
		return nil
	}
	root := resolve(doc.Content[0])
	keys, vals, ok := ld.pairs(root, "the top level")
	if !ok && keys == nil {
		return nil
	}
	topo := &topology{}
	var nodesVal, linksVal, namesVal *yaml.Node
	for i, k := range keys {
		switch k.Value {
		case "nodes":
			nodesVal = vals[i]
		case "links":
			linksVal = vals[i]
		case "names":
			namesVal = vals[i]
		default:
			ld.fail(TopologyFile, k.Line, "unknown top-level key %q; expected %s", k.Value, strings.Join(topKeys, ", "))
		}
	}
	if nodesVal == nil {
		ld.fail(TopologyFile, root.Line, "missing nodes: the topology must declare its nodes")
		return nil
	}
	ld.parseNodes(topo, nodesVal)
	ld.parseLinks(topo, linksVal)
	topo.names = ld.parseNames(namesVal)
	return topo
}

// yamlErr splits a yaml.v3 error message ("yaml: line 3: did not find
// expected key") into its line number (0 if none) and the rest.
func yamlErr(msg string) (int, string) {
	msg = strings.TrimPrefix(msg, "yaml: ")
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return 0, msg
	}
	num, tail, ok := strings.Cut(rest, ": ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil {
		return 0, msg
	}
	return n, tail
}

func (ld *loader) parseNodes(topo *topology, v *yaml.Node) {
	keys, vals, _ := ld.pairs(v, "nodes")
	if len(keys) == 0 && len(ld.errs) == 0 {
		ld.fail(TopologyFile, resolve(v).Line, "nodes is empty; declare at least one node")
	}
	for i, k := range keys {
		if !nodeName.MatchString(k.Value) {
			ld.fail(TopologyFile, k.Line, "node name %q: use letters, digits, '_', '.' and '-' (it names a folder and appears in node:iface)", k.Value)
			continue
		}
		spec := &nodeSpec{name: k.Value, line: k.Line, kind: model.KindHost,
			keys: map[string]*yaml.Node{}, keyLine: map[string]int{}, kindSet: map[string]bool{}}
		nkeys, nvals, _ := ld.pairs(vals[i], "node "+k.Value)
		for j, nk := range nkeys {
			if !slices.Contains(nodeKeys, nk.Value) {
				ld.fail(TopologyFile, nk.Line, "unknown key %q in node %s; expected %s", nk.Value, k.Value, strings.Join(nodeKeys, ", "))
				continue
			}
			if nk.Value == "kind" {
				s, ok := ld.scalar(nvals[j], "kind")
				if !ok {
					continue
				}
				if !slices.Contains(nodeKinds, model.NodeKind(s)) {
					ld.fail(TopologyFile, nk.Line, "unknown kind %q for node %s; expected host, vm, container, router or external", s, k.Value)
					continue
				}
				spec.kind = model.NodeKind(s)
				continue
			}
			spec.keys[nk.Value] = nvals[j]
			spec.keyLine[nk.Value] = nk.Line
		}
		topo.nodes = append(topo.nodes, spec)
	}
}

func (ld *loader) parseLinks(topo *topology, v *yaml.Node) {
	items, _ := ld.seq(v, "links")
	for _, it := range items {
		keys, vals, ok := ld.pairs(it, "a link")
		if !ok {
			continue
		}
		if len(keys) != 1 {
			ld.fail(TopologyFile, it.Line, "a link is one of veth: [a:x, b:y], tap: [host:tap, guest:nic] or segment: [a:x, b:y, ...]")
			continue
		}
		kind := model.LinkKind(keys[0].Value)
		if !slices.Contains(linkKindNames, kind) {
			ld.fail(TopologyFile, keys[0].Line, "unknown link kind %q; expected veth, tap or segment", kind)
			continue
		}
		ends, ok := ld.seq(vals[0], string(kind)+" link")
		if !ok {
			continue
		}
		switch {
		case kind != model.LinkSegment && len(ends) != 2:
			ld.fail(TopologyFile, keys[0].Line, "a %s link joins exactly 2 interfaces, this one lists %d", kind, len(ends))
			continue
		case len(ends) < 2:
			ld.fail(TopologyFile, keys[0].Line, "a segment joins 2 or more interfaces, this one lists %d", len(ends))
			continue
		}
		topo.links = append(topo.links, &linkSpec{kind: kind, line: it.Line, ends: ends})
	}
}

func (ld *loader) parseNames(v *yaml.Node) map[string][]netip.Addr {
	keys, vals, _ := ld.pairs(v, "names")
	if len(keys) == 0 {
		return nil
	}
	out := map[string][]netip.Addr{}
	for i, k := range keys {
		items := []*yaml.Node{resolve(vals[i])}
		if items[0] != nil && items[0].Kind == yaml.SequenceNode {
			items, _ = ld.seq(vals[i], "names."+k.Value)
		}
		if len(items) == 0 || isNull(items[0]) {
			ld.fail(TopologyFile, k.Line, "name %s has no addresses", k.Value)
			continue
		}
		var addrs []netip.Addr
		for _, it := range items {
			s, ok := ld.scalar(it, "an address of "+k.Value)
			if !ok {
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				ld.fail(TopologyFile, it.Line, "name %s: %q is not an IP address", k.Value, s)
				continue
			}
			addrs = append(addrs, a)
		}
		if len(addrs) > 0 {
			out[k.Value] = addrs
		}
	}
	return out
}
