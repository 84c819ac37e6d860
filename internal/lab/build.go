package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pktflow/pktflow/internal/model"
)

// validate rejects snapshots the lab cannot build faithfully before
// anything is created, so that most mistakes cost no namespace at all.
func validate(s *model.Snapshot) error {
	nodes := map[string]*model.Node{}
	for _, n := range s.Nodes {
		if n == nil || n.Name == "" {
			return errors.New("lab: node without a name")
		}
		if nodes[n.Name] != nil {
			return fmt.Errorf("lab: duplicate node %q", n.Name)
		}
		nodes[n.Name] = n
		seen := map[string]bool{}
		for _, i := range n.Interfaces {
			if err := checkIfName(i.Name); err != nil {
				return fmt.Errorf("lab: node %s: %w", n.Name, err)
			}
			if seen[i.Name] {
				return fmt.Errorf("lab: node %s: duplicate interface %q", n.Name, i.Name)
			}
			seen[i.Name] = true
			if i.Master != "" {
				if err := checkIfName(i.Master); err != nil {
					return fmt.Errorf("lab: node %s: master of %s: %w", n.Name, i.Name, err)
				}
			}
		}
	}
	wired := map[model.Endpoint]bool{}
	for li, lk := range s.Links {
		if lk == nil || len(lk.Ends) == 0 {
			return fmt.Errorf("lab: link %d has no ends", li)
		}
		if (lk.Kind == model.LinkVeth || lk.Kind == model.LinkTap) && len(lk.Ends) != 2 {
			return fmt.Errorf("lab: %s link %d has %d ends, want 2", lk.Kind, li, len(lk.Ends))
		}
		for _, e := range lk.Ends {
			n := nodes[e.Node]
			if n == nil {
				return fmt.Errorf("lab: link %d: unknown node %q", li, e.Node)
			}
			i := n.Iface(e.Iface)
			if i == nil {
				return fmt.Errorf("lab: link %d: node %s has no interface %q", li, e.Node, e.Iface)
			}
			if isLoopback(i) || isBridge(n, i.Name) {
				return fmt.Errorf("lab: link %d: %s is a %s, it cannot be a wire's end", li, e, kindOf(n, i))
			}
			if wired[e] {
				return fmt.Errorf("lab: %s is on two links", e)
			}
			wired[e] = true
		}
	}
	return nil
}

func checkIfName(name string) error {
	if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n:") || name == "." || name == ".." {
		return fmt.Errorf("bad interface name %q (at most 15 characters, no '/', ':' or spaces)", name)
	}
	return nil
}

func isLoopback(i *model.Interface) bool { return i.Kind == model.IfLoopback || i.Name == "lo" }

// isBridge reports whether name is a bridge on n: declared as one, or
// named as the master of another interface.
func isBridge(n *model.Node, name string) bool {
	if i := n.Iface(name); i != nil && i.Kind == model.IfBridge {
		return true
	}
	for _, i := range n.Interfaces {
		if i.Master == name {
			return true
		}
	}
	return false
}

func kindOf(n *model.Node, i *model.Interface) string {
	if isLoopback(i) {
		return "loopback"
	}
	if isBridge(n, i.Name) {
		return "bridge"
	}
	return string(i.Kind)
}

// wantsIPv6 reports whether a node uses IPv6 at all: then IPv6 stays
// enabled in its namespace; otherwise it is disabled to keep captures
// free of router solicitations, MLD reports and DAD probes.
func wantsIPv6(n *model.Node) bool {
	for _, i := range n.Interfaces {
		for _, a := range i.Addrs {
			if a.Prefix.Addr().Is6() && !a.Prefix.Addr().IsLoopback() {
				return true
			}
		}
	}
	for _, r := range n.Routes {
		if r.Dst.IsValid() && r.Dst.Addr().Is6() && r.Table != model.TableLocal {
			if r.Proto == "kernel" && r.Dst.Addr().IsLinkLocalUnicast() {
				continue // fe80::/64 comes with every IPv6-enabled link
			}
			return true
		}
	}
	for _, p := range n.Owns {
		if p.Addr().Is6() {
			return true
		}
	}
	for _, lst := range n.Listeners {
		if lst.Addr.Is6() {
			return true
		}
	}
	return n.IPv6 != nil && len(n.IPv6.Tables) > 0
}

