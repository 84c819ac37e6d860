package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

// loadYAML loads an inline topology.yaml as a snapshot.
func loadYAML(t *testing.T, topo string) *model.Snapshot {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "topology.yaml"), []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A multi-homed host: a reply-path that leaves by one uplink while the
// packet came in by the other, under each rp_filter mode.
const rpTopo = `
nodes:
  a:
    sysctl: {net.ipv4.conf.all.rp_filter: %s}
    interfaces: {eth0: {addrs: [10.0.2.21/24]}, eth1: {addrs: [192.168.2.21/24]}}
    routes: ["default via 10.0.2.1 dev eth0 metric 100", "default via 192.168.2.1 dev eth1 metric 101"]
    listen: [udp/53]
  x:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces: {eth0: {addrs: [192.168.2.1/24]}, eth1: {addrs: [10.0.2.1/24]}, lo: {addrs: [127.0.0.1/8, 198.51.100.5/32]}}
    routes: ["10.0.2.21/32 via 192.168.2.21 dev eth0"]
links:
  - segment: [a:eth1, x:eth0]
  - segment: [a:eth0, x:eth1]
`

func TestRPFilterAgainstKernel(t *testing.T) {
	needLab(t)
	for _, tc := range []struct {
		mode, verdict string
	}{{"0", trace.Answered}, {"1", trace.Dropped}, {"2", trace.Answered}} {
		t.Run("rp_filter="+tc.mode, func(t *testing.T) {
			s := loadYAML(t, sprintf(rpTopo, tc.mode))
			l, e := upLab(t, s)
			p := engine.Probe{From: "x", Proto: packet.UDP, Src: addr("198.51.100.5"), SPort: 40000, Dst: addr("10.0.2.21"), DPort: 53}
			runCases(t, l, e, []kcase{{"asymmetric udp", p, tc.verdict}})
			if tc.mode == "1" {
				// Strict mode bites already at ARP: a ignores x's request,
				// whose sender address 198.51.100.5 routes back via eth0.
				if r := e.Trace(p).Reason; !strings.Contains(r, "ARP") || !strings.Contains(r, "strict") {
					t.Errorf("reason should explain the ignored ARP request: %s", r)
				}
			}
		})
	}
}

// A router whose outside link has a smaller MTU than the inside one.
const mtuTopo = `
nodes:
  a:
    interfaces: {eth0: {addrs: [10.0.0.2/24]}}
    routes: ["default via 10.0.0.1 dev eth0"]
  r:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces: {eth0: {addrs: [10.0.0.1/24]}, eth1: {addrs: [10.0.1.1/24], mtu: 1400}}
  b:
    interfaces: {eth0: {addrs: [10.0.1.2/24], mtu: 1400}}
    routes: ["default via 10.0.1.1 dev eth0"]
    listen: [udp/7]
links:
  - veth: [a:eth0, r:eth0]
  - veth: [r:eth1, b:eth0]
`

// The same router over IPv6, where routers never fragment: a packet too
// big for the next link gets ICMPv6 packet-too-big whatever its flags
// (RFC 8200 5), from the router's address on the way back.
const mtu6Topo = `
nodes:
  a:
    interfaces: {eth0: {addrs: ["2001:db8:0:1::2/64"]}}
    routes: ["default via 2001:db8:0:1::1 dev eth0"]
  r:
    sysctl: {net.ipv6.conf.all.forwarding: 1}
    interfaces: {eth0: {addrs: ["2001:db8:0:1::1/64"]}, eth1: {addrs: ["2001:db8:0:2::1/64"], mtu: 1400}}
  b:
    interfaces: {eth0: {addrs: ["2001:db8:0:2::2/64"], mtu: 1400}}
    routes: ["default via 2001:db8:0:2::1 dev eth0"]
    listen: [udp/7]
links:
  - veth: [a:eth0, r:eth0]
  - veth: [r:eth1, b:eth0]
`

