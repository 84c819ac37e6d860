package tracepath

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/snapshot"
)

func seed(t *testing.T) *engine.Engine {
	t.Helper()
	s, err := snapshot.Load("../../examples/seed")
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The seed's own tracepath, line for line but for the round-trip times.
func TestSeedTracepath(t *testing.T) {
	e := seed(t)
	s := e.Snapshot()
	r := Run(e, engine.Probe{From: "0d1b1ae40269", Dst: s.Names["www.google.com"][0]}, Options{BasePort: 44444, Discover: true})
	if !r.Reached || len(r.Hops) != 4 {
		t.Fatalf("reached=%v hops=%d", r.Reached, len(r.Hops))
	}
	var b bytes.Buffer
	r = Run(e, engine.Probe{From: "0d1b1ae40269", Dst: mustAddr("192.168.122.120")}, Options{BasePort: 44444, Discover: true})
	Tracepath(&b, r, false)
	want := " 1?: [LOCALHOST]                      pmtu 1500\n" +
		" 1:  rhel8a                                                reached\n" +
		" 1:  rhel8a                                                reached\n" +
		"     Resume: pmtu 1500 hops 1 back 1\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestSeedTraceroute(t *testing.T) {
	e := seed(t)
	r := Run(e, engine.Probe{From: "0d1b1ae40269", Dst: mustAddr("142.250.115.106"), DstName: "www.google.com"}, Options{BasePort: 33434, Len: 32})
	var b bytes.Buffer
	Traceroute(&b, r, 30, 60)
	want := "traceroute to www.google.com (142.250.115.106), 30 hops max, 60 byte packets\n" +
		" 1  172.17.0.1\n 2  192.168.122.1\n 3  10.0.2.1\n 4  142.250.115.106\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