// build creates everything, in the order the kernel needs: namespaces and
// their global sysctls, wires, devices, per-device sysctls, link-layer
// settings, addresses, admin state, routes, rules, neighbours, firewall,
// listeners.
func (l *Lab) build(ctx context.Context) error {
	s := l.snap
	for _, n := range s.Nodes {
		ns := l.nsOf[n.Name]
		if err := l.addNS(ctx, ns); err != nil {
			return fmt.Errorf("lab: node %s: %w", n.Name, err)
		}
		if err := l.applySysctls(ns, n.Name, nodeSysctls(n, l.v6[n.Name]), false, interfaceNames(n)); err != nil {
			return fmt.Errorf("lab: node %s: %w", n.Name, err)
		}
	}
	if err := l.wire(ctx); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		if err := l.configureLinks(ctx, n); err != nil {
			return fmt.Errorf("lab: node %s: %w", n.Name, err)
		}
	}
	for _, n := range s.Nodes {
		if err := l.configureRouting(ctx, n); err != nil {
			return fmt.Errorf("lab: node %s: %w", n.Name, err)
		}
	}
	for _, n := range s.Nodes {
		if err := l.configureFirewall(ctx, n); err != nil {
			return fmt.Errorf("lab: node %s: %w", n.Name, err)
		}
	}
	if err := l.awaitCarrier(ctx); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		if err := l.readMACs(ctx, n.Name); err != nil {
			return fmt.Errorf("lab: node %s: %w", n.Name, err)
		}
	}
	for _, n := range s.Nodes {
		if err := l.startListeners(n); err != nil {
			return fmt.Errorf("lab: node %s: %w", n.Name, err)
		}
	}
	return nil
}

func interfaceNames(n *model.Node) []string {
	var names []string
	for _, i := range n.Interfaces {
		names = append(names, i.Name)
	}
	return names
}

// wire creates the links: a veth pair for two ends, a hidden namespace
// with a bridge for one or more than two. Each veth is created inside the
// first end's namespace with its peer placed directly into the other's.
func (l *Lab) wire(ctx context.Context) error {
	seg := 0
	for li, lk := range l.snap.Links {
		if len(lk.Ends) == 2 {
			a, b := lk.Ends[0], lk.Ends[1]
			ia := l.index(l.nsOf[a.Node], l.modelIndex(a), 0)
			ib := l.index(l.nsOf[b.Node], l.modelIndex(b), ia)
			if err := l.ipn(ctx, l.nsOf[a.Node], "link", "add", a.Iface, "index", strconv.Itoa(ia), "type", "veth",
				"peer", "name", b.Iface, "index", strconv.Itoa(ib), "netns", l.nsOf[b.Node]); err != nil {
				return fmt.Errorf("lab: link %d (%s %s-%s): %w", li, lk.Kind, a, b, err)
			}
			l.links[a] = linkEnd{Peer: b}
			l.links[b] = linkEnd{Peer: a}
			l.ifs[a.Node] = append(l.ifs[a.Node], a.Iface)
			l.ifs[b.Node] = append(l.ifs[b.Node], b.Iface)
			continue
		}
		ns := fmt.Sprintf("%sseg%d", l.prefix, seg)
		seg++
		if err := l.addNS(ctx, ns); err != nil {
			return fmt.Errorf("lab: link %d: %w", li, err)
		}
		if err := l.applySysctls(ns, ns, segmentSysctls(), false, nil); err != nil {
			return fmt.Errorf("lab: link %d: %w", li, err)
		}
		if err := l.ipn(ctx, ns, "link", "add", "br0", "index", strconv.Itoa(l.index(ns, 0, 0)), "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
			return fmt.Errorf("lab: link %d: %w", li, err)
		}
		if err := l.ipn(ctx, ns, "link", "set", "br0", "up"); err != nil {
			return fmt.Errorf("lab: link %d: %w", li, err)
		}
		for k, e := range lk.Ends {
			port := fmt.Sprintf("p%d", k)
			ie := l.index(l.nsOf[e.Node], l.modelIndex(e), 0)
			steps := [][]string{
				{l.nsOf[e.Node], "link", "add", e.Iface, "index", strconv.Itoa(ie), "type", "veth",
					"peer", "name", port, "index", strconv.Itoa(l.index(ns, 0, ie)), "netns", ns},
				{ns, "link", "set", port, "master", "br0"},
				{ns, "link", "set", port, "up"},
			}
			for _, st := range steps {
				if err := l.ipn(ctx, st[0], st[1:]...); err != nil {
					return fmt.Errorf("lab: link %d (%s): %w", li, e, err)
				}
			}
			l.links[e] = linkEnd{Peer: model.Endpoint{Node: ns, Iface: port}, Seg: ns}
			l.ifs[e.Node] = append(l.ifs[e.Node], e.Iface)
		}
	}
	return nil
}

