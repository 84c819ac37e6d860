package docker

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

func containers(t testing.TB, name string) []*Container {
	t.Helper()
	cs, err := ParseContainers(name, open(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func networks(t testing.TB, name string) []*Network {
	t.Helper()
	ns, err := ParseNetworks(name, open(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestParseContainers(t *testing.T) {
	cs := containers(t, "seed-web-inspect.json")
	if len(cs) != 1 {
		t.Fatalf("%d containers", len(cs))
	}
	web := cs[0]
	if web.Name != "web" || !web.Running || web.NetworkMode != "default" || web.Line != 2 || !strings.HasPrefix(web.ID, "0d1b1ae40269") {
		t.Errorf("web %+v", web)
	}
	wantEP := []Endpoint{{Network: "bridge", NetworkID: "6c1a0c4b0a8f2e6d7c9b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d",
		IP: netip.MustParsePrefix("172.17.0.2/16"), Gateway: netip.MustParseAddr("172.17.0.1"), MAC: "02:42:ac:11:00:02"}}
	if !slices.Equal(web.Endpoints, wantEP) {
		t.Errorf("endpoints %+v", web.Endpoints)
	}
	var ports []string
	for _, p := range web.Ports {
		ports = append(ports, p.Proto+" "+netip.AddrPortFrom(p.HostIP, p.HostPort).String()+"->"+itoa(p.ContainerPort))
		if p.Line < 2 {
			t.Errorf("port line %d", p.Line)
		}
	}
	want := []string{"tcp 0.0.0.0:180->80", "tcp [::]:180->80", "tcp 0.0.0.0:1443->443", "tcp [::]:1443->443"}
	if !slices.Equal(ports, want) {
		t.Errorf("ports %q", ports)
	}
	cs = containers(t, "docker24-inspect.json")
	if len(cs) != 3 || cs[0].Name != "dns" || cs[2].Running || cs[0].Line != 3 {
		t.Fatalf("%+v", cs)
	}
	if p := cs[0].Ports; len(p) != 1 || p[0].Proto != "udp" || p[0].HostIP != netip.MustParseAddr("127.0.0.1") || p[0].HostPort != 5353 {
		t.Errorf("dns ports %+v (9153/tcp is exposed, not published)", p)
	}
	if ep, ok := GatewayEndpoint(cs[1]); !ok || ep.Network != "appnet" {
		t.Errorf("api publishes on %+v", ep)
	}
}

func itoa(n uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), n).String()[len("0.0.0.0:"):]
}

func TestParseNetworks(t *testing.T) {
	ns := networks(t, "docker24-network-inspect.json")
	if len(ns) != 5 {
		t.Fatalf("%d networks", len(ns))
	}
	br, app, back := ns[0], ns[1], ns[2]
	if br.Bridge != "docker0" || !br.ICC || !br.Masquerade || br.MTU != 1500 || br.BindingIP.IsValid() || len(br.Members) != 1 {
		t.Errorf("bridge %+v", br)
	}
	if app.Bridge != "br-9f3e2d1c0b4a" || len(app.Subnets) != 1 || app.Subnets[0].Gateway != netip.MustParseAddr("172.18.0.1") || len(app.Members) != 2 {
		t.Errorf("appnet %+v", app)
	}
	if !back.Internal || back.ICC || back.Bridge != "br-4d5e6f708192" {
		t.Errorf("backend %+v", back)
	}
	all, notes := Resolve(ns, nil)
	var order []string
	for _, n := range all {
		order = append(order, n.Name)
	}
	if !slices.Equal(order, []string{"bridge", "appnet", "backend"}) || len(notes) != 0 {
		t.Errorf("resolve %v %q", order, notes)
	}
}

// The rules Docker installs for the seed's container are exactly those of
// the seed's iptables-save on rhel8a.
func TestSynthesizeSeed(t *testing.T) {
	b := synth.New(4)
	nets, notes := Resolve(networks(t, "seed-network-inspect.json"), nil)
	ctrs := containers(t, "seed-web-inspect.json")
	notes = append(notes, AddRules(b, nets, ctrs, false)...)
	got, err := b.Ruleset()
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join("..", "..", "..", "examples", "seed", "nodes", "rhel8a", "iptables-save")
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	want, err := iptsave.ParseString(name, string(data), 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, wt := range want.Tables {
		gt := got.Table(wt.Name)
		if gt == nil {
			t.Fatalf("table %s missing:\n%s", wt.Name, b.Text())
		}
		for _, wc := range wt.Chains {
			gc := gt.Chain(wc.Name)
			if gc == nil {
				t.Errorf("%s %s missing", wt.Name, wc.Name)
				continue
			}
			if gc.Policy != wc.Policy {
				t.Errorf("%s %s policy %q want %q", wt.Name, wc.Name, gc.Policy, wc.Policy)
			}
			if g, w := texts(gc), texts(wc); !slices.Equal(g, w) {
				t.Errorf("%s %s:\n  %s\nwant\n  %s", wt.Name, wc.Name, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
			}
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "IPv6") {
		t.Errorf("notes %q", notes)
	}
	dnat := got.Table("nat").Chain("DOCKER").Rules[1].Origin
	if !dnat.Synthesized || dnat.File != "synthesized from seed-web-inspect.json" || dnat.Line < 2 {
		t.Errorf("DNAT origin %+v", dnat)
	}
	ls := Listeners(ctrs)
	if len(ls) != 4 || ls[0].Proto != "tcp" || ls[0].Port != 180 || ls[0].Addr.IsValid() || !strings.Contains(ls[0].Process, "docker-proxy") {
		t.Errorf("listeners %+v", ls)
	}
}

func texts(c *model.Chain) []string {
	var s []string
	for _, r := range c.Rules {
		s = append(s, r.Origin.Text)
	}
	return s
}

func TestSynthesizeNetworks(t *testing.T) {
	b := synth.New(4)
	ctrs := containers(t, "docker24-inspect.json")
	nets, notes := Resolve(networks(t, "docker24-network-inspect.json"), ctrs)
	notes = append(notes, AddRules(b, nets, ctrs, false)...)
	txt := b.Text()
	for _, want := range []string{
		":FORWARD DROP [0:0]",
		"-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n",
		"-A FORWARD -o br-9f3e2d1c0b4a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n",
		"-A FORWARD -i br-4d5e6f708192 -o br-4d5e6f708192 -j DROP\n",
		"-A DOCKER-ISOLATION-STAGE-1 ! -s 172.19.0.0/16 -o br-4d5e6f708192 -j DROP\n-A DOCKER-ISOLATION-STAGE-1 ! -d 172.19.0.0/16 -i br-4d5e6f708192 -j DROP\n",
		"-A DOCKER-ISOLATION-STAGE-2 -o br-9f3e2d1c0b4a -j DROP\n-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP\n-A DOCKER-ISOLATION-STAGE-2 -j RETURN\n",
		"-A POSTROUTING -s 172.18.0.0/16 ! -o br-9f3e2d1c0b4a -j MASQUERADE\n-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n",
		"-A DOCKER -d 127.0.0.1/32 ! -i br-9f3e2d1c0b4a -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.3:53\n",
		"-A DOCKER ! -i br-9f3e2d1c0b4a -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080\n",
		"-A DOCKER -d 172.18.0.2/32 ! -i br-9f3e2d1c0b4a -o br-9f3e2d1c0b4a -p tcp -m tcp --dport 8080 -j ACCEPT\n",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("missing\n%s\nin\n%s", want, txt)
		}
	}
	if strings.Contains(txt, "172.19.0.0/16 ! -o") || strings.Contains(txt, "8000") {
		t.Errorf("internal network masqueraded or stopped container published:\n%s", txt)
	}
	joined := strings.Join(notes, "\n")
	for _, w := range []string{"container old is not running", "api is on several networks", "network host"} {
		if w == "network host" {
			if strings.Contains(joined, w) {
				t.Errorf("host network noted: %q", notes)
			}
			continue
		}
		if !strings.Contains(joined, w) {
			t.Errorf("notes lack %q: %q", w, notes)
		}
	}
	if _, err := b.Ruleset(); err != nil {
		t.Fatal(err)
	}
	// Hairpin mode (--userland-proxy=false).
	b = synth.New(4)
	AddRules(b, nets, ctrs, true)
	txt = b.Text()
	for _, want := range []string{
		"-A POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE\n",
		"-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER\n",
		"-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080\n",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("hairpin: missing %q in\n%s", want, txt)
		}
	}
	if strings.Contains(txt, "-i docker0 -j RETURN") {
		t.Errorf("hairpin keeps the RETURN:\n%s", txt)
	}
}

// Containers without a network inspect: their networks are derived.
func TestResolveDerived(t *testing.T) {
	ctrs := containers(t, "docker24-inspect.json")
	nets, notes := Resolve(nil, ctrs)
	if len(nets) != 2 || nets[0].Bridge != "docker0" || nets[1].Bridge != "br-9f3e2d1c0b4a" || !nets[1].Derived ||
		nets[1].Subnets[0].Prefix != netip.MustParsePrefix("172.18.0.0/16") || len(notes) != 2 {
		t.Errorf("%+v %q", nets, notes)
	}
	if !Attached(nets[0], ctrs) {
		t.Error("api is running on bridge")
	}
	if BridgeMAC("docker0") == BridgeMAC("br-x") || !strings.HasPrefix(BridgeMAC("docker0"), "02:42:") {
		t.Error("BridgeMAC")
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		nets bool
		line int
		want string
	}{
		{"[\n  {\"Id\": \"x\", \"NetworkSettings\": {\"Networks\": {\"b\": {\"IPAddress\": \"1.2.3\", \"IPPrefixLen\": 16}}}}\n]\n", false, 2, "IPAddress \"1.2.3\""},
		{"[\n  {\"Id\": \"x\",\n \"NetworkSettings\": {\"Ports\": {\"80/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"x\"}]}}}\n]\n", false, 3, "HostPort"},
		{"[\n  {\"Id\": \"x\",\n \"NetworkSettings\": {\"Ports\": {\"80/icmp\": null}}}\n]\n", false, 3, "PORT/tcp"},
		{"[\n  {\"Name\": \"n\"}\n]\n", false, 2, "not a container"},
		{"[\n  {\"Id\": \"x\", \"NetworkSettings\": {\"Networks\": 5}}\n]\n", false, 2, "is a JSON number"},
		{"[\n  {\"Id\": \"x\",\n", false, 2, "ends early"},
		{"{\"Id\": \"x\"}\n", false, 1, "expected a JSON array"},
		{"[\n {\"Id\": \"x\" \"b\": 1}\n]\n", false, 2, "malformed JSON"},
		{"[\n {\"Name\": \"n\", \"Id\": \"i\", \"Driver\": \"bridge\",\n \"IPAM\": {\"Config\": [{\"Subnet\": \"10.0.0.0/33\"}]}}\n]\n", true, 3, "IPAM subnet"},
		{"[\n {\"Name\": \"n\", \"Id\": \"i\", \"Driver\": \"bridge\",\n \"IPAM\": {\"Config\": [{\"Subnet\": \"10.0.0.0/8\", \"Gateway\": \"11.0.0.1\"}]}}\n]\n", true, 3, "IPAM gateway"},
		{"[\n {\"Name\": \"n\", \"Id\": \"i\", \"Driver\": \"bridge\",\n \"Options\": {\"com.docker.network.bridge.enable_icc\": \"maybe\"}}\n]\n", true, 3, "true or false"},
		{"[\n {\"Id\": \"x\", \"NetworkSettings\": {}}\n]\n", true, 2, "not a network"},
	} {
		var err error
		if tc.nets {
			_, err = ParseNetworks("t", strings.NewReader(tc.text))
		} else {
			_, err = ParseContainers("t", strings.NewReader(tc.text))
		}
		var ie *ingest.Error
		if !errors.As(err, &ie) {
			t.Errorf("%q: error %v (%T)", tc.text, err, err)
			continue
		}
		if ie.Line != tc.line || !strings.Contains(ie.Error(), tc.want) {
			t.Errorf("%q: got %v, want line %d and %q", tc.text, err, tc.line, tc.want)
		}
	}
}

func fuzzCheck(t *testing.T, text string, err error) {
	var ie *ingest.Error
	if !errors.As(err, &ie) {
		t.Fatalf("%T %v", err, err)
	}
	if n := strings.Count(text, "\n") + 1; ie.Line < 0 || ie.Line > n {
		t.Fatalf("line %d of %d: %v", ie.Line, n, err)
	}
}

func FuzzParseContainers(f *testing.F) {
	for _, n := range []string{"seed-web-inspect.json", "docker24-inspect.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		cs, err := ParseContainers("fuzz", strings.NewReader(text))
		if err != nil {
			fuzzCheck(t, text, err)
			return
		}
		b := synth.New(4)
		nets, _ := Resolve(nil, cs)
		AddRules(b, nets, cs, false)
		if _, err := b.Ruleset(); err != nil {
			t.Fatalf("%v\n%s", err, b.Text())
		}
	})
}

func FuzzParseNetworks(f *testing.F) {
	for _, n := range []string{"seed-network-inspect.json", "docker24-network-inspect.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		ns, err := ParseNetworks("fuzz", strings.NewReader(text))
		if err != nil {
			fuzzCheck(t, text, err)
			return
		}
		b := synth.New(4)
		nets, _ := Resolve(ns, nil)
		AddRules(b, nets, nil, false)
		if _, err := b.Ruleset(); err != nil {
			t.Fatalf("%v\n%s", err, b.Text())
		}
	})
}
