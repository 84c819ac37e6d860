// Package iprojson reads the JSON iproute2 prints with -j (compact) or -j
// -p (pretty): `ip -j addr`, `ip -j [-d] link`, `ip -j route [show table
// all]` (both families), `ip -j rule`, `ip -j neigh`, `bridge -j fdb` and
// `bridge -j link`, as iproute2 5.x and 6.x print them.
//
// Interfaces get the same model as the text parser's (including kinds
// from `-d` linkinfo, the veth peer index and namespace, bridge port
// states). Routes, rules and neighbors are written back as the `ip` text
// line they stand for and read by the iproute package, so both forms of a
// table give the same model, with the same errors for what the model
// cannot represent; their Origins name the JSON file and the line of the
// object, with the text line as Text.
//
// A file may hold several arrays (`ip -j route; ip -6 -j route`) and the
// pasted prompt lines before them. Errors are *ingest.Error at the line
// of the offending object.
package iprojson

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/ingest/iproute"
	"github.com/pktflow/pktflow/internal/model"
)

// read loads a file's JSON array elements.
func read(file string, r io.Reader) ([]byte, []ingest.JSONElem, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	elems, err := ingest.JSONArrays(file, data)
	if err != nil {
		return nil, nil, err
	}
	return data, elems, nil
}

// jsonLink is one device of `ip -j addr` / `ip -j -d link`.
type jsonLink struct {
	Index     int      `json:"ifindex"`
	LinkIndex int      `json:"link_index"`
	Name      string   `json:"ifname"`
	Flags     []string `json:"flags"`
	MTU       int      `json:"mtu"`
	Master    string   `json:"master"`
	OperState string   `json:"operstate"`
	LinkType  string   `json:"link_type"`
	Address   string   `json:"address"`
	NetnsID   *int     `json:"link_netnsid"`
	LinkInfo  *struct {
		Kind     string `json:"info_kind"`
		InfoData *struct {
			Type string `json:"type"`
		} `json:"info_data"`
		SlaveKind string `json:"info_slave_kind"`
		SlaveData *struct {
			State   string `json:"state"`
			Hairpin *bool  `json:"hairpin"`
		} `json:"info_slave_data"`
	} `json:"linkinfo"`
	AddrInfo []map[string]json.RawMessage `json:"addr_info"`
}

// addrFlagKeys are the address flags ip -j prints as "flag": true.
var addrFlagKeys = []string{"temporary", "deprecated", "tentative", "dadfailed", "optimistic", "home", "nodad",
	"mngtmpaddr", "noprefixroute", "autojoin", "dynamic", "permanent", "stable-privacy"}