// firstAutoIndex is where the lab starts numbering devices whose model
// index cannot be used; real snapshots rarely reach it.
const firstAutoIndex = 1000

// index picks the interface index of a new device in namespace ns: the
// model's when it has one that is free there and differs from avoid (the
// veth peer's), else the next lab-wide automatic one. The two ends of a
// veth must differ: the kernel treats a device whose index equals its
// link's (its peer's, for a veth) as not stacked, and then applies its
// carrier change up to a second late (see awaitCarrier). Auto indexes are
// unique across the lab, so they always differ.
func (l *Lab) index(ns string, want, avoid int) int {
	if l.used == nil {
		l.used = map[string]map[int]bool{}
		l.nextIndex = firstAutoIndex
	}
	if l.used[ns] == nil {
		l.used[ns] = map[int]bool{1: true}
	}
	if want > 1 && !l.used[ns][want] && want != avoid {
		l.used[ns][want] = true
		return want
	}
	for l.used[ns][l.nextIndex] || l.nextIndex == avoid {
		l.nextIndex++
	}
	l.used[ns][l.nextIndex] = true
	l.nextIndex++
	return l.nextIndex - 1
}

// modelIndex is the model's index of an endpoint's interface, or 0.
func (l *Lab) modelIndex(e model.Endpoint) int {
	if n := l.snap.Node(e.Node); n != nil {
		if i := n.Iface(e.Iface); i != nil {
			return i.Index
		}
	}
	return 0
}

