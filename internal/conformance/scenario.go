package conformance

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/verify"
)

// Scenario is one generated network and the probes to check in it.
type Scenario struct {
	Seed int64
	// Features lists what the scenario exercises, in words.
	Features []string
	// YAML is the scenario as a snapshot's topology.yaml, every node's
	// state inline: written to a folder it is a snapshot that
	// `pktflow verify --snapshot DIR` reproduces.
	YAML []byte
	// Snap is YAML loaded by snapshot.Load.
	Snap *model.Snapshot
	// Probes are the probes to check, in verify.ParseProbe's syntax
	// without source ports (verify.AssignPorts numbers them in order).
	Probes []string
}

// Name is how reports name the scenario.
func (s *Scenario) Name() string { return fmt.Sprintf("seed-%d", s.Seed) }

// Engine probes: the scenario's probes parsed, with source ports.
func (s *Scenario) EngineProbes() ([]engine.Probe, error) {
	var ps []engine.Probe
	for _, str := range s.Probes {
		p, err := verify.ParseProbe(s.Snap, str)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	verify.AssignPorts(ps)
	return ps, nil
}

// Probe budgets per scenario: default probes of each kind (published
// ports and listeners, then ICMP) and the scenario's own extras.
const (
	maxPortProbes = 14
	maxICMPProbes = 10
	maxProbes     = 34
)

// Generate makes the scenario of a seed: the same seed always gives the
// same scenario. Scenarios have 3 to 7 nodes: an external "internet", a
// router, and one to three sites behind it (plain hosts, Docker hosts,
// libvirt hosts with VMs, maybe running Docker themselves, a Kubernetes
// node with kube-proxy, a multi-homed host with policy routing).
func Generate(seed int64) (*Scenario, error) {
	g := &gen{
		r:      rand.New(rand.NewPCG(uint64(seed), 0x70f1c0de)),
		t:      &topo{},
		names:  map[string]bool{},
		budget: maxNodes,
	}
	g.internet()
	g.makeRouter()
	sites := []struct {
		weight, need int
		make         func()
	}{
		{2, 1, g.plainHost},
		{3, 2, g.dockerHost},
		{3, 2, g.libvirtHost},
		{2, 2, g.kubeNode},
		{2, 1, g.multiHomed},
	}
	made := 0
	for made < 3 && g.budget > 0 {
		if made > 0 && g.chance(0.25) {
			break
		}
		total := 0
		for _, s := range sites {
			if s.need <= g.budget {
				total += s.weight
			}
		}
		x := g.r.IntN(total)
		for _, s := range sites {
			if s.need > g.budget {
				continue
			}
			if x < s.weight {
				s.make()
				break
			}
			x -= s.weight
		}
		made++
	}
	g.dualStack(seed)
	g.portForward()
	g.wireLANs()
	g.extraProbes()
	g.t.comment = []string{
		fmt.Sprintf("pktflow conformance scenario, seed %d (internal/conformance.Generate)", seed),
		"features: " + strings.Join(g.feats, ", "),
	}
	sc := &Scenario{Seed: seed, Features: g.feats, YAML: g.t.yaml()}
	snap, err := loadYAML(sc.YAML)
	if err != nil {
		return nil, fmt.Errorf("conformance: seed %d makes a snapshot that does not load (generator bug): %w\n%s", seed, err, sc.YAML)
	}
	sc.Snap = snap
	sc.Probes = g.selectProbes(snap)
	if _, err := sc.EngineProbes(); err != nil {
		return nil, fmt.Errorf("conformance: seed %d: %w", seed, err)
	}
	return sc, nil
}

// portForward makes the router forward a WAN port to a LAN listener,
// maybe with NAT loopback for the LAN's own clients.
func (g *gen) portForward() {
	if g.router == nil || !g.chance(0.4) {
		return
	}
	var cands []server
	cands = append(cands, g.servers...)
	for _, n := range g.t.nodes {
		for _, i := range n.ifaces {
			for _, e := range g.lans[0].ends[1:] {
				if e == n.name+":"+i.name && len(i.addrs) > 0 {
					cands = append(cands, server{n.name, netip.MustParsePrefix(i.addrs[0]).Addr(), "tcp", 22})
				}
			}
		}
	}
	if len(cands) == 0 {
		return
	}
	s := cands[g.r.IntN(len(cands))]
	wp := 2200 + g.r.IntN(100)
	fw := g.router.firewall()
	g.feature("router port forward")
	fw.A("nat", "PREROUTING", "-i eth0 -p %s -m %s --dport %d -j DNAT --to-destination %s:%d", s.proto, s.proto, wp, s.addr, s.port)
	if fw.chain("filter", "FORWARD").policy == "DROP" {
		if g.chance(0.5) {
			fw.A("filter", "FORWARD", "-m conntrack --ctstate DNAT -j ACCEPT")
		} else {
			fw.A("filter", "FORWARD", "-d %s/32 -i eth0 -p %s -m %s --dport %d -j ACCEPT", s.addr, s.proto, s.proto, s.port)
		}
	}
	if g.chance(0.35) {
		g.feature("hairpin NAT on the router")
		l := g.lans[0]
		fw.A("nat", "PREROUTING", "-d %s/32 -i %s -p %s -m %s --dport %d -j DNAT --to-destination %s:%d", g.wanIP, l.dev, s.proto, s.proto, wp, s.addr, s.port)
		fw.A("nat", "POSTROUTING", "-s %s -d %s/32 -o %s -p %s -m %s --dport %d -j MASQUERADE", l.pfx, s.addr, l.dev, s.proto, s.proto, s.port)
		if fw.chain("filter", "FORWARD").policy == "DROP" {
			fw.A("filter", "FORWARD", "-i %s -o %s -m conntrack --ctstate DNAT -j ACCEPT", l.dev, l.dev)
		}
	}
}

// expiryProbes adds two probes from a random node of from to a random
// address of dsts, ICMP or UDP to port 53, with a TTL (hop limit) of 1 to
// maxTTL.
func (g *gen) expiryProbes(from []string, dsts []netip.Addr, maxTTL int) {
	for i := 0; i < 2; i++ {
		src := from[g.r.IntN(len(from))]
		dst := dsts[g.r.IntN(len(dsts))]
		ttl := 1 + g.r.IntN(maxTTL)
		if g.chance(0.7) {
			g.probe("%s icmp %s ttl=%d", src, dst, ttl)
		} else {
			g.probe("%s udp %s ttl=%d", src, netip.AddrPortFrom(dst, 53), ttl)
		}
	}
}

// extraProbes adds what default probes do not cover: TTL expiry, closed
// ports, the router's route types, NodePorts.
func (g *gen) extraProbes() {
	for i, a := range g.routeProbe {
		if i >= 3 {
			break
		}
		from := g.lans[0].ends[1+g.r.IntN(len(g.lans[0].ends)-1)]
		node, _, _ := strings.Cut(from, ":")
		proto := g.pick("icmp", "tcp", "udp")
		if proto == "icmp" {
			g.probe("%s icmp %s", node, a)
		} else {
			g.probe("%s %s %s:%d", node, proto, a, 7000+g.r.IntN(100))
		}
	}
	if len(g.deep) > 0 {
		g.feature("TTL expiry")
		g.expiryProbes(g.deep, g.owned, 4)
	}
	for _, np := range g.nodePorts {
		from := g.router.name
		for _, e := range g.lans[0].ends[1:] {
			node, _, _ := strings.Cut(e, ":")
			if n := g.t.node(node); n != nil && !hasAddr(n, np.Addr()) {
				from = node
				break
			}
		}
		g.probe("%s tcp %s", from, np)
	}
	if g.proxy && len(g.lans[0].ends) > 1 {
		node, _, _ := strings.Cut(g.lans[0].ends[len(g.lans[0].ends)-1], ":")
		g.probe("%s tcp %s:80", node, g.owned[0])
	}
	// A closed port somewhere, from somewhere.
	for i := 0; i < 2; i++ {
		from := g.t.nodes[g.r.IntN(len(g.t.nodes))]
		to := g.t.nodes[g.r.IntN(len(g.t.nodes))]
		if from == to || len(to.ifaces) == 0 {
			continue
		}
		var addrs []string
		for _, ifc := range to.ifaces {
			for _, a := range ifc.addrs {
				if strings.Contains(a, ":") && !from.hasIPv6() {
					continue // the lab turns IPv6 off on a node without it
				}
				addrs = append(addrs, strings.Split(a, "/")[0])
			}
		}
		if len(addrs) == 0 {
			continue
		}
		a := netip.MustParseAddr(addrs[g.r.IntN(len(addrs))])
		g.probe("%s %s %s", from.name, g.pick("tcp", "udp"), netip.AddrPortFrom(a, uint16(6000+g.r.IntN(50))))
	}
}

func hasAddr(n *node, a netip.Addr) bool {
	for _, i := range n.ifaces {
		for _, s := range i.addrs {
			if netip.MustParsePrefix(s).Addr() == a {
				return true
			}
		}
	}
	return false
}

// selectProbes picks the scenario's probes: a random sample of the
// default ones (every published port and listener kind, then ICMP) and
// the generator's own.
func (g *gen) selectProbes(snap *model.Snapshot) []string {
	var ports, icmp []string
	for _, p := range verify.DefaultProbes(snap) {
		p.SPort = 0
		if p.Proto == packet.ICMP {
			icmp = append(icmp, verify.ProbeString(p))
		} else {
			ports = append(ports, verify.ProbeString(p))
		}
	}
	g.r.Shuffle(len(ports), func(i, j int) { ports[i], ports[j] = ports[j], ports[i] })
	g.r.Shuffle(len(icmp), func(i, j int) { icmp[i], icmp[j] = icmp[j], icmp[i] })
	out := append([]string(nil), ports[:min(len(ports), maxPortProbes)]...)
	out = append(out, icmp[:min(len(icmp), maxICMPProbes)]...)
	seen := map[string]bool{}
	for _, p := range out {
		seen[p] = true
	}
	for _, p := range g.probes {
		if !seen[p] && len(out) < maxProbes {
			seen[p] = true
			out = append(out, p)
		}
	}
	g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// loadYAML loads a topology.yaml through snapshot.Load, as a saved
// failure will be loaded.
func loadYAML(y []byte) (*model.Snapshot, error) {
	dir, err := os.MkdirTemp("", "pktflow-scenario-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, snapshot.TopologyFile), y, 0o644); err != nil {
		return nil, err
	}
	s, err := snapshot.Load(dir)
	if s != nil {
		s.Dir = ""
	}
	return s, err
}
