// Package route models the Linux IPv4/IPv6 routing decision: the policy
// rules (ip rule), the local, main and numbered tables, longest-prefix
// match, metrics, route types and source-address selection, each result
// carrying the rule and the route line that decided it.
package route

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/pktflow/pktflow/internal/model"
)

// Scopes as the kernel numbers them (rtnetlink.h): a lower number is wider.
const (
	ScopeUniverse = 0
	ScopeSite     = 200
	ScopeLink     = 253
	ScopeHost     = 254
	ScopeNowhere  = 255
)

// ScopeNum converts a scope name to its number; "" is universe (global).
func ScopeNum(s string) int {
	switch s {
	case "", "global", "universe":
		return ScopeUniverse
	case "site":
		return ScopeSite
	case "link":
		return ScopeLink
	case "host":
		return ScopeHost
	case "nowhere":
		return ScopeNowhere
	}
	return ScopeUniverse
}

// FIB is one node's routing state, ready for lookups. Build it once per
// node with New; it is immutable and safe for concurrent use.
type FIB struct {
	node   *model.Node
	rules  []model.PolicyRule
	tables map[int][]*entry // each sorted by prefix length desc, then metric
	// ifUp says whether each device is administratively up.
	ifUp map[string]bool
}

type entry struct {
	r       model.Route
	derived bool // made by pktflow the way the kernel would (local routes, connected routes)
	// desc is describe(&r), made once: every lookup that picks the
	// route says why with it.
	desc string
	// dead: a unicast route through a device that is down (fixed for a
	// snapshot), which lookups skip.
	dead bool
}

// New builds the FIB of a node. The kernel fills the local table from the
// interface addresses itself, so pktflow derives it the same way (dumps of
// `ip route show` do not include it); connected prefix routes for
// addresses without noprefixroute are derived too when the input lacks them.
func New(n *model.Node) *FIB {
	f := &FIB{node: n, tables: map[int][]*entry{}, ifUp: map[string]bool{}}
	for _, ifc := range n.Interfaces {
		f.ifUp[ifc.Name] = ifc.Up || ifc.Kind == model.IfLoopback
	}
	have := map[string]bool{}
	for _, r := range n.Routes {
		have[fmt.Sprintf("%d|%s|%s|%s", r.Table, r.Type, r.Dst.Masked(), r.Dev)] = true
		f.tables[r.Table] = append(f.tables[r.Table], &entry{r: r})
	}
	for _, ifc := range n.Interfaces {
		for _, a := range ifc.Addrs {
			addr := a.Prefix.Addr()
			lr := model.Route{Table: model.TableLocal, Type: model.RouteLocal, Dst: netip.PrefixFrom(addr, addr.BitLen()),
				Dev: ifc.Name, Src: addr, Scope: "host", Proto: "kernel",
				Origin: model.Origin{Synthesized: true, File: a.Origin.File, Line: a.Origin.Line,
					Text: fmt.Sprintf("local %s dev %s table local proto kernel scope host src %s (the kernel adds it for the address on %s)", addr, ifc.Name, addr, ifc.Name)}}
			if ifc.Kind == model.IfLoopback && addr.Is4() && a.Prefix.Bits() < 32 {
				// 127.0.0.0/8 on lo: the whole prefix is local.
				lr.Dst = a.Prefix.Masked()
				lr.Origin.Text = fmt.Sprintf("local %s dev lo table local proto kernel scope host src %s (the kernel adds it for the address on lo)", lr.Dst, addr)
			}
			if !have[fmt.Sprintf("%d|%s|%s|%s", lr.Table, lr.Type, lr.Dst, lr.Dev)] {
				f.tables[model.TableLocal] = append(f.tables[model.TableLocal], &entry{r: lr, derived: true})
			}
			if a.Prefix.Bits() == addr.BitLen() || slices.Contains(a.Flags, "noprefixroute") || ifc.Kind == model.IfLoopback || !f.ifUp[ifc.Name] {
				continue
			}
			pfx := a.Prefix.Masked()
			if !hasPrefixRoute(n.Routes, pfx) {
				cr := model.Route{Table: model.TableMain, Type: model.RouteUnicast, Dst: pfx, Dev: ifc.Name, Src: addr,
					Scope: "link", Proto: "kernel",
					Origin: model.Origin{Synthesized: true, File: a.Origin.File, Line: a.Origin.Line,
						Text: fmt.Sprintf("%s dev %s proto kernel scope link src %s (the kernel adds it for the address %s)", pfx, ifc.Name, addr, a.Prefix)}}
				f.tables[model.TableMain] = append(f.tables[model.TableMain], &entry{r: cr, derived: true})
			}
		}
	}
	for t, es := range f.tables {
		for _, e := range es {
			e.desc = describe(&e.r)
			e.dead = e.r.Dev != "" && !f.ifUp[e.r.Dev] && e.r.Type == model.RouteUnicast
		}
		slices.SortStableFunc(es, func(a, b *entry) int {
			if c := cmp.Compare(b.r.Dst.Bits(), a.r.Dst.Bits()); c != 0 {
				return c
			}
			return cmp.Compare(a.r.Metric, b.r.Metric)
		})
		f.tables[t] = es
	}
	f.rules = n.Rules
	if len(f.rules) == 0 {
		f.rules = DefaultRules()
	}
	slices.SortStableFunc(f.rules, func(a, b model.PolicyRule) int { return cmp.Compare(a.Priority, b.Priority) })
	return f
}

