package iproute

import (
	"io"
	"net/netip"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
)

// RouteAnycast is the type of the IPv6 anycast routes the kernel puts in
// the local table (subnet-router anycast addresses). The model has no
// constant for it; packets to such an address are delivered locally.
const RouteAnycast model.RouteType = "anycast"

// routeTypes are the route types ip route prints before the destination.
var routeTypes = map[string]model.RouteType{
	"unicast": model.RouteUnicast, "local": model.RouteLocal, "broadcast": model.RouteBroadcast,
	"multicast": model.RouteMulticast, "blackhole": model.RouteBlackhole,
	"unreachable": model.RouteUnreachable, "prohibit": model.RouteProhibit,
	"throw": model.RouteThrow, "anycast": RouteAnycast,
}

// harmlessFlags are route and nexthop flags that do not change which way a
// packet goes in pktflow's model: offload state, and link-down markers
// (the interface's own state says whether it can carry packets).
var harmlessFlags = map[string]bool{
	"linkdown": true, "dead": true, "pervasive": true, "offload": true, "trap": true,
	"rt_offload": true, "rt_trap": true, "rt_offload_failed": true, "notify": true,
	"cache": true, "unresolved": true,
}

// harmlessValued are keywords with one value that do not change which way a
// packet goes: IPv6 router preference and lifetimes, nexthop object ids
// (the route also prints via/dev), the error code of IPv6 unreachable
// routes, realms, and TCP metrics. Metrics may be preceded by "lock".
var harmlessValued = map[string]bool{
	"pref": true, "expires": true, "nhid": true, "error": true, "realm": true, "realms": true,
	"advmss": true, "rtt": true, "rttvar": true, "reordering": true, "window": true,
	"cwnd": true, "initcwnd": true, "initrwnd": true, "ssthresh": true, "hoplimit": true,
	"rto_min": true, "features": true, "quickack": true, "congctl": true,
	"fastopen_no_cookie": true, "age": true, "used": true, "ipid": true,
}

// unmodelled are route keywords whose meaning the model cannot hold.
var unmodelled = map[string]string{
	"from":          "source-specific routes (from PREFIX) are not modelled",
	"tos":           "TOS-selective routes are not modelled",
	"dsfield":       "TOS-selective routes are not modelled",
	"encap":         "lightweight tunnel encapsulation (encap) is not modelled",
	"ttl-propagate": "MPLS routes are not modelled",
	"as":            "MPLS routes are not modelled",
	"nat":           "the obsolete nat route type is not modelled",
}

// routeState is a route being parsed: whether its destination was
// "default" (family decided later), and the family its addresses imply.
type routeState struct {
	r         model.Route
	isDefault bool
	fam       int // 4 or 6 when an address on the line fixed it, else 0
}

// ParseRoutes parses `ip route show` output, including `ip route show
// table all`, `ip -4 route` and `ip -6 route`. Routes without "table X"
// go to defaultTable (model.TableMain for `ip route show`). Multipath
// routes continue on indented "nexthop ..." lines; their Origin points at
// the first line and its Text holds all the lines.
//
// "default" has no family of its own: it takes the family of the
// addresses on its line (via, src, nexthops), else the family of the
// file's other routes. A file mixing both families with a bare
// "default dev X" is an error; write 0.0.0.0/0 or ::/0.
//
// Scope and Proto are empty when the line does not print them (ip route
// omits "scope global" and "proto boot").
func ParseRoutes(file string, r io.Reader, defaultTable int) ([]model.Route, error) {
	lines, err := readLines(file, r)
	if err != nil {
		return nil, err
	}
	var states []*routeState
	for _, l := range lines {
		if l.indented {
			if len(states) == 0 || l.fields[0] != "nexthop" {
				return nil, errf(file, l, "unexpected indented line; only \"nexthop ...\" lines of a multipath route may be indented")
			}
			st := states[len(states)-1]
			if err := parseNexthops(file, l, l.fields, st); err != nil {
				return nil, err
			}
			st.r.Origin.Text += "\n" + l.text
			continue
		}
		st, err := parseRouteFields(file, l, defaultTable)
		if err != nil {
			return nil, err
		}
		states = append(states, st)
	}
	fileFam := 0
	for _, st := range states {
		if st.fam == 0 {
			continue
		}
		if fileFam == 0 {
			fileFam = st.fam
		} else if fileFam != st.fam {
			fileFam = -1
		}
	}
	out := make([]model.Route, 0, len(states))
	for _, st := range states {
		fam := fileFam
		if fam == 0 {
			fam = 4
		}
		if err := finishRoute(file, st, fam); err != nil {
			return nil, err
		}
		out = append(out, st.r)
	}
	return out, nil
}

