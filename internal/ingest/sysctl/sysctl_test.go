package sysctl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest"
)

func TestParse(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "mayura-sysctl.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Parse("sysctl", f)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 19 {
		t.Errorf("%d keys", len(m))
	}
	for k, want := range map[string]string{
		"net.ipv4.ip_forward":                 "1",
		"net.bridge.bridge-nf-call-iptables":  "0",
		"net.ipv4.conf.virbr0.rp_filter":      "1",
		"net.ipv4.ip_local_port_range":        "32768\t60999",
		"net.ipv4.conf.all.route_localnet":    "0",
		"net.ipv6.conf.virbr0.forwarding":     "1",
		"net.ipv4.conf.default.rp_filter":     "1",
		"net.bridge.bridge-nf-call-arptables": "0",
	} {
		if got := m[k]; got.Value != want || got.Origin.Line < 2 {
			t.Errorf("%s = %+v, want %q", k, got, want)
		}
	}
	m, err = Parse("t", strings.NewReader("net/ipv4/conf/eth0.100/rp_filter = 2\n; comment\nnet.ipv4.ip_forward=0\nnet.ipv4.ip_forward = 1\n"))
	if err != nil || m["net.ipv4.conf.eth0/100.rp_filter"].Value != "2" || m["net.ipv4.ip_forward"].Origin.Line != 4 {
		t.Errorf("%+v %v", m, err)
	}
	_, err = Parse("t", strings.NewReader("\nnet.ipv4.ip_forward 1\n"))
	var ie *ingest.Error
	if !errors.As(err, &ie) || ie.Line != 2 {
		t.Errorf("error %v", err)
	}
}

func TestNorm(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_forward":              "net.ipv4.ip_forward",
		"net/ipv4/conf/eth0.100/rp_filter": "net.ipv4.conf.eth0/100.rp_filter",
		"/proc/sys/net/ipv4/ip_forward":    "net.ipv4.ip_forward",
		"net.ipv4.conf.eth0/100.rp_filter": "net.ipv4.conf.eth0/100.rp_filter",
	} {
		if got := Norm(in); got != want {
			t.Errorf("Norm(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join("testdata", "mayura-sysctl.txt"))
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, text string) {
		m, err := Parse("fuzz", strings.NewReader(text))
		if err != nil {
			var ie *ingest.Error
			if !errors.As(err, &ie) || m != nil {
				t.Fatalf("%T %v", err, err)
			}
			lines := strings.Split(text, "\n")
			if ie.Line < 1 || ie.Line > len(lines) {
				t.Fatalf("line %d: %v", ie.Line, err)
			}
			return
		}
		for k := range m {
			if k == "" || strings.ContainsAny(k, " \t") {
				t.Fatalf("key %q", k)
			}
		}
	})
}
