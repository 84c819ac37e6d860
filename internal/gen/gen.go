// Package gen writes large, realistic snapshot folders for benchmarks and
// scale tests: a kube-proxy (iptables mode) node with many services, a
// Docker host with many containers and published ports, and a fleet of
// Docker hosts behind NAT routers. The folders are in the normal snapshot
// format (topology.yaml plus nodes/NAME/{ip-addr,ip-route,iptables-save}),
// so `pktflow trace --snapshot DIR` reads them like any other.
//
// Every generator is deterministic: the same options and seed write the
// same bytes. Each also returns probes — traces that cross the generated
// network end to end — with the verdict they should get.
//
// The package only writes text; it imports nothing else of pktflow, so
// tests of any package can use it.
package gen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Snapshot is a generated snapshot, ready to be written.
type Snapshot struct {
	// Comment is written at the top of topology.yaml.
	Comment string
	Nodes   []*Node
	Links   []Link
	// Names are written under names: in topology.yaml, in order.
	Names []Name
	// Probes are traces across the generated network, with their
	// expected verdicts.
	Probes []Probe
	// Rules counts the iptables rules of all nodes.
	Rules int
	// BigNode is the node with the largest ruleset ("" if none).
	BigNode string
}

// Node is one node: its topology.yaml entry and its command outputs.
type Node struct {
	Name   string
	Kind   string // host, vm, container, router, external
	Sysctl [][2]string
	Listen []string // "tcp/80", "udp/53"
	Owns   []string // prefixes, external nodes only
	TTL    int
	Ifaces []*Iface
	// Routes are `ip route show` lines.
	Routes []string
	// IPTables is the iptables-save text ("" for none).
	IPTables string
	// Rules is the number of rules in IPTables.
	Rules int
}

// Iface is one device, rendered as `ip addr show` prints it.
type Iface struct {
	Name  string
	Index int
	// PeerIndex is the ifindex of a veth's peer (printed as @ifN), 0 for
	// none.
	PeerIndex int
	// NetnsID is printed as link-netnsid for a veth whose peer is in
	// another namespace (-1: not printed).
	NetnsID int
	MAC     string
	Master  string
	Addrs   []netip.Prefix
	MTU     int
	Qdisc   string
	// Bridge marks a bridge device (no qlen, qdisc noqueue).
	Bridge bool
}

// Link is one entry of topology.yaml's links.
type Link struct {
	Kind string // veth, tap, segment
	Ends []string
}

// Name is one entry of topology.yaml's names.
type Name struct {
	Name  string
	Addrs []netip.Addr
}

// Probe is a trace across a generated snapshot.
type Probe struct {
	// What says in words what the probe exercises.
	What  string
	From  string
	Proto string // tcp, udp or icmp
	Dst   netip.Addr
	DPort uint16
	// Expect is the verdict the trace should have (answered, rejected ...).
	Expect string
}

// Args returns the probe as `pktflow trace` arguments (after --snapshot).
func (p Probe) Args() []string {
	dst := p.Dst.String()
	if p.Proto != "icmp" {
		dst += ":" + strconv.Itoa(int(p.DPort))
	}
	return []string{"--from", p.From, p.Proto, dst}
}

func (p Probe) String() string { return strings.Join(p.Args(), " ") }

// Node returns the named node, or nil.
func (s *Snapshot) Node(name string) *Node {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// marker is written in every generated folder: Write only ever replaces a
// folder that holds it, so a mistyped --output cannot wipe real data.
const marker = ".pktflow-gen"

// Write writes the snapshot into dir, which must not exist, be empty, or
// hold an earlier generated snapshot (which is replaced).
func (s *Snapshot) Write(dir string) error {
	if err := prepare(dir); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "topology.yaml"), s.writeTopology); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		nd := filepath.Join(dir, "nodes", n.Name)
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(nd, "ip-addr"), n.writeAddr); err != nil {
			return err
		}
		if len(n.Routes) > 0 {
			if err := writeFile(filepath.Join(nd, "ip-route"), func(w *bufio.Writer) {
				for _, r := range n.Routes {
					w.WriteString(r)
					w.WriteByte('\n')
				}
			}); err != nil {
				return err
			}
		}
		if n.IPTables != "" {
			if err := writeFile(filepath.Join(nd, "iptables-save"), func(w *bufio.Writer) { w.WriteString(n.IPTables) }); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(filepath.Join(dir, marker), []byte("written by pktflow gen; pktflow gen may replace this folder\n"), 0o644)
}

