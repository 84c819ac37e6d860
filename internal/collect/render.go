package collect

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// This file renders what netlink reports as the text iproute2 6.x prints
// (`ip addr show`, `ip -4 route show table all` and `ip -6 route show
// table all`, `ip rule`, `ip neigh`), so
// that a collected snapshot reads like one a person pasted. The layouts
// follow iproute2's print_linkinfo, print_addrinfo, print_route,
// print_rule and print_neigh, trailing blanks included. Two deliberate
// differences: routing tables other than local, main and default are
// printed as numbers (names come from the machine's rt_tables, which a
// snapshot does not carry), and an IPv6 route always says "pref medium"
// unless netlink said otherwise (the library does not report RTA_PREF).

// linkInfo is one RTM_NEWLINK message's attributes, as print_linkinfo
// uses them. Optional attributes have Has* flags.
type linkInfo struct {
	Index    int
	Name     string
	Flags    uint32 // ifi_flags
	Type     uint16 // ifi_type (ARPHRD_*)
	MTU      int
	HasMTU   bool
	Qdisc    string
	Master   int // 0: none
	Oper     int // -1: absent
	Group    int // -1: absent
	TxQLen   int // -1: absent
	HasLink  bool
	Link     int // IFLA_LINK
	HasNSID  bool
	NSID     int // IFLA_LINK_NETNSID
	Addr     []byte
	Brd      []byte
	PermAddr []byte
	AltNames []string
	Kind     string // IFLA_INFO_KIND ("veth", "bridge", "tun", ...); "" for a plain device
	TunTap   string // for Kind "tun": "tap" or "tun"
}

// addrInfo is one RTM_NEWADDR message.
type addrInfo struct {
	Family    int // unix.AF_INET or AF_INET6
	Index     int
	PrefixLen int
	Local     netip.Addr // IFA_LOCAL (or IFA_ADDRESS when absent)
	Address   netip.Addr // IFA_ADDRESS: the peer when it differs from Local
	Brd       netip.Addr
	Scope     int
	Flags     uint32
	Label     string
	Valid     uint32
	Preferred uint32
	HasCache  bool
}

var operStates = []string{"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"}

// linkFlagNames are ifi_flags in the order print_link_flags prints them.
var linkFlagNames = []struct {
	bit  uint32
	name string
}{
	{unix.IFF_LOOPBACK, "LOOPBACK"}, {unix.IFF_BROADCAST, "BROADCAST"}, {unix.IFF_POINTOPOINT, "POINTOPOINT"},
	{unix.IFF_MULTICAST, "MULTICAST"}, {unix.IFF_NOARP, "NOARP"}, {unix.IFF_ALLMULTI, "ALLMULTI"},
	{unix.IFF_PROMISC, "PROMISC"}, {unix.IFF_MASTER, "MASTER"}, {unix.IFF_SLAVE, "SLAVE"},
	{unix.IFF_DEBUG, "DEBUG"}, {unix.IFF_DYNAMIC, "DYNAMIC"}, {unix.IFF_AUTOMEDIA, "AUTOMEDIA"},
	{unix.IFF_PORTSEL, "PORTSEL"}, {unix.IFF_NOTRAILERS, "NOTRAILERS"}, {unix.IFF_UP, "UP"},
	{unix.IFF_LOWER_UP, "LOWER_UP"}, {unix.IFF_DORMANT, "DORMANT"}, {unix.IFF_ECHO, "ECHO"},
}