// ParseRouteLine parses one route in `ip route show` syntax (as written
// inline in topology.yaml). A multipath route writes its nexthops on the
// same line, as `ip route add` takes them: "default nexthop via A dev X
// nexthop via B dev Y". A bare "default" without addresses is IPv4.
func ParseRouteLine(file string, lineNum int, text string, defaultTable int) (model.Route, error) {
	text = strings.TrimSpace(text)
	l := line{num: lineNum, text: text, fields: strings.Fields(text)}
	if len(l.fields) == 0 {
		return model.Route{}, errf(file, l, "empty route")
	}
	st, err := parseRouteFields(file, l, defaultTable)
	if err != nil {
		return model.Route{}, err
	}
	if err := finishRoute(file, st, 4); err != nil {
		return model.Route{}, err
	}
	return st.r, nil
}

// parseRouteFields parses one route line up to its end; "nexthop" groups
// on the same line are parsed too.
func parseRouteFields(file string, l line, defaultTable int) (*routeState, error) {
	f := l.fields
	st := &routeState{r: model.Route{Table: defaultTable, Type: model.RouteUnicast, Origin: origin(file, l)}}
	r := &st.r
	i := 0
	if t, ok := routeTypes[f[0]]; ok {
		r.Type = t
		i++
	} else if msg, ok := unmodelled[f[0]]; ok {
		return nil, errf(file, l, "%s", msg+removeHint)
	}
	if i >= len(f) {
		return nil, errf(file, l, "missing destination after route type %q", f[0])
	}
	if f[i] == "default" {
		st.isDefault = true
	} else {
		p, want := parsePrefixOrHost(f[i])
		if want != "" {
			return nil, errf(file, l, "route destination %q: expected \"default\" or %s", f[i], want)
		}
		r.Dst = p
		st.fam = famOf(p.Addr())
	}
	i++
	setFam := func(a netip.Addr, what string) error {
		fa := famOf(a)
		if st.fam != 0 && st.fam != fa {
			return errf(file, l, "%s %s is IPv%d but the route is IPv%d", what, a, fa, st.fam)
		}
		st.fam = fa
		return nil
	}
	for ; i < len(f); i++ {
		key := f[i]
		if key == "nexthop" {
			return st, parseNexthops(file, l, f[i:], st)
		}
		if harmlessFlags[key] {
			continue
		}
		if key == "onlink" {
			r.OnLink = true
			continue
		}
		if msg, ok := unmodelled[key]; ok {
			return nil, errf(file, l, "%s", msg+removeHint)
		}
		if _, ok := routeKeys[key]; !ok && !harmlessValued[key] && key != "mtu" {
			return nil, errf(file, l, "unknown route keyword %q", key)
		}
		if i+1 >= len(f) {
			return nil, errf(file, l, "missing value after %q", key)
		}
		i++
		val := f[i]
		if (key == "mtu" || harmlessValued[key]) && val == "lock" {
			if i+1 >= len(f) {
				return nil, errf(file, l, "missing value after \"%s lock\"", key)
			}
			i++
			val = f[i]
		}
		switch key {
		case "via":
			explicitFam := val == "inet" || val == "inet6"
			if explicitFam {
				if i+1 >= len(f) {
					return nil, errf(file, l, "missing gateway after \"via %s\"", val)
				}
				i++
			}
			a, ok := parseAddr(f[i])
			if !ok || (val == "inet" && !a.Is4()) || (val == "inet6" && !a.Is6()) {
				return nil, errf(file, l, "gateway %q is not an address", f[i])
			}
			if r.Via.IsValid() {
				return nil, errf(file, l, "route has two gateways")
			}
			r.Via = a
			if !explicitFam {
				if err := setFam(a, "gateway"); err != nil {
					return nil, err
				}
			}
		case "dev", "oif":
			r.Dev = val
		case "table":
			t, msg := parseTable(val)
			if msg != "" {
				return nil, errf(file, l, "%s", msg)
			}
			r.Table = t
		case "proto":
			r.Proto = val
		case "scope":
			r.Scope = val
		case "src":
			a, ok := parseAddr(val)
			if !ok {
				return nil, errf(file, l, "src %q is not an address", val)
			}
			if err := setFam(a, "src"); err != nil {
				return nil, err
			}
			r.Src = a
		case "metric", "preference", "priority":
			n, ok := atoi(val)
			if !ok {
				return nil, errf(file, l, "%s %q is not a number", key, val)
			}
			r.Metric = n
		case "mtu":
			n, ok := atoi(val)
			if !ok {
				return nil, errf(file, l, "mtu %q is not a number", val)
			}
			r.MTU = n
		}
	}
	return st, nil
}