// ParseAddr reads `ip -j addr` or `ip -j [-d] link` (which has no
// addresses) into interfaces in the order printed.
func ParseAddr(file string, r io.Reader) ([]*model.Interface, error) {
	data, elems, err := read(file, r)
	if err != nil {
		return nil, err
	}
	var out []*model.Interface
	byName := map[string]int{}
	explicit := map[string]bool{}
	for _, e := range elems {
		var j jsonLink
		if err := ingest.DecodeElem(file, data, e, &j, "ip -j addr"); err != nil {
			return nil, err
		}
		line, _ := ingest.LineAt(data, e.Off)
		fail := func(field, value, format string, args ...any) error {
			return ingest.ErrorAt(file, data, ingest.FieldAt(e, field, value), "interface %s: %s", j.Name, fmt.Sprintf(format, args...))
		}
		// The Origin text is the header `ip addr` would print: the JSON
		// line of `ip -j` holds every interface.
		text := fmt.Sprintf("%d: %s: <%s> mtu %d", j.Index, j.Name, strings.Join(j.Flags, ","), j.MTU)
		if j.Master != "" {
			text += " master " + j.Master
		}
		if j.OperState != "" {
			text += " state " + j.OperState
		}
		if j.Name == "" || j.Index <= 0 {
			return nil, ingest.ErrorAt(file, data, e.Off, "expected an interface with ifindex and ifname (the output of ip -j addr or ip -j link)")
		}
		if strings.ContainsAny(j.Name, "/: \t") || len(j.Name) > 15 {
			return nil, fail("ifname", j.Name, "invalid interface name")
		}
		if prev, dup := byName[j.Name]; dup {
			return nil, ingest.ErrorAt(file, data, e.Off, "interface %s is listed twice (first at line %d)", j.Name, prev)
		}
		byName[j.Name] = line
		ifc := &model.Interface{Name: j.Name, Index: j.Index, MTU: j.MTU, Master: j.Master, Flags: j.Flags,
			PeerIndex: j.LinkIndex, Origin: model.Origin{File: file, Line: line, Text: text}}
		if j.NetnsID != nil {
			ifc.LinkNetns = strconv.Itoa(*j.NetnsID)
		}
		if j.LinkType == "ether" || j.LinkType == "loopback" {
			hw, err := net.ParseMAC(j.Address)
			if err != nil || len(hw) != 6 {
				return nil, fail("address", j.Address, "address %q is not a MAC address", j.Address)
			}
			ifc.MAC = hw.String()
		}
		ifc.Up = slices.Contains(j.Flags, "UP") && slices.Contains(j.Flags, "LOWER_UP") && !slices.Contains(j.Flags, "NO-CARRIER") &&
			j.OperState != "DOWN" && j.OperState != "LOWERLAYERDOWN" && j.OperState != "NOTPRESENT"
		peer := ""
		if j.LinkIndex > 0 {
			peer = "if" + strconv.Itoa(j.LinkIndex)
		}
		ifc.Kind = iproute.GuessKind(j.Name, j.LinkType, peer, j.Master)
		if li := j.LinkInfo; li != nil {
			if li.Kind != "" {
				tun := ""
				if li.InfoData != nil {
					tun = li.InfoData.Type
				}
				if k, ok := iproute.DetailKind(li.Kind, tun); ok {
					ifc.Kind = k
					explicit[j.Name] = true
				}
			}
			if li.SlaveData != nil && li.SlaveKind == "bridge" {
				ifc.PortState = li.SlaveData.State
				ifc.Hairpin = li.SlaveData.Hairpin
			}
		}
		if j.LinkType == "loopback" {
			ifc.Kind = model.IfLoopback
		}
		for k, ai := range j.AddrInfo {
			a, err := addrInfo(ai, j.Name)
			if err != "" {
				return nil, ingest.ErrorAt(file, data, e.Off, "interface %s, address %d: %s", j.Name, k+1, err)
			}
			a.Origin = ifc.Origin
			ifc.Addrs = append(ifc.Addrs, a)
		}
		out = append(out, ifc)
	}
	for _, ifc := range out {
		if ifc.Master != "" {
			for _, m := range out {
				if m.Name == ifc.Master && !explicit[m.Name] && m.Kind != model.IfLoopback {
					m.Kind = model.IfBridge
				}
			}
		}
	}
	return out, nil
}

// addrInfo reads one addr_info object.
func addrInfo(ai map[string]json.RawMessage, ifname string) (model.IfAddr, string) {
	str := func(k string) string {
		var s string
		if v, ok := ai[k]; ok {
			json.Unmarshal(v, &s)
		}
		return s
	}
	fam := str("family")
	v6 := fam == "inet6"
	if fam != "inet" && !v6 {
		return model.IfAddr{}, fmt.Sprintf("family %q: expected inet or inet6", fam)
	}
	famOK := func(x netip.Addr) bool { return x.Is6() == v6 && !x.Is4In6() && x.Zone() == "" }
	local, err := netip.ParseAddr(str("local"))
	if err != nil || !famOK(local) {
		return model.IfAddr{}, fmt.Sprintf("local %q is not an %s address", str("local"), fam)
	}
	var plen int
	if v, ok := ai["prefixlen"]; !ok || json.Unmarshal(v, &plen) != nil || plen < 0 || plen > local.BitLen() {
		return model.IfAddr{}, "expected a prefixlen from 0 to the address length"
	}
	a := model.IfAddr{Scope: str("scope")}
	if peer := str("address"); peer != "" {
		// "local" with "address": a point-to-point peer; the length
		// applies to the peer, as in the text form "peer P/LEN".
		p, err := netip.ParseAddr(peer)
		if err != nil || !famOK(p) {
			return model.IfAddr{}, fmt.Sprintf("peer address %q is not an %s address", peer, fam)
		}
		a.Prefix = netip.PrefixFrom(local, local.BitLen())
		a.Peer = netip.PrefixFrom(p, plen)
	} else {
		a.Prefix = netip.PrefixFrom(local, plen)
	}
	if b := str("broadcast"); b != "" {
		x, err := netip.ParseAddr(b)
		if err != nil || !famOK(x) {
			return model.IfAddr{}, fmt.Sprintf("broadcast %q is not an %s address", b, fam)
		}
		a.Broadcast = x
	}
	var t bool
	if v, ok := ai["secondary"]; ok && json.Unmarshal(v, &t) == nil && t {
		a.Secondary = true
	}
	for _, k := range addrFlagKeys {
		if v, ok := ai[k]; ok && json.Unmarshal(v, &t) == nil && t {
			a.Flags = append(a.Flags, k)
		}
	}
	return a, ""
}