// TestMTUAgainstKernel sends UDP datagrams and echo requests that fit the
// router's outside link or not (Len is the UDP payload, or the ICMP
// message with its header), over each family.
func TestMTUAgainstKernel(t *testing.T) {
	needLab(t)
	udp := func(dst string, sport uint16, n int) engine.Probe {
		return engine.Probe{From: "a", Proto: packet.UDP, SPort: sport, Dst: addr(dst), DPort: 7, Len: n}
	}
	echo := func(dst string, n int) engine.Probe {
		return engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr(dst), Len: n, ICMPID: 7, ICMPSeq: 1}
	}
	const b4, b6 = "10.0.1.2", "2001:db8:0:2::2"
	for _, fam := range []struct {
		name, topo string
		cases      []kcase
	}{
		{"IPv4", mtuTopo, []kcase{
			{"fits", udp(b4, 40000, 1300), trace.Answered},
			{"too big with DF", udp(b4, 40001, 1450), trace.Rejected},
			{"echo too big", echo(b4, 1400), trace.Rejected},
			{"echo fits", echo(b4, 1380), trace.Answered},
		}},
		{"IPv6", mtu6Topo, []kcase{
			{"fits", udp(b6, 40000, 1300), trace.Answered},
			{"too big", udp(b6, 40001, 1400), trace.Rejected},
			{"echo too big", echo(b6, 1380), trace.Rejected},
		}},
	} {
		t.Run(fam.name, func(t *testing.T) {
			l, e := upLab(t, loadYAML(t, fam.topo))
			runCases(t, l, e, fam.cases)
		})
	}
}

// Two containers on one bridge, with a FORWARD rule that drops ICMP
// between bridge ports: it bites only when bridged traffic is sent
// through iptables.
const brTopo = `
nodes:
  h:
    sysctl: {net.bridge.bridge-nf-call-iptables: %s}
    interfaces:
      br0: {kind: bridge, addrs: [10.88.0.1/24]}
      veth1: {master: br0}
      veth2: {master: br0}
    iptables: |
      *filter
      :INPUT ACCEPT [0:0]
      :FORWARD ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      -A FORWARD -i br0 -o br0 -p icmp -m physdev --physdev-in veth1 --physdev-out veth2 -j DROP
      -A FORWARD -i br0 -o br0 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset
      COMMIT
  c1:
    interfaces: {eth0: {addrs: [10.88.0.2/24]}}
    routes: ["default via 10.88.0.1 dev eth0"]
  c2:
    interfaces: {eth0: {addrs: [10.88.0.3/24]}}
    routes: ["default via 10.88.0.1 dev eth0"]
    listen: [tcp/80]
links:
  - veth: [c1:eth0, h:veth1]
  - veth: [c2:eth0, h:veth2]
`

func TestBridgeNetfilterAgainstKernel(t *testing.T) {
	needLab(t)
	t.Run("bridge-nf-call-iptables=1", func(t *testing.T) {
		l, e := upLab(t, loadYAML(t, sprintf(brTopo, "1")))
		runCases(t, l, e, []kcase{
			{"icmp dropped on the bridge", engine.Probe{From: "c1", Proto: packet.ICMP, Dst: addr("10.88.0.3")}, trace.Dropped},
			{"the reply is dropped on the bridge", engine.Probe{From: "c2", Proto: packet.ICMP, Dst: addr("10.88.0.2")}, trace.Dropped},
			{"tcp reset by the bridge host", engine.Probe{From: "c1", Proto: packet.TCP, SPort: 40000, Dst: addr("10.88.0.3"), DPort: 80}, trace.Rejected},
		})
	})
	t.Run("bridge-nf-call-iptables=0", func(t *testing.T) {
		l, e := upLab(t, loadYAML(t, sprintf(brTopo, "0")))
		runCases(t, l, e, []kcase{
			{"icmp bridged without iptables", engine.Probe{From: "c1", Proto: packet.ICMP, Dst: addr("10.88.0.3")}, trace.Answered},
			{"tcp bridged without iptables", engine.Probe{From: "c1", Proto: packet.TCP, SPort: 40001, Dst: addr("10.88.0.3"), DPort: 80}, trace.Answered},
		})
	})
}

