package iproute

import (
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
)

// detailKinds are the link kinds `ip -d addr` prints at the start of the
// line after link/...: when present they say exactly what a device is, so
// the name heuristics are not needed.
var detailKinds = map[string]model.InterfaceKind{
	"veth": model.IfVeth, "bridge": model.IfBridge, "dummy": model.IfDummy,
	"tun":  model.IfTap, // refined by "type tun|tap" on the same line
	"bond": model.IfEthernet, "team": model.IfEthernet, "vlan": model.IfEthernet,
	"macvlan": model.IfEthernet, "macvtap": model.IfEthernet, "ipvlan": model.IfEthernet,
	"ipvtap": model.IfEthernet, "vxlan": model.IfEthernet, "geneve": model.IfEthernet,
	"gretap": model.IfEthernet, "ip6gretap": model.IfEthernet, "erspan": model.IfEthernet,
	"ip6erspan": model.IfEthernet, "macsec": model.IfEthernet, "hsr": model.IfEthernet,
	"bareudp": model.IfUnknown, "ifb": model.IfUnknown, "gre": model.IfUnknown,
	"ip6gre": model.IfUnknown, "ipip": model.IfUnknown, "sit": model.IfUnknown,
	"ip6tnl": model.IfUnknown, "vti": model.IfUnknown, "vti6": model.IfUnknown,
	"wireguard": model.IfUnknown, "vrf": model.IfUnknown, "openvswitch": model.IfUnknown,
	"nlmon": model.IfUnknown, "netdevsim": model.IfEthernet, "xfrm": model.IfUnknown,
	"can": model.IfUnknown, "vcan": model.IfUnknown, "batadv": model.IfUnknown,
	"amt": model.IfUnknown, "gtp": model.IfUnknown, "rmnet": model.IfUnknown,
	"virt_wifi": model.IfEthernet, "netkit": model.IfUnknown,
}

// addrFlags are the address flags ip addr prints after "scope X".
var addrFlags = map[string]bool{
	"temporary": true, "deprecated": true, "tentative": true, "dadfailed": true,
	"optimistic": true, "home": true, "nodad": true, "mngtmpaddr": true,
	"noprefixroute": true, "autojoin": true, "dynamic": true, "permanent": true,
	"stable-privacy": true,
}

// ifState is what the parser tracks about an interface beyond the model.
type ifState struct {
	ifc      *model.Interface
	peer     string // the part after @ in "eth0@if7"
	state    string // operstate from "state X"
	linkType string // after "link/"
	explicit bool   // kind came from an `ip -d` kind line
}

