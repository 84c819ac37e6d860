package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestTraceGolden runs pktflow trace on the seed example and compares the
// whole output with golden files, and the exit status with the contract.
func TestTraceGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"seed-ping-google", []string{"--from", "0d1b1ae40269", "--icmp-id", "55", "icmp", "www.google.com"}, 0},
		{"seed-ping-rhel8a", []string{"--from", "0d1b1ae40269", "icmp", "192.168.122.120"}, 0},
		{"seed-published-port", []string{"--from", "mayura", "tcp", "192.168.122.120:1443"}, 0},
		{"seed-udp-refused", []string{"--from", "mayura", "udp", "192.168.122.120:5353"}, 1},
		{"seed-router-drop", []string{"--from", "internet", "--src", "142.250.115.106", "tcp", "203.0.113.2:1443"}, 1},
		{"seed-ttl-expired", []string{"--from", "0d1b1ae40269", "--ttl", "2", "icmp", "www.google.com"}, 1},
		{"seed-ping-google-json", []string{"--from", "0d1b1ae40269", "--icmp-id", "55", "--format", "json", "icmp", "www.google.com"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"trace", "--snapshot", "../../examples/seed"}, tc.args...)
			code := run(args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s\n%s", code, tc.code, errb.String(), out.String())
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/pktflow -update to create it)", err)
			}
			if d := cmp.Diff(string(want), out.String()); d != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", golden, d)
			}
		})
	}
}

// TestJSONContract checks the fields the README promises.
func TestJSONContract(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"trace", "--snapshot", "../../examples/seed", "--from", "0d1b1ae40269", "--format", "json", "icmp", "www.google.com"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"verdict", "reason", "uncertain", "hops", "captures"} {
		if _, ok := v[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	caps := v["captures"].([]any)
	c := caps[0].(map[string]any)
	for _, k := range []string{"leg", "node", "iface", "dir", "src", "dst", "proto", "sport", "dport", "icmp_type", "icmp_id", "ttl"} {
		if _, ok := c[k]; !ok {
			t.Errorf("capture lacks %q", k)
		}
	}
	if c["leg"] != "request" || c["dir"] != "out" || c["src"] != "172.17.0.2" {
		t.Errorf("first capture: %v", c)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"trace", "--snapshot", "../../examples/seed", "icmp", "1.2.3.4"}, "--from"},
		{[]string{"trace", "--snapshot", "../../examples/seed", "--from", "nosuch", "icmp", "1.2.3.4"}, "no node"},
		{[]string{"trace", "--snapshot", "../../examples/seed", "--from", "mayura", "sctp", "1.2.3.4"}, "PROTO"},
		{[]string{"trace", "--snapshot", "../../examples/seed", "--from", "mayura", "tcp", "1.2.3.4"}, "port"},
		{[]string{"trace", "--snapshot", "../../examples/seed", "--from", "mayura", "icmp", "no.such.name"}, "neither an address"},
		{[]string{"trace", "--snapshot", "/nonexistent", "--from", "mayura", "icmp", "1.2.3.4"}, "nonexistent"},
		{[]string{"trace", "--snapshot", "../../examples/seed", "--from", "mayura:eth9", "icmp", "1.2.3.4"}, "no interface"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, errb.String(), tc.msg)
		}
	}
}
