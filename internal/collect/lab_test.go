package collect

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
	"github.com/pktflow/pktflow/internal/verify"
)

// TestMain tears down every lab and container still up when the run ends
// or is interrupted.
func TestMain(m *testing.M) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		lab.Teardown()
		dockerTeardown()
		exec.Command("ip", "netns", "delete", oddNS()).Run()
		os.Exit(2)
	}()
	code := m.Run()
	if err := lab.Teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "teardown:", err)
		code = 1
	}
	dockerTeardown()
	os.Exit(code)
}

// oddNS is the one namespace a test makes without the lab.
func oddNS() string { return labPrefix() + "-odd" }

// needLab skips a test that needs root, ip netns and tcpdump.
func needLab(t *testing.T) {
	t.Helper()
	if err := lab.Available(); err != nil {
		t.Skipf("skipping: collecting from namespaces built for the test needs them: %v", err)
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("skipping: tcpdump not installed (apt-get install -y tcpdump)")
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("skipping: iptables not installed (apt-get install -y iptables)")
	}
}

func tctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// labPrefix is this test binary's namespace prefix: "pfcol<pid>".
func labPrefix() string { return fmt.Sprintf("pfcol%d", os.Getpid()) }

// upLabnet builds testdata/labnet as namespaces named pfcol<pid>-NODE.
func upLabnet(t *testing.T) *lab.Lab {
	t.Helper()
	s, err := snapshot.Load("testdata/labnet")
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Up(tctx(t, time.Minute), s, lab.Options{Prefix: labPrefix()})
	if err != nil {
		t.Fatalf("lab.Up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
		for _, ns := range l.Namespaces() {
			if _, err := os.Stat("/run/netns/" + ns); err == nil {
				t.Errorf("namespace %s left after Down", ns)
			}
		}
	})
	for _, w := range l.Warnings() {
		t.Logf("lab warning: %s", w)
	}
	return l
}

// renameNodes maps collected node names (the lab's namespace names) back
// to the lab's node names, so the lab can send the probes the engine
// traces.
func renameNodes(s *model.Snapshot, prefix string) {
	for _, n := range s.Nodes {
		n.Name = strings.TrimPrefix(n.Name, prefix+"-")
	}
	for _, l := range s.Links {
		for i := range l.Ends {
			l.Ends[i].Node = strings.TrimPrefix(l.Ends[i].Node, prefix+"-")
		}
	}
}

// linkSet is a snapshot's links as sorted strings.
func linkSet(s *model.Snapshot) []string {
	var out []string
	for _, l := range s.Links {
		ends := []string{l.Ends[0].String(), l.Ends[1].String()}
		sort.Strings(ends)
		out = append(out, string(l.Kind)+" "+strings.Join(ends, " "))
	}
	sort.Strings(out)
	return out
}

