package snapshot

import (
	"path"
	"slices"
	"strings"
)

// Facts a node's files give. Two files of one fact conflict (the node
// would have two truths), except where the fact is merged from several
// files (multi).
const (
	factInterfaces  = "interfaces"
	factLinks       = "links"
	factRoutes      = "routes"
	factRoutes6     = "IPv6 routes"
	factNeighbors   = "neighbors"
	factRules       = "rules"
	factFDB         = "fdb"
	factBridgePorts = "bridge ports"
	factIPv4        = "iptables rules"
	factIPv6        = "ip6tables rules"
	factSysctl      = "sysctls"
	factListen      = "listeners"
	factConntrack   = "conntrack entries"
	factLibvirt     = "libvirt networks"
	factLeases      = "DHCP leases"
	factDomains     = "libvirt domains"
	factDockerCtrs  = "docker containers"
	factDockerNets  = "docker networks"
)

// factInline maps a fact to the topology.yaml node key that is its inline
// alternative.
var factInline = map[string]string{
	factInterfaces: "interfaces", factRoutes: "routes", factNeighbors: "neighbors", factRules: "rules",
	factIPv4: "iptables", factIPv6: "ip6tables", factSysctl: "sysctl", factListen: "listen",
}

// factOrder lists the facts in a fixed order for messages and checks.
var factOrder = []string{factInterfaces, factLinks, factRoutes, factRoutes6, factNeighbors, factRules, factFDB, factBridgePorts,
	factIPv4, factIPv6, factSysctl, factListen, factConntrack, factLibvirt, factLeases, factDomains,
	factDockerCtrs, factDockerNets}

// fileNames documents the accepted names, for "unexpected file" errors.
const fileNames = "ip-addr, ip-addr.json, ip-link, ip-link.json, ip-route, ip-route.json, ip6-route, ip6-route.json, ip-neigh, ip-neigh.json, " +
	"ip-rule, ip-rule.json, bridge-fdb.json, bridge-link.json, iptables-save, iptables-L, iptables-L-TABLE, " +
	"ip6tables-save, ip6tables-L, ip6tables-L-TABLE, sysctl, ss, conntrack, virsh-net-dumpxml.xml, " +
	"virsh-net-dumpxml-NAME.xml, virsh-net-dhcp-leases, virsh-dumpxml.xml, virsh-dumpxml-NAME.xml, " +
	"docker-inspect.json, docker-network-inspect.json (text files optionally with .txt)"

// fileKind is what a per-node file is.
type fileKind struct {
	fact string
	// format: "text", "json", "xml", or for rulesets "save" / "list".
	format string
	// table is the table a listing file is named for (iptables-L-nat).
	table string
	// multi: several files of this kind are merged.
	multi bool
}

var textFiles = map[string]string{
	"ip-addr": factInterfaces, "ip-link": factLinks, "ip-route": factRoutes, "ip6-route": factRoutes6, "ip-neigh": factNeighbors,
	"ip-rule": factRules, "sysctl": factSysctl, "ss": factListen, "conntrack": factConntrack,
	"virsh-net-dhcp-leases": factLeases,
}

var jsonFiles = map[string]string{
	"ip-addr.json": factInterfaces, "ip-link.json": factLinks, "ip-route.json": factRoutes, "ip6-route.json": factRoutes6,
	"ip-neigh.json": factNeighbors, "ip-rule.json": factRules, "bridge-fdb.json": factFDB,
	"bridge-link.json": factBridgePorts, "docker-inspect.json": factDockerCtrs,
	"docker-network-inspect.json": factDockerNets,
}

var listingTables = []string{"filter", "nat", "mangle", "raw", "security"}

// classify names the kind of a per-node file, or false for a name pktflow
// does not read.
func classify(name string) (fileKind, bool) {
	if f, ok := jsonFiles[name]; ok {
		return fileKind{fact: f, format: "json"}, true
	}
	if base, ok := strings.CutSuffix(name, ".xml"); ok {
		switch {
		case base == "virsh-net-dumpxml" || (strings.HasPrefix(base, "virsh-net-dumpxml-") && len(base) > len("virsh-net-dumpxml-")):
			return fileKind{fact: factLibvirt, format: "xml", multi: true}, true
		case base == "virsh-dumpxml" || (strings.HasPrefix(base, "virsh-dumpxml-") && len(base) > len("virsh-dumpxml-")):
			return fileKind{fact: factDomains, format: "xml", multi: true}, true
		}
		return fileKind{}, false
	}
	base := strings.TrimSuffix(name, ".txt")
	if f, ok := textFiles[base]; ok {
		return fileKind{fact: f, format: "text"}, true
	}
	for _, x := range []struct{ prefix, fact string }{{"iptables", factIPv4}, {"ip6tables", factIPv6}} {
		switch {
		case base == x.prefix+"-save":
			return fileKind{fact: x.fact, format: "save"}, true
		case base == x.prefix+"-L":
			return fileKind{fact: x.fact, format: "list", multi: true}, true
		case strings.HasPrefix(base, x.prefix+"-L-"):
			t := strings.TrimPrefix(base, x.prefix+"-L-")
			if slices.Contains(listingTables, t) {
				return fileKind{fact: x.fact, format: "list", table: t, multi: true}, true
			}
		}
	}
	return fileKind{}, false
}

// nodeFiles are one node's files by fact, in name order.
type nodeFiles map[string][]string

// first returns the fact's (only) file, or "".
func (nf nodeFiles) first(fact string) string {
	if fs := nf[fact]; len(fs) > 0 {
		return fs[0]
	}
	return ""
}

// kindOf re-classifies a file of the node (by its base name).
func kindOf(rel string) fileKind {
	k, _ := classify(path.Base(rel))
	return k
}
