package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktflow/pktflow/internal/ingest/iproute"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/nsthread"
)

// Options say which namespaces to collect.
type Options struct {
	// NetNS names namespaces under /run/netns to collect.
	NetNS []string
	// AllNetNS collects every named namespace and every process's
	// namespace (the current one included).
	AllNetNS bool
	// Current collects the current namespace too when NetNS is given
	// (alone, it is the default).
	Current bool
	// Keep, when set, filters the namespaces found: a namespace it
	// rejects is not read at all. Tests use it to keep their own.
	Keep func(*Target) bool
	// Log receives warnings and progress; nil discards them.
	Log io.Writer
}

// Snapshot is what was collected: one node per namespace and the veth
// pairs between them. Write turns it into a snapshot folder.
type Snapshot struct {
	Host     string
	Time     time.Time
	Nodes    []*Node
	Links    [][2]model.Endpoint
	Warnings []string
}

// Node is one collected namespace: its files as the commands print them
// and the facts topology.yaml carries.
type Node struct {
	Target *Target
	Kind   model.NodeKind
	// Files maps a snapshot file name (ip-addr, ip-route, ip6-route,
	// ip-rule, ip-neigh, iptables-save, ip6tables-save, sysctl) to its
	// text.
	Files map[string]string
	// Extra holds outputs pktflow does not read (nft -j list ruleset,
	// conntrack -L), kept beside the snapshot under extra/NODE/.
	Extra map[string]string
	// Listen are the sockets that answer, as topology.yaml writes them.
	Listen []string
	// IfaceKinds names interfaces whose kind the ip-addr text alone
	// would make pktflow guess wrong.
	IfaceKinds map[string]string
	// TTL is net.ipv4.ip_default_ttl when it is not Linux's 64.
	TTL int
	// Notes are said in topology.yaml under the node.
	Notes []string

	nl   *nlState
	proc *procState
}

// collector carries one Collect.
type collector struct {
	opt  Options
	mu   sync.Mutex
	warn []string
	note map[*Target][]string
}

func (c *collector) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warn = append(c.warn, msg)
	if c.opt.Log != nil {
		fmt.Fprintln(c.opt.Log, "warning:", msg)
	}
}

func (c *collector) notef(t *Target, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.note[t] = append(c.note[t], fmt.Sprintf(format, args...))
}

func (c *collector) logf(format string, args ...any) {
	if c.opt.Log != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		fmt.Fprintf(c.opt.Log, format+"\n", args...)
	}
}

// Collect reads the selected namespaces. It only reads: netlink dumps,
// /proc, and the save/list commands of iptables, nft and conntrack. A
// namespace that disappears while it is read is skipped with a warning.
func Collect(ctx context.Context, opt Options) (*Snapshot, error) {
	if os.Geteuid() != 0 && (opt.AllNetNS || len(opt.NetNS) > 0) {
		return nil, errors.New("collect: reading other network namespaces needs root")
	}
	c := &collector{opt: opt, note: map[*Target][]string{}}
	targets, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, errors.New("collect: no network namespace selected")
	}
	host, _ := os.Hostname()
	snap := &Snapshot{Host: host, Time: time.Now().UTC()}
	conns := map[*Target]*nlConn{}
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	var live []*Target
	for _, t := range targets {
		cn, err := openNS(t.Path, t.Current)
		if err != nil {
			if t.NetNS != "" && contains(opt.NetNS, t.NetNS) {
				return nil, fmt.Errorf("collect: %s: %w", t.How, err)
			}
			c.warnf("skipping %s: %v", t.How, err)
			continue
		}
		conns[t] = cn
		live = append(live, t)
	}
	for _, t := range live {
		c.logf("collecting %s as node %s", t.How, t.Node)
		n, err := c.readTarget(ctx, t, conns[t])
		if err != nil {
			if t.NetNS != "" && contains(opt.NetNS, t.NetNS) || t.Current {
				return nil, fmt.Errorf("collect: %s: %w", t.How, err)
			}
			c.warnf("skipping %s: %v", t.How, err)
			continue
		}
		snap.Nodes = append(snap.Nodes, n)
	}
	snap.Links = c.joinVeths(snap.Nodes, conns)
	for _, n := range snap.Nodes {
		c.render(n, conns[n.Target])
		n.Notes = append(n.Notes, c.note[n.Target]...)
	}
	snap.Warnings = c.warn
	return snap, nil
}

