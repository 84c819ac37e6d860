package snapshot

import (
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/ingest/iproute"
	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
)

// parseIptables is the iptables-save parser (a variable so that tests can
// count or replace it; the parser lives in its own package).
var parseIptables = iptsave.Parse

// ifaceKinds are the kinds topology.yaml may give an interface. "tun" is
// accepted because it is how the model spells a tap.
var ifaceKinds = map[string]model.InterfaceKind{
	"ether": model.IfEthernet, "bridge": model.IfBridge, "veth": model.IfVeth, "tap": model.IfTap,
	"tun": model.IfTap, "dummy": model.IfDummy, "loopback": model.IfLoopback,
}

// buildNode assembles one node from its files and inline keys.
func (ld *loader) buildNode(spec *nodeSpec, files nodeFiles) *model.Node {
	n := &model.Node{Name: spec.name, Kind: spec.kind, Origin: ld.topoOrigin(spec.line)}
	for _, fact := range factOrder {
		key, ok := factInline[fact]
		if !ok {
			continue
		}
		if f := files.first(fact); f != "" {
			if line, dup := spec.keyLine[key]; dup {
				ld.fail(TopologyFile, line, "node %s has both %s and inline %s; keep one", spec.name, f, key)
				delete(spec.keys, key)
			}
		}
	}
	if len(files) == 0 && spec.kind != model.KindExternal && !hasInlineState(spec) {
		ld.fail(TopologyFile, spec.line, "node %s has no state: put its `ip addr show` in nodes/%s/ip-addr or declare interfaces: here (or make it kind: external)",
			spec.name, spec.name)
	}

	// Interfaces first: everything else is checked against them.
	if f := files.first(factInterfaces); f != "" {
		n.Interfaces = ld.interfacesFile(f)
	} else if v, ok := spec.keys["interfaces"]; ok {
		n.Interfaces = ld.inlineInterfaces(spec, v)
	}
	if f := files.first(factLinks); f != "" {
		ld.applyLinks(n, f)
	}
	addLoopback(n)
	ld.applyIfaceKinds(spec, n)
	if f := files.first(factBridgePorts); f != "" {
		ld.applyBridgePorts(n, f)
	}

	if f := files.first(factRoutes); f != "" {
		n.Routes = ld.routesFile(f)
	} else if v, ok := spec.keys["routes"]; ok {
		n.Routes = ld.inlineRoutes(v)
	}
	// `ip -6 route show` is a separate command, so its output may come in
	// its own file; its routes join the same tables.
	if f := files.first(factRoutes6); f != "" {
		n.Routes = append(n.Routes, ld.routesFile(f)...)
	}
	n.Neighbors = fromFileOrInline(ld, files.first(factNeighbors), spec.keys["neighbors"], "neighbors", parseNeigh(files.first(factNeighbors)), shiftNeighbors)
	n.Rules = fromFileOrInline(ld, files.first(factRules), spec.keys["rules"], "rules", parseRules(files.first(factRules)), shiftRules)
	n.FDB = ld.fdbFile(files.first(factFDB))
	n.IPv4 = ld.rulesetFiles(n, files[factIPv4], spec.keys["iptables"], 4)
	n.IPv6 = ld.rulesetFiles(n, files[factIPv6], spec.keys["ip6tables"], 6)
	if f := files.first(factSysctl); f != "" {
		n.Sysctls = ld.sysctlFile(f)
	} else if v, ok := spec.keys["sysctl"]; ok {
		n.Sysctls = ld.inlineSysctl(v)
	}
	if f := files.first(factListen); f != "" {
		n.Listeners = ld.ssFile(f)
	} else if v, ok := spec.keys["listen"]; ok {
		n.Listeners = ld.listeners(n, v)
	}
	n.Conntrack = ld.conntrackFile(files.first(factConntrack))
	n.Leases = ld.leasesFile(files.first(factLeases))
	ld.domains[n.Name] = ld.domainFiles(files[factDomains])
	ld.platforms(n, spec, files)
	if v, ok := spec.keys["owns"]; ok {
		if spec.kind != model.KindExternal {
			ld.fail(TopologyFile, spec.keyLine["owns"], "owns is for external nodes; node %s is a %s: give it the addresses on an interface", spec.name, spec.kind)
		} else {
			n.Owns = ld.prefixes(v, "owns")
		}
	}
	if v, ok := spec.keys["ttl"]; ok {
		if s, ok := ld.scalar(v, "ttl"); ok {
			t, err := strconv.Atoi(s)
			if err != nil || t < 1 || t > 255 {
				ld.fail(TopologyFile, resolve(v).Line, "ttl %q: expected a number from 1 to 255", s)
			} else {
				n.InitialTTL = t
			}
		}
	}
	ld.checkDevices(n)
	return n
}