// prepare makes dir ready: created, empty, or cleared of an earlier
// generated snapshot.
func prepare(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		return fmt.Errorf("%s is not empty and was not written by pktflow gen: choose a new or empty folder", dir)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, fill func(w *bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	fill(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Snapshot) writeTopology(w *bufio.Writer) {
	for _, l := range strings.Split(strings.TrimSpace(s.Comment), "\n") {
		if l != "" {
			fmt.Fprintf(w, "# %s\n", l)
		}
	}
	w.WriteString("nodes:\n")
	for _, n := range s.Nodes {
		fmt.Fprintf(w, "  %s:\n    kind: %s\n", n.Name, n.Kind)
		if len(n.Sysctl) > 0 {
			w.WriteString("    sysctl:\n")
			for _, kv := range n.Sysctl {
				fmt.Fprintf(w, "      %s: %s\n", kv[0], kv[1])
			}
		}
		if len(n.Listen) > 0 {
			fmt.Fprintf(w, "    listen: [%s]\n", strings.Join(n.Listen, ", "))
		}
		if len(n.Owns) > 0 {
			fmt.Fprintf(w, "    owns: [%s]\n", strings.Join(n.Owns, ", "))
		}
		if n.TTL > 0 {
			fmt.Fprintf(w, "    ttl: %d\n", n.TTL)
		}
	}
	w.WriteString("links:\n")
	for _, l := range s.Links {
		fmt.Fprintf(w, "  - %s: [%s]\n", l.Kind, strings.Join(l.Ends, ", "))
	}
	if len(s.Names) > 0 {
		w.WriteString("names:\n")
		for _, n := range s.Names {
			as := make([]string, len(n.Addrs))
			for i, a := range n.Addrs {
				as[i] = a.String()
			}
			fmt.Fprintf(w, "  %s: [%s]\n", n.Name, strings.Join(as, ", "))
		}
	}
}

// writeAddr prints the node's devices as `ip addr show` does.
func (n *Node) writeAddr(w *bufio.Writer) {
	for _, i := range n.Ifaces {
		name := i.Name
		if i.PeerIndex > 0 {
			name += "@if" + strconv.Itoa(i.PeerIndex)
		}
		if i.Name == "lo" {
			fmt.Fprintf(w, "%d: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n"+
				"    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"+
				"    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n"+
				"    inet6 ::1/128 scope host\n       valid_lft forever preferred_lft forever\n", i.Index)
			continue
		}
		mtu := i.MTU
		if mtu == 0 {
			mtu = 1500
		}
		qdisc, tail := i.Qdisc, " qlen 1000"
		if qdisc == "" {
			qdisc = "noqueue"
		}
		if i.Bridge || i.PeerIndex > 0 {
			tail = ""
		}
		master := ""
		if i.Master != "" {
			master = " master " + i.Master
		}
		fmt.Fprintf(w, "%d: %s: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu %d qdisc %s%s state UP group default%s\n", i.Index, name, mtu, qdisc, master, tail)
		fmt.Fprintf(w, "    link/ether %s brd ff:ff:ff:ff:ff:ff", i.MAC)
		if i.PeerIndex > 0 && i.NetnsID >= 0 {
			fmt.Fprintf(w, " link-netnsid %d", i.NetnsID)
		}
		w.WriteByte('\n')
		for _, a := range i.Addrs {
			fmt.Fprintf(w, "    inet %s brd %s scope global %s\n       valid_lft forever preferred_lft forever\n", a, broadcast(a), i.Name)
		}
	}
}

// broadcast is the IPv4 broadcast address of a prefix.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= ^uint32(0) >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ---- helpers shared by the generators ----

// gen carries a generator's random source.
type gen struct {
	rng *rand.Rand
}

func newGen(seed uint64, stream uint64) *gen {
	return &gen{rng: rand.New(rand.NewPCG(seed, stream))}
}

// mac returns a random locally administered unicast MAC.
func (g *gen) mac() string {
	b := g.rng.Uint64()
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", byte(b>>40)&0xfe|0x02, byte(b>>32), byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
}

// hex returns n random lower-case hex digits.
func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

// addr4 builds an IPv4 address from a 32-bit value.
func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// lo is the loopback device every node starts with.
func lo() *Iface { return &Iface{Name: "lo", Index: 1} }

// connected is the kernel route of an address on a device.
func connected(p netip.Prefix, dev string, metric int) string {
	s := fmt.Sprintf("%s dev %s proto kernel scope link src %s", p.Masked(), dev, p.Addr())
	if metric > 0 {
		s += fmt.Sprintf(" metric %d", metric)
	}
	return s
}

// iptablesSave assembles iptables-save text from tables in order.
type table struct {
	name   string
	chains []chain
}

type chain struct {
	name   string
	policy string // ACCEPT/DROP for built-ins, "" for user chains
	rules  []string
}

// builtinOrder is the order iptables-save prints a table's built-in chains.
var builtinOrder = map[string][]string{
	"raw":    {"PREROUTING", "OUTPUT"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
}

// render writes tables as iptables-save prints them: a header comment,
// the chain declarations, then every rule chain by chain in declaration
// order. It returns the number of rules.
func render(w io.Writer, tables []table) int {
	n := 0
	for _, t := range tables {
		fmt.Fprintf(w, "# Generated by iptables-save v1.8.9 on Mon Jan  8 09:00:00 2024\n*%s\n", t.name)
		for _, c := range t.chains {
			p := c.policy
			if p == "" {
				p = "-"
			}
			fmt.Fprintf(w, ":%s %s [0:0]\n", c.name, p)
		}
		for _, c := range t.chains {
			for _, r := range c.rules {
				io.WriteString(w, r)
				io.WriteString(w, "\n")
				n++
			}
		}
		io.WriteString(w, "COMMIT\n# Completed on Mon Jan  8 09:00:00 2024\n")
	}
	return n
}

// builtins returns a table's built-in chains with ACCEPT policies, in
// iptables-save order, except those given in policies.
func builtins(tbl string, policies map[string]string) []chain {
	var out []chain
	for _, name := range builtinOrder[tbl] {
		p := "ACCEPT"
		if v, ok := policies[name]; ok {
			p = v
		}
		out = append(out, chain{name: name, policy: p})
	}
	return out
}

// chainSet collects a table's chains by name.
type chainSet struct {
	order  []string
	byName map[string]*chain
}

func newChainSet(builtin []chain) *chainSet {
	cs := &chainSet{byName: map[string]*chain{}}
	for i := range builtin {
		c := builtin[i]
		cs.order = append(cs.order, c.name)
		cs.byName[c.name] = &c
	}
	return cs
}

// add appends a rule to a chain, declaring the chain if new.
func (cs *chainSet) add(name, rule string) {
	c := cs.declare(name)
	c.rules = append(c.rules, rule)
}

func (cs *chainSet) declare(name string) *chain {
	c := cs.byName[name]
	if c == nil {
		c = &chain{name: name}
		cs.byName[name] = c
		cs.order = append(cs.order, name)
	}
	return c
}

// table returns the chains: built-ins first, in their order, then user
// chains in the given order (sorted when sorted is set, as legacy
// iptables-save prints them).
func (cs *chainSet) table(name string, sorted bool) table {
	t := table{name: name}
	var user []string
	for _, n := range cs.order {
		c := cs.byName[n]
		if c.policy != "" {
			t.chains = append(t.chains, *c)
		} else {
			user = append(user, n)
		}
	}
	if sorted {
		slices.Sort(user)
	}
	for _, n := range user {
		t.chains = append(t.chains, *cs.byName[n])
	}
	return t
}