// arphrdNames are ll_types.c's names for the link types seen in practice.
var arphrdNames = map[uint16]string{
	unix.ARPHRD_NETROM: "netrom", unix.ARPHRD_ETHER: "ether", unix.ARPHRD_EETHER: "eether",
	unix.ARPHRD_IEEE802: "ieee802", unix.ARPHRD_INFINIBAND: "infiniband", unix.ARPHRD_SLIP: "slip",
	unix.ARPHRD_CAN: "can", unix.ARPHRD_PPP: "ppp", unix.ARPHRD_TUNNEL: "ipip",
	unix.ARPHRD_TUNNEL6: "tunnel6", unix.ARPHRD_LOOPBACK: "loopback", unix.ARPHRD_SIT: "sit",
	unix.ARPHRD_IPGRE: "gre", unix.ARPHRD_IEEE80211: "ieee802.11",
	unix.ARPHRD_IEEE80211_RADIOTAP: "ieee802.11/radiotap", unix.ARPHRD_IP6GRE: "gre6",
	unix.ARPHRD_NETLINK: "netlink", unix.ARPHRD_NONE: "none", unix.ARPHRD_VOID: "void",
}

func arphrdName(t uint16) string {
	if s, ok := arphrdNames[t]; ok {
		return s
	}
	return fmt.Sprintf("[%d]", t)
}

// llAddr prints a link-layer address as ll_addr_n2a does.
func llAddr(b []byte, typ uint16) string {
	switch {
	case len(b) == 4 && (typ == unix.ARPHRD_TUNNEL || typ == unix.ARPHRD_SIT || typ == unix.ARPHRD_IPGRE):
		return netip.AddrFrom4([4]byte(b)).String()
	case len(b) == 16 && (typ == unix.ARPHRD_TUNNEL6 || typ == unix.ARPHRD_IP6GRE):
		return netip.AddrFrom16([16]byte(b)).String()
	}
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}

// groupName is rtnl_group_n2a with the stock /etc/iproute2/group.
func groupName(g int) string {
	if g == 0 {
		return "default"
	}
	return strconv.Itoa(g)
}

// nsNamer names a peer namespace id as `ip` would ("link-netns NAME"
// when the id belongs to a named namespace), or "" to print the id.
type nsNamer func(nsid int) string

// renderAddrShow renders `ip addr show` for the links and addresses of
// one namespace, in the order given (the kernel's dump order).
func renderAddrShow(links []linkInfo, addrs []addrInfo, nsName nsNamer) string {
	byIdx := map[int]*linkInfo{}
	for i := range links {
		byIdx[links[i].Index] = &links[i]
	}
	name := func(idx int) string {
		if l := byIdx[idx]; l != nil {
			return l.Name
		}
		return "if" + strconv.Itoa(idx)
	}
	var b strings.Builder
	for _, l := range links {
		renderLinkHeader(&b, l, byIdx, name, nsName)
		for _, a := range addrs {
			if a.Index == l.Index {
				renderAddr(&b, a)
			}
		}
	}
	return b.String()
}