func hasPrefixRoute(rs []model.Route, p netip.Prefix) bool {
	for _, r := range rs {
		if r.Table == model.TableMain && r.Dst.Masked() == p {
			return true
		}
	}
	return false
}

// DefaultRules are the three rules every Linux namespace starts with.
func DefaultRules() []model.PolicyRule {
	o := func(t string) model.Origin { return model.Origin{Synthesized: true, Text: t + " (default rule)"} }
	return []model.PolicyRule{
		{Priority: 0, Table: model.TableLocal, Action: "lookup", Origin: o("0: from all lookup local")},
		{Priority: 32766, Table: model.TableMain, Action: "lookup", Origin: o("32766: from all lookup main")},
		{Priority: 32767, Table: model.TableDefault, Action: "lookup", Origin: o("32767: from all lookup default")},
	}
}

// Query is what a route lookup is asked.
type Query struct {
	Dst netip.Addr
	// Src is the source address if already known (a reply, a forwarded
	// packet, or --src); invalid otherwise.
	Src netip.Addr
	// IIF is the input device for a received packet, empty for locally
	// generated packets. OIF binds an output lookup to a device.
	IIF, OIF string
	Mark     uint32
	Proto    uint8
	SPort    uint16
	DPort    uint16
}

// Result is a routing decision with the reasons behind it.
type Result struct {
	Type model.RouteType
	// Dev is the output device (for local delivery: the device that owns
	// the address, as the kernel reports "dev lo" for local routes).
	Dev string
	// Via is the gateway; invalid for on-link destinations.
	Via netip.Addr
	// Src is the preferred source address for locally generated packets.
	Src netip.Addr
	// Table is the table the route came from, Rule the policy rule that
	// sent the lookup there.
	Table int
	Route *model.Route
	Rule  *model.PolicyRule
	// Nexthops lists every path of a multipath route (the engine
	// enumerates them); empty otherwise.
	Nexthops []model.Nexthop
	// Err names the failure: "unreachable" (no route: ENETUNREACH),
	// "prohibit", "blackhole"; empty when a usable route was found.
	Err string
	// Why explains the decision in words, or holds what follows the
	// explanation of the route that matched: read it with Explain or
	// AppendWhy.
	Why string
	// matchDst and matchDesc explain a matched route, rendered only
	// when asked: routing runs far more often than its words are read.
	matchDst  netip.Addr
	matchDesc string
}

// AppendWhy appends the explanation of the decision to b.
func (r *Result) AppendWhy(b []byte) []byte {
	if r.matchDesc != "" {
		b = append(r.matchDst.AppendTo(b), " matches "...)
		b = append(append(append(b, r.matchDesc...), " in table "...), TableName(r.Table)...)
	}
	return append(b, r.Why...)
}

// Explain explains the decision in words.
func (r *Result) Explain() string {
	if r.matchDesc == "" {
		return r.Why
	}
	return string(r.AppendWhy(nil))
}

// NextHop returns the address the packet is sent to on the link: the
// gateway, or the destination itself for on-link routes.
func (r *Result) NextHop(dst netip.Addr) netip.Addr {
	if r.Via.IsValid() {
		return r.Via
	}
	return dst
}

// TableName names a table as ip route prints it.
func TableName(t int) string {
	switch t {
	case model.TableLocal:
		return "local"
	case model.TableMain:
		return "main"
	case model.TableDefault:
		return "default"
	}
	return fmt.Sprint(t)
}