func hasInlineState(spec *nodeSpec) bool {
	for _, key := range factInline {
		if _, ok := spec.keys[key]; ok {
			return true
		}
	}
	return false
}

// addLoopback gives the node "lo" when its input has none: every Linux
// network namespace has one, and `ip addr show dev eth0` or an inline
// router would otherwise leave 127.0.0.1 unroutable.
func addLoopback(n *model.Node) {
	if n.Iface("lo") != nil {
		return
	}
	o := n.Origin
	o.Synthesized = true
	o.Text = "lo with 127.0.0.1/8 and ::1/128: every Linux network namespace has a loopback device"
	// lo is index 1 in every namespace; keep a parsed index 1 if the input
	// gave it to another device.
	idx := 1
	if slices.ContainsFunc(n.Interfaces, func(i *model.Interface) bool { return i.Index == 1 }) {
		for _, i := range n.Interfaces {
			idx = max(idx, i.Index+1)
		}
	}
	lo := &model.Interface{Name: "lo", Index: idx, Kind: model.IfLoopback, MAC: "00:00:00:00:00:00", MTU: 65536, Up: true,
		Flags: []string{"LOOPBACK", "UP", "LOWER_UP"}, Origin: o,
		Addrs: []model.IfAddr{
			{Prefix: netip.MustParsePrefix("127.0.0.1/8"), Scope: "host", Origin: o},
			{Prefix: netip.MustParsePrefix("::1/128"), Scope: "host", Origin: o},
		}}
	n.Interfaces = append([]*model.Interface{lo}, n.Interfaces...)
}

// inlineInterfaces builds interfaces declared in topology.yaml.
func (ld *loader) inlineInterfaces(spec *nodeSpec, v *yaml.Node) []*model.Interface {
	keys, vals, _ := ld.pairs(v, "interfaces of "+spec.name)
	var out []*model.Interface
	for i, k := range keys {
		name := k.Value
		if len(name) > 15 || strings.ContainsAny(name, "/: \t") {
			ld.fail(TopologyFile, k.Line, "interface name %q: Linux names are at most 15 characters without '/', ':' or blanks", name)
			continue
		}
		ifc := &model.Interface{Name: name, Kind: model.IfEthernet, MTU: 1500, Up: true,
			Origin: ld.topoOrigin(k.Line)}
		if name == "lo" {
			ifc.Kind, ifc.MTU, ifc.MAC = model.IfLoopback, 65536, "00:00:00:00:00:00"
		}
		fkeys, fvals, _ := ld.pairs(vals[i], "interface "+name)
		for j, fk := range fkeys {
			fv := fvals[j]
			switch fk.Value {
			case "addrs":
				items := []*yaml.Node{resolve(fv)}
				if items[0] != nil && items[0].Kind == yaml.SequenceNode {
					items, _ = ld.seq(fv, "addrs")
				}
				for _, it := range items {
					if a, ok := ld.ifAddr(it); ok {
						ifc.Addrs = append(ifc.Addrs, a)
					}
				}
			case "mac":
				if s, ok := ld.scalar(fv, "mac"); ok {
					hw, err := net.ParseMAC(s)
					if err != nil || len(hw) != 6 {
						ld.fail(TopologyFile, fv.Line, "mac %q is not an Ethernet MAC address (02:00:00:00:00:01)", s)
					} else {
						ifc.MAC = hw.String()
					}
				}
			case "mtu":
				if s, ok := ld.scalar(fv, "mtu"); ok {
					m, err := strconv.Atoi(s)
					if err != nil || m < 68 || m > 65536 {
						ld.fail(TopologyFile, fv.Line, "mtu %q: expected a number from 68 to 65536", s)
					} else {
						ifc.MTU = m
					}
				}
			case "kind":
				if s, ok := ld.scalar(fv, "kind"); ok {
					kd, known := ifaceKinds[s]
					if !known {
						ld.fail(TopologyFile, fv.Line, "unknown interface kind %q; expected ether, bridge, veth, tap, dummy or loopback", s)
					} else {
						ifc.Kind = kd
						spec.kindSet[name] = true
					}
				}
			case "master":
				if s, ok := ld.scalar(fv, "master"); ok {
					ifc.Master = s
				}
			case "hairpin":
				if s, ok := ld.scalar(fv, "hairpin"); ok {
					b, err := strconv.ParseBool(s)
					if err != nil {
						ld.fail(TopologyFile, fv.Line, "hairpin %q: expected true or false", s)
					} else {
						ifc.Hairpin = &b
					}
				}
			case "up":
				if s, ok := ld.scalar(fv, "up"); ok {
					b, err := strconv.ParseBool(s)
					if err != nil {
						ld.fail(TopologyFile, fv.Line, "up %q: expected true or false", s)
					} else {
						ifc.Up = b
					}
				}
			default:
				ld.fail(TopologyFile, fk.Line, "unknown key %q in interface %s; expected addrs, mac, mtu, kind, master, hairpin or up", fk.Value, name)
			}
		}
		if ifc.Up {
			ifc.Flags = []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}
		} else {
			ifc.Flags = []string{"BROADCAST", "MULTICAST"}
		}
		if ifc.Kind == model.IfLoopback {
			ifc.Flags = []string{"LOOPBACK", "UP", "LOWER_UP"}
			if !ifc.Up {
				ifc.Flags = []string{"LOOPBACK"}
			}
		}
		if ifc.MAC == "" {
			ifc.MAC = synthMAC(spec.name, name)
			ifc.Origin.Synthesized = true
			ifc.Origin.Text += " (mac " + ifc.MAC + " derived from the node and interface names: topology.yaml gives none)"
		}
		out = append(out, ifc)
	}
	// Indexes as a fresh namespace would number them: lo first.
	next := 2
	for _, ifc := range out {
		if ifc.Name == "lo" {
			ifc.Index = 1
		} else {
			ifc.Index, next = next, next+1
		}
		for _, m := range out {
			if ifc.Master != "" && m.Name == ifc.Master && !spec.kindSet[m.Name] {
				m.Kind = model.IfBridge
			}
		}
	}
	return out
}