// readTarget reads one namespace.
func (c *collector) readTarget(ctx context.Context, t *Target, cn *nlConn) (*Node, error) {
	n := &Node{Target: t, Kind: t.Kind, Files: map[string]string{}, Extra: map[string]string{}, IfaceKinds: map[string]string{}}
	st, err := cn.read()
	if err != nil {
		return nil, err
	}
	n.nl = st
	var ifaces []string
	for _, l := range st.links {
		ifaces = append(ifaces, l.Name)
	}
	read := func() error {
		p, err := readProc(ifaces)
		n.proc = p
		return err
	}
	if t.Current {
		err = read() // every thread of this process is in it
	} else {
		err = nsthread.InPath(t.Path, read)
	}
	if err != nil {
		return nil, err
	}
	nf := c.readNetfilter(ctx, t)
	if nf.v4 != "" {
		n.Files["iptables-save"] = nf.v4
	}
	if nf.v6 != "" {
		n.Files["ip6tables-save"] = nf.v6
	}
	if nf.nft != "" {
		n.Extra["nft-ruleset.json"] = nf.nft
		c.notef(t, "only nft has rules here: `nft -j list ruleset` is in extra/%s/nft-ruleset.json, which pktflow does not read yet, so traces see no netfilter rules on this node", t.Node)
	}
	if nf.conntrack != "" {
		n.Extra["conntrack"] = nf.conntrack
	}
	if t.NetNS != "" && looksLikeRouter(n) {
		n.Kind = model.KindRouter
	}
	return n, nil
}

// looksLikeRouter: a named namespace that forwards between two or more
// addressed interfaces and has no bridge is obviously a router.
func looksLikeRouter(n *Node) bool {
	fwd := false
	for _, kv := range n.proc.sysctls {
		if kv[0] == "net.ipv4.ip_forward" && kv[1] == "1" {
			fwd = true
		}
	}
	if !fwd {
		return false
	}
	addressed := map[int]bool{}
	for _, a := range n.nl.addrs {
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			addressed[a.Index] = true
		}
	}
	count := 0
	for _, l := range n.nl.links {
		if l.Kind == "bridge" {
			return false
		}
		if addressed[l.Index] && l.Type != unix.ARPHRD_LOOPBACK {
			count++
		}
	}
	return count >= 2
}

// joinVeths pairs veth ends across the collected namespaces: a veth's
// IFLA_LINK is its peer's index, in the namespace its link-netnsid names
// (or its own namespace when it has none).
func (c *collector) joinVeths(nodes []*Node, conns map[*Target]*nlConn) [][2]model.Endpoint {
	byTarget := map[*Target]*Node{}
	for _, n := range nodes {
		byTarget[n.Target] = n
	}
	// nsids[X][id] is the node X knows by link-netnsid id.
	nsids := map[*Node]map[int]*Node{}
	for _, n := range nodes {
		m := map[int]*Node{}
		for _, o := range nodes {
			if o == n {
				continue
			}
			if id := conns[n.Target].nsid(o.Target.Path); id >= 0 {
				m[id] = o
			}
		}
		nsids[n] = m
	}
	seen := map[model.Endpoint]bool{}
	var out [][2]model.Endpoint
	for _, n := range nodes {
		for _, l := range n.nl.links {
			if l.Kind != "veth" || !l.HasLink || l.Link == 0 {
				continue
			}
			me := model.Endpoint{Node: n.Target.Node, Iface: l.Name}
			if seen[me] {
				continue
			}
			peerNode := n
			if l.HasNSID {
				peerNode = nsids[n][l.NSID]
			}
			if peerNode == nil {
				c.notef(n.Target, "veth %s's peer (index %d, link-netnsid %d) is in a namespace that was not collected", l.Name, l.Link, l.NSID)
				continue
			}
			var peer *linkInfo
			for i := range peerNode.nl.links {
				if peerNode.nl.links[i].Index == l.Link {
					peer = &peerNode.nl.links[i]
				}
			}
			if peer == nil {
				c.notef(n.Target, "veth %s's peer (index %d in %s) was not found", l.Name, l.Link, peerNode.Target.Node)
				continue
			}
			pe := model.Endpoint{Node: peerNode.Target.Node, Iface: peer.Name}
			seen[me], seen[pe] = true, true
			out = append(out, [2]model.Endpoint{me, pe})
		}
	}
	return out
}

