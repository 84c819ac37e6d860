package ss

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest"
)

func parseFile(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ls, err := Parse(name, f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		s := l.Proto + " "
		if l.Addr.IsValid() {
			s += netip.AddrPortFrom(l.Addr, l.Port).String()
		} else {
			s += "*:" + itoa(l.Port)
		}
		if l.Dev != "" {
			s += " dev " + l.Dev
		}
		if l.Process != "" {
			s += " " + l.Process
		}
		out = append(out, s)
		if l.Origin.File != name || l.Origin.Line < 1 || l.Origin.Text == "" {
			t.Errorf("origin %+v", l.Origin)
		}
	}
	return out
}

func itoa(p uint16) string { return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[8:] }

func TestParse(t *testing.T) {
	for name, want := range map[string][]string{
		"mayura-ss-tulpn.txt": {
			`udp 192.168.122.1:53 users:(("dnsmasq",pid=1873,fd=5))`,
			`udp 0.0.0.0:67 dev virbr0 users:(("dnsmasq",pid=1873,fd=3))`,
			`udp 127.0.0.1:323 users:(("chronyd",pid=1102,fd=5))`,
			`udp [2001:db8:ca2:3::1]:53 users:(("dnsmasq",pid=1873,fd=7))`,
			`udp [::]:547 dev virbr0 users:(("dnsmasq",pid=1873,fd=9))`,
			`udp [::1]:323 users:(("chronyd",pid=1102,fd=6))`,
			`tcp 192.168.122.1:53 users:(("dnsmasq",pid=1873,fd=6))`,
			`tcp 0.0.0.0:22 users:(("sshd",pid=1255,fd=3))`,
			`tcp 127.0.0.1:631 users:(("cupsd",pid=1251,fd=7))`,
			`tcp [2001:db8:ca2:3::1]:53 users:(("dnsmasq",pid=1873,fd=8))`,
			`tcp [::]:22 users:(("sshd",pid=1255,fd=4))`,
			`tcp *:9090 users:(("systemd",pid=1,fd=42))`,
		},
		"rhel8a-ss-H-tuln.txt": {
			"udp 127.0.0.53:53 dev lo", "udp [fe80::5054:ff:fe01:1aa2]:546 dev enp1s0",
			"tcp 0.0.0.0:22", "tcp 0.0.0.0:1443", "tcp 0.0.0.0:180", "tcp [::]:22", "tcp [::]:1443", "tcp [::]:180",
		},
		"centos7-ss-tuanp.txt": {
			`udp 192.168.122.1:53 users:(("dnsmasq",pid=1534,fd=5))`,
			`udp *:67 dev virbr0 users:(("dnsmasq",pid=1534,fd=3))`,
			`udp 127.0.0.1:323 users:(("chronyd",pid=704,fd=5))`,
			`udp [::1]:323 users:(("chronyd",pid=704,fd=6))`,
			`tcp 192.168.122.1:53 users:(("dnsmasq",pid=1534,fd=6))`,
			`tcp *:22 users:(("sshd",pid=1112,fd=3))`,
			`tcp [::]:22 users:(("sshd",pid=1112,fd=4))`,
		},
		"tcp-only.txt": {"tcp *:22", "tcp 127.0.0.1:25"},
	} {
		got := parseFile(t, name)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n  %s\nwant\n  %s", name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		line int
		want string
	}{
		{"hello world\n", 1, "expected a socket line"},
		{"tcp LISTEN 0 128\n", 1, "local and the peer address"},
		{"tcp LISTEN x 128 0.0.0.0:22 0.0.0.0:*\n", 1, "expected numbers"},
		{"\ntcp LISTEN 0 128 0.0.0.0 0.0.0.0:*\n", 2, "expected ADDRESS:PORT"},
		{"tcp LISTEN 0 128 0.0.0.0:http 0.0.0.0:*\n", 1, "port number"},
		{"tcp LISTEN 0 128 localhost:22 0.0.0.0:*\n", 1, "IPv4 or IPv6 address"},
	} {
		_, err := Parse("t", strings.NewReader(tc.text))
		var ie *ingest.Error
		if !errors.As(err, &ie) || ie.Line != tc.line || !strings.Contains(ie.Msg, tc.want) {
			t.Errorf("%q: %v, want line %d %q", tc.text, err, tc.line, tc.want)
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
		ls, err := Parse("fuzz", strings.NewReader(text))
		if err != nil {
			var ie *ingest.Error
			if !errors.As(err, &ie) || ls != nil {
				t.Fatalf("%T %v", err, err)
			}
			lines := strings.Split(text, "\n")
			if ie.Line < 1 || ie.Line > len(lines) || strings.TrimRight(lines[ie.Line-1], "\r") != ie.Text {
				t.Fatalf("error %v does not name its line", err)
			}
			return
		}
		for _, l := range ls {
			if l.Port == 0 || (l.Proto != "tcp" && l.Proto != "udp") {
				t.Fatalf("listener %+v", l)
			}
		}
	})
}