// ParseAddr parses `ip addr show` output (also `ip a`, `ip -4 addr`,
// `ip addr show dev X`, `ip -d addr`) into interfaces in the order printed.
//
// Interface kinds cannot always be read from `ip addr`: link/loopback is
// a loopback, and an `ip -d` kind line ("veth", "bridge", "tun ... type
// tap") is exact. Otherwise these documented defaults apply, which a
// snapshot's topology.yaml can override:
//
//   - a name with a peer index ("eth0@if7") or starting with "veth": veth;
//   - a name starting with "vnet" or "tap": a tap (a VM's NIC on the host);
//   - a name starting with "virbr", "docker", "br-" or "br" and without a
//     master: a bridge;
//   - a name starting with "dummy": dummy;
//   - otherwise ether for link/ether, unknown for other link types
//     (link/none is an L3 tun, which the model has no kind for);
//   - any device that another device names as its master is a bridge,
//     unless `ip -d` said what it is (a bond, a vrf ...).
//
// Up is true when the flags hold UP and LOWER_UP, there is no NO-CARRIER
// and the state is not DOWN, LOWERLAYERDOWN or NOTPRESENT. For an address with a peer ("inet 10.0.0.1
// peer 10.0.0.2/32"), Prefix is the local address as a host prefix and
// Peer carries the prefix length, as the kernel applies it to the peer.
func ParseAddr(file string, r io.Reader) ([]*model.Interface, error) {
	lines, err := readLines(file, r)
	if err != nil {
		return nil, err
	}
	var (
		all    []*ifState
		cur    *ifState
		byName = map[string]int{}
		byIdx  = map[int]int{}
	)
	for _, l := range lines {
		if !l.indented {
			st, err := parseAddrHeader(file, l)
			if err != nil {
				return nil, err
			}
			if prev, ok := byName[st.ifc.Name]; ok {
				return nil, errf(file, l, "interface %s is listed twice (first at line %d)", st.ifc.Name, prev)
			}
			if prev, ok := byIdx[st.ifc.Index]; ok {
				return nil, errf(file, l, "interface index %d is listed twice (first at line %d)", st.ifc.Index, prev)
			}
			byName[st.ifc.Name] = l.num
			byIdx[st.ifc.Index] = l.num
			all = append(all, st)
			cur = st
			continue
		}
		if cur == nil {
			return nil, errf(file, l, "indented line before any interface header; expected a line like \"2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 ...\"")
		}
		if err := parseAddrDetail(file, l, cur); err != nil {
			return nil, err
		}
	}

	masters := map[string]bool{}
	for _, st := range all {
		if st.ifc.Master != "" {
			masters[st.ifc.Master] = true
		}
	}
	out := make([]*model.Interface, 0, len(all))
	for _, st := range all {
		ifc := st.ifc
		ifc.Up = slices.Contains(ifc.Flags, "UP") && slices.Contains(ifc.Flags, "LOWER_UP") &&
			!slices.Contains(ifc.Flags, "NO-CARRIER") &&
			st.state != "DOWN" && st.state != "LOWERLAYERDOWN" && st.state != "NOTPRESENT"
		if !st.explicit {
			ifc.Kind = guessKind(st)
			if masters[ifc.Name] && ifc.Kind != model.IfLoopback {
				ifc.Kind = model.IfBridge
			}
		}
		out = append(out, ifc)
	}
	return out, nil
}

