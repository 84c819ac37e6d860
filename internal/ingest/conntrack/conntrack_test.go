package conntrack

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

func parseFile(t *testing.T, name string) []model.ConntrackEntry {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	es, err := Parse(name, f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func tp(src, dst string, sp, dp uint16) model.Tuple {
	return model.Tuple{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SPort: sp, DPort: dp}
}

func TestParse(t *testing.T) {
	es := parseFile(t, "mayura-conntrack-L.txt")
	if len(es) != 5 {
		t.Fatalf("%d entries", len(es))
	}
	ssh := es[0]
	if ssh.Proto != "tcp" || ssh.State != "ESTABLISHED" || ssh.Timeout != 431995 || ssh.Family != 4 ||
		ssh.Orig != tp("10.0.2.5", "10.0.2.21", 52044, 22) || ssh.Reply != tp("10.0.2.21", "10.0.2.5", 22, 52044) ||
		!slices.Equal(ssh.Flags, []string{"ASSURED"}) || ssh.Origin.Line != 2 {
		t.Errorf("ssh %+v", ssh)
	}
	ping := es[1]
	if ping.Proto != "icmp" || ping.State != "" || ping.Orig != tp("192.168.122.120", "142.250.115.106", 55, 55) ||
		ping.Reply != tp("142.250.115.106", "10.0.2.21", 55, 55) {
		t.Errorf("ping %+v", ping)
	}
	if dns := es[2]; !slices.Equal(dns.Flags, []string{"UNREPLIED"}) || dns.Reply.Dst != netip.MustParseAddr("10.0.2.21") {
		t.Errorf("dns %+v", dns)
	}
	es = parseFile(t, "proc-nf_conntrack.txt")
	if len(es) != 4 {
		t.Fatalf("%d entries", len(es))
	}
	if e := es[1]; e.Proto != "icmpv6" || e.Family != 6 || e.Orig.SPort != 7 {
		t.Errorf("icmpv6 %+v", e)
	}
	if e := es[2]; e.Proto != "gre" || e.Orig.Src != netip.MustParseAddr("10.9.0.2") {
		t.Errorf("gre %+v", e)
	}
	if e := es[3]; e.Proto != "proto-112" || e.Reply.Src != netip.MustParseAddr("224.0.0.18") {
		t.Errorf("vrrp %+v", e)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		want string
	}{
		{"hello", "expected a conntrack -L line"},
		{"tcp 6", "expected a conntrack -L line"},
		{"ospf 89 10 src=1.1.1.1 dst=2.2.2.2 src=2.2.2.2 dst=1.1.1.1", "unknown protocol"},
		{"tcp 17 10 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1", "does not match"},
		{"tcp 6 x ESTABLISHED src=1.1.1.1", "timeout"},
		{"tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2", "original and a reply tuple"},
		{"tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.x sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1", "expected an IP address"},
		{"tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=99999 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1", "0 to 65535"},
		{"tcp 6 10 ESTABLISHED src=1.1.1.1 dst=::2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1", "one family"},
		{"tcp 6 10 ESTABLISHED dst=2.2.2.2 src=1.1.1.1 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1", "before src="},
		{"ipv6 10 tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1", "IPv4"},
		{"[NEW] tcp 6 120 SYN_SENT src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1", "unknown protocol"},
	} {
		_, err := Parse("t", strings.NewReader("\n"+tc.text+"\n"))
		var ie *ingest.Error
		if !errors.As(err, &ie) || ie.Line != 2 || !strings.Contains(ie.Msg, tc.want) {
			t.Errorf("%q: %v, want line 2 and %q", tc.text, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, n := range files {
		b, _ := os.ReadFile(n)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		es, err := Parse("fuzz", strings.NewReader(text))
		if err != nil {
			var ie *ingest.Error
			if !errors.As(err, &ie) || es != nil {
				t.Fatalf("%T %v", err, err)
			}
			lines := strings.Split(text, "\n")
			if ie.Line < 1 || ie.Line > len(lines) || strings.TrimRight(lines[ie.Line-1], "\r") != ie.Text {
				t.Fatalf("error %v does not name its line", err)
			}
			return
		}
		for _, e := range es {
			if !e.Orig.Src.IsValid() || !e.Reply.Dst.IsValid() || (e.Family != 4 && e.Family != 6) {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