// render writes a node's files from what was read.
func (c *collector) render(n *Node, cn *nlConn) {
	st := n.nl
	named := namedNSIDs(cn)
	n.Files["ip-addr"] = renderAddrShow(st.links, st.addrs, func(id int) string { return named[id] })

	// `ip -4 route show table all` and `ip -6 route show table all`: in
	// one file, a bare "default" without addresses would not say its family.
	var routes, routes6 strings.Builder
	for _, r := range st.routes {
		if r.Family == unix.AF_INET6 {
			routes6.WriteString(renderRoute(r))
		} else {
			routes.WriteString(renderRoute(r))
		}
	}
	n.Files["ip-route"] = routes.String()
	if routes6.Len() > 0 {
		n.Files["ip6-route"] = routes6.String()
	}

	var rules strings.Builder
	for _, r := range st.rules4 {
		rules.WriteString(renderRule(r))
	}
	if !defaultRules(st.rules6) {
		rules.WriteString("# ip -6 rule (IPv6 policy rules: pktflow models IPv4 rules only, so they are kept as comments)\n")
		for _, r := range st.rules6 {
			rules.WriteString("# " + renderRule(r))
		}
	}
	n.Files["ip-rule"] = rules.String()

	var neigh strings.Builder
	for _, nb := range st.neighs {
		neigh.WriteString(renderNeigh(nb))
	}
	n.Files["ip-neigh"] = neigh.String()

	var sys strings.Builder
	for _, kv := range n.proc.sysctls {
		fmt.Fprintf(&sys, "%s = %s\n", kv[0], kv[1])
		if kv[0] == "net.ipv4.ip_default_ttl" && kv[1] != "64" {
			fmt.Sscan(kv[1], &n.TTL)
		}
	}
	n.Files["sysctl"] = sys.String()

	local := map[netip.Addr]bool{}
	for _, a := range st.addrs {
		local[a.Local] = true
	}
	for _, l := range n.proc.listen {
		if l.Addr.IsValid() && !local[l.Addr] && !l.Addr.IsLoopback() {
			n.Notes = append(n.Notes, fmt.Sprintf("a %s socket is bound to %s, which is not an address of this namespace; left out of listen", l.Proto, netip.AddrPortFrom(l.Addr, l.Port)))
			continue
		}
		n.Listen = append(n.Listen, l.String())
	}
	c.ifaceKinds(n)
}

// defaultRules reports whether rules are the kernel's three defaults
// (or none, when the family is disabled).
func defaultRules(rs []ruleInfo) bool {
	if len(rs) == 0 {
		return true
	}
	if len(rs) != 2 && len(rs) != 3 {
		return false
	}
	// IPv6 has no rule for the default table.
	want := []struct{ prio, table int }{{0, unix.RT_TABLE_LOCAL}, {32766, unix.RT_TABLE_MAIN}, {32767, unix.RT_TABLE_DEFAULT}}
	for i, r := range rs {
		if r.Priority != want[i].prio || r.Table != want[i].table || r.HasSrc || r.HasDst || r.HasMark || r.IIF != "" || r.OIF != "" || r.Action != unix.FR_ACT_TO_TBL {
			return false
		}
	}
	return true
}

// namedNSIDs maps the ids a namespace knows named namespaces by to their
// names, as `ip` prints "link-netns NAME".
func namedNSIDs(cn *nlConn) map[int]string {
	out := map[int]string{}
	names, _ := listNamed()
	sort.Strings(names)
	for _, name := range names {
		if id := cn.nsid(NetnsDir + "/" + name); id >= 0 {
			if _, dup := out[id]; !dup {
				out[id] = name
			}
		}
	}
	return out
}

// ifaceKinds records the kinds pktflow would guess wrong from the ip-addr
// text (which does not say what a device is) and can express.
func (c *collector) ifaceKinds(n *Node) {
	parsed, err := iproute.ParseAddr("ip-addr", strings.NewReader(n.Files["ip-addr"]))
	if err != nil {
		return // Write reports it
	}
	guess := map[string]model.InterfaceKind{}
	for _, i := range parsed {
		guess[i.Name] = i.Kind
	}
	for _, l := range n.nl.links {
		want, name := trueKind(l)
		if name == "" {
			continue
		}
		if g, ok := guess[l.Name]; ok && g != want {
			n.IfaceKinds[l.Name] = name
		}
	}
}

// trueKind maps what netlink says a device is to the model's kind and
// the word topology.yaml uses for it ("" when the model has none).
func trueKind(l linkInfo) (model.InterfaceKind, string) {
	if l.Type == unix.ARPHRD_LOOPBACK {
		return model.IfLoopback, "loopback"
	}
	switch l.Kind {
	case "veth":
		return model.IfVeth, "veth"
	case "bridge":
		return model.IfBridge, "bridge"
	case "dummy":
		return model.IfDummy, "dummy"
	case "tun":
		if l.TunTap == "tap" {
			return model.IfTap, "tap"
		}
		return model.IfUnknown, ""
	case "", "bond", "team", "vlan", "macvlan", "macvtap", "ipvlan", "vxlan", "geneve", "gretap", "ip6gretap":
		if l.Type == unix.ARPHRD_ETHER {
			return model.IfEthernet, "ether"
		}
	}
	return model.IfUnknown, ""
}