// A router with a firewall that rejects in several ways, routes of every
// type, and a second router that does not forward.
const rejectTopo = `
nodes:
  a:
    interfaces: {eth0: {addrs: [10.0.0.2/24]}}
    routes: ["default via 10.0.0.1 dev eth0"]
  r:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces: {eth0: {addrs: [10.0.0.1/24]}, eth1: {addrs: [10.0.1.1/24]}}
    routes:
      - blackhole 192.0.2.0/28
      - unreachable 192.0.2.16/28
      - prohibit 192.0.2.32/28
      - 198.51.100.0/24 via 10.0.1.3 dev eth1
    iptables: |
      *filter
      :INPUT ACCEPT [0:0]
      :FORWARD ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      -A FORWARD -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-host-prohibited
      -A FORWARD -p tcp -m tcp --dport 81 -j REJECT --reject-with tcp-reset
      -A FORWARD -p tcp -m tcp --dport 82 -j REJECT --reject-with icmp-admin-prohibited
      -A FORWARD -p udp -m multiport --dports 83,84:86 -j REJECT
      -A FORWARD -p tcp -m tcp --dport 87 -j DROP
      -A FORWARD -p icmp -m icmp --icmp-type 8 -m conntrack --ctstate NEW -d 10.0.1.2 -j ACCEPT
      COMMIT
  b:
    interfaces: {eth0: {addrs: [10.0.1.2/24]}}
    routes: ["default via 10.0.1.1 dev eth0"]
    listen: [tcp/80, tcp/81, tcp/82, tcp/87, tcp/88]
  nofwd:
    interfaces: {eth0: {addrs: [10.0.1.3/24]}, eth1: {addrs: [198.51.100.1/24]}}
links:
  - veth: [a:eth0, r:eth0]
  - segment: [r:eth1, b:eth0, nofwd:eth0]
`

func TestRejectAndRoutesAgainstKernel(t *testing.T) {
	needLab(t)
	l, e := upLab(t, loadYAML(t, rejectTopo))
	tcp := func(port uint16) engine.Probe {
		return engine.Probe{From: "a", Proto: packet.TCP, SPort: 40000 + port, Dst: addr("10.0.1.2"), DPort: port}
	}
	runCases(t, l, e, []kcase{
		{"allowed", tcp(88), trace.Answered},
		{"icmp-host-prohibited", tcp(80), trace.Rejected},
		{"tcp-reset", tcp(81), trace.Rejected},
		{"icmp-admin-prohibited", tcp(82), trace.Rejected},
		{"default reject on multiport", engine.Probe{From: "a", Proto: packet.UDP, SPort: 40100, Dst: addr("10.0.1.2"), DPort: 85}, trace.Rejected},
		{"silent drop", tcp(87), trace.Dropped},
		{"ping accepted as NEW", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("10.0.1.2")}, trace.Answered},
		{"blackhole route", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("192.0.2.1")}, trace.Dropped},
		{"unreachable route", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("192.0.2.17")}, trace.Rejected},
		{"prohibit route", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("192.0.2.33")}, trace.Rejected},
		{"no route at the router", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("203.0.113.9")}, trace.Rejected},
		{"forwarding off at the next router", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("198.51.100.7")}, trace.Dropped},
	})
}

// Policy routing by source and by a mark set in mangle OUTPUT: the mark
// re-routes the packet after the first lookup chose its source address.
const policyTopo = `
nodes:
  a:
    interfaces: {eth0: {addrs: [10.0.0.2/24]}, eth1: {addrs: [10.0.1.2/24]}}
    routes:
      - default via 10.0.0.1 dev eth0
      - default via 10.0.1.1 dev eth1 table 200
    rules:
      - "0: from all lookup local"
      - "100: from all fwmark 0x1/0xff lookup 200"
      - "32766: from all lookup main"
      - "32767: from all lookup default"
    iptables: |
      *mangle
      :PREROUTING ACCEPT [0:0]
      :INPUT ACCEPT [0:0]
      :FORWARD ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      :POSTROUTING ACCEPT [0:0]
      -A OUTPUT -p udp -m udp --dport 53 -j MARK --set-xmark 0x1/0xff
      COMMIT
  net:
    kind: external
    owns: [203.0.113.0/24]
    interfaces: {eth0: {addrs: [10.0.0.1/24]}, eth1: {addrs: [10.0.1.1/24]}}
    listen: [udp/53, udp/54]
links:
  - veth: [a:eth0, net:eth0]
  - veth: [a:eth1, net:eth1]
`

func TestPolicyRoutingAgainstKernel(t *testing.T) {
	needLab(t)
	l, e := upLab(t, loadYAML(t, policyTopo))
	runCases(t, l, e, []kcase{
		{"unmarked takes main", engine.Probe{From: "a", Proto: packet.UDP, SPort: 40000, Dst: addr("203.0.113.9"), DPort: 54}, trace.Answered},
		{"marked is re-routed by fwmark rule", engine.Probe{From: "a", Proto: packet.UDP, SPort: 40001, Dst: addr("203.0.113.9"), DPort: 53}, trace.Answered},
	})
}

