package collect

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/pktflow/pktflow/internal/nsthread"
)

// nlState is what netlink says about one namespace, in the shapes the
// renderers take.
type nlState struct {
	links  []linkInfo
	addrs  []addrInfo
	routes []routeInfo // IPv4 then IPv6, in dump order
	rules4 []ruleInfo
	rules6 []ruleInfo
	neighs []neighInfo
}

// nlConn is a namespace opened for reading: a netlink handle for the
// library's typed dumps and a raw route socket for the attributes the
// library does not report (qdisc, broadcast address, rule actions).
type nlConn struct {
	ns   netns.NsHandle
	h    *netlink.Handle
	sock *nl.NetlinkSocket
}

// openNS opens the namespace at path. The sockets are created on a
// locked thread that is thrown away afterwards (the goroutine exits
// without unlocking it), so a thread whose namespace the library switched
// can never run unrelated code, even if switching back failed.
//
// The current namespace (current set) is opened without switching:
// joining a namespace needs CAP_SYS_ADMIN, reading one's own does not.
func openNS(path string, current bool) (*nlConn, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, err
	}
	c := &nlConn{ns: ns}
	at := ns
	if current {
		at = netns.None()
	}
	err = nsthread.Throwaway(func() error {
		h, err := netlink.NewHandleAt(at, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink handle: %w", err)
		}
		c.h = h
		s, err := nl.GetNetlinkSocketAt(at, netns.None(), unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		if err := s.SetReceiveTimeout(&nl.SocketTimeoutTv); err != nil {
			s.Close()
			return err
		}
		c.sock = s
		return nil
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *nlConn) Close() {
	if c.h != nil {
		c.h.Close()
	}
	if c.sock != nil {
		c.sock.Close()
	}
	c.ns.Close()
}

// retry runs a dump again when the kernel says it was interrupted by a
// concurrent change, so the result is consistent.
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for i := 0; i < 5; i++ {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// rawDump sends one dump request on the raw socket.
func (c *nlConn) rawDump(typ int, data nl.NetlinkRequestData, res uint16) ([][]byte, error) {
	return retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(typ, unix.NLM_F_DUMP)
		req.AddData(data)
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: c.sock}}
		msgs, err := req.Execute(unix.NETLINK_ROUTE, res)
		if errors.Is(err, nl.ErrDumpInterrupted) {
			err = netlink.ErrDumpInterrupted
		}
		return msgs, err
	})
}

// read dumps links, addresses, routes of every table, rules and
// neighbors.
func (c *nlConn) read() (*nlState, error) {
	st := &nlState{}
	var err error
	if st.links, err = c.readLinks(); err != nil {
		return nil, fmt.Errorf("links: %w", err)
	}
	if st.addrs, err = c.readAddrs(); err != nil {
		return nil, fmt.Errorf("addresses: %w", err)
	}
	names := map[int]string{}
	for _, l := range st.links {
		names[l.Index] = l.Name
	}
	if st.routes, err = c.readRoutes(names); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	if st.rules4, err = c.readRules(unix.AF_INET); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if st.rules6, err = c.readRules(unix.AF_INET6); err != nil {
		return nil, fmt.Errorf("IPv6 rules: %w", err)
	}
	types := map[int]uint16{}
	for _, l := range st.links {
		types[l.Index] = l.Type
	}
	if st.neighs, err = c.readNeighs(names, types); err != nil {
		return nil, fmt.Errorf("neighbors: %w", err)
	}
	return st, nil
}