func renderLinkHeader(b *strings.Builder, l linkInfo, byIdx map[int]*linkInfo, name func(int) string, nsName nsNamer) {
	ifname := l.Name
	mdown := false
	if l.HasLink {
		switch {
		case l.Link == 0:
			ifname += "@NONE"
		case l.HasNSID:
			ifname += "@if" + strconv.Itoa(l.Link)
		default:
			ifname += "@" + name(l.Link)
			if p := byIdx[l.Link]; p != nil {
				mdown = p.Flags&unix.IFF_UP == 0
			} else {
				mdown = true
			}
		}
	}
	fmt.Fprintf(b, "%d: %s: ", l.Index, ifname)
	b.WriteString(linkFlags(l.Flags, mdown))
	if l.HasMTU {
		fmt.Fprintf(b, "mtu %d ", l.MTU)
	}
	if l.Qdisc != "" {
		fmt.Fprintf(b, "qdisc %s ", l.Qdisc)
	}
	if l.Master != 0 {
		fmt.Fprintf(b, "master %s ", name(l.Master))
	}
	if l.Oper >= 0 {
		if l.Oper < len(operStates) {
			fmt.Fprintf(b, "state %s ", operStates[l.Oper])
		} else {
			fmt.Fprintf(b, "state %#x ", l.Oper)
		}
	}
	if l.Group >= 0 {
		fmt.Fprintf(b, "group %s ", groupName(l.Group))
	}
	if l.TxQLen > 0 {
		fmt.Fprintf(b, "qlen %d", l.TxQLen)
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "    link/%s ", arphrdName(l.Type))
	if l.Addr != nil {
		b.WriteString(llAddr(l.Addr, l.Type))
	}
	if l.Brd != nil {
		if l.Flags&unix.IFF_POINTOPOINT != 0 {
			b.WriteString(" peer ")
		} else {
			b.WriteString(" brd ")
		}
		b.WriteString(llAddr(l.Brd, l.Type))
	}
	if l.PermAddr != nil && (l.Addr == nil || string(l.Addr) != string(l.PermAddr)) {
		b.WriteString(" permaddr " + llAddr(l.PermAddr, l.Type))
	}
	if l.HasNSID {
		switch {
		case l.NSID < 0:
			b.WriteString(" link-netnsid unknown")
		case nsName != nil && nsName(l.NSID) != "":
			b.WriteString(" link-netns " + nsName(l.NSID))
		default:
			fmt.Fprintf(b, " link-netnsid %d", l.NSID)
		}
	}
	b.WriteString("\n")
	for _, alt := range l.AltNames {
		fmt.Fprintf(b, "    altname %s\n", alt)
	}
}

// linkFlags is print_link_flags: "<BROADCAST,MULTICAST,UP,LOWER_UP> ".
func linkFlags(flags uint32, mdown bool) string {
	var parts []string
	if flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING == 0 {
		parts = append(parts, "NO-CARRIER")
	}
	flags &^= unix.IFF_RUNNING
	for _, f := range linkFlagNames {
		if flags&f.bit != 0 {
			flags &^= f.bit
			parts = append(parts, f.name)
		}
	}
	if flags != 0 {
		parts = append(parts, fmt.Sprintf("%x", flags))
	}
	s := "<" + strings.Join(parts, ",")
	if mdown {
		s += ",M-DOWN"
	}
	return s + "> "
}

// scopeName is rtnl_rtscope_n2a.
func scopeName(s int) string {
	switch s {
	case unix.RT_SCOPE_UNIVERSE:
		return "global"
	case unix.RT_SCOPE_SITE:
		return "site"
	case unix.RT_SCOPE_LINK:
		return "link"
	case unix.RT_SCOPE_HOST:
		return "host"
	case unix.RT_SCOPE_NOWHERE:
		return "nowhere"
	}
	return strconv.Itoa(s)
}

// ifaFlagNames are print_ifa_flags' flags in order; permanent is printed
// inverted, as "dynamic".
var ifaFlagNames = []struct {
	mask uint32
	name string
}{
	{unix.IFA_F_SECONDARY, "secondary"}, {unix.IFA_F_NODAD, "nodad"}, {unix.IFA_F_OPTIMISTIC, "optimistic"},
	{unix.IFA_F_DADFAILED, "dadfailed"}, {unix.IFA_F_HOMEADDRESS, "home"}, {unix.IFA_F_DEPRECATED, "deprecated"},
	{unix.IFA_F_TENTATIVE, "tentative"}, {unix.IFA_F_PERMANENT, "permanent"},
	{unix.IFA_F_MANAGETEMPADDR, "mngtmpaddr"}, {unix.IFA_F_NOPREFIXROUTE, "noprefixroute"},
	{unix.IFA_F_MCAUTOJOIN, "autojoin"}, {unix.IFA_F_STABLE_PRIVACY, "stable-privacy"},
}