// Docker's corner cases on a host with userland-proxy=false rules: the
// published port without "! -i docker0", so a container reaching its own
// published port through the host address is DNATed back to itself
// (hairpin) and masqueraded by the hairpin rule; the host's own traffic
// to the published port is DNATed in OUTPUT; REDIRECT to a local port.
const dockerTopo = `
nodes:
  h:
    sysctl: {net.ipv4.ip_forward: 1, net.bridge.bridge-nf-call-iptables: 0}
    interfaces:
      eth0: {addrs: [192.0.2.10/24]}
      docker0: {kind: bridge, addrs: [172.17.0.1/16]}
      veth0: {master: docker0}
    listen: [tcp/22]
    iptables: |
      *nat
      :PREROUTING ACCEPT [0:0]
      :INPUT ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      :POSTROUTING ACCEPT [0:0]
      :DOCKER - [0:0]
      -A PREROUTING -i eth0 -p tcp -m tcp --dport 2222 -j REDIRECT --to-ports 22
      -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
      -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
      -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
      -A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
      -A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
      COMMIT
  c:
    interfaces: {eth0: {addrs: [172.17.0.2/16]}}
    routes: ["default via 172.17.0.1 dev eth0"]
    listen: [tcp/80]
  o:
    interfaces: {eth0: {addrs: [192.0.2.20/24]}}
links:
  - veth: [c:eth0, h:veth0]
  - veth: [h:eth0, o:eth0]
`

func TestDockerCornerCasesAgainstKernel(t *testing.T) {
	needLab(t)
	l, e := upLab(t, loadYAML(t, dockerTopo))
	runCases(t, l, e, []kcase{
		{"published port from outside", engine.Probe{From: "o", Proto: packet.TCP, SPort: 40000, Dst: addr("192.0.2.10"), DPort: 8080}, trace.Answered},
		{"hairpin: container to its own published port", engine.Probe{From: "c", Proto: packet.TCP, SPort: 40001, Dst: addr("192.0.2.10"), DPort: 8080}, trace.Answered},
		{"host to its published port (OUTPUT DNAT)", engine.Probe{From: "h", Proto: packet.TCP, SPort: 40002, Dst: addr("192.0.2.10"), DPort: 8080}, trace.Answered},
		{"REDIRECT to a local port", engine.Probe{From: "o", Proto: packet.TCP, SPort: 40003, Dst: addr("192.0.2.10"), DPort: 2222}, trace.Answered},
		{"container to the outside, masqueraded", engine.Probe{From: "c", Proto: packet.ICMP, Dst: addr("192.0.2.20")}, trace.Answered},
	})
}

// With bridge-nf-call-iptables=1, DNAT back onto the same bridge is
// bridged, not routed: it needs hairpin mode on the container's port.
func TestDockerHairpinBridgeNetfilterAgainstKernel(t *testing.T) {
	needLab(t)
	for _, hp := range []struct {
		mode    string
		verdict string
	}{{"false", trace.Dropped}, {"true", trace.Answered}} {
		t.Run("hairpin="+hp.mode, func(t *testing.T) {
			topo := strings.Replace(dockerTopo, "net.bridge.bridge-nf-call-iptables: 0", "net.bridge.bridge-nf-call-iptables: 1", 1)
			topo = strings.Replace(topo, "veth0: {master: docker0}", "veth0: {master: docker0, hairpin: "+hp.mode+"}", 1)
			l, e := upLab(t, loadYAML(t, topo))
			runCases(t, l, e, []kcase{
				{"hairpin", engine.Probe{From: "c", Proto: packet.TCP, SPort: 40001, Dst: addr("192.0.2.10"), DPort: 8080}, hp.verdict},
				{"published port from outside", engine.Probe{From: "o", Proto: packet.TCP, SPort: 40000, Dst: addr("192.0.2.10"), DPort: 8080}, trace.Answered},
				{"container to the outside", engine.Probe{From: "c", Proto: packet.ICMP, Dst: addr("192.0.2.20")}, trace.Answered},
			})
		})
	}
}