// configureLinks makes a node's remaining devices and sets their link
// layer, sysctls, addresses and admin state.
func (l *Lab) configureLinks(ctx context.Context, n *model.Node) error {
	ns := l.nsOf[n.Name]
	// Devices not on a wire: bridges, then dummies for the rest.
	var bridges []string
	made := map[string]bool{}
	for _, name := range l.ifs[n.Name] {
		made[name] = true
	}
	want := interfaceNames(n)
	for _, i := range n.Interfaces {
		if i.Master != "" && n.Iface(i.Master) == nil && !contains(want, i.Master) {
			want = append(want, i.Master) // an implicit bridge
		}
	}
	for _, name := range want {
		i := n.Iface(name)
		if made[name] || (i != nil && isLoopback(i)) {
			continue
		}
		idx := 0
		if i != nil {
			idx = i.Index
		}
		if isBridge(n, name) {
			if err := l.ipn(ctx, ns, "link", "add", name, "index", strconv.Itoa(l.index(ns, idx, 0)), "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
				return err
			}
			bridges = append(bridges, name)
		} else {
			if i.Kind != model.IfDummy && i.Kind != model.IfEthernet && i.Kind != model.IfUnknown {
				l.warnf("%s: %s (%s) is on no link: made a dummy", n.Name, name, i.Kind)
			}
			if err := l.addDummy(ctx, ns, name, l.index(ns, idx, 0)); err != nil {
				return err
			}
		}
		made[name] = true
		l.ifs[n.Name] = append(l.ifs[n.Name], name)
	}
	if err := l.applySysctls(ns, n.Name, nodeSysctls(n, l.v6[n.Name]), true, want); err != nil {
		return err
	}
	for _, i := range n.Interfaces {
		if isLoopback(i) || i.MAC == "" || i.MAC == "00:00:00:00:00:00" {
			continue
		}
		if err := l.ipn(ctx, ns, "link", "set", "dev", i.Name, "address", i.MAC); err != nil {
			return err
		}
	}
	// MTUs of ports before enslaving, the bridges' own after: a bridge
	// takes its ports' smallest MTU unless set explicitly.
	setMTU := func(i *model.Interface) error {
		if i.MTU <= 0 || (isLoopback(i) && i.MTU == 65536) {
			return nil
		}
		return l.ipn(ctx, ns, "link", "set", "dev", i.Name, "mtu", strconv.Itoa(i.MTU))
	}
	for _, i := range n.Interfaces {
		if !contains(bridges, i.Name) {
			if err := setMTU(i); err != nil {
				return err
			}
		}
	}
	for _, i := range n.Interfaces {
		if i.Master != "" {
			if err := l.ipn(ctx, ns, "link", "set", "dev", i.Name, "master", i.Master); err != nil {
				return err
			}
			if i.Hairpin != nil && *i.Hairpin {
				if err := l.ipn(ctx, ns, "link", "set", "dev", i.Name, "type", "bridge_slave", "hairpin", "on"); err != nil {
					return err
				}
			}
		}
	}
	for _, b := range bridges {
		if i := n.Iface(b); i != nil {
			if err := setMTU(i); err != nil {
				return err
			}
		}
	}
	for _, i := range n.Interfaces {
		for _, a := range orderAddrs(i.Addrs) {
			if a.Prefix.Addr().Is6() && !l.v6[n.Name] {
				// Only ::1 makes it here (see wantsIPv6); with IPv6
				// disabled the kernel refuses it.
				l.logf("%s: %s on %s skipped: IPv6 is disabled", n.Name, a.Prefix, i.Name)
				continue
			}
			if err := l.ipn(ctx, ns, addrArgs(i.Name, a)...); err != nil {
				if exists(err) {
					continue // 127.0.0.1 on lo, an auto-made link-local...
				}
				return err
			}
		}
	}
	// Admin state: as the model says; lo and implicit bridges are up.
	for _, name := range append([]string{"lo"}, want...) {
		i := n.Iface(name)
		if i != nil && !adminUp(i) {
			continue
		}
		if name != "lo" && !made[name] {
			continue
		}
		if err := l.ipn(ctx, ns, "link", "set", "dev", name, "up"); err != nil {
			return err
		}
		l.upIfs[model.Endpoint{Node: n.Name, Iface: name}] = true
	}
	return nil
}