func renderAddr(b *strings.Builder, a addrInfo) {
	fam := "inet"
	if a.Family == unix.AF_INET6 {
		fam = "inet6"
	}
	fmt.Fprintf(b, "    %s %s", fam, a.Local)
	if a.Address.IsValid() && a.Address != a.Local {
		fmt.Fprintf(b, " peer %s", a.Address)
	}
	fmt.Fprintf(b, "/%d ", a.PrefixLen)
	if a.Brd.IsValid() {
		fmt.Fprintf(b, "brd %s ", a.Brd)
	}
	fmt.Fprintf(b, "scope %s ", scopeName(a.Scope))
	flags := a.Flags
	for _, f := range ifaFlagNames {
		switch {
		case f.mask == unix.IFA_F_PERMANENT:
			if flags&f.mask == 0 {
				b.WriteString("dynamic ")
			}
		case flags&f.mask != 0:
			if f.mask == unix.IFA_F_SECONDARY && a.Family == unix.AF_INET6 {
				b.WriteString("temporary ")
			} else {
				b.WriteString(f.name + " ")
			}
		}
		flags &^= f.mask
	}
	if flags != 0 {
		fmt.Fprintf(b, "flags %02x ", flags)
	}
	if a.Label != "" {
		b.WriteString(a.Label)
	}
	if a.HasCache {
		b.WriteString("\n       valid_lft ")
		b.WriteString(lifetime(a.Valid, false))
		b.WriteString(" preferred_lft ")
		b.WriteString(lifetime(a.Preferred, a.Flags&unix.IFA_F_DEPRECATED != 0))
	}
	b.WriteString("\n")
}

func lifetime(v uint32, signed bool) string {
	if v == 0xFFFFFFFF {
		return "forever"
	}
	if signed {
		return strconv.Itoa(int(int32(v))) + "sec"
	}
	return strconv.FormatUint(uint64(v), 10) + "sec"
}

// routeInfo is one route as print_route uses it.
type routeInfo struct {
	Family   int
	Type     int // RTN_*
	Dst      netip.Prefix
	HasDst   bool
	Src      netip.Prefix // RTA_SRC (source-specific routes)
	HasSrc   bool
	Tos      int
	Gw       netip.Addr
	Via      netip.Addr // RTA_VIA (a gateway of another family)
	Dev      string
	Table    int
	Protocol int
	Scope    int
	PrefSrc  netip.Addr
	Metric   int
	HasPrio  bool
	Flags    uint32
	Realm    int
	Nexthops []nexthopInfo
	Metrics  []string // "mtu 1400", "advmss 1360", ... already formatted
	Pref     string   // IPv6: "medium", "low", "high"
}

type nexthopInfo struct {
	Gw     netip.Addr
	Via    netip.Addr
	Dev    string
	Weight int
	Flags  uint32
}

var rtnTypes = map[int]string{
	unix.RTN_UNSPEC: "none", unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local",
	unix.RTN_BROADCAST: "broadcast", unix.RTN_ANYCAST: "anycast", unix.RTN_MULTICAST: "multicast",
	unix.RTN_BLACKHOLE: "blackhole", unix.RTN_UNREACHABLE: "unreachable", unix.RTN_PROHIBIT: "prohibit",
	unix.RTN_THROW: "throw", unix.RTN_NAT: "nat", unix.RTN_XRESOLVE: "xresolve",
}

func rtnType(t int) string {
	if s, ok := rtnTypes[t]; ok {
		return s
	}
	return strconv.Itoa(t)
}

// protoNames is the stock /etc/iproute2/rt_protos.
var protoNames = map[int]string{
	0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra", 10: "mrt",
	11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp", 18: "keepalived",
	42: "babel", 99: "openr", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp",
}

func protoName(p int) string {
	if s, ok := protoNames[p]; ok {
		return s
	}
	return strconv.Itoa(p)
}

// tableName is rtnl_rttable_n2a for the tables every system names; other
// tables stay numbers (see the file comment).
func tableName(t int) string {
	switch t {
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	case unix.RT_TABLE_UNSPEC:
		return "unspec"
	}
	return strconv.Itoa(t)
}