// A server with two uplinks answers by the one a connection came in on:
// CONNMARK saves a mark for connections arriving on eth1, OUTPUT restores
// it on the replies, and an fwmark rule routes them back out of eth1.
const connmarkTopo = `
nodes:
  s:
    interfaces: {eth0: {addrs: [10.0.0.2/24]}, eth1: {addrs: [10.0.1.2/24]}}
    routes:
      - default via 10.0.0.1 dev eth0
      - default via 10.0.1.1 dev eth1 table 102
    rules:
      - "0: from all lookup local"
      - "100: from all fwmark 0x2 lookup 102"
      - "32766: from all lookup main"
      - "32767: from all lookup default"
    listen: [tcp/80, udp/53]
    iptables: |
      *mangle
      :PREROUTING ACCEPT [0:0]
      :INPUT ACCEPT [0:0]
      :FORWARD ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      :POSTROUTING ACCEPT [0:0]
      -A PREROUTING -i eth1 -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x2/0xffffffff
      -A OUTPUT -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
      COMMIT
  r0:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces: {eth0: {addrs: [10.0.0.1/24]}, eth1: {addrs: [198.51.100.1/24]}}
    routes: ["default via 198.51.100.9 dev eth1"]
  r1:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces: {eth0: {addrs: [10.0.1.1/24]}, eth1: {addrs: [198.51.101.1/24]}}
    routes: ["default via 198.51.101.9 dev eth1", "10.0.0.0/24 via 10.0.1.2 dev eth0"]
  client:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces: {eth0: {addrs: [198.51.100.9/24]}, eth1: {addrs: [198.51.101.9/24]}, lo: {addrs: [127.0.0.1/8, 203.0.113.5/32]}}
    routes: ["10.0.0.0/24 via 198.51.100.1 dev eth0", "10.0.1.0/24 via 198.51.101.1 dev eth1"]
links:
  - veth: [s:eth0, r0:eth0]
  - veth: [s:eth1, r1:eth0]
  - veth: [r0:eth1, client:eth0]
  - veth: [r1:eth1, client:eth1]
`

func TestConnmarkAgainstKernel(t *testing.T) {
	needLab(t)
	l, e := upLab(t, loadYAML(t, connmarkTopo))
	runCases(t, l, e, []kcase{
		{"in by eth0, back by eth0", engine.Probe{From: "client", Proto: packet.TCP, Src: addr("203.0.113.5"), SPort: 40000, Dst: addr("10.0.0.2"), DPort: 80}, trace.Answered},
		{"in by eth1, back by eth1 thanks to CONNMARK", engine.Probe{From: "client", Proto: packet.TCP, Src: addr("203.0.113.5"), SPort: 40001, Dst: addr("10.0.1.2"), DPort: 80}, trace.Answered},
		{"udp in by eth1", engine.Probe{From: "client", Proto: packet.UDP, Src: addr("203.0.113.5"), SPort: 40002, Dst: addr("10.0.1.2"), DPort: 53}, trace.Answered},
	})
}

// Docker's isolation between two networks: a container on docker0 may
// not reach one on a user bridge (routed between the bridges, dropped in
// DOCKER-ISOLATION-STAGE-2), while both reach the outside.
const isolationTopo = `
nodes:
  h:
    sysctl: {net.ipv4.ip_forward: 1, net.bridge.bridge-nf-call-iptables: 1}
    interfaces:
      eth0: {addrs: [192.0.2.10/24]}
      docker0: {kind: bridge, addrs: [172.17.0.1/16]}
      br-app: {kind: bridge, addrs: [172.18.0.1/16]}
      vetha: {master: docker0}
      vethb: {master: br-app}
    iptables: |
      *nat
      :PREROUTING ACCEPT [0:0]
      :INPUT ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      :POSTROUTING ACCEPT [0:0]
      -A POSTROUTING -s 172.18.0.0/16 ! -o br-app -j MASQUERADE
      -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
      COMMIT
      *filter
      :INPUT ACCEPT [0:0]
      :FORWARD DROP [0:0]
      :OUTPUT ACCEPT [0:0]
      :DOCKER - [0:0]
      :DOCKER-ISOLATION-STAGE-1 - [0:0]
      :DOCKER-ISOLATION-STAGE-2 - [0:0]
      :DOCKER-USER - [0:0]
      -A FORWARD -j DOCKER-USER
      -A FORWARD -j DOCKER-ISOLATION-STAGE-1
      -A FORWARD -o br-app -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A FORWARD -o br-app -j DOCKER
      -A FORWARD -i br-app ! -o br-app -j ACCEPT
      -A FORWARD -i br-app -o br-app -j ACCEPT
      -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A FORWARD -o docker0 -j DOCKER
      -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
      -A FORWARD -i docker0 -o docker0 -j ACCEPT
      -A DOCKER-ISOLATION-STAGE-1 -i br-app ! -o br-app -j DOCKER-ISOLATION-STAGE-2
      -A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
      -A DOCKER-ISOLATION-STAGE-1 -j RETURN
      -A DOCKER-ISOLATION-STAGE-2 -o br-app -j DROP
      -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
      -A DOCKER-ISOLATION-STAGE-2 -j RETURN
      -A DOCKER-USER -j RETURN
      COMMIT
  ca:
    interfaces: {eth0: {addrs: [172.17.0.2/16]}}
    routes: ["default via 172.17.0.1 dev eth0"]
  cb:
    interfaces: {eth0: {addrs: [172.18.0.2/16]}}
    routes: ["default via 172.18.0.1 dev eth0"]
    listen: [tcp/80]
  o:
    interfaces: {eth0: {addrs: [192.0.2.20/24]}}
    listen: [tcp/80]
links:
  - veth: [ca:eth0, h:vetha]
  - veth: [cb:eth0, h:vethb]
  - veth: [h:eth0, o:eth0]
`