// scalar renders a JSON scalar as ip prints it in text: strings bare,
// numbers as written, null as "".
func scalar(v json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, true
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), true
	}
	if string(v) == "null" {
		return "", true
	}
	return "", false
}

// object decodes an element into its keys, in a fixed order of use.
func object(file string, data []byte, e ingest.JSONElem, what string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := ingest.DecodeElem(file, data, e, &m, what); err != nil {
		return nil, err
	}
	return m, nil
}

// textErr moves an iproute error about the rebuilt text line to the JSON
// object, keeping the message and naming the line it was read as.
func textErr(file string, data []byte, e ingest.JSONElem, text string, err error) error {
	msg := err.Error()
	if ie, ok := err.(*ingest.Error); ok {
		msg = ie.Msg
	}
	return ingest.ErrorAt(file, data, e.Off, "read as %q: %s", text, msg)
}

// ParseRoutes reads `ip -j route show [table all]` (and `ip -6 -j ...`),
// in one or more arrays. defaultTable is the table of routes without a
// "table" key (main).
func ParseRoutes(file string, r io.Reader, defaultTable int) ([]model.Route, error) {
	data, elems, err := read(file, r)
	if err != nil {
		return nil, err
	}
	var out []model.Route
	for _, e := range elems {
		m, err := object(file, data, e, "ip -j route")
		if err != nil {
			return nil, err
		}
		text, msg := routeText(m)
		if msg != "" {
			return nil, ingest.ErrorAt(file, data, e.Off, "%s", msg)
		}
		line, _ := ingest.LineAt(data, e.Off)
		rt, err := iproute.ParseRouteLine(file, line, text, defaultTable)
		if err != nil {
			return nil, textErr(file, data, e, text, err)
		}
		out = append(out, rt)
	}
	return out, nil
}