// TestCollectNamedNamespaces collects the lab's namespaces by name and
// checks every rendered file against what iproute2 itself prints for
// the same namespace, byte for byte.
func TestCollectNamedNamespaces(t *testing.T) {
	needLab(t)
	l := upLabnet(t)
	var names []string
	for _, n := range l.Snapshot().Nodes {
		names = append(names, l.NS(n.Name))
	}
	snap, err := Collect(tctx(t, time.Minute), Options{NetNS: names})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range snap.Warnings {
		t.Logf("warning: %s", w)
	}
	if len(snap.Nodes) != len(names) {
		t.Fatalf("collected %d nodes, want %d", len(snap.Nodes), len(names))
	}
	for _, n := range snap.Nodes {
		ns := n.Target.NetNS
		for _, c := range []struct {
			file string
			argv []string
		}{
			{"ip-addr", []string{"addr", "show"}},
			{"ip-route", []string{"-4", "route", "show", "table", "all"}},
			{"ip6-route", []string{"-6", "route", "show", "table", "all"}},
			{"ip-rule", []string{"rule"}},
			{"ip-neigh", []string{"neigh"}},
		} {
			// Only stdout: iproute2 prints "Error: Peer netns reference is
			// invalid." on stderr when another process is creating or
			// deleting namespaces at that moment (other test packages run
			// in parallel), which is not part of the listing.
			cmd := exec.Command("ip", append([]string{"-n", ns}, c.argv...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ip -n %s %s: %v: %s%s", ns, strings.Join(c.argv, " "), err, out, stderr.String())
			}
			if got := n.Files[c.file]; got != string(out) {
				t.Errorf("%s %s differs from `ip -n %s %s`:\n--- collected\n%s--- ip\n%s", n.Target.Node, c.file, ns, strings.Join(c.argv, " "), got, out)
			}
		}
		out, err := exec.Command("ip", "netns", "exec", ns, "iptables-save").Output()
		if err != nil {
			t.Fatal(err)
		}
		if !hasTables(string(out)) != (n.Files["iptables-save"] == "") {
			t.Errorf("%s: iptables-save has tables: %v, collected: %q", n.Target.Node, hasTables(string(out)), n.Files["iptables-save"])
		}
	}
	dir := filepath.Join(t.TempDir(), "snap")
	warnings, err := snap.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("writing the lab's snapshot changed lines: %v", warnings)
	}
	s, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	renameNodes(s, l.Prefix())
	want := []string{
		"veth ctr2:eth0 vm:vethc2", "veth ctr:eth0 vm:vethc1", "veth host:eth0 router:eth0",
		"veth host:vnet0 vm:eth0", "veth outside:eth0 router:eth1",
	}
	if got := linkSet(s); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("links %v, want %v", got, want)
	}
	if k := s.Node("router").Kind; k != model.KindRouter {
		t.Errorf("router's kind is %s, want router", k)
	}
	if got := fmt.Sprint(s.Node("ctr").Listeners); !strings.Contains(got, "tcp") || len(s.Node("ctr").Listeners) != 2 {
		t.Errorf("ctr listeners %s, want tcp/80 and udp/53", got)
	}
	if br := s.Node("vm").Iface("br0"); br == nil || br.Kind != model.IfBridge {
		t.Errorf("vm br0 = %+v, want a bridge", br)
	}
	if p := s.Node("vm").Iface("vethc1"); p == nil || p.Master != "br0" || p.Kind != model.IfVeth {
		t.Errorf("vm vethc1 = %+v, want a veth port of br0", p)
	}
}