// guessKind applies the documented name heuristics.
func guessKind(st *ifState) model.InterfaceKind {
	name := st.ifc.Name
	switch st.linkType {
	case "loopback":
		return model.IfLoopback
	case "ether", "":
	default:
		return model.IfUnknown
	}
	hasPrefix := func(ps ...string) bool {
		for _, p := range ps {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(st.peer, "if") && isDigits(st.peer[2:]), hasPrefix("veth"):
		return model.IfVeth
	case hasPrefix("vnet", "tap"):
		return model.IfTap
	case st.ifc.Master == "" && hasPrefix("virbr", "docker", "br-", "br"):
		return model.IfBridge
	case hasPrefix("dummy"):
		return model.IfDummy
	}
	if st.linkType == "" {
		return model.IfUnknown
	}
	return model.IfEthernet
}

// parseAddrHeader parses "2: enp7s0: <BROADCAST,...> mtu 1500 qdisc X
// master Y state UP group default qlen 1000". Keywords other than mtu,
// master and state (qdisc, group, qlen, mode, link-netnsid ...) do not
// change how packets flow and are skipped.
func parseAddrHeader(file string, l line) (*ifState, error) {
	f := l.fields
	if len(f) < 2 || !strings.HasSuffix(f[0], ":") || !isDigits(f[0][:len(f[0])-1]) {
		if len(f) >= 2 && !strings.HasSuffix(f[0], ":") && isOperState(f[1]) {
			return nil, errf(file, l, "this looks like `ip -brief addr` output, which lacks MACs, MTUs and flags; paste `ip addr show` instead")
		}
		return nil, errf(file, l, "expected an interface header like \"2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 ...\" (details of an interface are indented)")
	}
	idx, ok := atoi(f[0][:len(f[0])-1])
	if !ok || idx == 0 {
		return nil, errf(file, l, "interface index %q is not a positive number", f[0][:len(f[0])-1])
	}
	if !strings.HasSuffix(f[1], ":") || len(f[1]) < 2 {
		return nil, errf(file, l, "expected the interface name followed by ':' after the index, got %q", f[1])
	}
	name, peer, _ := strings.Cut(f[1][:len(f[1])-1], "@")
	if name == "" || strings.ContainsAny(name, "/:") {
		return nil, errf(file, l, "invalid interface name %q", name)
	}
	st := &ifState{ifc: &model.Interface{Name: name, Index: idx, Origin: origin(file, l)}, peer: peer}
	if p, ok := strings.CutPrefix(peer, "if"); ok {
		// "eth0@if7": the veth peer's index (in the peer's namespace
		// when link-netnsid is given).
		if n, ok := atoi(p); ok {
			st.ifc.PeerIndex = n
		}
	}
	i := 2
	if i < len(f) && strings.HasPrefix(f[i], "<") {
		if !strings.HasSuffix(f[i], ">") {
			return nil, errf(file, l, "unterminated flag list %q; expected <FLAG,FLAG,...>", f[i])
		}
		if body := f[i][1 : len(f[i])-1]; body != "" {
			st.ifc.Flags = strings.Split(body, ",")
		}
		i++
	} else {
		return nil, errf(file, l, "expected the flag list <...> after the interface name")
	}
	for ; i < len(f); i++ {
		key := f[i]
		switch key {
		case "mtu", "master", "state", "qdisc", "group", "qlen", "mode", "link-netnsid",
			"link-netns", "netns", "new-netnsid", "new-ifindex", "link-index", "parentbus",
			"parentdev", "alias", "portid", "portname", "switchid", "event", "numtxqueues", "numrxqueues":
		default:
			continue
		}
		if i+1 >= len(f) {
			return nil, errf(file, l, "missing value after %q", key)
		}
		i++
		val := f[i]
		switch key {
		case "mtu":
			n, ok := atoi(val)
			if !ok || n == 0 {
				return nil, errf(file, l, "mtu %q is not a positive number", val)
			}
			st.ifc.MTU = n
		case "master":
			st.ifc.Master = val
		case "state":
			st.state = val
		case "link-netnsid":
			st.ifc.LinkNetns = val
		}
	}
	return st, nil
}

func isOperState(s string) bool {
	switch s {
	case "UP", "DOWN", "UNKNOWN", "LOWERLAYERDOWN", "DORMANT", "NOTPRESENT", "TESTING":
		return true
	}
	return false
}

// parseAddrDetail parses one indented line under an interface header.
func parseAddrDetail(file string, l line, st *ifState) error {
	f := l.fields
	key := f[0]
	switch {
	case strings.HasPrefix(key, "link/"):
		if st.linkType != "" {
			return errf(file, l, "second link/ line for interface %s", st.ifc.Name)
		}
		st.linkType = key[len("link/"):]
		if st.linkType == "" {
			return errf(file, l, "empty link type after link/")
		}
		if st.linkType == "ether" || st.linkType == "loopback" {
			if len(f) < 2 {
				return errf(file, l, "missing MAC address after %s", key)
			}
			mac, ok := canonicalMAC(f[1])
			if !ok {
				return errf(file, l, "%q is not a MAC address", f[1])
			}
			st.ifc.MAC = mac
		}
		if st.linkType == "loopback" && !st.explicit {
			st.ifc.Kind = model.IfLoopback
		}
		// `ip addr` prints the peer's namespace at the end of this line.
		for i := 2; i+1 < len(f); i++ {
			if f[i] == "link-netnsid" {
				st.ifc.LinkNetns = f[i+1]
			}
		}
		return nil
	case key == "inet" || key == "inet6":
		a, err := parseIfAddr(file, l, st.ifc.Name)
		if err != nil {
			return err
		}
		st.ifc.Addrs = append(st.ifc.Addrs, a)
		return nil
	case key == "bridge_slave":
		// `ip -d`: the port's STP state and hairpin mode.
		for i := 1; i+1 < len(f); i++ {
			switch f[i] {
			case "state":
				if st.ifc.PortState == "" {
					st.ifc.PortState = f[i+1]
				}
			case "hairpin":
				on := f[i+1] == "on"
				st.ifc.Hairpin = &on
			}
		}
		return nil
	case key == "valid_lft", key == "altname", key == "alias", key == "vf",
		key == "RX:", key == "TX:", key == "RX", key == "TX",
		strings.HasSuffix(key, "_slave"), allDigits(f):
		// Lifetimes, names, SR-IOV VFs and statistics do not route packets.
		return nil
	}
	if kind, ok := detailKinds[key]; ok {
		if key == "tun" {
			kind = model.IfUnknown // "type tun": an L3 device
			for i := 1; i+1 < len(f); i++ {
				if f[i] == "type" && f[i+1] == "tap" {
					kind = model.IfTap
				}
			}
		}
		st.ifc.Kind = kind
		st.explicit = true
		return nil
	}
	return errf(file, l, "unrecognised line %q under interface %s; expected link/..., inet, inet6, valid_lft or altname", key, st.ifc.Name)
}

func allDigits(f []string) bool {
	for _, s := range f {
		if !isDigits(s) {
			return false
		}
	}
	return true
}

// parseIfAddr parses "inet 10.0.2.21/24 brd 10.0.2.255 scope global
// secondary noprefixroute enp7s0:1" and "inet6 fe80::1/64 scope link".
func parseIfAddr(file string, l line, ifname string) (model.IfAddr, error) {
	f := l.fields
	v6 := f[0] == "inet6"
	a := model.IfAddr{Origin: origin(file, l)}
	if len(f) < 2 {
		return a, errf(file, l, "missing address after %s", f[0])
	}
	famOK := func(x netip.Addr) bool { return x.Is6() == v6 && !x.Is4In6() }
	var local netip.Addr
	if strings.Contains(f[1], "/") {
		p, err := netip.ParsePrefix(f[1])
		if err != nil || p.Addr().Zone() != "" || !famOK(p.Addr()) {
			return a, errf(file, l, "%q is not an %s address with a prefix length", f[1], f[0])
		}
		a.Prefix = p
	} else {
		x, ok := parseAddr(f[1])
		if !ok || !famOK(x) {
			return a, errf(file, l, "%q is not an %s address", f[1], f[0])
		}
		local = x
	}
	for i := 2; i < len(f); i++ {
		tok := f[i]
		switch tok {
		case "peer", "brd", "scope", "metric", "proto", "flags", "label":
			if i+1 >= len(f) {
				return a, errf(file, l, "missing value after %q", tok)
			}
			i++
			val := f[i]
			switch tok {
			case "peer":
				p, err := netip.ParsePrefix(val)
				if err != nil || p.Addr().Zone() != "" || !famOK(p.Addr()) {
					return a, errf(file, l, "peer %q is not an %s prefix", val, f[0])
				}
				a.Peer = p
			case "brd":
				b, ok := parseAddr(val)
				if !ok || !famOK(b) {
					return a, errf(file, l, "brd %q is not an %s address", val, f[0])
				}
				a.Broadcast = b
			case "scope":
				a.Scope = val
			}
		case "secondary":
			a.Secondary = true
		default:
			if addrFlags[tok] {
				a.Flags = append(a.Flags, tok)
				continue
			}
			// ip prints the label (ifname or ifname:alias) last on inet lines.
			if i == len(f)-1 && !v6 && (tok == ifname || strings.HasPrefix(tok, ifname+":")) {
				continue
			}
			return a, errf(file, l, "unknown keyword %q in address line; expected peer, brd, scope, address flags or the label", tok)
		}
	}
	switch {
	case a.Prefix.IsValid() && a.Peer.IsValid():
		return a, errf(file, l, "address with both a prefix length and a peer; expected \"inet LOCAL peer PEER/LEN\"")
	case local.IsValid():
		// With a peer, ip prints the local address bare and the prefix
		// length on the peer; without one the length is the host length.
		a.Prefix = netip.PrefixFrom(local, local.BitLen())
	}
	return a, nil
}
