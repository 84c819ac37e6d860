package verify

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

// needLab skips a test that needs root and network namespaces.
func needLab(t *testing.T) {
	t.Helper()
	if err := lab.Available(); err != nil {
		t.Skipf("kernel check skipped: %v", err)
	}
}

// upLab builds a snapshot in namespaces, torn down when the test ends.
func upLab(t *testing.T, s *model.Snapshot) (*lab.Lab, *engine.Engine) {
	t.Helper()
	e, err := engine.New(s)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Up(context.Background(), s, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l, e
}

type kcase struct {
	name    string
	probe   engine.Probe
	verdict string
}

func runCases(t *testing.T, l *lab.Lab, e *engine.Engine, cases []kcase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Check(context.Background(), l, e, tc.probe)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Kernel) == 0 && len(r.Trace.Captures) == 0 {
				t.Logf("neither the kernel nor pktflow put a packet on any interface (send: %v; pktflow: %s)", r.SendErr, r.Trace.Reason)
			}
			if r.Trace.Verdict != tc.verdict {
				t.Errorf("verdict %s (%s), want %s", r.Trace.Verdict, r.Trace.Reason, tc.verdict)
			}
			if !r.Agreed {
				for _, c := range r.Trace.Captures {
					t.Logf("pktflow: %s %s %s %s", c.Node, c.Iface, c.Dir, fingerprint(&c.Packet))
				}
				for _, k := range r.Kernel {
					t.Logf("kernel:  %s %s %s %s", k.Node, k.Iface, k.Dir, fingerprint(&k.Pkt))
				}
				t.Fatalf("%s\n%v", r.Summary(), r.Diffs)
			}
		})
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestSeedAgainstKernel builds the seed's topology as namespaces and
// checks the acceptance flows against real packets.
func TestSeedAgainstKernel(t *testing.T) {
	needLab(t)
	s, err := snapshot.Load(seedDir())
	if err != nil {
		t.Fatal(err)
	}
	l, e := upLab(t, s)
	runCases(t, l, e, []kcase{
		{"container pings google", engine.Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: addr("142.250.115.106")}, trace.Answered},
		{"container pings rhel8a", engine.Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: addr("192.168.122.120")}, trace.Answered},
		{"mayura to published port", engine.Probe{From: "mayura", Proto: packet.TCP, Dst: addr("192.168.122.120"), DPort: 1443, SPort: 40000}, trace.Answered},
		{"container tcp to google", engine.Probe{From: "0d1b1ae40269", Proto: packet.TCP, Dst: addr("142.250.115.106"), DPort: 443, SPort: 40001}, trace.Answered},
		{"container udp to google dns", engine.Probe{From: "0d1b1ae40269", Proto: packet.UDP, Dst: addr("142.250.115.106"), DPort: 53, SPort: 40002}, trace.Answered},
		{"closed udp port on rhel8a", engine.Probe{From: "mayura", Proto: packet.UDP, Dst: addr("192.168.122.120"), DPort: 5353, SPort: 40003}, trace.Refused},
		{"closed tcp port on google", engine.Probe{From: "0d1b1ae40269", Proto: packet.TCP, Dst: addr("142.250.115.106"), DPort: 8443, SPort: 40004}, trace.Refused},
		{"ttl expires at mayura", engine.Probe{From: "0d1b1ae40269", Proto: packet.ICMP, Dst: addr("142.250.115.106"), TTL: 2}, trace.Rejected},
		{"tracepath hop 1", engine.Probe{From: "0d1b1ae40269", Proto: packet.UDP, Dst: addr("142.250.115.106"), DPort: 44444, SPort: 40010, TTL: 1}, trace.Rejected},
		{"tracepath hop 2", engine.Probe{From: "0d1b1ae40269", Proto: packet.UDP, Dst: addr("142.250.115.106"), DPort: 44445, SPort: 40011, TTL: 2}, trace.Rejected},
		{"tracepath hop 3", engine.Probe{From: "0d1b1ae40269", Proto: packet.UDP, Dst: addr("142.250.115.106"), DPort: 44446, SPort: 40012, TTL: 3}, trace.Rejected},
		{"tracepath hop 4 reached", engine.Probe{From: "0d1b1ae40269", Proto: packet.UDP, Dst: addr("142.250.115.106"), DPort: 44447, SPort: 40013, TTL: 4}, trace.Refused},
		{"tracepath to rhel8a reached", engine.Probe{From: "0d1b1ae40269", Proto: packet.UDP, Dst: addr("192.168.122.120"), DPort: 44444, SPort: 40014, TTL: 1}, trace.Refused},
		{"rhel8a pings google over IPv6", engine.Probe{From: "rhel8a", Proto: packet.ICMP, Dst: addr("2001:db8:f00d::6a")}, trace.Answered},
		{"rhel8a tcp to google over IPv6", engine.Probe{From: "rhel8a", Proto: packet.TCP, Dst: addr("2001:db8:f00d::6a"), DPort: 443, SPort: 40020}, trace.Answered},
		{"IPv6 closed udp port", engine.Probe{From: "rhel8a", Proto: packet.UDP, Dst: addr("2001:db8:f00d::6a"), DPort: 44444, SPort: 40021}, trace.Refused},
		{"IPv6 hop limit expires at router", engine.Probe{From: "rhel8a", Proto: packet.UDP, Dst: addr("2001:db8:f00d::6a"), DPort: 44445, SPort: 40022, TTL: 2}, trace.Rejected},
		{"internet to the VM over IPv6 is rejected by libvirt", engine.Probe{From: "internet", Proto: packet.TCP, Src: addr("2001:db8:f00d::6a"), Dst: addr("2001:db8:ca2:3:1::c2"), DPort: 22, SPort: 40023}, trace.Dropped},
		{"internet to router 1443 dropped", engine.Probe{From: "internet", Proto: packet.TCP, Src: addr("142.250.115.106"), Dst: addr("203.0.113.2"), DPort: 1443, SPort: 40005}, trace.Dropped},
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	lab.Teardown()
	os.Exit(code)
}

func seedDir() string {
	if d := os.Getenv("PKTFLOW_SEED"); d != "" {
		return d
	}
	return "../../examples/seed"
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
