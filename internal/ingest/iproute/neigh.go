package iproute

import (
	"io"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
)

// nudStates are the neighbor states ip neigh prints at the end of a line.
var nudStates = map[string]bool{
	"INCOMPLETE": true, "REACHABLE": true, "STALE": true, "DELAY": true, "PROBE": true,
	"FAILED": true, "NOARP": true, "PERMANENT": true, "NONE": true,
}

// ParseNeigh parses `ip neigh` output:
//
//	172.17.0.2 dev docker0 lladdr 02:42:ac:11:00:02 STALE
//	fe80::1 dev eth0 lladdr 52:54:00:a8:d1:80 router STALE
//	10.0.0.9 dev eth0 FAILED
//
// Every entry must name its device: `ip neigh show dev X` leaves it out,
// and pktflow cannot guess which X was asked for. Several states print
// joined by a space. Proxy entries (`ip neigh show proxy`) are not
// modelled and are an error. Statistics from `ip -s neigh` are ignored.
func ParseNeigh(file string, r io.Reader) ([]model.Neighbor, error) {
	lines, err := readLines(file, r)
	if err != nil {
		return nil, err
	}
	out := make([]model.Neighbor, 0, len(lines))
	for _, l := range lines {
		n, err := parseNeighLine(file, l)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func parseNeighLine(file string, l line) (model.Neighbor, error) {
	f := l.fields
	n := model.Neighbor{Origin: origin(file, l)}
	if l.indented {
		return n, errf(file, l, "unexpected indented line; expected \"ADDR dev DEV [lladdr MAC] STATE\"")
	}
	a, ok := parseAddr(f[0])
	if !ok {
		return n, errf(file, l, "%q is not an address; expected \"ADDR dev DEV [lladdr MAC] STATE\"", f[0])
	}
	n.Addr = a
	var states []string
	for i := 1; i < len(f); i++ {
		key := f[i]
		if nudStates[key] {
			states = append(states, key)
			continue
		}
		switch key {
		case "router":
			n.Router = true
			continue
		case "extern_learn", "offload", "managed", "extern_valid":
			continue
		case "proxy":
			return n, errf(file, l, "proxy neighbor entries are not modelled")
		case "dev", "lladdr", "proto", "protocol", "ref", "used", "probes", "vrf":
		default:
			return n, errf(file, l, "unknown neighbor keyword %q; expected dev, lladdr, router or a state such as REACHABLE", key)
		}
		if i+1 >= len(f) {
			return n, errf(file, l, "missing value after %q", key)
		}
		i++
		val := f[i]
		switch key {
		case "dev":
			n.Dev = val
		case "lladdr":
			if mac, ok := canonicalMAC(val); ok {
				n.MAC = mac
			} else {
				// Tunnels' neighbors have other link-layer addresses
				// (an IPv4 address for gre); keep them as printed.
				n.MAC = strings.ToLower(val)
			}
		}
	}
	if n.Dev == "" {
		return n, errf(file, l, "neighbor entry without \"dev\"; paste `ip neigh show` without a dev filter")
	}
	n.State = strings.Join(states, " ")
	return n, nil
}