func TestDockerIsolationAgainstKernel(t *testing.T) {
	needLab(t)
	l, e := upLab(t, loadYAML(t, isolationTopo))
	runCases(t, l, e, []kcase{
		{"docker0 to the user network is isolated", engine.Probe{From: "ca", Proto: packet.TCP, SPort: 40000, Dst: addr("172.18.0.2"), DPort: 80}, trace.Dropped},
		{"user network to the outside", engine.Probe{From: "cb", Proto: packet.TCP, SPort: 40001, Dst: addr("192.0.2.20"), DPort: 80}, trace.Answered},
		{"docker0 to the outside", engine.Probe{From: "ca", Proto: packet.ICMP, Dst: addr("192.0.2.20")}, trace.Answered},
	})
}

// A router whose route points at a neighbor that does not exist: after
// ARP gives up (about three seconds), the kernel sends the sender a host
// unreachable.
const neighTopo = `
nodes:
  a:
    interfaces: {eth0: {addrs: [10.0.0.2/24]}}
    routes: ["default via 10.0.0.1 dev eth0"]
  r:
    sysctl: {net.ipv4.ip_forward: 1}
    interfaces: {eth0: {addrs: [10.0.0.1/24]}, eth1: {addrs: [10.0.1.1/24]}}
    routes: ["198.51.100.0/24 via 10.0.1.99 dev eth1"]
  b:
    interfaces: {eth0: {addrs: [10.0.1.2/24]}}
links:
  - veth: [a:eth0, r:eth0]
  - veth: [r:eth1, b:eth0]
`

func TestNeighborFailureAgainstKernel(t *testing.T) {
	needLab(t)
	runNeighborCases(t, neighTopo, []kcase{
		{"no neighbor answers", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("198.51.100.7")}, trace.Rejected},
	})
}

// runNeighborCases checks probes in a lab of topo whose answers may come
// only once neighbour resolution gives up (about three seconds), so the
// captures run a while longer.
func runNeighborCases(t *testing.T, topo string, cases []kcase) {
	t.Helper()
	l, e := upLab(t, loadYAML(t, topo))
	old := Settle
	Settle = 4 * time.Second
	defer func() { Settle = old }()
	runCases(t, l, e, cases)
}

// The same over IPv6, where the source of a neighbor solicitation
// decides: d drops ICMPv6 from link-local sources. Pinging d itself, r
// solicits from its own address on that link, and d answers; forwarding
// a's echo, whose source is not r's, r solicits from its link-local
// address, d never answers, and after neighbor discovery gives up r tells
// a the address is unreachable.
const ndpSourceTopo = `
nodes:
  a:
    interfaces: {eth0: {addrs: ["2001:db8:1::2/64"]}}
    routes: ["default via 2001:db8:1::1 dev eth0"]
  r:
    sysctl: {net.ipv6.conf.all.forwarding: 1}
    interfaces: {eth0: {addrs: ["2001:db8:1::1/64"]}, eth1: {addrs: ["2001:db8:4::1/64"]}}
  d:
    interfaces: {eth0: {addrs: ["2001:db8:4::2/64"]}}
    routes: ["default via 2001:db8:4::1 dev eth0"]
    ip6tables: |
      *filter
      :INPUT ACCEPT [0:0]
      :FORWARD ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      -A INPUT -s fe80::/10 -p ipv6-icmp -j DROP
      COMMIT
links:
  - veth: [a:eth0, r:eth0]
  - veth: [r:eth1, d:eth0]
`