// Lookup runs the policy rules in priority order and returns the first
// table's answer, as fib_lookup does.
func (f *FIB) Lookup(q Query) Result {
	for i := range f.rules {
		rule := &f.rules[i]
		if !ruleMatches(rule, q) {
			continue
		}
		switch rule.Action {
		case "blackhole", "unreachable", "prohibit":
			return Result{Type: model.RouteType(rule.Action), Err: rule.Action, Rule: rule,
				Why: fmt.Sprintf("ip rule %d says %s", rule.Priority, rule.Action)}
		case "goto":
			// A goto continues with the first rule at or after the target priority.
			for j := i + 1; j < len(f.rules); j++ {
				if f.rules[j].Priority >= rule.Goto {
					i = j - 1
					break
				}
			}
			continue
		case "nop":
			continue
		}
		res, ok := f.lookupTable(rule.Table, q, true)
		if !ok {
			continue
		}
		res.Rule = rule
		return res
	}
	return Result{Type: model.RouteUnreachable, Err: "unreachable",
		Why: fmt.Sprintf("no route to %s in any table the policy rules consult", q.Dst)}
}

func ruleMatches(r *model.PolicyRule, q Query) bool {
	m := true
	if r.From.IsValid() && (!q.Src.IsValid() || !r.From.Contains(q.Src)) {
		if !(r.From.Bits() == 0 && !q.Src.IsValid()) {
			m = false
		}
	}
	if m && r.To.IsValid() && !r.To.Contains(q.Dst) {
		m = false
	}
	if m && r.IIF != "" && r.IIF != orLo(q.IIF) {
		m = false
	}
	if m && r.OIF != "" && r.OIF != q.OIF {
		m = false
	}
	if m && r.HasMark {
		mask := r.FwMask
		if mask == 0 {
			mask = 0xffffffff
		}
		if q.Mark&mask != r.FwMark {
			m = false
		}
	}
	if m && r.IPProto != 0 && int(q.Proto) != r.IPProto {
		m = false
	}
	if m && r.DPort != [2]uint16{} && (q.DPort < r.DPort[0] || q.DPort > r.DPort[1]) {
		m = false
	}
	if m && r.SPort != [2]uint16{} && (q.SPort < r.SPort[0] || q.SPort > r.SPort[1]) {
		m = false
	}
	if r.Not {
		return !m
	}
	return m
}

// orLo: a locally generated packet matches "iif lo" in ip rules.
func orLo(iif string) string {
	if iif == "" {
		return "lo"
	}
	return iif
}

// lookupTable looks dst up in one table; why says whether the caller
// wants Result.Why (AddrKind only needs the route type).
func (f *FIB) lookupTable(table int, q Query, why bool) (Result, bool) {
	for _, e := range f.tables[table] {
		r := &e.r
		if !r.Dst.Contains(q.Dst) || r.Dst.Addr().BitLen() != q.Dst.BitLen() {
			continue
		}
		if e.dead {
			// Routes through a device that is down are dead: skip them as
			// fib_table_lookup does for RTNH_F_DEAD nexthops.
			continue
		}
		if q.OIF != "" && r.Dev != "" && r.Dev != q.OIF && r.Type == model.RouteUnicast {
			continue
		}
		res := Result{Type: r.Type, Dev: r.Dev, Via: r.Via, Table: table, Route: r, Nexthops: r.Nexthops}
		if res.Type == "" {
			res.Type = model.RouteUnicast
		}
		switch res.Type {
		case model.RouteThrow:
			// throw: stop this table; the policy continues with the next rule.
			return Result{}, false
		case model.RouteBlackhole, model.RouteUnreachable, model.RouteProhibit:
			res.Err = string(res.Type)
			if why {
				res.Why = fmt.Sprintf("%s route %s in table %s", res.Type, r.Dst, TableName(table))
			}
			return res, true
		}
		if len(r.Nexthops) > 0 && !r.Via.IsValid() && r.Dev == "" {
			res.Via, res.Dev = r.Nexthops[0].Via, r.Nexthops[0].Dev
		}
		res.Src = f.selectSrc(res, q.Dst)
		if why {
			res.matchDst, res.matchDesc = q.Dst, e.desc
		}
		return res, true
	}
	return Result{}, false
}

func describe(r *model.Route) string {
	if r.Origin.Text != "" {
		return strconv.Quote(r.Origin.Text)
	}
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return s
}

