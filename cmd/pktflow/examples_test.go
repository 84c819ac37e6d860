package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestREADMEExamples runs the commands the README shows and checks the
// lines it quotes, so the documentation cannot drift from the tool.
func TestREADMEExamples(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"trace", "--snapshot", "../../examples/seed", "--from", "0d1b1ae40269", "--icmp-id", "55", "icmp", "www.google.com"}, 0,
			[]string{"request rhel8a enp1s0 out IP 192.168.122.120 > 142.250.115.106: ICMP echo request, id 55, seq 1, length 64", "verdict: answered"}},
		{[]string{"trace", "--snapshot", "../../examples/policy-routing", "--from", "a", "udp", "203.0.113.9:53"}, 0,
			[]string{`rerouted after OUTPUT changed the packet: 203.0.113.9 matches "default via 10.0.1.1 dev eth1 table 200" in table 200 (ip rule 100)`}},
		{[]string{"trace", "--snapshot", "../../examples/multihomed", "--from", "x", "--src", "198.51.100.5", "udp", "10.0.2.21:53"}, 1,
			[]string{"a eth1 ignores it: reverse-path filter (net.ipv4.conf.all.rp_filter = 1 (topology.yaml:5), strict): the route back to the sender 198.51.100.5 leaves by eth0, not eth1"}},
		{[]string{"trace", "--snapshot", "../../examples/bridge", "--from", "c1", "icmp", "10.88.0.3"}, 1,
			[]string{"request dropped at h: filter FORWARD chain FORWARD rule 1 (-A FORWARD -i br0 -o br0 -p icmp -m physdev --physdev-in veth1 --physdev-out veth2 -j DROP): DROP"}},
		{[]string{"trace", "--snapshot", "../../examples/mtu", "--from", "a", "--length", "1450", "udp", "10.0.1.2:7"}, 1,
			[]string{"need to frag (mtu 1400)", "verdict: rejected"}},
		{[]string{"tracepath", "--snapshot", "../../examples/seed", "--from", "0d1b1ae40269", "192.168.122.120"}, 0,
			[]string{" 1:  rhel8a                                                reached", "     Resume: pmtu 1500 hops 1 back 1"}},
		{[]string{"trace", "--snapshot", "../../examples/seed", "--from", "rhel8a", "icmp", "2001:db8:f00d::6a"}, 0,
			[]string{"ICMP6, echo reply", "verdict: answered"}},
		{[]string{"trace", "--snapshot", "../../examples/kube-service", "--from", "client", "tcp", "10.96.0.10:80"}, 1,
			[]string{"######## path 1 of 3: probability 33.3%, verdict answered", "answered with probability 66.7%, refused with probability 33.3%"}},
		{[]string{"trace", "--snapshot", "../../examples/firewall", "--from", "a", "tcp", "10.0.1.2:81"}, 1,
			[]string{"REJECT --reject-with tcp-reset", "verdict: rejected"}},
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[2:], " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s\n%s", code, tc.code, errb.String(), out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			snap := tc.args[2]
			if !strings.Contains(string(readme), strings.TrimPrefix(snap, "../../")) {
				t.Errorf("README does not mention %s", snap)
			}
		})
	}
}
