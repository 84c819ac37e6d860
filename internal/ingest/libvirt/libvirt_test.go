package libvirt

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/synth"
)

func open(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func nets(t testing.TB, name string) []*Network {
	t.Helper()
	ns, err := ParseNetworks(name, open(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestParseSeedNetwork(t *testing.T) {
	for _, name := range []string{"seed-default.xml", "seed-default-prompt.xml"} {
		ns := nets(t, name)
		if len(ns) != 1 {
			t.Fatalf("%s: %d networks", name, len(ns))
		}
		n := ns[0]
		if n.Name != "default" || n.Mode != ModeNAT || n.Bridge != "virbr0" || n.MAC != "52:54:00:a8:d1:80" ||
			n.NATPortMin != 1024 || n.NATPortMax != 65535 || n.ForwardDev != "" {
			t.Errorf("%s: %+v", name, n)
		}
		wantLine := map[string]int{"seed-default.xml": 1, "seed-default-prompt.xml": 2}[name]
		if n.Line != wantLine {
			t.Errorf("%s: network line %d, want %d", name, n.Line, wantLine)
		}
		if len(n.IPs) != 2 {
			t.Fatalf("ips %+v", n.IPs)
		}
		v4, v6 := n.IPs[0], n.IPs[1]
		if v4.Prefix != netip.MustParsePrefix("192.168.122.1/24") || len(v4.Hosts) != 12 || len(v4.Ranges) != 1 || v4.Line != wantLine+10 {
			t.Errorf("ipv4 %+v", v4)
		}
		if h := v4.Hosts[1]; h.MAC != "52:54:00:01:1a:a2" || h.Name != "rhel8a" || h.IP != netip.MustParseAddr("192.168.122.120") || h.Line != wantLine+14 {
			t.Errorf("host rhel8a %+v", h)
		}
		if v6.Prefix != netip.MustParsePrefix("2001:db8:ca2:3::1/64") || len(v6.Ranges) != 1 || v6.Line != wantLine+27 {
			t.Errorf("ipv6 %+v", v6)
		}
		if f4, f6 := n.Forwarding(); !f4 || !f6 {
			t.Errorf("forwarding %v %v", f4, f6)
		}
	}
}

func TestParseModes(t *testing.T) {
	for _, tc := range []struct {
		file, name, mode, bridge, dev string
		ips                           int
	}{
		{"route-net.xml", "routed", ModeRoute, "virbr1", "enp7s0", 2},
		{"open-net.xml", "open", ModeOpen, "virbr2", "", 1},
		{"isolated-net.xml", "isolated", ModeIsolated, "virbr3", "", 1},
		{"nat6-net.xml", "nat6", ModeNAT, "virbr4", "eno1", 2},
	} {
		n := nets(t, tc.file)[0]
		if n.Name != tc.name || n.Mode != tc.mode || n.Bridge != tc.bridge || n.ForwardDev != tc.dev || len(n.IPs) != tc.ips {
			t.Errorf("%s: %+v", tc.file, n)
		}
	}
	r := nets(t, "route-net.xml")[0]
	if len(r.Routes) != 1 || r.Routes[0].Prefix != netip.MustParsePrefix("10.20.0.0/24") || r.Routes[0].Gateway != netip.MustParseAddr("10.10.0.2") || r.Routes[0].Line != 17 {
		t.Errorf("routes %+v", r.Routes)
	}
	n6 := nets(t, "nat6-net.xml")[0]
	if n6.NATStart != netip.MustParseAddr("203.0.113.10") || n6.NATEnd != netip.MustParseAddr("203.0.113.20") || n6.NATPortMin != 20000 || n6.MTU != 9000 || !n6.IPs[0].TFTP {
		t.Errorf("nat6 %+v", n6)
	}
	all := nets(t, "all-networks.xml")
	if len(all) != 2 || all[1].Mode != ModeBridge || all[1].Bridge != "br0" || all[0].Line != 2 || all[1].Line != 19 {
		t.Errorf("all-networks: %+v", all)
	}
	if f4, f6 := nets(t, "isolated-net.xml")[0].Forwarding(); f4 || f6 {
		t.Error("an isolated network does not turn forwarding on")
	}
}

// The rules libvirt installs for the seed's network are exactly those of
// the seed's iptables-save on mayura.
func TestSynthesizeSeed(t *testing.T) {
	b4, b6 := synth.New(4), synth.New(6)
	AddRules(b4, b6, nets(t, "seed-default.xml"))
	got, err := b4.Ruleset()
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join("..", "..", "..", "examples", "seed", "nodes", "mayura", "iptables-save")
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	want, err := iptsave.ParseString(name, string(data), 4)
	if err != nil {
		t.Fatal(err)
	}
	compareRulesets(t, got, want)
	for _, tb := range got.Tables {
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				o := r.Origin
				if !o.Synthesized || o.File != "synthesized from seed-default.xml" || o.Line < 1 || !strings.HasPrefix(o.Text, "-A "+c.Name+" ") {
					t.Errorf("origin %+v", o)
				}
			}
		}
	}
	// The masquerade rules come from the <ip> element (line 11).
	if o := got.Table("nat").Chain("LIBVIRT_PRT").Rules[2].Origin; o.Line != 11 {
		t.Errorf("MASQUERADE origin %+v", o)
	}
	// IPv6 in nat mode is routed, not masqueraded.
	v6, err := b6.Ruleset()
	if err != nil {
		t.Fatal(err)
	}
	if v6.Table("nat").Chain("LIBVIRT_PRT") == nil || len(v6.Table("nat").Chain("LIBVIRT_PRT").Rules) != 0 {
		t.Errorf("ip6tables nat: %s", b6.Text())
	}
	wantFWI := []string{"-A LIBVIRT_FWI -d 2001:db8:ca2:3::/64 -o virbr0 -j ACCEPT", "-A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp6-port-unreachable"}
	if got := texts(v6.Table("filter").Chain("LIBVIRT_FWI")); !slices.Equal(got, wantFWI) {
		t.Errorf("ip6tables LIBVIRT_FWI %q", got)
	}
	wantINP := []string{"-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 547 -j ACCEPT", "-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 53 -j ACCEPT", "-A LIBVIRT_INP -i virbr0 -p tcp -m tcp --dport 53 -j ACCEPT"}
	if got := texts(v6.Table("filter").Chain("LIBVIRT_INP")); !slices.Equal(got, wantINP) {
		t.Errorf("ip6tables LIBVIRT_INP %q", got)
	}
}

func texts(c *model.Chain) []string {
	var s []string
	for _, r := range c.Rules {
		s = append(s, r.Origin.Text)
	}
	return s
}

func compareRulesets(t *testing.T, got, want *model.Ruleset) {
	t.Helper()
	for _, wt := range want.Tables {
		gt := got.Table(wt.Name)
		if gt == nil {
			t.Errorf("table %s missing", wt.Name)
			continue
		}
		for _, wc := range wt.Chains {
			gc := gt.Chain(wc.Name)
			if gc == nil {
				t.Errorf("%s %s missing", wt.Name, wc.Name)
				continue
			}
			if gc.Policy != wc.Policy {
				t.Errorf("%s %s policy %q, want %q", wt.Name, wc.Name, gc.Policy, wc.Policy)
			}
			if g, w := texts(gc), texts(wc); !slices.Equal(g, w) {
				t.Errorf("%s %s:\n  %s\nwant\n  %s", wt.Name, wc.Name, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
			}
		}
		if len(gt.Chains) != len(wt.Chains) {
			t.Errorf("table %s: %d chains, want %d", wt.Name, len(gt.Chains), len(wt.Chains))
		}
	}
	if len(got.Tables) != len(want.Tables) {
		t.Errorf("%d tables, want %d", len(got.Tables), len(want.Tables))
	}
}

func TestSynthesizeModes(t *testing.T) {
	rules := func(file string) (*synth.Builder, *synth.Builder) {
		b4, b6 := synth.New(4), synth.New(6)
		AddRules(b4, b6, nets(t, file))
		return b4, b6
	}
	// route: ACCEPT both ways, restricted to the forward device; no NAT.
	b4, b6 := rules("route-net.xml")
	txt := b4.Text()
	for _, want := range []string{
		"-A LIBVIRT_FWO -s 10.10.0.0/24 -i virbr1 -o enp7s0 -j ACCEPT",
		"-A LIBVIRT_FWI -d 10.10.0.0/24 -i enp7s0 -o virbr1 -j ACCEPT",
		"-A LIBVIRT_PRT -o virbr1 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill",
	} {
		if !strings.Contains(txt, want+"\n") {
			t.Errorf("route: missing %q in\n%s", want, txt)
		}
	}
	if strings.Contains(txt, "MASQUERADE") {
		t.Errorf("route network masquerades:\n%s", txt)
	}
	if !strings.Contains(b6.Text(), "-A LIBVIRT_FWI -d fd00:10:10::/64 -i enp7s0 -o virbr1 -j ACCEPT\n") {
		t.Errorf("route ipv6:\n%s", b6.Text())
	}
	// open: nothing at all.
	if b4, b6 := rules("open-net.xml"); !b4.Empty() || !b6.Empty() {
		t.Errorf("open network has rules:\n%s", b4.Text())
	}
	// isolated: DHCP/DNS to dnsmasq and REJECT both ways, no forwarding.
	b4, _ = rules("isolated-net.xml")
	txt = b4.Text()
	if !strings.Contains(txt, "-A LIBVIRT_FWO -i virbr3 -j REJECT --reject-with icmp-port-unreachable\n") ||
		strings.Contains(txt, "-A LIBVIRT_FWO -s ") || strings.Contains(txt, "MASQUERADE") {
		t.Errorf("isolated:\n%s", txt)
	}
	// nat with an address range, ports and a forward device: SNAT; tftp.
	b4, b6 = rules("nat6-net.xml")
	txt = b4.Text()
	for _, want := range []string{
		"-A LIBVIRT_PRT -s 192.168.150.0/24 -d 224.0.0.0/24 -o eno1 -j RETURN",
		"-A LIBVIRT_PRT -s 192.168.150.0/24 ! -d 192.168.150.0/24 -o eno1 -p tcp -j SNAT --to-source 203.0.113.10-203.0.113.20:20000-30000",
		"-A LIBVIRT_PRT -s 192.168.150.0/24 ! -d 192.168.150.0/24 -o eno1 -j SNAT --to-source 203.0.113.10-203.0.113.20",
		"-A LIBVIRT_INP -i virbr4 -p udp -m udp --dport 69 -j ACCEPT",
		"-A LIBVIRT_FWI -d 192.168.150.0/24 -i eno1 -o virbr4 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
	} {
		if !strings.Contains(txt, want+"\n") {
			t.Errorf("nat6: missing %q in\n%s", want, txt)
		}
	}
	if _, err := b4.Ruleset(); err != nil {
		t.Error(err)
	}
	if _, err := b6.Ruleset(); err != nil {
		t.Error(err)
	}
	// bridge mode: the host's bridge, no rules.
	b4, _ = rules("all-networks.xml")
	if strings.Contains(b4.Text(), " br0 ") {
		t.Errorf("bridge-mode network has rules:\n%s", b4.Text())
	}
}

func TestParseLeases(t *testing.T) {
	ls, err := ParseLeases("seed-leases.txt", open(t, "seed-leases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("%d leases", len(ls))
	}
	want := model.DHCPLease{Network: "default", Expiry: "2021-11-15 17:09:48", MAC: "52:54:00:01:1a:a2",
		Prefix: netip.MustParsePrefix("192.168.122.120/24"), Hostname: "rhel8a", ClientID: "01:52:54:00:01:1a:a2",
		Origin: model.Origin{File: "seed-leases.txt", Line: 4, Text: " 2021-11-15 17:09:48  52:54:00:01:1a:a2  ipv4      192.168.122.120/24        rhel8a          01:52:54:00:01:1a:a2"}}
	if ls[0] != want {
		t.Errorf("lease %+v\nwant %+v", ls[0], want)
	}
	if ls[1].Prefix != netip.MustParsePrefix("2001:db8:ca2:3:1::c2/64") || ls[1].ClientID == "" {
		t.Errorf("ipv6 lease %+v", ls[1])
	}
	// The seed's whole VM section holds net-list output between the
	// lease listings: pktflow says which lines to remove.
	_, err = ParseLeases("seed-vm-section.txt", open(t, "seed-vm-section.txt"))
	checkErr(t, err, 8, "virsh net-list --all")
	// Without a prompt: no network; without a client id: "-".
	ls, err = ParseLeases("t", strings.NewReader(" Expiry Time  MAC address  Protocol  IP address  Hostname  Client ID or DUID\n----\n 2024-01-02 03:04:05  52:54:00:00:00:01  ipv4  10.0.0.5/24  -  -\n"))
	if err != nil || len(ls) != 1 || ls[0].Network != "" || ls[0].Hostname != "" || ls[0].ClientID != "" {
		t.Errorf("%+v %v", ls, err)
	}
}

func checkErr(t *testing.T, err error, line int, want string) {
	t.Helper()
	var ie *ingest.Error
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not *ingest.Error", err, err)
	}
	if ie.Line != line || !strings.Contains(ie.Error(), want) {
		t.Errorf("error %v: want line %d and %q", err, line, want)
	}
}

func TestLeaseErrors(t *testing.T) {
	const head = " Expiry Time          MAC address        Protocol  IP address                Hostname        Client ID or DUID\n"
	for _, tc := range []struct {
		text string
		line int
		want string
	}{
		{"2021-11-15 17:09:48  52:54:00:01:1a:a2  ipv4  192.168.122.120/24 rhel8a -\n", 1, "before the column header"},
		{head + " 2021-11-15 17:09:48  52:54:00:01:1a  ipv4  192.168.122.120/24 rhel8a -\n", 2, "not an Ethernet address"},
		{head + " 2021-11-15 17:09  52:54:00:01:1a:a2  ipv4  192.168.122.120/24 rhel8a -\n", 2, "YYYY-MM-DD"},
		{head + " 2021-11-15 17:09:48  52:54:00:01:1a:a2  ipv6  192.168.122.120/24 rhel8a -\n", 2, "protocol ipv6 with the IPv4"},
		{head + " 2021-11-15 17:09:48  52:54:00:01:1a:a2  ipv4  192.168.122.120 rhel8a -\n", 2, "ADDRESS/PREFIX"},
		{head + " 2021-11-15 17:09:48  52:54:00:01:1a:a2  ipv4\n", 2, "malformed lease line"},
		{" Expiry Time  MAC\n", 1, "unexpected column header"},
	} {
		_, err := ParseLeases("t", strings.NewReader(tc.text))
		checkErr(t, err, tc.line, tc.want)
	}
}

func TestParseDomains(t *testing.T) {
	ds, err := ParseDomains("rhel8a-domain.xml", open(t, "rhel8a-domain.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Name != "rhel8a" || len(ds[0].NICs) != 2 {
		t.Fatalf("%+v", ds)
	}
	want := []NIC{
		{MAC: "52:54:00:01:1a:a2", Target: "vnet0", Type: "network", Network: "default", Bridge: "virbr0", Model: "virtio", Line: 47},
		{MAC: "52:54:00:6b:3c:58", Target: "vnet1", Type: "bridge", Bridge: "br0", Model: "virtio", Line: 55},
	}
	if !slices.Equal(ds[0].NICs, want) {
		t.Errorf("nics %+v\nwant %+v", ds[0].NICs, want)
	}
	if TapMAC("52:54:00:01:1a:a2") != "fe:54:00:01:1a:a2" || TapMAC("x") != "" {
		t.Error("TapMAC")
	}
}

func TestXMLErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		line int
		want string
	}{
		{"<network>\n  <name>x</name>\n", 2, "not closed"},
		{"<network>\n  <name>x</nam>\n</network>\n", 2, "closes <name>"},
		{"<network>\n  <name>x</name\n</network>\n", 3, "malformed XML"},
		{"hello\n<network><name>x</name></network>\n", 1, "outside the XML"},
		{"<domain><name>x</name></domain>\n", 1, "expected <network>"},
		{"<network>\n</network>\n", 1, "without a <name>"},
		{"<network><name>a</name><forward mode='tunnel'/></network>\n", 1, "unknown forward mode"},
		{"<network><name>a</name>\n<forward mode='nat'/>\n<ip address='10.0.0.1' prefix='24'/></network>\n", 1, "no <bridge name"},
		{"<network><name>a</name><bridge name='virbr9'/>\n<ip address='10.0.0.300' prefix='24'/></network>\n", 2, "expected an IP address"},
		{"<network><name>a</name><bridge name='virbr9'/>\n<ip address='10.0.0.1' netmask='255.0.255.0'/></network>\n", 2, "not contiguous"},
		{"<network><name>a</name><bridge name='virbr9'/>\n<ip address='fd00::1' prefix='64'/></network>\n", 2, "family='ipv6'"},
		{"<network><name>a</name><bridge name='virbr9'/><ip address='10.0.0.1' prefix='24'><dhcp>\n<range start='10.1.0.2' end='10.0.0.9'/></dhcp></ip></network>\n", 2, "DHCP range"},
		{"<network><name>a</name><bridge name='virbr9'/><ip address='10.0.0.1' prefix='24'><dhcp>\n<host mac='zz' ip='10.0.0.9'/></dhcp></ip></network>\n", 2, "DHCP host MAC"},
		{"<network><name>a</name>\n<forward mode='nat'><nat><port start='2000' end='1000'/></nat></forward><bridge name='v'/><ip address='10.0.0.1' prefix='24'/></network>\n", 2, "NAT port range"},
		{"<network><name>a</name><bridge name='v'/><ip address='10.0.0.1' prefix='x'/></network>\n", 1, "reading the network XML"},
		{"<network><name>a</name><bridge name='v'/></network>\n<network><name>a</name><bridge name='v'/></network>\n", 2, "described twice"},
		{"<network><name>a</name><forward mode='route'/><bridge name='v'/></network>\n", 1, "without an <ip>"},
	} {
		_, err := ParseNetworks("t", strings.NewReader(tc.text))
		if err == nil {
			t.Errorf("%q: no error", tc.text)
			continue
		}
		checkErr(t, err, tc.line, tc.want)
	}
	_, err := ParseDomains("t", strings.NewReader("<domain><name>d</name><devices>\n<interface type='network'><mac address='nope'/><source network='default'/></interface></devices></domain>\n"))
	checkErr(t, err, 2, "interface MAC")
}

func fuzzCheck(t *testing.T, text string, err error) {
	var ie *ingest.Error
	if !errors.As(err, &ie) {
		t.Fatalf("%T %v", err, err)
	}
	lines := strings.Split(text, "\n")
	if ie.Line < 0 || ie.Line > len(lines) {
		t.Fatalf("error line %d of %d: %v", ie.Line, len(lines), err)
	}
}

func FuzzParseNetworks(f *testing.F) {
	for _, name := range []string{"seed-default.xml", "seed-default-prompt.xml", "route-net.xml", "open-net.xml", "isolated-net.xml", "nat6-net.xml", "all-networks.xml"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		ns, err := ParseNetworks("fuzz", strings.NewReader(text))
		if err != nil {
			if ns != nil {
				t.Fatal("networks with an error")
			}
			fuzzCheck(t, text, err)
			return
		}
		b4, b6 := synth.New(4), synth.New(6)
		AddRules(b4, b6, ns)
		if _, err := b4.Ruleset(); err != nil {
			t.Fatalf("synthesized v4 ruleset does not parse: %v\n%s", err, b4.Text())
		}
		if _, err := b6.Ruleset(); err != nil {
			t.Fatalf("synthesized v6 ruleset does not parse: %v\n%s", err, b6.Text())
		}
	})
}

func FuzzParseLeases(f *testing.F) {
	for _, name := range []string{"seed-leases.txt", "seed-vm-section.txt"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		ls, err := ParseLeases("fuzz", strings.NewReader(text))
		if err != nil {
			if ls != nil {
				t.Fatal("leases with an error")
			}
			fuzzCheck(t, text, err)
		}
	})
}

func FuzzParseDomains(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join("testdata", "rhel8a-domain.xml"))
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, text string) {
		ds, err := ParseDomains("fuzz", strings.NewReader(text))
		if err != nil {
			if ds != nil {
				t.Fatal("domains with an error")
			}
			fuzzCheck(t, text, err)
		}
	})
}