// selectSrc picks the preferred source address the way the kernel does:
// the route's src if it has one; else the first primary address on the
// output device whose scope is no wider than the route's and, when
// possible, whose subnet holds the next hop; else a global address of
// another device (inet_select_addr).
func (f *FIB) selectSrc(res Result, dst netip.Addr) netip.Addr {
	r := res.Route
	if r.Src.IsValid() {
		return r.Src
	}
	scope := ScopeNum(r.Scope)
	if r.Scope == "" {
		scope = ScopeUniverse
		if !r.Via.IsValid() && res.Type == model.RouteUnicast {
			scope = ScopeLink
		}
	}
	if dst.Is6() {
		// IPv6 chooses by destination (RFC 6724), not by next hop.
		return f.selectSrc6(res.Dev, dst)
	}
	return f.DeviceSrc(res.Dev, res.NextHop(dst), scope)
}

// selectSrc6 is a simplified RFC 6724 choice: prefer an address on the
// output device of the same scope as the destination, then the longest
// matching prefix.
func (f *FIB) selectSrc6(dev string, dst netip.Addr) netip.Addr {
	var best netip.Addr
	bestLen := -1
	wantLink := dst.IsLinkLocalUnicast()
	consider := func(ifc *model.Interface) {
		for _, a := range ifc.Addrs {
			ad := a.Prefix.Addr()
			if !ad.Is6() || ad.Is4In6() || ad.IsLinkLocalUnicast() != wantLink {
				continue
			}
			l := commonPrefixLen(ad, dst)
			if l > bestLen {
				best, bestLen = ad, l
			}
		}
	}
	if ifc := f.node.Iface(dev); ifc != nil {
		consider(ifc)
	}
	if !best.IsValid() && !wantLink {
		for _, ifc := range f.node.Interfaces {
			consider(ifc)
		}
	}
	return best
}

func commonPrefixLen(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		for d&0x80 == 0 {
			n++
			d <<= 1
		}
		break
	}
	return n
}

// IsLocal reports whether addr is one of this node's local addresses (a
// local-table route of type local covers it), and on which device.
func (f *FIB) IsLocal(addr netip.Addr) (string, bool) {
	for _, e := range f.tables[model.TableLocal] {
		if e.r.Type == model.RouteLocal && e.r.Dst.Contains(addr) && e.r.Dst.Addr().BitLen() == addr.BitLen() {
			return e.r.Dev, true
		}
	}
	return "", false
}

// AddrKind classifies addr as the addrtype match and the routing code see
// it: local, broadcast, multicast, unicast, or the type of an unusable
// route.
func (f *FIB) AddrKind(addr netip.Addr) model.RouteType {
	if addr.IsMulticast() {
		return model.RouteMulticast
	}
	if addr.Is4() && addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return model.RouteBroadcast
	}
	if _, ok := f.IsLocal(addr); ok {
		return model.RouteLocal
	}
	if addr.Is4() {
		for _, ifc := range f.node.Interfaces {
			for _, a := range ifc.Addrs {
				if a.Broadcast.IsValid() && a.Broadcast == addr {
					return model.RouteBroadcast
				}
			}
		}
	}
	r, ok := f.lookupTable(model.TableMain, Query{Dst: addr}, false)
	if ok && r.Err != "" {
		return r.Type
	}
	return model.RouteUnicast
}

// DeviceSrc is inet_select_addr: the first primary IPv4 address of dev
// whose scope is no wider than scope, preferring one whose subnet holds
// target; failing that, an address of another device that is neither
// link- nor host-scoped.
func (f *FIB) DeviceSrc(dev string, target netip.Addr, scope int) netip.Addr {
	if target.Is6() {
		return f.selectSrc6(dev, target)
	}
	var first netip.Addr
	if ifc := f.node.Iface(dev); ifc != nil {
		for _, a := range ifc.Addrs {
			if !a.Prefix.Addr().Is4() || a.Secondary || ScopeNum(a.Scope) > scope {
				continue
			}
			if a.Prefix.Masked().Contains(target) {
				return a.Prefix.Addr()
			}
			if !first.IsValid() {
				first = a.Prefix.Addr()
			}
		}
	}
	if first.IsValid() {
		return first
	}
	for _, ifc := range f.node.Interfaces {
		for _, a := range ifc.Addrs {
			s := ScopeNum(a.Scope)
			if a.Prefix.Addr().Is4() && !a.Secondary && s < ScopeLink && s <= scope {
				return a.Prefix.Addr()
			}
		}
	}
	return netip.Addr{}
}