// synthMAC derives a stable, locally administered unicast MAC from the
// node and interface names, so that traces and tcpdump-style output stay
// the same from run to run.
func synthMAC(node, iface string) string {
	h := sha256.Sum256([]byte(node + "/" + iface))
	return net.HardwareAddr{0x02, h[0], h[1], h[2], h[3], h[4]}.String()
}

// ifAddr parses an inline interface address: a prefix, or a bare address
// meaning a host prefix.
func (ld *loader) ifAddr(it *yaml.Node) (model.IfAddr, bool) {
	s, ok := ld.scalar(it, "an interface address")
	if !ok {
		return model.IfAddr{}, false
	}
	var p netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		ld.fail(TopologyFile, it.Line, "%q is not an address with a prefix length (10.0.0.1/24)", s)
		return model.IfAddr{}, false
	}
	a := model.IfAddr{Prefix: p, Scope: "global", Origin: ld.topoOrigin(it.Line)}
	switch addr := p.Addr(); {
	case addr.IsLoopback():
		a.Scope = "host"
	case addr.IsLinkLocalUnicast():
		a.Scope = "link"
	}
	if p.Addr().Is4() && p.Bits() <= 30 {
		b := p.Masked().Addr().As4()
		for i := range b {
			bits := min(max(p.Bits()-8*i, 0), 8)
			b[i] |= byte(0xff >> bits)
		}
		a.Broadcast = netip.AddrFrom4(b)
	}
	return a, true
}

// applyIfaceKinds applies iface_kinds overrides.
func (ld *loader) applyIfaceKinds(spec *nodeSpec, n *model.Node) {
	v, ok := spec.keys["iface_kinds"]
	if !ok {
		return
	}
	keys, vals, _ := ld.pairs(v, "iface_kinds")
	for i, k := range keys {
		s, ok := ld.scalar(vals[i], "the kind of "+k.Value)
		if !ok {
			continue
		}
		kd, known := ifaceKinds[s]
		if !known {
			ld.fail(TopologyFile, resolve(vals[i]).Line, "unknown interface kind %q; expected ether, bridge, veth, tap, dummy or loopback", s)
			continue
		}
		ifc := n.Iface(k.Value)
		if ifc == nil {
			ld.fail(TopologyFile, k.Line, "iface_kinds names %s, which node %s does not have (it has: %s)", k.Value, n.Name, ifaceNames(n))
			continue
		}
		ifc.Kind = kd
		spec.kindSet[k.Value] = true
	}
}