// routeKeys are the route keywords that take one value and are modelled.
var routeKeys = map[string]struct{}{
	"via": {}, "dev": {}, "oif": {}, "table": {}, "proto": {}, "scope": {}, "src": {},
	"metric": {}, "preference": {}, "priority": {},
}

// parseNexthops parses one or more "nexthop via X dev Y weight N" groups.
func parseNexthops(file string, l line, f []string, st *routeState) error {
	for len(f) > 0 {
		if f[0] != "nexthop" {
			return errf(file, l, "expected \"nexthop\", got %q", f[0])
		}
		nh := model.Nexthop{Weight: 1}
		i := 1
		for ; i < len(f) && f[i] != "nexthop"; i++ {
			key := f[i]
			if harmlessFlags[key] || key == "onlink" {
				continue
			}
			if msg, ok := unmodelled[key]; ok {
				return errf(file, l, "%s", msg+removeHint)
			}
			switch key {
			case "via", "dev", "weight", "realm", "realms":
			default:
				return errf(file, l, "unknown nexthop keyword %q; expected via, dev or weight", key)
			}
			if i+1 >= len(f) {
				return errf(file, l, "missing value after %q", key)
			}
			i++
			val := f[i]
			switch key {
			case "via":
				explicitFam := val == "inet" || val == "inet6"
				if explicitFam {
					if i+1 >= len(f) {
						return errf(file, l, "missing gateway after \"via %s\"", val)
					}
					i++
				}
				a, ok := parseAddr(f[i])
				if !ok || (val == "inet" && !a.Is4()) || (val == "inet6" && !a.Is6()) {
					return errf(file, l, "gateway %q is not an address", f[i])
				}
				nh.Via = a
				if !explicitFam {
					if st.fam != 0 && st.fam != famOf(a) {
						return errf(file, l, "gateway %s is IPv%d but the route is IPv%d", a, famOf(a), st.fam)
					}
					st.fam = famOf(a)
				}
			case "dev":
				nh.Dev = val
			case "weight":
				n, ok := atoi(val)
				if !ok || n < 1 || n > 256 {
					return errf(file, l, "weight %q is not a number from 1 to 256", val)
				}
				nh.Weight = n
			}
		}
		if !nh.Via.IsValid() && nh.Dev == "" {
			return errf(file, l, "nexthop has neither via nor dev")
		}
		st.r.Nexthops = append(st.r.Nexthops, nh)
		f = f[i:]
	}
	return nil
}

// finishRoute decides the family of "default" and checks that the route
// says where packets go.
func finishRoute(file string, st *routeState, fileFam int) error {
	r := &st.r
	l := line{num: r.Origin.Line, text: r.Origin.Text}
	if st.isDefault {
		fam := st.fam
		if fam == 0 {
			if fileFam < 0 {
				return errf(file, l, "\"default\" is ambiguous in a file with both IPv4 and IPv6 routes; write 0.0.0.0/0 or ::/0")
			}
			fam = fileFam
		}
		if fam == 6 {
			r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		} else {
			r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
	}
	switch r.Type {
	case model.RouteUnicast, model.RouteLocal, model.RouteBroadcast, model.RouteMulticast, RouteAnycast:
		if !r.Via.IsValid() && r.Dev == "" && len(r.Nexthops) == 0 {
			return errf(file, l, "%s route to %s has neither via, dev nor nexthop", r.Type, r.Dst)
		}
	}
	if r.Type != model.RouteUnicast && len(r.Nexthops) > 0 {
		return errf(file, l, "only unicast routes can have nexthops, this is a %s route", r.Type)
	}
	return nil
}

func famOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}