// TestCollectAllNetnsAgainstKernel is the round trip model → lab →
// collect --all-netns → snapshot → engine, checked against tcpdump on
// every interface: ICMP, TCP and UDP through two MASQUERADEs, a
// published port behind two DNATs, bridged traffic and refusals.
func TestCollectAllNetnsAgainstKernel(t *testing.T) {
	needLab(t)
	l := upLabnet(t)
	prefix := l.Prefix() + "-"
	snap, err := Collect(tctx(t, time.Minute), Options{AllNetNS: true,
		Keep: func(tg *Target) bool { return strings.HasPrefix(tg.NetNS, prefix) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Nodes) != len(l.Snapshot().Nodes) {
		var got []string
		for _, n := range snap.Nodes {
			got = append(got, n.Target.Node)
		}
		t.Fatalf("--all-netns kept %v, want the lab's %d namespaces", got, len(l.Snapshot().Nodes))
	}
	dir := filepath.Join(t.TempDir(), "snap")
	if _, err := snap.Write(dir); err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	renameNodes(s, l.Prefix())
	e, err := engine.New(s)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	cases := []struct {
		name    string
		probe   engine.Probe
		verdict string
	}{
		{"ctr pings outside", engine.Probe{From: "ctr", Proto: packet.ICMP, Dst: a("203.0.113.10")}, trace.Answered},
		{"ctr tcp to outside", engine.Probe{From: "ctr", Proto: packet.TCP, Dst: a("203.0.113.10"), DPort: 443, SPort: 40001}, trace.Answered},
		{"ctr udp to outside", engine.Probe{From: "ctr", Proto: packet.UDP, Dst: a("203.0.113.10"), DPort: 53, SPort: 40002}, trace.Answered},
		{"outside to published tcp port", engine.Probe{From: "outside", Proto: packet.TCP, Dst: a("198.51.100.2"), DPort: 8080, SPort: 40003}, trace.Answered},
		{"outside to published udp port", engine.Probe{From: "outside", Proto: packet.UDP, Dst: a("198.51.100.2"), DPort: 5353, SPort: 40004}, trace.Answered},
		{"outside pings host", engine.Probe{From: "outside", Proto: packet.ICMP, Dst: a("198.51.100.2")}, trace.Answered},
		{"ctr2 pings ctr over the bridge", engine.Probe{From: "ctr2", Proto: packet.ICMP, Dst: a("172.18.0.2")}, trace.Answered},
		{"outside pings host over IPv6", engine.Probe{From: "outside", Proto: packet.ICMP, Dst: a("2001:db8:1::2")}, trace.Answered},
		{"host tcp to outside over IPv6", engine.Probe{From: "host", Proto: packet.TCP, Dst: a("2001:db8:2::10"), DPort: 443, SPort: 40007}, trace.Answered},
		{"host udp to outside over IPv6", engine.Probe{From: "host", Proto: packet.UDP, Dst: a("2001:db8:2::10"), DPort: 53, SPort: 40008}, trace.Answered},
		{"outside to a closed host port", engine.Probe{From: "outside", Proto: packet.TCP, Dst: a("198.51.100.2"), DPort: 9999, SPort: 40005}, trace.Refused},
		{"vm to a closed ctr port", engine.Probe{From: "vm", Proto: packet.UDP, Dst: a("172.18.0.2"), DPort: 54, SPort: 40006}, trace.Refused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := verify.Check(tctx(t, 30*time.Second), l, e, tc.probe)
			if err != nil {
				t.Fatal(err)
			}
			if r.Trace.Verdict != tc.verdict {
				t.Errorf("verdict %s (%s), want %s", r.Trace.Verdict, r.Trace.Reason, tc.verdict)
			}
			if !r.Agreed {
				for _, c := range r.Trace.Captures {
					t.Logf("pktflow: %s %s %s %s", c.Node, c.Iface, c.Dir, c.Line)
				}
				for _, k := range r.Kernel {
					t.Logf("kernel:  %s", k)
				}
				t.Fatalf("%s\n%s", r.Summary(), strings.Join(r.Diffs, "\n"))
			}
		})
	}
}

// TestCollectWhatPktflowCannotRead: a namespace with a policy rule pktflow
// does not model (uidrange) and only native nft rules still gives a
// snapshot that loads: the rule line becomes a comment saying why, and
// the nft ruleset is kept under extra/ with a note in topology.yaml.
func TestCollectWhatPktflowCannotRead(t *testing.T) {
	needLab(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("skipping: nft not installed (apt-get install -y nftables)")
	}
	ns := oddNS()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns, err, out)
		}
	})
	for _, argv := range [][]string{
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "rule", "add", "uidrange", "1000-2000", "lookup", "main", "prio", "100"},
		{"ip", "netns", "exec", ns, "nft", "add", "table", "inet", "pfcol"},
		{"ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "pfcol", "in", "{ type filter hook input priority 0; policy accept; }"},
	} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	snap, err := Collect(tctx(t, time.Minute), Options{NetNS: []string{ns}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "-n", ns, "rule").Output()
	if got := snap.Nodes[0].Files["ip-rule"]; got != string(out) {
		t.Errorf("ip-rule:\n%s\nwant what ip prints:\n%s", got, out)
	}
	dir := filepath.Join(t.TempDir(), "snap")
	warnings, err := snap.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "ip-rule") || !strings.Contains(warnings[0], "uidrange") {
		t.Errorf("warnings %q, want one about the uidrange rule", warnings)
	}
	s, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Node(ns).Rules); n != 3 {
		t.Errorf("%d rules loaded, want the 3 default ones", n)
	}
	rules, _ := os.ReadFile(filepath.Join(dir, "nodes", ns, "ip-rule"))
	if !strings.Contains(string(rules), "# 100:\tfrom all uidrange 1000-2000 lookup main") {
		t.Errorf("the uidrange rule is not kept as a comment:\n%s", rules)
	}
	js, err := os.ReadFile(filepath.Join(dir, "extra", ns, "nft-ruleset.json"))
	if err != nil || !strings.Contains(string(js), `"pfcol"`) {
		t.Errorf("extra/%s/nft-ruleset.json: %v %.200s", ns, err, js)
	}
	topo, _ := os.ReadFile(filepath.Join(dir, "topology.yaml"))
	if !strings.Contains(string(topo), "nft-ruleset.json, which pktflow does not read yet") {
		t.Errorf("topology.yaml does not say the nft ruleset is not read:\n%s", topo)
	}
}
