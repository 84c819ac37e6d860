package netfilter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest/iptsave"
)

// Every iptables-save dump in the repository compiles, and walking each
// table at each hook with a few packets never panics.
func TestRealDumpsCompile(t *testing.T) {
	var files []string
	for _, pat := range []string{"../ingest/iptsave/testdata/*.save", "../../examples/*/nodes/*/ip*tables-save"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("no dumps found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fam := 4
		if filepath.Base(f) == "ip6tables.save" || filepath.Base(f) == "ip6tables-save" {
			fam = 6
		}
		rs, err := iptsave.ParseString(f, string(b), fam)
		if err != nil {
			t.Logf("%s: parse: %v (skipped)", f, err)
			continue
		}
		c, err := Compile(rs)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		src, dst := "10.0.0.1", "172.17.0.2"
		if fam == 6 {
			src, dst = "fd00::1", "fd00::2"
		}
		for _, tbl := range []string{"raw", "mangle", "nat", "filter", "security"} {
			for h := PreRouting; h <= PostRouting; h++ {
				for _, ctx := range []*Ctx{newCtx(tcpPkt(src, 40000, dst, 80)), newCtx(udpPkt(src, 5353, dst, 53)), newCtx(icmpPkt(src, dst, 8, 0))} {
					ctx.InIface, ctx.OutIface = "eth0", "docker0"
					ctx.AddrType = nodeAddrType
					r := c.Run(tbl, h, ctx)
					if c.HasTable(tbl) && len(r.Steps) == 0 && r.Verdict != Accept {
						t.Errorf("%s %s %s: verdict without steps", f, tbl, h)
					}
				}
			}
		}
		t.Logf("%s: ok", f)
	}
}

const dockerSave = `*nat
:PREROUTING ACCEPT [1532:98341]
:INPUT ACCEPT [211:12660]
:OUTPUT ACCEPT [8420:517044]
:POSTROUTING ACCEPT [8431:517704]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 443 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 1443 -j DNAT --to-destination 172.17.0.2:443
COMMIT
*filter
:INPUT ACCEPT [48211:31337790]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [40112:6120339]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 443 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
`

// A published Docker port: nat PREROUTING DNATs host:1443 to the
// container, filter FORWARD lets the new connection through; the
// container's own outbound traffic is masqueraded.
func TestDockerPublishedPort(t *testing.T) {
	c := parseFull(t, 4, dockerSave)
	in := newCtx(tcpPkt("198.51.100.7", 50000, kubeNodeIP, 1443))
	in.InIface, in.AddrType = "eth0", nodeAddrType
	r := c.Run("nat", PreRouting, in)
	if trail(r) != "PREROUTING#1:jump DOCKER#2:verdict" || r.NAT == nil || r.NAT.Kind != DNAT ||
		r.NAT.AddrMin.String() != "172.17.0.2" || r.NAT.PortMin != 443 || len(r.Uncertain) != 0 {
		t.Fatalf("nat: %s", dump(r))
	}
	checkMessages(t, r, []string{
		"--dst-type LOCAL matched dst 192.168.0.10 (LOCAL) → jump to DOCKER",
		"! -i docker0 matched in eth0; -p tcp matched tcp; --dport 1443 matched dport 1443 → DNAT --to-destination 172.17.0.2:443",
	})

	// After DNAT the engine forwards the rewritten packet.
	fwd := newCtx(tcpPkt("198.51.100.7", 50000, "172.17.0.2", 443))
	fwd.InIface, fwd.OutIface, fwd.State = "eth0", "docker0", CTNew|CTDNAT
	r = c.Run("filter", Forward, fwd)
	want := "FORWARD#1:jump DOCKER-USER#1:return FORWARD#2:jump DOCKER-ISOLATION-STAGE-1#2:return FORWARD#4:jump DOCKER#1:verdict"
	if r.Verdict != Accept || trail(r) != want {
		t.Fatalf("forward: %s", dump(r))
	}

	// The reply direction is ESTABLISHED.
	fwd.State, fwd.Reply = CTEstablished|CTDNAT, false
	if r := c.Run("filter", Forward, fwd); trail(r) != "FORWARD#1:jump DOCKER-USER#1:return FORWARD#2:jump DOCKER-ISOLATION-STAGE-1#2:return FORWARD#3:verdict" {
		t.Fatalf("established: %s", dump(r))
	}

	// Container to the internet: isolation stage 2 returns, then accept;
	// POSTROUTING masquerades.
	out := newCtx(tcpPkt("172.17.0.2", 40000, "93.184.216.34", 443))
	out.InIface, out.OutIface = "docker0", "eth0"
	if r := c.Run("filter", Forward, out); r.Verdict != Accept ||
		trail(r) != "FORWARD#1:jump DOCKER-USER#1:return FORWARD#2:jump DOCKER-ISOLATION-STAGE-1#1:jump DOCKER-ISOLATION-STAGE-2#2:return DOCKER-ISOLATION-STAGE-1#2:return FORWARD#5:verdict" {
		t.Fatalf("outbound: %s", dump(r))
	}
	if r := c.Run("nat", PostRouting, out); r.NAT == nil || r.NAT.Kind != Masquerade {
		t.Fatalf("masquerade: %s", dump(r))
	}

	// A packet forwarded to docker0 for an unpublished port falls off
	// DOCKER and FORWARD: policy DROP.
	other := newCtx(tcpPkt("198.51.100.7", 50000, "172.17.0.2", 22))
	other.InIface, other.OutIface = "eth0", "docker0"
	r = c.Run("filter", Forward, other)
	if r.Verdict != Drop || r.Steps[len(r.Steps)-1].Message != "end of chain FORWARD: policy DROP" {
		t.Fatalf("unpublished: %s", dump(r))
	}
	checks := c.Explain("filter", Forward, other)
	var why string
	for _, ch := range checks {
		if ch.Chain == "DOCKER" {
			why = ch.Message
		}
	}
	if why != "--dport 443 did not match dport 22" {
		t.Errorf("explain DOCKER rule: %q", why)
	}
}