// routeText writes a route object as the `ip route` line it stands for.
func routeText(m map[string]json.RawMessage) (string, string) {
	var parts []string
	get := func(k string) (string, bool) {
		v, ok := m[k]
		if !ok {
			return "", false
		}
		s, ok := scalar(v)
		return s, ok
	}
	if t, _ := get("type"); t != "" && t != "unicast" {
		parts = append(parts, t)
	}
	dst, ok := get("dst")
	if !ok || dst == "" {
		return "", "route without dst: expected the output of ip -j route"
	}
	parts = append(parts, dst)
	done := map[string]bool{"type": true, "dst": true}
	if gw, ok := get("gateway"); ok && gw != "" {
		parts = append(parts, "via", gw)
		done["gateway"] = true
	}
	if v, ok := m["via"]; ok {
		var via struct{ Family, Host string }
		if json.Unmarshal(v, &via) != nil || via.Host == "" {
			return "", "via: expected {\"family\": ..., \"host\": ...}"
		}
		parts = append(parts, "via", via.Family, via.Host)
		done["via"] = true
	}
	for _, k := range []struct{ key, word string }{{"dev", "dev"}, {"table", "table"}, {"protocol", "proto"},
		{"scope", "scope"}, {"prefsrc", "src"}, {"metric", "metric"}, {"pref", "pref"}, {"expires", "expires"}} {
		if s, ok := get(k.key); ok && s != "" {
			parts = append(parts, k.word, s)
		}
		done[k.key] = true
	}
	if v, ok := m["flags"]; ok {
		var fl []string
		if json.Unmarshal(v, &fl) != nil {
			return "", "flags: expected a list of strings"
		}
		parts = append(parts, fl...)
		done["flags"] = true
	}
	if v, ok := m["metrics"]; ok {
		var list []map[string]json.RawMessage
		var one map[string]json.RawMessage
		if json.Unmarshal(v, &list) != nil {
			if json.Unmarshal(v, &one) != nil {
				return "", "metrics: expected an object or a list of objects"
			}
			list = []map[string]json.RawMessage{one}
		}
		for _, mm := range list {
			for _, k := range sortedKeys(mm) {
				s, _ := scalar(mm[k])
				parts = append(parts, k, s)
			}
		}
		done["metrics"] = true
	}
	if v, ok := m["nexthops"]; ok {
		var nhs []map[string]json.RawMessage
		if json.Unmarshal(v, &nhs) != nil {
			return "", "nexthops: expected a list of objects"
		}
		for _, nh := range nhs {
			parts = append(parts, "nexthop")
			for _, k := range []string{"gateway", "dev", "weight"} {
				if s, ok := scalar(nh[k]); ok && s != "" {
					w := map[string]string{"gateway": "via", "dev": "dev", "weight": "weight"}[k]
					parts = append(parts, w, s)
				}
			}
			var fl []string
			if json.Unmarshal(nh["flags"], &fl) == nil {
				parts = append(parts, fl...)
			}
		}
		done["nexthops"] = true
	}
	// Keys the text form would carry as keywords the model may not
	// represent (encap, src, tos, nhid ...): pass them on so the text
	// parser names them.
	for _, k := range sortedKeys(m) {
		if done[k] || k == "cache" || k == "uid" {
			continue
		}
		s, _ := scalar(m[k])
		if k == "src" {
			// A source-specific route: JSON "src" is the text's
			// "from" (the preferred source is "prefsrc").
			k = "from"
		}
		parts = append(parts, k)
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " "), ""
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ParseNeigh reads `ip -j neigh`.
func ParseNeigh(file string, r io.Reader) ([]model.Neighbor, error) {
	data, elems, err := read(file, r)
	if err != nil {
		return nil, err
	}
	var out []model.Neighbor
	for _, e := range elems {
		m, err := object(file, data, e, "ip -j neigh")
		if err != nil {
			return nil, err
		}
		var parts []string
		for _, k := range []string{"dst", "dev", "lladdr"} {
			s, _ := scalar(m[k])
			if s == "" {
				if k == "lladdr" {
					continue
				}
				return nil, ingest.ErrorAt(file, data, e.Off, "neighbor without %s: expected the output of ip -j neigh", k)
			}
			if k != "dst" {
				parts = append(parts, k)
			}
			parts = append(parts, s)
		}
		if _, ok := m["router"]; ok {
			parts = append(parts, "router")
		}
		if _, ok := m["proxy"]; ok {
			parts = append(parts, "proxy")
		}
		var states []string
		if v, ok := m["state"]; ok && json.Unmarshal(v, &states) != nil {
			return nil, ingest.ErrorAt(file, data, e.Off, "state: expected a list such as [\"REACHABLE\"]")
		}
		parts = append(parts, states...)
		text := strings.Join(parts, " ")
		line, _ := ingest.LineAt(data, e.Off)
		ns, err := iproute.ParseNeigh(file, strings.NewReader(text))
		if err != nil {
			return nil, textErr(file, data, e, text, err)
		}
		for i := range ns {
			ns[i].Origin = model.Origin{File: file, Line: line, Text: text}
		}
		out = append(out, ns...)
	}
	return out, nil
}

// ParseRules reads `ip -j rule`.
func ParseRules(file string, r io.Reader) ([]model.PolicyRule, error) {
	data, elems, err := read(file, r)
	if err != nil {
		return nil, err
	}
	var out []model.PolicyRule
	for _, e := range elems {
		m, err := object(file, data, e, "ip -j rule")
		if err != nil {
			return nil, err
		}
		get := func(k string) string { s, _ := scalar(m[k]); return s }
		prio := get("priority")
		if prio == "" {
			return nil, ingest.ErrorAt(file, data, e.Off, "rule without priority: expected the output of ip -j rule")
		}
		parts := []string{prio + ":"}
		done := map[string]bool{"priority": true}
		if _, ok := m["not"]; ok {
			parts = append(parts, "not")
			done["not"] = true
		}
		for _, x := range []struct{ key, lenKey, word string }{{"src", "srclen", "from"}, {"dst", "dstlen", "to"}} {
			v := get(x.key)
			done[x.key], done[x.lenKey] = true, true
			if v == "" {
				if x.key == "src" {
					parts = append(parts, "from", "all")
				}
				continue
			}
			if l := get(x.lenKey); l != "" {
				v += "/" + l
			}
			parts = append(parts, x.word, v)
		}
		if fw := get("fwmark"); fw != "" {
			if mask := get("fwmask"); mask != "" {
				fw += "/" + mask
			}
			parts = append(parts, "fwmark", fw)
		}
		done["fwmark"], done["fwmask"] = true, true
		for _, k := range []string{"iif", "oif", "ipproto", "sport", "dport"} {
			if v := get(k); v != "" {
				parts = append(parts, k, v)
			}
			done[k] = true
		}
		// Keys the model may not represent go on to the text parser.
		for _, k := range sortedKeys(m) {
			if done[k] || k == "table" || k == "action" || k == "target" || k == "protocol" || k == "flags" {
				continue
			}
			parts = append(parts, k)
			if s := get(k); s != "" {
				parts = append(parts, s)
			}
		}
		switch act := get("action"); act {
		case "", "to_tbl", "lookup":
			t := get("table")
			if t == "" {
				return nil, ingest.ErrorAt(file, data, e.Off, "rule without table or action")
			}
			parts = append(parts, "lookup", t)
		case "goto":
			parts = append(parts, "goto", get("target"))
		default:
			parts = append(parts, act)
		}
		text := strings.Join(parts, " ")
		line, _ := ingest.LineAt(data, e.Off)
		rs, err := iproute.ParseRules(file, strings.NewReader(text))
		if err != nil {
			return nil, textErr(file, data, e, text, err)
		}
		for i := range rs {
			rs[i].Origin = model.Origin{File: file, Line: line, Text: text}
		}
		out = append(out, rs...)
	}
	return out, nil
}

// ParseFDB reads `bridge -j fdb`.
func ParseFDB(file string, r io.Reader) ([]model.FDBEntry, error) {
	data, elems, err := read(file, r)
	if err != nil {
		return nil, err
	}
	var out []model.FDBEntry
	for _, e := range elems {
		var j struct {
			MAC    string   `json:"mac"`
			Dev    string   `json:"ifname"`
			Master string   `json:"master"`
			VLAN   int      `json:"vlan"`
			State  string   `json:"state"`
			Flags  []string `json:"flags"`
			Dst    string   `json:"dst"`
		}
		if err := ingest.DecodeElem(file, data, e, &j, "bridge -j fdb"); err != nil {
			return nil, err
		}
		hw, err := net.ParseMAC(j.MAC)
		if err != nil || len(hw) != 6 || j.Dev == "" {
			return nil, ingest.ErrorAt(file, data, ingest.FieldAt(e, "mac", j.MAC), "fdb entry %q on %q: expected a MAC address and an ifname", j.MAC, j.Dev)
		}
		line, _ := ingest.LineAt(data, e.Off)
		text := hw.String() + " dev " + j.Dev
		if j.VLAN != 0 {
			text += " vlan " + strconv.Itoa(j.VLAN)
		}
		if j.Master != "" {
			text += " master " + j.Master
		}
		if slices.Contains(j.Flags, "self") {
			text += " self"
		}
		if j.State != "" {
			text += " " + j.State
		}
		f := model.FDBEntry{MAC: hw.String(), Dev: j.Dev, Master: j.Master, VLAN: j.VLAN, State: j.State,
			Self: slices.Contains(j.Flags, "self"), Origin: model.Origin{File: file, Line: line, Text: text}}
		out = append(out, f)
	}
	return out, nil
}

// BridgePort is one entry of `bridge -j link`.
type BridgePort struct {
	Dev, Master string
	// State is the STP port state: forwarding, blocking, disabled ...
	State string
	// Hairpin is the port's hairpin mode, when `bridge -d -j link`
	// printed it.
	Hairpin *bool
	Origin  model.Origin
}

// ParseBridgeLink reads `bridge -j link`.
func ParseBridgeLink(file string, r io.Reader) ([]BridgePort, error) {
	data, elems, err := read(file, r)
	if err != nil {
		return nil, err
	}
	var out []BridgePort
	for _, e := range elems {
		var j struct {
			Dev     string `json:"ifname"`
			Master  string `json:"master"`
			State   string `json:"state"`
			Hairpin *bool  `json:"hairpin"`
		}
		if err := ingest.DecodeElem(file, data, e, &j, "bridge -j link"); err != nil {
			return nil, err
		}
		if j.Dev == "" || j.Master == "" {
			return nil, ingest.ErrorAt(file, data, e.Off, "bridge port without ifname or master: expected the output of bridge -j link")
		}
		switch j.State {
		case "disabled", "listening", "learning", "forwarding", "blocking", "":
		default:
			return nil, ingest.ErrorAt(file, data, ingest.FieldAt(e, "state", j.State), "port %s: state %q: expected disabled, listening, learning, forwarding or blocking", j.Dev, j.State)
		}
		line, _ := ingest.LineAt(data, e.Off)
		text := j.Dev + " master " + j.Master
		if j.State != "" {
			text += " state " + j.State
		}
		out = append(out, BridgePort{Dev: j.Dev, Master: j.Master, State: j.State, Hairpin: j.Hairpin, Origin: model.Origin{File: file, Line: line, Text: text}})
	}
	return out, nil
}