// rtFlags is print_rt_flags for the flags a dump shows.
func rtFlags(f uint32) string {
	var s strings.Builder
	for _, x := range []struct {
		bit  uint32
		name string
	}{
		{unix.RTNH_F_DEAD, "dead"}, {unix.RTNH_F_ONLINK, "onlink"}, {unix.RTNH_F_PERVASIVE, "pervasive"},
		{unix.RTNH_F_OFFLOAD, "offload"}, {unix.RTNH_F_TRAP, "trap"}, {unix.RTM_F_NOTIFY, "notify"},
		{unix.RTNH_F_LINKDOWN, "linkdown"}, {unix.RTNH_F_UNRESOLVED, "unresolved"},
		{unix.RTM_F_OFFLOAD, "rt_offload"}, {unix.RTM_F_TRAP, "rt_trap"},
		{unix.RTM_F_OFFLOAD_FAILED, "rt_offload_failed"},
	} {
		if f&x.bit != 0 {
			s.WriteString(x.name + " ")
		}
	}
	return s.String()
}

// renderRoute renders one line (and its nexthop lines) of `ip -4 route
// show table all` or `ip -6 route show table all`.
func renderRoute(r routeInfo) string {
	var b strings.Builder
	if r.Type != unix.RTN_UNICAST {
		b.WriteString(rtnType(r.Type) + " ")
	}
	hostLen := 32
	if r.Family == unix.AF_INET6 {
		hostLen = 128
	}
	switch {
	case r.HasDst && r.Dst.Bits() != hostLen:
		fmt.Fprintf(&b, "%s/%d ", r.Dst.Addr(), r.Dst.Bits())
	case r.HasDst:
		fmt.Fprintf(&b, "%s ", r.Dst.Addr())
	case r.Dst.Bits() > 0:
		fmt.Fprintf(&b, "0/%d  ", r.Dst.Bits())
	default:
		b.WriteString("default ")
	}
	if r.HasSrc {
		if r.Src.Bits() != hostLen {
			fmt.Fprintf(&b, "from %s/%d ", r.Src.Addr(), r.Src.Bits())
		} else {
			fmt.Fprintf(&b, "from %s ", r.Src.Addr())
		}
	}
	if r.Tos != 0 {
		fmt.Fprintf(&b, "tos 0x%02x ", r.Tos)
	}
	if r.Gw.IsValid() {
		fmt.Fprintf(&b, "via %s ", r.Gw)
	}
	if r.Via.IsValid() {
		fam := "inet"
		if r.Via.Is6() {
			fam = "inet6"
		}
		fmt.Fprintf(&b, "via %s %s ", fam, r.Via)
	}
	if r.Dev != "" {
		fmt.Fprintf(&b, "dev %s ", r.Dev)
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		fmt.Fprintf(&b, "table %s ", tableName(r.Table))
	}
	if r.Protocol != unix.RTPROT_BOOT {
		fmt.Fprintf(&b, "proto %s ", protoName(r.Protocol))
	}
	if r.Scope != unix.RT_SCOPE_UNIVERSE {
		fmt.Fprintf(&b, "scope %s ", scopeName(r.Scope))
	}
	if r.PrefSrc.IsValid() {
		fmt.Fprintf(&b, "src %s ", r.PrefSrc)
	}
	if r.HasPrio {
		fmt.Fprintf(&b, "metric %d ", uint32(r.Metric))
	}
	b.WriteString(rtFlags(r.Flags))
	if r.Realm != 0 {
		to, from := r.Realm&0xFFFF, r.Realm>>16
		if from != 0 {
			fmt.Fprintf(&b, "realms %d/%d ", from, to)
		} else {
			fmt.Fprintf(&b, "realm %d ", to)
		}
	}
	for _, m := range r.Metrics {
		b.WriteString(m + " ")
	}
	if r.Pref != "" {
		b.WriteString("pref " + r.Pref)
	}
	for _, nh := range r.Nexthops {
		b.WriteString("\n\tnexthop ")
		if nh.Gw.IsValid() {
			fmt.Fprintf(&b, "via %s ", nh.Gw)
		}
		if nh.Via.IsValid() {
			fam := "inet"
			if nh.Via.Is6() {
				fam = "inet6"
			}
			fmt.Fprintf(&b, "via %s %s ", fam, nh.Via)
		}
		fmt.Fprintf(&b, "dev %s weight %d ", nh.Dev, nh.Weight)
		b.WriteString(rtFlags(nh.Flags))
	}
	b.WriteString("\n")
	return b.String()
}

