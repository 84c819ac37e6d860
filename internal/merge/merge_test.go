package merge

import (
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

const seed = "../../examples/seed"

// splitSeed writes the seed as two machines' snapshots: the VM (with its
// container) and the bare-metal host (with the router and the internet
// written inline), as two people would have collected them.
func splitSeed(t *testing.T) (vm, host string) {
	t.Helper()
	base := t.TempDir()
	vm, host = filepath.Join(base, "vm"), filepath.Join(base, "host")
	for dir, nodes := range map[string][]string{vm: {"0d1b1ae40269", "rhel8a"}, host: {"mayura", "router"}} {
		for _, n := range nodes {
			if err := copyTree(filepath.Join(seed, "nodes", n), filepath.Join(dir, "nodes", n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(t, filepath.Join(vm, "topology.yaml"), `# rhel8a, collected inside the VM
nodes:
  0d1b1ae40269:
    kind: container
    listen: [tcp/443, tcp/80]
  rhel8a:
    kind: host
    sysctl: {net.ipv4.ip_forward: 1}
    listen: [tcp/22, tcp/1443, tcp/180]
links:
  - veth: [0d1b1ae40269:eth0, rhel8a:vethf274fbd]
names:
  www.google.com: [142.250.115.106]
`)
	write(t, filepath.Join(host, "topology.yaml"), `nodes:
  mayura:
    kind: host
    sysctl: {net.ipv4.ip_forward: 1}
    listen: [tcp/22]
  router:
    kind: router
    sysctl: {net.ipv4.ip_forward: 1}
links:
  - segment: [mayura:enp7s0, router:eth1]
`)
	return vm, host
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// extraLinks declares what neither machine can report: the internet and
// the wires to it.
const extraLinks = `nodes:
  internet:
    kind: external
    owns: [142.250.115.106/32]
    ttl: 106
    listen: [tcp/443, tcp/80, udp/53]
    interfaces:
      eth0: {addrs: [203.0.113.1/24], mac: "02:00:cb:00:71:01"}
links:
  - segment: [mayura:enp8s0, router:eth2]
  - segment: [router:eth0, internet:eth0]
names:
  www.google.com: [142.250.115.106]
`

func links(s *model.Snapshot) []string {
	var out []string
	for _, l := range s.Links {
		var ends []string
		for _, e := range l.Ends {
			ends = append(ends, e.String())
		}
		out = append(out, string(l.Kind)+" "+strings.Join(ends, " "))
	}
	sort.Strings(out)
	return out
}

// TestMergeSeed: the seed split in two machines' snapshots merges back
// into the seed: the tap is found by MAC, the guest becomes a vm, and the
// container's ping to the internet is MASQUERADEd twice as in the seed.
func TestMergeSeed(t *testing.T) {
	vm, host := splitSeed(t)
	lf := filepath.Join(t.TempDir(), "links.yaml")
	write(t, lf, extraLinks)
	out := filepath.Join(t.TempDir(), "merged")
	res, err := Merge(Options{Output: out, Snapshots: []string{host, vm}, Links: lf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Taps) != 1 || res.Taps[0] != "mayura:vnet0 rhel8a:enp1s0" {
		t.Errorf("taps %v, want mayura:vnet0 rhel8a:enp1s0", res.Taps)
	}
	got, err := snapshot.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := snapshot.Load(seed)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := links(got), links(want); strings.Join(g, "|") != strings.Join(w, "|") {
		t.Errorf("links\n%v\nwant the seed's\n%v", g, w)
	}
	if k := got.Node("rhel8a").Kind; k != model.KindVM {
		t.Errorf("rhel8a is a %s, want vm", k)
	}
	if i := got.Node("mayura").Iface("vnet0"); i == nil || i.Kind != model.IfTap {
		t.Errorf("mayura vnet0 = %+v, want a tap", i)
	}
	e, err := engine.New(got)
	if err != nil {
		t.Fatal(err)
	}
	tr := e.Trace(engine.Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: netip.MustParseAddr("142.250.115.106"), ICMPID: 55, ICMPSeq: 1})
	if tr.Verdict != trace.Answered {
		t.Fatalf("container → internet: %s (%s)", tr.Verdict, tr.Reason)
	}
	left := false
	for _, c := range tr.Captures {
		if c.Node == "mayura" && c.Iface == "enp7s0" && c.Dir == "out" && c.Src == "10.0.2.21" {
			left = true
		}
	}
	if !left {
		t.Errorf("the ping did not leave mayura as 10.0.2.21: %+v", tr.Captures)
	}
}

// TestMergeClash: the same node name in two snapshots is an error that
// names both.
func TestMergeClash(t *testing.T) {
	vm, _ := splitSeed(t)
	other := filepath.Join(t.TempDir(), "other")
	if err := copyTree(vm, other); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	_, err := Merge(Options{Output: out, Snapshots: []string{vm, other}})
	if err == nil {
		t.Fatal("merge succeeded with a node in two snapshots")
	}
	for _, want := range []string{"rhel8a", vm, other} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed merge left %s", out)
	}
}

// TestMergeRefusesBrokenResult: a --links file naming an interface no
// node has fails the merge, which then writes nothing.
func TestMergeRefusesBrokenResult(t *testing.T) {
	vm, host := splitSeed(t)
	lf := filepath.Join(t.TempDir(), "links.yaml")
	write(t, lf, "links:\n  - veth: [mayura:nosuch, rhel8a:enp1s0]\n")
	out := filepath.Join(t.TempDir(), "merged")
	_, err := Merge(Options{Output: out, Snapshots: []string{host, vm}, Links: lf})
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("err = %v, want one naming mayura:nosuch", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed merge left %s", out)
	}
	// The tap link is not added for an interface the file already wires.
	write(t, lf, "links:\n  - veth: [mayura:vnet0, rhel8a:enp1s0]\n")
	res, err := Merge(Options{Output: out, Snapshots: []string{host, vm}, Links: lf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Taps) != 0 {
		t.Errorf("taps %v added beside a declared link", res.Taps)
	}
}