// adminUp reports whether the lab sets a device up: when the model says
// it is up, or when its flags say it is administratively up while it has
// no carrier (<NO-CARRIER,...,UP>, as docker0 without containers): the
// lab's device then lacks carrier for the same reason (a bridge without
// ports, a veth whose peer is down), except a dummy, which always has it.
func adminUp(i *model.Interface) bool {
	return i.Up || contains(i.Flags, "UP")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// addDummy makes a device that holds addresses, always has carrier, does
// no ARP and silently drops what is sent through it: a dummy. Where the
// kernel has no dummy driver (this project's machines), it makes a veth
// instead whose peer sits in a hidden stub namespace (Prefix+"stub") that
// has no addresses and so drops everything, with ARP turned off: it
// behaves the same, and unlike an ifb it accepts the model's MAC.
func (l *Lab) addDummy(ctx context.Context, ns, name string, index int) error {
	if !l.noDummy {
		err := l.ipn(ctx, ns, "link", "add", name, "index", strconv.Itoa(index), "type", "dummy")
		if err == nil || !strings.Contains(err.Error(), "Unknown device type") {
			return err
		}
		l.noDummy = true
		l.warnf("no dummy driver in this kernel: devices on no link are veths into %sstub, with ARP off", l.prefix)
	}
	stub := l.prefix + "stub"
	if !l.owns(stub) {
		if err := l.addNS(ctx, stub); err != nil {
			return err
		}
		if err := l.applySysctls(stub, stub, segmentSysctls(), false, nil); err != nil {
			return err
		}
	}
	port := fmt.Sprintf("s%d", l.stubs)
	l.stubs++
	steps := [][]string{
		{ns, "link", "add", name, "index", strconv.Itoa(index), "type", "veth",
			"peer", "name", port, "index", strconv.Itoa(l.index(stub, 0, index)), "netns", stub},
		{stub, "link", "set", port, "up"},
		{ns, "link", "set", name, "arp", "off"},
	}
	for _, st := range steps {
		if err := l.ipn(ctx, st[0], st[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// orderAddrs puts primary addresses before secondaries: the kernel makes
// an address secondary when a primary of the same subnet exists.
func orderAddrs(addrs []model.IfAddr) []model.IfAddr {
	out := append([]model.IfAddr(nil), addrs...)
	sort.SliceStable(out, func(i, j int) bool { return !out[i].Secondary && out[j].Secondary })
	return out
}

// addrFlags are the IfAddr flags that ip addr add accepts and that change
// behaviour; lifetimes and states (dynamic, tentative...) are not set.
var addrFlags = map[string]bool{"noprefixroute": true, "nodad": true, "home": true, "mngtmpaddr": true}

// addrArgs is the `ip addr add` command (without ip -n NS) for one address.
func addrArgs(dev string, a model.IfAddr) []string {
	args := []string{"addr", "add"}
	if a.Peer.IsValid() {
		args = append(args, a.Prefix.Addr().String(), "peer", a.Peer.String())
	} else {
		args = append(args, a.Prefix.String())
	}
	if a.Broadcast.IsValid() && a.Prefix.Addr().Is4() {
		args = append(args, "broadcast", a.Broadcast.String())
	}
	if a.Scope != "" {
		args = append(args, "scope", a.Scope)
	}
	args = append(args, "dev", dev)
	for _, f := range a.Flags {
		if addrFlags[f] && (f == "noprefixroute" || a.Prefix.Addr().Is6()) {
			args = append(args, f)
		}
	}
	return args
}

// routeProtos are the protocol names every iproute2 knows; others are
// dropped (the kernel only cares about "kernel" routes' lifecycle).
var routeProtos = map[string]bool{"kernel": true, "boot": true, "static": true, "redirect": true, "dhcp": true, "ra": true}

// routeArgs is the `ip route add` command (without ip -n NS) for a route.
func routeArgs(r model.Route) ([]string, error) {
	if !r.Dst.IsValid() {
		return nil, errors.New("route without a destination")
	}
	fam := "-4"
	if r.Dst.Addr().Is6() {
		fam = "-6"
	}
	args := []string{fam, "route", "add"}
	typ := r.Type
	if typ == "" {
		typ = model.RouteUnicast
	}
	if typ != model.RouteUnicast {
		args = append(args, string(typ))
	}
	args = append(args, r.Dst.Masked().String())
	if r.Table != 0 && r.Table != model.TableMain {
		args = append(args, "table", strconv.Itoa(r.Table))
	}
	if r.Metric != 0 {
		args = append(args, "metric", strconv.Itoa(r.Metric))
	}
	if _, err := strconv.Atoi(r.Proto); err == nil || routeProtos[r.Proto] {
		args = append(args, "proto", r.Proto)
	}
	if r.Scope != "" {
		args = append(args, "scope", r.Scope)
	}
	if r.Src.IsValid() {
		args = append(args, "src", r.Src.String())
	}
	if r.MTU > 0 {
		args = append(args, "mtu", strconv.Itoa(r.MTU))
	}
	via := func(a netip.Addr) []string {
		if a.Is6() != r.Dst.Addr().Is6() {
			if a.Is6() {
				return []string{"via", "inet6", a.String()}
			}
			return []string{"via", "inet", a.String()}
		}
		return []string{"via", a.String()}
	}
	switch typ {
	case model.RouteBlackhole, model.RouteUnreachable, model.RouteProhibit, model.RouteThrow:
		return args, nil
	}
	if len(r.Nexthops) > 0 {
		for _, nh := range r.Nexthops {
			args = append(args, "nexthop")
			if nh.Via.IsValid() {
				args = append(args, via(nh.Via)...)
			}
			if nh.Dev != "" {
				args = append(args, "dev", nh.Dev)
			}
			if nh.Weight > 0 {
				args = append(args, "weight", strconv.Itoa(nh.Weight))
			}
			if r.OnLink {
				args = append(args, "onlink")
			}
		}
		return args, nil
	}
	if r.Via.IsValid() {
		args = append(args, via(r.Via)...)
	}
	if r.Dev != "" {
		args = append(args, "dev", r.Dev)
	}
	if r.OnLink {
		args = append(args, "onlink")
	}
	return args, nil
}

// isDefaultRule reports whether a policy rule is one of the three the
// kernel installs in every namespace (local, main, default).
func isDefaultRule(r model.PolicyRule) bool {
	if r.Not || r.From.IsValid() && r.From.Bits() != 0 || r.To.IsValid() && r.To.Bits() != 0 ||
		r.IIF != "" || r.OIF != "" || r.HasMark || r.IPProto != 0 || r.DPort != [2]uint16{} || r.SPort != [2]uint16{} {
		return false
	}
	if r.Action != "" && r.Action != "lookup" {
		return false
	}
	switch r.Priority {
	case 0:
		return r.Table == model.TableLocal
	case 32766:
		return r.Table == model.TableMain
	case 32767:
		return r.Table == model.TableDefault
	}
	return false
}

func portRange(p [2]uint16) string {
	if p[1] == 0 || p[1] == p[0] {
		return strconv.Itoa(int(p[0]))
	}
	return fmt.Sprintf("%d-%d", p[0], p[1])
}

// ruleArgs is the `ip rule add` command (without ip -n NS) for a rule in
// the given family ("-4" or "-6").
func ruleArgs(fam string, r model.PolicyRule) []string {
	args := []string{fam, "rule", "add"}
	if r.Not {
		args = append(args, "not")
	}
	if r.From.IsValid() {
		args = append(args, "from", r.From.Masked().String())
	}
	if r.To.IsValid() {
		args = append(args, "to", r.To.Masked().String())
	}
	if r.IIF != "" {
		args = append(args, "iif", r.IIF)
	}
	if r.OIF != "" {
		args = append(args, "oif", r.OIF)
	}
	if r.HasMark {
		m := fmt.Sprintf("0x%x", r.FwMark)
		if r.FwMask != 0 && r.FwMask != 0xffffffff {
			m += fmt.Sprintf("/0x%x", r.FwMask)
		}
		args = append(args, "fwmark", m)
	}
	if r.IPProto != 0 {
		args = append(args, "ipproto", strconv.Itoa(r.IPProto))
	}
	if r.SPort != [2]uint16{} {
		args = append(args, "sport", portRange(r.SPort))
	}
	if r.DPort != [2]uint16{} {
		args = append(args, "dport", portRange(r.DPort))
	}
	args = append(args, "priority", strconv.Itoa(r.Priority))
	switch r.Action {
	case "", "lookup":
		args = append(args, "table", strconv.Itoa(r.Table))
	case "goto":
		args = append(args, "goto", strconv.Itoa(r.Goto))
	default:
		args = append(args, r.Action)
	}
	return args
}

// ruleFamilies says which families a rule is added to: its selectors'
// family, or IPv4 (and IPv6 when the node uses it) for a rule without
// addresses. A rule listed for both families then exists once in each:
// the second add fails with "File exists", which is ignored.
func ruleFamilies(r model.PolicyRule, v6 bool) []string {
	switch {
	case r.From.IsValid():
		return []string{famOf(r.From.Addr())}
	case r.To.IsValid():
		return []string{famOf(r.To.Addr())}
	case v6:
		return []string{"-4", "-6"}
	}
	return []string{"-4"}
}

func famOf(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return "-4"
	}
	return "-6"
}

// configureRouting adds routes, policy rules, neighbours and an external
// node's owned prefixes.
func (l *Lab) configureRouting(ctx context.Context, n *model.Node) error {
	ns := l.nsOf[n.Name]
	// Kernel routes first: other routes' gateways may depend on them
	// (noprefixroute addresses). The rest are retried while some succeed,
	// so a route whose gateway is reached through another model route
	// is added after it whatever the input order.
	var kernel, other []model.Route
	for _, r := range n.Routes {
		if r.Table == model.TableLocal {
			continue
		}
		if r.Proto == "kernel" {
			kernel = append(kernel, r)
		} else {
			other = append(other, r)
		}
	}
	for _, r := range kernel {
		args, err := routeArgs(r)
		if err != nil {
			return fmt.Errorf("route %v: %w", r.Dst, err)
		}
		if err := l.ipn(ctx, ns, args...); err != nil && !exists(err) {
			// The kernel derives these itself; one that cannot be added
			// (its device is down, say) is what the kernel would do too.
			l.warnf("%s: kernel route %s not added: %v", n.Name, r.Dst, err)
		}
	}
	pending := other
	for len(pending) > 0 {
		var next []model.Route
		var errs []error
		for _, r := range pending {
			args, err := routeArgs(r)
			if err != nil {
				return fmt.Errorf("route %v: %w", r.Dst, err)
			}
			if err := l.ipn(ctx, ns, args...); err != nil {
				if exists(err) {
					l.logf("%s: route %s already present", n.Name, r.Dst)
					continue
				}
				next = append(next, r)
				errs = append(errs, err)
			}
		}
		if len(next) == len(pending) {
			return fmt.Errorf("routes: %w", errors.Join(errs...))
		}
		pending = next
	}
	for _, r := range n.Rules {
		if isDefaultRule(r) {
			continue
		}
		for _, fam := range ruleFamilies(r, l.v6[n.Name]) {
			if err := l.ipn(ctx, ns, ruleArgs(fam, r)...); err != nil && !exists(err) {
				return fmt.Errorf("rule %d: %w", r.Priority, err)
			}
		}
	}
	for _, nb := range n.Neighbors {
		if nb.MAC == "" || !nb.Addr.IsValid() || nb.Dev == "" {
			continue
		}
		switch strings.ToUpper(nb.State) {
		case "FAILED", "INCOMPLETE", "NOARP":
			continue
		}
		args := []string{"neigh", "replace", nb.Addr.String(), "lladdr", nb.MAC, "dev", nb.Dev, "nud", "permanent"}
		if nb.Router && nb.Addr.Is6() {
			args = append(args, "router")
		}
		if err := l.ipn(ctx, ns, args...); err != nil {
			return fmt.Errorf("neighbour %s: %w", nb.Addr, err)
		}
	}
	for _, p := range n.Owns {
		if err := l.ipn(ctx, ns, "route", "add", "local", p.Masked().String(), "dev", "lo"); err != nil && !exists(err) {
			return fmt.Errorf("owned prefix %s: %w", p, err)
		}
	}
	return nil
}

// configureFirewall loads the node's rulesets with iptables-restore and
// ip6tables-restore run inside its namespace.
func (l *Lab) configureFirewall(ctx context.Context, n *model.Node) error {
	ns := l.nsOf[n.Name]
	for _, rs := range []struct {
		set  *model.Ruleset
		tool string
	}{{n.IPv4, "iptables-restore"}, {n.IPv6, "ip6tables-restore"}} {
		if rs.set == nil || len(rs.set.Tables) == 0 {
			continue
		}
		text, err := RestoreText(rs.set)
		if err != nil {
			return err
		}
		if !l.owns(ns) {
			return fmt.Errorf("lab: namespace %s is not ours", ns)
		}
		l.logf("%s:\n%s", rs.tool, text)
		if _, err := l.run(ctx, text, "ip", "netns", "exec", ns, rs.tool); err != nil {
			return err
		}
	}
	return nil
}

// readMACs records the link-layer address of each device the lab made in
// a node, for Lab.MAC.
func (l *Lab) readMACs(ctx context.Context, node string) error {
	ns := l.nsOf[node]
	out, err := l.run(ctx, "", "ip", "-n", ns, "-j", "link", "show")
	if err != nil {
		return err
	}
	var links []struct {
		IfName  string `json:"ifname"`
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return fmt.Errorf("ip -j link show: %w", err)
	}
	for _, lk := range links {
		l.hwOf[model.Endpoint{Node: node, Iface: lk.IfName}] = strings.ToLower(lk.Address)
	}
	return nil
}

// awaitCarrier waits until the kernel has finished bringing links up.
// Carrier changes are applied by the linkwatch worker, which batches
// events up to a second apart: until it runs, a device that has carrier
// still has the noop qdisc (it drops what is sent) and a bridge port is
// not forwarding yet. Without this wait the first packets sent after Up
// are lost (an ARP request vanishes at a bridge and the ping that needed
// it takes one more second). A device is settled when it is up without
// carrier, or has carrier and operstate UP (UNKNOWN for dummy and lo),
// and, if it is a bridge port, is forwarding. After five seconds the lab
// goes on with a warning.
func (l *Lab) awaitCarrier(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var pending []string
		for _, ns := range l.Namespaces() {
			p, err := l.unsettled(ctx, ns)
			if err != nil {
				return err
			}
			pending = append(pending, p...)
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			l.warnf("links not settled after 5s: %s", strings.Join(pending, ", "))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// unsettled lists the devices of a namespace whose carrier change the
// kernel has not finished applying.
func (l *Lab) unsettled(ctx context.Context, ns string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "ip", "-n", ns, "-j", "-d", "link", "show")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("lab: ip -n %s link show: %w", ns, err)
	}
	var links []struct {
		IfName    string   `json:"ifname"`
		Flags     []string `json:"flags"`
		OperState string   `json:"operstate"`
		LinkInfo  struct {
			SlaveKind string `json:"info_slave_kind"`
			SlaveData struct {
				State string `json:"state"`
			} `json:"info_slave_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("lab: ip -j link show: %w", err)
	}
	var pending []string
	for _, lk := range links {
		if !contains(lk.Flags, "UP") || !contains(lk.Flags, "LOWER_UP") {
			continue
		}
		if lk.OperState != "UP" && lk.OperState != "UNKNOWN" {
			pending = append(pending, ns+":"+lk.IfName+" "+lk.OperState)
			continue
		}
		if lk.LinkInfo.SlaveKind == "bridge" && lk.LinkInfo.SlaveData.State != "forwarding" {
			pending = append(pending, ns+":"+lk.IfName+" "+lk.LinkInfo.SlaveData.State)
		}
	}
	return pending, nil
}