func TestNDPSourceAgainstKernel(t *testing.T) {
	needLab(t)
	runNeighborCases(t, ndpSourceTopo, []kcase{
		{"solicited from the router's own address", engine.Probe{From: "r", Proto: packet.ICMP, Dst: addr("2001:db8:4::2")}, trace.Answered},
		{"solicited from its link-local address", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("2001:db8:4::2")}, trace.Rejected},
	})
}

// A shared segment whose middle end is a bridge port: a frame for a host
// behind the bridge crosses the segment and enters the bridge there (the
// engine finds the receiver by MAC: segmentView.takes), while the other
// host on the segment only answers for itself.
const bridgedSegmentTopo = `
nodes:
  a: {interfaces: {eth0: {addrs: [10.9.0.1/24]}}, listen: [tcp/80]}
  b: {interfaces: {eth0: {addrs: [10.9.0.2/24]}}, listen: [tcp/80]}
  c: {interfaces: {eth0: {addrs: [10.9.0.3/24]}}, listen: [tcp/80]}
  sw:
    interfaces:
      br0: {kind: bridge, addrs: [10.9.0.4/24]}
      p0: {master: br0}
      p1: {master: br0}
links:
  - segment: [a:eth0, sw:p0, b:eth0]
  - veth: [sw:p1, c:eth0]
`

func TestBridgedSegmentAgainstKernel(t *testing.T) {
	needLab(t)
	l, e := upLab(t, loadYAML(t, bridgedSegmentTopo))
	runCases(t, l, e, []kcase{
		{"to a host behind the bridge port", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("10.9.0.3")}, trace.Answered},
		{"tcp to a host behind the bridge port", engine.Probe{From: "a", Proto: packet.TCP, SPort: 40000, Dst: addr("10.9.0.3"), DPort: 80}, trace.Answered},
		{"to the other host on the segment", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("10.9.0.2")}, trace.Answered},
		{"to the bridge itself", engine.Probe{From: "b", Proto: packet.ICMP, Dst: addr("10.9.0.4")}, trace.Answered},
		{"from behind the bridge to the segment", engine.Probe{From: "c", Proto: packet.TCP, SPort: 40001, Dst: addr("10.9.0.2"), DPort: 80}, trace.Answered},
	})
}

// An external node stands for networks that route, so it forwards by
// default; a snapshot that sets its forwarding off explicitly is
// honoured, as the lab (and so the kernel) honours it: it still answers
// for its own addresses, and drops the rest without a word (ip_error
// sends no ICMP error when the input device does not forward).
const externalNoForwardTopo = `
nodes:
  a:
    interfaces: {eth0: {addrs: [10.8.0.2/24]}}
    routes: ["default via 10.8.0.1 dev eth0"]
  net:
    kind: external
    sysctl: {net.ipv4.ip_forward: 0}
    interfaces: {eth0: {addrs: [10.8.0.1/24]}, eth1: {addrs: [10.8.1.1/24]}}
    listen: [tcp/80]
  b:
    interfaces: {eth0: {addrs: [10.8.1.2/24]}}
    routes: ["default via 10.8.1.1 dev eth0"]
    listen: [tcp/80]
links:
  - veth: [a:eth0, net:eth0]
  - veth: [net:eth1, b:eth0]
`

func TestExternalForwardingOffAgainstKernel(t *testing.T) {
	needLab(t)
	l, e := upLab(t, loadYAML(t, externalNoForwardTopo))
	runCases(t, l, e, []kcase{
		{"through the external node", engine.Probe{From: "a", Proto: packet.ICMP, Dst: addr("10.8.1.2")}, trace.Dropped},
		{"tcp through the external node", engine.Probe{From: "a", Proto: packet.TCP, SPort: 40000, Dst: addr("10.8.1.2"), DPort: 80}, trace.Dropped},
		{"to the external node itself", engine.Probe{From: "a", Proto: packet.TCP, SPort: 40001, Dst: addr("10.8.0.1"), DPort: 80}, trace.Answered},
	})
}
