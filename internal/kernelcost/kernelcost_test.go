package kernelcost

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pktflow/pktflow/internal/gen"
)

// The client pod the generated kube node's rules expect traffic from.
var podAddr = netip.MustParseAddr("10.244.0.2")

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	for _, bin := range []string{"ip", "iptables-restore", "conntrack"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (./scripts/test installs it)", bin)
		}
	}
}

// kubeNode writes a generated kube-proxy node's iptables-save and returns
// its path and snapshot.
func kubeNode(t *testing.T, services int) (string, *gen.Snapshot) {
	t.Helper()
	g := gen.Kube(gen.KubeOptions{Services: services, Endpoints: 3, Seed: 1})
	file := filepath.Join(t.TempDir(), "iptables-save")
	if err := os.WriteFile(file, []byte(g.Node(gen.KubeNode).IPTables), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, g
}

func create(t *testing.T) *Namespace {
	t.Helper()
	n, err := Create(fmt.Sprintf("pfkc-%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Delete)
	return n
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestNewConnectionsWalkTheRules sends SYNs to a kube node's services and
// checks that the kernel walked the rules for each: every one became a
// connection, destination-NATed to an endpoint, and a SYN cost more with
// the rules than with empty tables.
func TestNewConnectionsWalkTheRules(t *testing.T) {
	needRoot(t)
	file, g := kubeNode(t, 1_000)
	n := create(t)
	if _, err := n.Restore(file, true); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Restore(file, false); err != nil {
		t.Fatal(err)
	}
	var flows []Flow
	for _, p := range gen.KubeServiceProbes(g, 32, false) {
		flows = append(flows, Flow{Src: podAddr, Dst: p.Dst, DPort: p.DPort})
	}
	const count = 400
	with, err := n.NewConnections(flows, count, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := n.Connections(); err != nil || c != count {
		t.Fatalf("conntrack holds %d connections (%v), want %d", c, err, count)
	}
	// Every SYN went to a cluster IP; its connection's reply must come
	// from an endpoint, which only the rules' DNAT can have chosen.
	out, err := exec.Command("ip", "netns", "exec", n.Name(), "conntrack", "-L", "-p", "tcp").CombinedOutput()
	if err != nil {
		t.Fatalf("conntrack -L: %v: %s", err, out)
	}
	natted := 0
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		var srcs, dsts []string
		for _, w := range f {
			if v, ok := strings.CutPrefix(w, "src="); ok {
				srcs = append(srcs, v)
			}
			if v, ok := strings.CutPrefix(w, "dst="); ok {
				dsts = append(dsts, v)
			}
		}
		if len(srcs) == 2 && len(dsts) == 2 && srcs[1] != dsts[0] && strings.HasPrefix(srcs[1], "10.244.") {
			natted++
		}
	}
	if natted != count {
		t.Fatalf("%d of %d connections were DNATed to an endpoint:\n%s", natted, count, out)
	}

	if err := n.Empty(); err != nil {
		t.Fatal(err)
	}
	without, err := n.NewConnections(flows, count, 20_000)
	if err != nil {
		t.Fatal(err)
	}
	mw, mo := median(with), median(without)
	t.Logf("per SYN: %v with %d services' rules, %v with empty tables", mw, 1_000, mo)
	if mw <= mo {
		t.Errorf("a SYN cost %v with the rules and %v without: the rules were not walked", mw, mo)
	}
}

// TestRejectedConnectionIsAnError checks that a SYN the rules reject (a
// service without endpoints) is reported, naming the flow.
func TestRejectedConnectionIsAnError(t *testing.T) {
	needRoot(t)
	file, g := kubeNode(t, 100)
	n := create(t)
	if _, err := n.Restore(file, false); err != nil {
		t.Fatal(err)
	}
	var flow *Flow
	for _, p := range g.Probes {
		if p.Expect == "rejected" && p.Proto == "tcp" {
			flow = &Flow{Src: podAddr, Dst: p.Dst, DPort: p.DPort}
			break
		}
	}
	if flow == nil {
		t.Fatal("the generated node has no service without endpoints")
	}
	_, err := n.NewConnections([]Flow{*flow}, 1, 30_000)
	if err == nil || !strings.Contains(err.Error(), flow.Dst.String()) {
		t.Fatalf("NewConnections to %s: err = %v, want an error naming it", flow.Dst, err)
	}
}

func TestBadArguments(t *testing.T) {
	n := &Namespace{name: "pfkc-never-made"}
	if _, err := n.NewConnections(nil, 1, 1); err == nil {
		t.Error("no flows: no error")
	}
	f := []Flow{{Src: podAddr, Dst: netip.MustParseAddr("10.96.0.1"), DPort: 80}}
	if _, err := n.NewConnections(f, 100, 65500); err == nil || !strings.Contains(err.Error(), "wrap") {
		t.Errorf("ports past 65535: err = %v", err)
	}
	n.wired = true // no namespace needed to refuse IPv6
	f6 := []Flow{{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), DPort: 80}}
	if _, err := n.NewConnections(f6, 1, 1); err == nil || !strings.Contains(err.Error(), "IPv4") {
		t.Errorf("IPv6 flow: err = %v", err)
	}
}
