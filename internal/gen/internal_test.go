package gen

import "testing"

// kube-proxy's own test vectors (pkg/proxy/iptables/proxier_test.go):
// ns1/svc1:p80 over TCP is KUBE-SVC-XPGD46QRK7WJZT7O, and its endpoint
// 10.180.0.1:80 is KUBE-SEP-SXIVWICOYRO3J4NJ.
func TestKubeHash(t *testing.T) {
	if got := kubeHash("ns1/svc1:p80" + "tcp"); got != "XPGD46QRK7WJZT7O" {
		t.Errorf("service chain hash %s", got)
	}
	if got := kubeHash("ns1/svc1:p80" + "tcp" + "10.180.0.1:80"); got != "SXIVWICOYRO3J4NJ" {
		t.Errorf("endpoint chain hash %s", got)
	}
}

// iptables-save prints the kernel's fraction of 2^31 with 11 decimals.
func TestKubeProbability(t *testing.T) {
	for n, want := range map[int]string{2: "0.50000000000", 3: "0.33333333349", 4: "0.25000000000", 5: "0.20000000019"} {
		if got := kubeProbability(n); got != want {
			t.Errorf("1/%d: %s, want %s", n, got, want)
		}
	}
}