func ifaceNames(n *model.Node) string {
	var s []string
	for _, i := range n.Interfaces {
		s = append(s, i.Name)
	}
	return strings.Join(s, ", ")
}

// textItem is one line of inline text with its topology.yaml line.
type textItem struct {
	line int
	text string
}

// inlineText reads an inline value that is either a list of one-line
// strings or a literal block (|). For a block, offset is the line of the
// "|" indicator: block line i is topology.yaml line offset+i.
func (ld *loader) inlineText(v *yaml.Node, what string) (items []textItem, block bool, offset int, ok bool) {
	v = resolve(v)
	switch {
	case isNull(v):
		return nil, false, 0, true
	case v.Kind == yaml.SequenceNode:
		for _, c := range v.Content {
			s, ok := ld.scalar(c, "each of "+what)
			if !ok {
				continue
			}
			if strings.Contains(s, "\n") {
				ld.fail(TopologyFile, c.Line, "each item of %s is one line; use a literal block (%s: |) for pasted output", what, what)
				continue
			}
			items = append(items, textItem{resolve(c).Line, s})
		}
		return items, false, 0, true
	case v.Kind == yaml.ScalarNode && v.Style&yaml.FoldedStyle != 0:
		ld.fail(TopologyFile, v.Line, "%s: a folded block (>) joins lines; use a literal block (|)", what)
	case v.Kind == yaml.ScalarNode && v.Style&yaml.LiteralStyle != 0:
		return []textItem{{v.Line + 1, v.Value}}, true, v.Line, true
	case v.Kind == yaml.ScalarNode:
		if strings.Contains(v.Value, "\n") {
			ld.fail(TopologyFile, v.Line, "%s: multi-line text must be a literal block (|)", what)
			break
		}
		return []textItem{{v.Line, v.Value}}, false, 0, true
	default:
		ld.fail(TopologyFile, v.Line, "%s must be a list of lines or a literal block (|)", what)
	}
	return nil, false, 0, false
}

