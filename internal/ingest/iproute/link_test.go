package iproute

import (
	"testing"

	"github.com/pktflow/pktflow/internal/model"
)

// `ip -d link` output reads like `ip addr` without addresses; the details
// give exact kinds, the veth peer and its namespace, and bridge port
// states.
func TestParseDetailedLink(t *testing.T) {
	type want struct {
		kind      model.InterfaceKind
		master    string
		peer      int
		netns     string
		portState string
		up        bool
	}
	for file, wants := range map[string]map[string]want{
		"mayura-ip-d-link.txt": {
			"lo":     {kind: model.IfLoopback, up: true},
			"enp7s0": {kind: model.IfEthernet, up: true},
			"virbr0": {kind: model.IfBridge, up: true},
			"vnet0":  {kind: model.IfTap, master: "virbr0", portState: "forwarding", up: true},
		},
		"rhel8a-ip-d-link.txt": {
			"docker0":     {kind: model.IfBridge, up: true},
			"vethf274fbd": {kind: model.IfVeth, master: "docker0", peer: 6, netns: "0", portState: "forwarding", up: true},
		},
	} {
		ifs, err := ParseAddr(file, open(t, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, ifc := range ifs {
			w, ok := wants[ifc.Name]
			if !ok {
				continue
			}
			got := want{ifc.Kind, ifc.Master, ifc.PeerIndex, ifc.LinkNetns, ifc.PortState, ifc.Up}
			if got != w {
				t.Errorf("%s %s: %+v, want %+v", file, ifc.Name, got, w)
			}
			if len(ifc.Addrs) != 0 {
				t.Errorf("%s: addresses from ip link", ifc.Name)
			}
			if (ifc.Master != "") != (ifc.Hairpin != nil) || (ifc.Hairpin != nil && *ifc.Hairpin) {
				t.Errorf("%s: hairpin %v, want off for a bridge port", ifc.Name, ifc.Hairpin)
			}
		}
	}
	// The seed's container: "eth0@if7" with link-netnsid 0 on the link/ line.
	ifs, err := ParseAddr("container-ip-addr.txt", open(t, "container-ip-addr.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if ifc.Name == "eth0" && (ifc.PeerIndex != 6 || ifc.LinkNetns != "0") {
			t.Errorf("eth0 peer %d netns %q", ifc.PeerIndex, ifc.LinkNetns)
		}
	}
	if k, ok := DetailKind("tun", "tap"); !ok || k != model.IfTap {
		t.Error("DetailKind tun tap")
	}
	if k := GuessKind("vethabc", "ether", "", "docker0"); k != model.IfVeth {
		t.Errorf("GuessKind veth = %s", k)
	}
}
