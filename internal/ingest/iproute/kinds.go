package iproute

import "github.com/pktflow/pktflow/internal/model"

// GuessKind applies ParseAddr's documented name heuristics to a device
// described some other way (`ip -j addr` JSON): its name, link type
// ("ether", "loopback", "none" ...), the peer part of "eth0@if7" (or
// "if7" for a JSON link_index) and its master. A device that another
// names as master is a bridge; callers apply that rule themselves.
func GuessKind(name, linkType, peer, master string) model.InterfaceKind {
	return guessKind(&ifState{ifc: &model.Interface{Name: name, Master: master}, linkType: linkType, peer: peer})
}

// DetailKind maps an `ip -d` link kind ("veth", "bridge", "tun" with its
// tun type "tap" ...) to the model's kind; ok is false for a kind pktflow
// does not know.
func DetailKind(kind, tunType string) (k model.InterfaceKind, ok bool) {
	k, ok = detailKinds[kind]
	if kind == "tun" {
		k = model.IfUnknown
		if tunType == "tap" {
			k = model.IfTap
		}
	}
	return k, ok
}