// inlineRoutes parses inline routes: each list item with ParseRouteLine
// (so a multipath route fits on one line), a block as ip route output.
func (ld *loader) inlineRoutes(v *yaml.Node) []model.Route {
	items, block, off, ok := ld.inlineText(v, "routes")
	if !ok {
		return nil
	}
	if block {
		rs, err := iproute.ParseRoutes(TopologyFile, strings.NewReader(items[0].text), model.TableMain)
		if err != nil {
			ld.add(shiftErr(err, off))
			return nil
		}
		for i := range rs {
			rs[i].Origin.Line += off
		}
		return rs
	}
	var out []model.Route
	for _, it := range items {
		r, err := iproute.ParseRouteLine(TopologyFile, it.line, it.text, model.TableMain)
		if err != nil {
			ld.add(err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// fromFileOrInline parses a node's neighbors or rules from its file or
// from topology.yaml, shifting inline line numbers to topology.yaml's.
func fromFileOrInline[T any](ld *loader, file string, v *yaml.Node, what string,
	parse func(string, io.Reader) ([]T, error), shift func([]T, int)) []T {
	if file != "" {
		r, ok := ld.open(file)
		if !ok {
			return nil
		}
		defer r.Close()
		out, err := parse(file, r)
		if err != nil {
			ld.add(err)
		}
		return out
	}
	if v == nil {
		return nil
	}
	items, block, off, ok := ld.inlineText(v, what)
	if !ok {
		return nil
	}
	var out []T
	for _, it := range items {
		o := off
		if !block {
			o = it.line - 1
		}
		got, err := parse(TopologyFile, strings.NewReader(it.text))
		if err != nil {
			ld.add(shiftErr(err, o))
			continue
		}
		shift(got, o)
		out = append(out, got...)
	}
	return out
}

func shiftNeighbors(ns []model.Neighbor, off int) {
	for i := range ns {
		ns[i].Origin.Line += off
	}
}

func shiftRules(rs []model.PolicyRule, off int) {
	for i := range rs {
		rs[i].Origin.Line += off
	}
}

// shiftErr moves a parse error of inline text to its topology.yaml line.
func shiftErr(err error, off int) error {
	if ie, ok := err.(*ingest.Error); ok && ie.Line > 0 {
		e := *ie
		e.Line += off
		return &e
	}
	return err
}

// ruleset parses a node's iptables-save or ip6tables-save text.
func (ld *loader) ruleset(file string, v *yaml.Node, family int) *model.Ruleset {
	if file != "" {
		r, ok := ld.open(file)
		if !ok {
			return nil
		}
		defer r.Close()
		rs, err := parseIptables(file, r, family)
		if err != nil {
			ld.add(err)
			return nil
		}
		return rs
	}
	if v == nil {
		return nil
	}
	what := map[int]string{4: "iptables", 6: "ip6tables"}[family]
	vv := resolve(v)
	if vv == nil || vv.Kind != yaml.ScalarNode || vv.Style&yaml.LiteralStyle == 0 {
		ld.fail(TopologyFile, vv.Line, "%s must be a literal block (%s: |) holding %s-save output", what, what, what)
		return nil
	}
	rs, err := parseIptables(TopologyFile, strings.NewReader(vv.Value), family)
	if err != nil {
		ld.add(shiftErr(err, vv.Line))
		return nil
	}
	shiftRuleset(rs, vv.Line)
	return rs
}

// shiftRuleset moves every Origin of an inline ruleset to topology.yaml's
// line numbers.
func shiftRuleset(rs *model.Ruleset, off int) {
	if rs == nil {
		return
	}
	sh := func(o *model.Origin) {
		if o.Line > 0 {
			o.Line += off
		}
	}
	sh(&rs.Origin)
	for _, t := range rs.Tables {
		sh(&t.Origin)
		for _, c := range t.Chains {
			sh(&c.Origin)
			for _, r := range c.Rules {
				sh(&r.Origin)
			}
		}
	}
}

// listeners parses listen: entries "proto/[addr:]port".
func (ld *loader) listeners(n *model.Node, v *yaml.Node) []model.Listener {
	items, _ := ld.seq(v, "listen")
	var out []model.Listener
	for _, it := range items {
		s, ok := ld.scalar(it, "a listen entry")
		if !ok {
			continue
		}
		l, msg := parseListen(s)
		if msg != "" {
			ld.fail(TopologyFile, it.Line, "listen %q: %s", s, msg)
			continue
		}
		if l.Addr.IsValid() && !isLocal(n, l.Addr) {
			ld.fail(TopologyFile, it.Line, "listen %q: %s is not an address of node %s", s, l.Addr, n.Name)
			continue
		}
		l.Origin = ld.topoOrigin(it.Line)
		out = append(out, l)
	}
	return out
}

// parseListen parses "tcp/22", "udp/10.0.0.1:53", "tcp/[2001:db8::1]:80".
// The unspecified addresses mean any, as a socket bound to them does.
func parseListen(s string) (model.Listener, string) {
	const want = "expected PROTO/PORT or PROTO/ADDR:PORT with PROTO tcp or udp"
	proto, rest, ok := strings.Cut(s, "/")
	proto = strings.ToLower(proto)
	if !ok || (proto != "tcp" && proto != "udp") {
		return model.Listener{}, want
	}
	l := model.Listener{Proto: proto}
	var port uint64
	var err error
	if strings.ContainsAny(rest, ":[") {
		ap, perr := netip.ParseAddrPort(rest)
		if perr != nil || ap.Addr().Zone() != "" {
			return l, want
		}
		if !ap.Addr().IsUnspecified() {
			l.Addr = ap.Addr()
		}
		port = uint64(ap.Port())
	} else if port, err = strconv.ParseUint(rest, 10, 16); err != nil {
		return l, want
	}
	if port == 0 {
		return l, "port 0 cannot be listened on"
	}
	l.Port = uint16(port)
	return l, ""
}

// isLocal reports whether a is an address of the node: on an interface,
// or inside a loopback prefix (all of 127.0.0.0/8 is local).
func isLocal(n *model.Node, a netip.Addr) bool {
	for _, i := range n.Interfaces {
		for _, ia := range i.Addrs {
			if ia.Prefix.Addr() == a || (i.Kind == model.IfLoopback && ia.Prefix.Contains(a)) {
				return true
			}
		}
	}
	return false
}

// prefixes parses a list of prefixes (bare addresses are host prefixes).
func (ld *loader) prefixes(v *yaml.Node, what string) []netip.Prefix {
	items, _ := ld.seq(v, what)
	var out []netip.Prefix
	for _, it := range items {
		s, ok := ld.scalar(it, "each of "+what)
		if !ok {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
			if err == nil && p.Masked() != p {
				ld.fail(TopologyFile, it.Line, "%s: %q has host bits set; did you mean %s?", what, s, p.Masked())
				continue
			}
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || p.Addr().Zone() != "" {
			ld.fail(TopologyFile, it.Line, "%s: %q is not a prefix (203.0.113.0/24) or address", what, s)
			continue
		}
		out = append(out, p)
	}
	return out
}

// checkDevices checks that masters, routes and neighbors name devices the
// node has: a route out of a device pktflow does not know would make every
// trace through it fail far from the cause.
func (ld *loader) checkDevices(n *model.Node) {
	has := func(dev string) bool { return n.Iface(dev) != nil }
	bad := func(o model.Origin, what, dev string) {
		text := o.Text
		if o.File == TopologyFile {
			text = ld.topoText(o.Line) // without notes on synthesized values
		}
		ld.add(ingest.Errorf(o.File, o.Line, text, "%s %s: node %s has no such interface (it has: %s)", what, dev, n.Name, ifaceNames(n)))
	}
	for _, i := range n.Interfaces {
		if i.Master != "" && !has(i.Master) {
			bad(i.Origin, "master", i.Master)
		}
	}
	for _, r := range n.Routes {
		if r.Dev != "" && !has(r.Dev) {
			bad(r.Origin, "route dev", r.Dev)
		}
		for _, nh := range r.Nexthops {
			if nh.Dev != "" && !has(nh.Dev) {
				bad(r.Origin, "nexthop dev", nh.Dev)
			}
		}
	}
	for _, nb := range n.Neighbors {
		if !has(nb.Dev) {
			bad(nb.Origin, "neighbor dev", nb.Dev)
		}
	}
}

// buildLinks resolves links against the loaded nodes. Endpoints on nodes
// that failed to load are not checked further, to keep one mistake from
// producing a cascade of errors.
func (ld *loader) buildLinks(topo *topology, snap *model.Snapshot, broken map[string]bool) []*model.Link {
	var names []string
	for _, n := range snap.Nodes {
		names = append(names, n.Name)
	}
	used := map[model.Endpoint]int{}
	var out []*model.Link
	for _, ls := range topo.links {
		link := &model.Link{Kind: ls.kind, Origin: ld.topoOrigin(ls.line)}
		ok := true
		for _, e := range ls.ends {
			s, sok := ld.scalar(e, "a link end")
			if !sok {
				ok = false
				continue
			}
			node, iface, found := strings.Cut(s, ":")
			if !found || node == "" || iface == "" {
				ld.fail(TopologyFile, e.Line, "link end %q: expected NODE:INTERFACE", s)
				ok = false
				continue
			}
			ep := model.Endpoint{Node: node, Iface: iface}
			n := snap.Node(node)
			switch {
			case n == nil:
				ld.fail(TopologyFile, e.Line, "link end %q: unknown node %s (nodes: %s)", s, node, strings.Join(names, ", "))
				ok = false
				continue
			case broken[node]:
				ok = false
				continue
			case n.Iface(iface) == nil:
				ld.fail(TopologyFile, e.Line, "link end %q: node %s has no interface %s (it has: %s)", s, node, iface, ifaceNames(n))
				ok = false
				continue
			}
			if prev, dup := used[ep]; dup {
				ld.fail(TopologyFile, e.Line, "interface %s is already wired by the link at line %d; an interface is in one link (use a segment for more than two)", ep, prev)
				ok = false
				continue
			}
			used[ep] = ls.line
			link.Ends = append(link.Ends, ep)
		}
		if !ok {
			continue
		}
		linkKinds(topo, snap, link)
		out = append(out, link)
	}
	return out
}

// linkKinds refines interface kinds from the link type: veth ends are
// veths, a tap link's first end is the host's tap. A kind written in
// topology.yaml (interfaces: kind, iface_kinds) wins.
func linkKinds(topo *topology, snap *model.Snapshot, link *model.Link) {
	set := func(ep model.Endpoint, k model.InterfaceKind) {
		if topo.node(ep.Node).kindSet[ep.Iface] {
			return
		}
		if ifc := snap.Node(ep.Node).Iface(ep.Iface); ifc != nil {
			ifc.Kind = k
		}
	}
	switch link.Kind {
	case model.LinkVeth:
		for _, ep := range link.Ends {
			set(ep, model.IfVeth)
		}
	case model.LinkTap:
		set(link.Ends[0], model.IfTap)
	}
}