// ruleInfo is one policy rule as print_rule uses it.
type ruleInfo struct {
	Family   int
	Priority int
	Invert   bool
	Src      netip.Prefix
	HasSrc   bool
	Dst      netip.Prefix
	HasDst   bool
	Tos      int
	Mark     uint32
	Mask     uint32
	HasMark  bool
	HasMask  bool
	IIF      string
	OIF      string
	UIDRange [2]uint32
	HasUID   bool
	IPProto  int
	SPort    [2]uint16
	DPort    [2]uint16
	TunID    uint64
	Table    int
	SupPfx   int // -1: none
	SupGroup int // -1: none
	Realm    int
	Action   int // FR_ACT_*
	Goto     int
	HasGoto  bool
	Protocol int
}

var ipProtoNames = map[int]string{1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah", 58: "ipv6-icmp", 132: "sctp", 136: "udplite"}

// renderRule renders one line of `ip rule`.
func renderRule(r ruleInfo) string {
	var b strings.Builder
	hostLen := 32
	if r.Family == unix.AF_INET6 {
		hostLen = 128
	}
	fmt.Fprintf(&b, "%d:\t", uint32(r.Priority))
	if r.Invert {
		b.WriteString("not ")
	}
	if r.HasSrc {
		b.WriteString("from " + r.Src.Addr().String())
		if r.Src.Bits() != hostLen {
			fmt.Fprintf(&b, "/%d", r.Src.Bits())
		}
	} else {
		b.WriteString("from all")
	}
	if r.HasDst {
		b.WriteString(" to " + r.Dst.Addr().String())
		if r.Dst.Bits() != hostLen {
			fmt.Fprintf(&b, "/%d", r.Dst.Bits())
		}
	}
	if r.Tos != 0 {
		fmt.Fprintf(&b, " tos 0x%02x", r.Tos)
	}
	if r.HasMark || r.HasMask {
		fmt.Fprintf(&b, " fwmark %#x", r.Mark)
		if r.HasMask && r.Mask != 0xFFFFFFFF {
			fmt.Fprintf(&b, "/%#x", r.Mask)
		}
	}
	if r.IIF != "" {
		b.WriteString(" iif " + r.IIF)
	}
	if r.OIF != "" {
		b.WriteString(" oif " + r.OIF)
	}
	if r.HasUID {
		fmt.Fprintf(&b, " uidrange %d-%d", r.UIDRange[0], r.UIDRange[1])
	}
	if r.IPProto != 0 {
		p, ok := ipProtoNames[r.IPProto]
		if !ok {
			p = "ipproto-" + strconv.Itoa(r.IPProto)
		}
		b.WriteString(" ipproto " + p)
	}
	for _, pr := range []struct {
		name string
		r    [2]uint16
	}{{"sport", r.SPort}, {"dport", r.DPort}} {
		switch {
		case pr.r == [2]uint16{}:
		case pr.r[0] == pr.r[1]:
			fmt.Fprintf(&b, " %s %d", pr.name, pr.r[0])
		default:
			fmt.Fprintf(&b, " %s %d-%d", pr.name, pr.r[0], pr.r[1])
		}
	}
	if r.TunID != 0 {
		fmt.Fprintf(&b, " tun_id %d", r.TunID)
	}
	if r.Table != 0 {
		b.WriteString(" lookup " + tableName(r.Table))
		if r.SupPfx >= 0 {
			fmt.Fprintf(&b, " suppress_prefixlength %d", r.SupPfx)
		}
		if r.SupGroup >= 0 {
			b.WriteString(" suppress_ifgroup " + groupName(r.SupGroup))
		}
	}
	if r.Realm != 0 {
		to, from := r.Realm&0xFFFF, r.Realm>>16
		if from != 0 {
			fmt.Fprintf(&b, " realms %d/%d", from, to)
		} else {
			fmt.Fprintf(&b, " realms %d", to)
		}
	}
	switch r.Action {
	case unix.FR_ACT_TO_TBL:
	case unix.FR_ACT_GOTO:
		if r.HasGoto {
			fmt.Fprintf(&b, " goto %d", r.Goto)
		} else {
			b.WriteString(" goto none")
		}
	case unix.FR_ACT_NOP:
		b.WriteString(" nop")
	default:
		b.WriteString(" " + rtnType(r.Action))
	}
	if r.Protocol != 0 && r.Protocol != unix.RTPROT_KERNEL {
		b.WriteString(" proto " + protoName(r.Protocol))
	}
	b.WriteString("\n")
	return b.String()
}

// neighInfo is one neighbor entry.
type neighInfo struct {
	Family int
	Addr   netip.Addr
	Dev    string
	LLAddr []byte
	LLType uint16
	State  int
	Flags  int
}

var nudNames = []struct {
	bit  int
	name string
}{
	{unix.NUD_INCOMPLETE, "INCOMPLETE"}, {unix.NUD_REACHABLE, "REACHABLE"}, {unix.NUD_STALE, "STALE"},
	{unix.NUD_DELAY, "DELAY"}, {unix.NUD_PROBE, "PROBE"}, {unix.NUD_FAILED, "FAILED"},
	{unix.NUD_NOARP, "NOARP"}, {unix.NUD_PERMANENT, "PERMANENT"},
}

// showNeigh is ip neigh's default filter: NOARP and state-less entries
// are not shown unless they are proxy or externally learned entries.
func showNeigh(n neighInfo) bool {
	if n.Flags&(unix.NTF_PROXY|unix.NTF_EXT_LEARNED) != 0 {
		return true
	}
	return n.State&(0xFF&^unix.NUD_NOARP) != 0
}

// renderNeigh renders one line of `ip neigh`.
func renderNeigh(n neighInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s dev %s ", n.Addr, n.Dev)
	if n.LLAddr != nil {
		fmt.Fprintf(&b, "lladdr %s ", llAddr(n.LLAddr, n.LLType))
	}
	if n.Flags&unix.NTF_ROUTER != 0 {
		b.WriteString("router ")
	}
	if n.Flags&unix.NTF_PROXY != 0 {
		b.WriteString("proxy ")
	}
	if n.Flags&unix.NTF_EXT_LEARNED != 0 {
		b.WriteString("extern_learn ")
	}
	if n.Flags&unix.NTF_OFFLOADED != 0 {
		b.WriteString("offload ")
	}
	if n.State != 0 {
		var states []string
		for _, s := range nudNames {
			if n.State&s.bit != 0 {
				states = append(states, s.name)
			}
		}
		b.WriteString(strings.Join(states, " ") + " ")
	}
	b.WriteString("\n")
	return b.String()
}

// addrOf converts a net.IP to a netip.Addr of its own family (4-byte
// addresses stay IPv4, 16-byte IPv4-mapped ones too when v4 is set).
func addrOf(ip net.IP, v4 bool) netip.Addr {
	if ip == nil {
		return netip.Addr{}
	}
	if v4 {
		if ip4 := ip.To4(); ip4 != nil {
			return netip.AddrFrom4([4]byte(ip4))
		}
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	if len(ip) == 4 {
		return a.Unmap()
	}
	return a
}