func (c *nlConn) readLinks() ([]linkInfo, error) {
	typed, err := retry(c.h.LinkList)
	if err != nil {
		return nil, err
	}
	kinds := map[int]netlink.Link{}
	for _, l := range typed {
		kinds[l.Attrs().Index] = l
	}
	msgs, err := c.rawDump(unix.RTM_GETLINK, nl.NewIfInfomsg(unix.AF_UNSPEC), unix.RTM_NEWLINK)
	if err != nil {
		return nil, err
	}
	out := make([]linkInfo, 0, len(msgs))
	for _, m := range msgs {
		ifi := nl.DeserializeIfInfomsg(m)
		attrs, err := nl.ParseRouteAttr(m[ifi.Len():])
		if err != nil {
			return nil, err
		}
		l := linkInfo{Index: int(ifi.Index), Flags: ifi.Flags, Type: ifi.Type, Oper: -1, Group: -1, TxQLen: -1}
		for _, a := range attrs {
			v := a.Value
			switch a.Attr.Type &^ unix.NLA_F_NESTED {
			case unix.IFLA_IFNAME:
				l.Name = cstring(v)
			case unix.IFLA_MTU:
				l.MTU, l.HasMTU = int(u32(v)), true
			case unix.IFLA_QDISC:
				l.Qdisc = cstring(v)
			case unix.IFLA_MASTER:
				l.Master = int(u32(v))
			case unix.IFLA_OPERSTATE:
				if len(v) > 0 {
					l.Oper = int(v[0])
				}
			case unix.IFLA_GROUP:
				l.Group = int(u32(v))
			case unix.IFLA_TXQLEN:
				l.TxQLen = int(u32(v))
			case unix.IFLA_LINK:
				l.Link, l.HasLink = int(u32(v)), true
			case unix.IFLA_LINK_NETNSID:
				l.NSID, l.HasNSID = int(int32(u32(v))), true
			case unix.IFLA_ADDRESS:
				l.Addr = append([]byte(nil), v...)
			case unix.IFLA_BROADCAST:
				l.Brd = append([]byte(nil), v...)
			case unix.IFLA_PERM_ADDRESS:
				l.PermAddr = append([]byte(nil), v...)
			case unix.IFLA_PROP_LIST:
				if sub, err := nl.ParseRouteAttr(v); err == nil {
					for _, s := range sub {
						if s.Attr.Type == unix.IFLA_ALT_IFNAME {
							l.AltNames = append(l.AltNames, cstring(s.Value))
						}
					}
				}
			}
		}
		if tl, ok := kinds[l.Index]; ok {
			switch t := tl.(type) {
			case *netlink.Tuntap:
				l.Kind = "tun"
				l.TunTap = "tun"
				if t.Mode == netlink.TUNTAP_MODE_TAP {
					l.TunTap = "tap"
				}
			case *netlink.Device, *netlink.GenericLink:
				if t.Type() != "device" {
					l.Kind = t.Type()
				}
			default:
				l.Kind = tl.Type()
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return nl.NativeEndian().Uint32(b)
}

func (c *nlConn) readAddrs() ([]addrInfo, error) {
	list, err := retry(func() ([]netlink.Addr, error) { return c.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	out := make([]addrInfo, 0, len(list))
	for _, a := range list {
		if a.IPNet == nil {
			continue
		}
		v4 := len(a.IP) == net.IPv4len
		ai := addrInfo{Family: unix.AF_INET6, Index: a.LinkIndex, Local: addrOf(a.IP, v4), Scope: a.Scope,
			Flags: uint32(a.Flags), Label: a.Label, Valid: uint32(a.ValidLft), Preferred: uint32(a.PreferedLft),
			HasCache: true}
		if v4 {
			ai.Family = unix.AF_INET
		}
		ai.PrefixLen, _ = a.Mask.Size()
		if a.Peer != nil {
			ai.Address = addrOf(a.Peer.IP, v4)
			ai.PrefixLen, _ = a.Peer.Mask.Size()
		}
		ai.Brd = addrOf(a.Broadcast, v4)
		out = append(out, ai)
	}
	return out, nil
}

func (c *nlConn) readRoutes(names map[int]string) ([]routeInfo, error) {
	var out []routeInfo
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := retry(func() ([]netlink.Route, error) {
			return c.h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return nil, err
		}
		v4 := fam == netlink.FAMILY_V4
		for _, r := range list {
			ri := routeInfo{Family: unix.AF_INET, Type: r.Type, Table: r.Table, Protocol: int(r.Protocol),
				Scope: int(r.Scope), Flags: uint32(r.Flags), Realm: r.Realm, Tos: r.Tos,
				Gw: addrOf(r.Gw, v4), PrefSrc: addrOf(r.Src, v4), Metric: r.Priority}
			if !v4 {
				ri.Family = unix.AF_INET6
				ri.HasPrio = true
				ri.Pref = "medium"
			} else {
				ri.HasPrio = r.Priority != 0
			}
			// The kernel sends no RTA_DST for a default route; the library
			// reports 0.0.0.0/0 or ::/0 then.
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones > 0 {
					ri.Dst = netip.PrefixFrom(addrOf(r.Dst.IP, v4), ones)
					ri.HasDst = true
				}
			}
			if r.LinkIndex != 0 {
				ri.Dev = ifName(names, r.LinkIndex)
			}
			if via, ok := r.Via.(*netlink.Via); ok && via != nil {
				ri.Via = addrOf(via.Addr, via.AddrFamily == netlink.FAMILY_V4)
			}
			for _, nh := range r.MultiPath {
				n := nexthopInfo{Gw: addrOf(nh.Gw, v4), Dev: ifName(names, nh.LinkIndex), Weight: nh.Hops + 1, Flags: uint32(nh.Flags)}
				if via, ok := nh.Via.(*netlink.Via); ok && via != nil {
					n.Via = addrOf(via.Addr, via.AddrFamily == netlink.FAMILY_V4)
				}
				ri.Nexthops = append(ri.Nexthops, n)
			}
			ri.Metrics = routeMetrics(r)
			out = append(out, ri)
		}
	}
	return out, nil
}

func ifName(names map[int]string, idx int) string {
	if n, ok := names[idx]; ok {
		return n
	}
	return fmt.Sprintf("if%d", idx)
}

// routeMetrics formats RTA_METRICS in print_rta_metrics' order.
func routeMetrics(r netlink.Route) []string {
	var out []string
	add := func(name string, v int, lock bool) {
		if v == 0 && !lock {
			return
		}
		s := name + " "
		if lock {
			s += "lock "
		}
		out = append(out, s+fmt.Sprint(v))
	}
	add("mtu", r.MTU, r.MTULock)
	add("window", r.Window, false)
	add("ssthresh", r.Ssthresh, false)
	add("cwnd", r.Cwnd, false)
	add("advmss", r.AdvMSS, false)
	add("reordering", r.Reordering, false)
	if r.Hoplimit != 0 && r.Hoplimit != -1 {
		add("hoplimit", r.Hoplimit, false)
	}
	add("initcwnd", r.InitCwnd, false)
	if r.Features&1 != 0 {
		out = append(out, "features ecn")
	}
	if r.RtoMin != 0 || r.RtoMinLock {
		s := "rto_min "
		if r.RtoMinLock {
			s += "lock "
		}
		out = append(out, fmt.Sprintf("%s%dms", s, r.RtoMin))
	}
	add("initrwnd", r.InitRwnd, false)
	add("quickack", r.QuickACK, false)
	if r.Congctl != "" {
		out = append(out, "congctl "+r.Congctl)
	}
	add("fastopen_no_cookie", r.FastOpenNoCookie, false)
	return out
}

// readRules dumps policy rules raw: the library does not report a rule's
// action (blackhole, unreachable, prohibit, nop).
func (c *nlConn) readRules(fam int) ([]ruleInfo, error) {
	req := &nl.RtMsg{RtMsg: unix.RtMsg{Family: uint8(fam)}}
	msgs, err := c.rawDump(unix.RTM_GETRULE, req, unix.RTM_NEWRULE)
	if err != nil {
		return nil, err
	}
	out := make([]ruleInfo, 0, len(msgs))
	for _, m := range msgs {
		h := nl.DeserializeRtMsg(m)
		if int(h.Family) != fam {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[h.Len():])
		if err != nil {
			return nil, err
		}
		r := ruleInfo{Family: fam, Tos: int(h.Tos), Action: int(h.Type), Table: int(h.Table),
			Invert: h.Flags&unix.FIB_RULE_INVERT != 0, SupPfx: -1, SupGroup: -1}
		v4 := fam == unix.AF_INET
		for _, a := range attrs {
			v := a.Value
			switch a.Attr.Type {
			case unix.FRA_PRIORITY:
				r.Priority = int(u32(v))
			case unix.FRA_SRC:
				r.Src, r.HasSrc = netip.PrefixFrom(addrOf(v, v4), int(h.Src_len)), true
			case unix.FRA_DST:
				r.Dst, r.HasDst = netip.PrefixFrom(addrOf(v, v4), int(h.Dst_len)), true
			case unix.FRA_FWMARK:
				r.Mark, r.HasMark = u32(v), true
			case unix.FRA_FWMASK:
				r.Mask, r.HasMask = u32(v), true
			case unix.FRA_IIFNAME:
				r.IIF = cstring(v)
			case unix.FRA_OIFNAME:
				r.OIF = cstring(v)
			case unix.FRA_UID_RANGE:
				if len(v) >= 8 {
					r.UIDRange, r.HasUID = [2]uint32{u32(v[0:4]), u32(v[4:8])}, true
				}
			case unix.FRA_IP_PROTO:
				if len(v) > 0 {
					r.IPProto = int(v[0])
				}
			case unix.FRA_SPORT_RANGE:
				if len(v) >= 4 {
					r.SPort = [2]uint16{nl.NativeEndian().Uint16(v[0:2]), nl.NativeEndian().Uint16(v[2:4])}
				}
			case unix.FRA_DPORT_RANGE:
				if len(v) >= 4 {
					r.DPort = [2]uint16{nl.NativeEndian().Uint16(v[0:2]), nl.NativeEndian().Uint16(v[2:4])}
				}
			case unix.FRA_TABLE:
				r.Table = int(u32(v))
			case unix.FRA_SUPPRESS_PREFIXLEN:
				r.SupPfx = int(int32(u32(v)))
			case unix.FRA_SUPPRESS_IFGROUP:
				r.SupGroup = int(int32(u32(v)))
			case unix.FRA_FLOW:
				r.Realm = int(u32(v))
			case unix.FRA_GOTO:
				r.Goto, r.HasGoto = int(u32(v)), true
			case unix.FRA_PROTOCOL:
				if len(v) > 0 {
					r.Protocol = int(v[0])
				}
			case unix.FRA_TUN_ID:
				if len(v) >= 8 {
					r.TunID = uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 |
						uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7])
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func (c *nlConn) readNeighs(names map[int]string, types map[int]uint16) ([]neighInfo, error) {
	list, err := retry(func() ([]netlink.Neigh, error) { return c.h.NeighList(0, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	var out []neighInfo
	for _, n := range list {
		if n.Family != unix.AF_INET && n.Family != unix.AF_INET6 || n.IP == nil {
			continue
		}
		ni := neighInfo{Family: n.Family, Addr: addrOf(n.IP, n.Family == unix.AF_INET), Dev: ifName(names, n.LinkIndex),
			State: n.State, Flags: n.Flags, LLType: types[n.LinkIndex]}
		switch {
		case n.HardwareAddr != nil:
			ni.LLAddr = n.HardwareAddr
		case n.LLIPAddr != nil:
			ni.LLAddr = n.LLIPAddr
		}
		if !showNeigh(ni) {
			continue
		}
		out = append(out, ni)
	}
	return out, nil
}

// nsid returns the id the namespace c knows the namespace at path by, or
// -1 when it has none. The lookup (RTM_GETNSID) never assigns one.
func (c *nlConn) nsid(path string) int {
	other, err := netns.GetFromPath(path)
	if err != nil {
		return -1
	}
	defer other.Close()
	id, err := c.h.GetNetNsIdByFd(int(other))
	if err != nil {
		return -1
	}
	return id
}
