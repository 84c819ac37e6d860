// Package snapshot loads a snapshot folder — the command outputs of a set of
// machines plus a topology.yaml that says how they are wired — into a
// *model.Snapshot.
//
// A snapshot is meant to be assembled from what users already paste into
// tickets: each node's `ip addr show`, `ip route show`, `iptables-save`
// output goes into a file as printed, and topology.yaml adds what no single
// machine can print: which interfaces are wired together, which nodes are
// VMs or containers, and the outside world. Small nodes (a router, the
// internet) can be written inline in topology.yaml instead of as files.
//
// # Layout
//
//	DIR/topology.yaml            required
//	DIR/nodes/NAME/ip-addr       `ip addr show`            (or ip-addr.txt)
//	DIR/nodes/NAME/ip-route      `ip route show [table all]`, main table unless a line says table X
//	DIR/nodes/NAME/ip6-route     `ip -6 route show [table all]`, added to the same tables
//	DIR/nodes/NAME/ip-neigh      `ip neigh`
//	DIR/nodes/NAME/ip-rule       `ip rule`
//	DIR/nodes/NAME/iptables-save `iptables-save`
//	DIR/nodes/NAME/ip6tables-save `ip6tables-save`
//	DIR/nodes/NAME/sysctl        `sysctl -a` lines: "net.ipv4.ip_forward = 1"
//
// Every file is optional and may carry a .txt extension. The iproute2 files
// may keep the shell prompt line ("[root@mayura ~]# ip addr show"), blank
// lines and # comments. A folder under nodes/ that topology.yaml does not
// declare, or a file there with another name, is an error: pktflow never
// ignores input it was given.
//
// # topology.yaml
//
//	nodes:
//	  mayura:
//	    kind: host            # host | vm | container | router | external (default host)
//	    sysctl:
//	      net.ipv4.ip_forward: 1
//	    listen: [tcp/22, "udp/53", "tcp/192.168.122.1:8080"]   # proto/[addr:]port
//	    iface_kinds: {vnet0: tap}   # override the kind pktflow guesses from a name
//	  router:
//	    kind: router
//	    sysctl: {net.ipv4.ip_forward: 1}
//	    interfaces:           # inline alternative to nodes/router/ip-addr
//	      eth0: {addrs: [203.0.113.2/24], mac: "02:00:00:00:00:01", mtu: 1500}
//	      br0: {kind: bridge, addrs: [10.9.0.1/24]}
//	      eth1: {master: br0}
//	    routes:               # inline alternative to nodes/router/ip-route
//	      - default via 203.0.113.1 dev eth0
//	    neighbors: ["10.0.2.21 dev eth1 lladdr 00:1f:bc:02:6f:10 REACHABLE"]
//	    rules: ["0: from all lookup local", "32766: from all lookup main"]
//	    iptables: |           # inline alternative to nodes/router/iptables-save
//	      *nat
//	      :POSTROUTING ACCEPT [0:0]
//	      -A POSTROUTING -o eth0 -j MASQUERADE
//	      COMMIT
//	  internet:
//	    kind: external
//	    owns: [142.250.115.106/32]
//	    ttl: 64               # initial TTL of packets it originates
//	    interfaces: {eth0: {addrs: [203.0.113.1/24]}}
//	links:
//	  - veth: [0d1b1ae40269:eth0, rhel8a:vethf274fbd]
//	  - tap: [mayura:vnet0, rhel8a:enp1s0]          # host tap first, then the guest NIC
//	  - segment: [mayura:enp7s0, router:eth1]       # 2 or more endpoints
//	names:
//	  www.google.com: [142.250.115.106]
//
// Node keys:
//
//   - kind: what the node is; only external changes behaviour (it stands
//     for a network pktflow does not model in detail).
//   - interfaces: NAME: {addrs, mac, mtu, kind, master, up}. addrs are
//     prefixes (a bare address is a host prefix); mtu defaults to 1500;
//     kind is ether (default), bridge, veth, tap, dummy or loopback; up
//     defaults to true. Without mac, a locally administered MAC (02:...)
//     is derived from the node and interface names, and the interface's
//     Origin is marked Synthesized. A device another one names as master
//     is a bridge unless its kind says otherwise. IPv4 addresses get the
//     broadcast address of their prefix.
//   - routes, neighbors, rules: a list of lines in `ip route`, `ip neigh`,
//     `ip rule` syntax, or one literal block (|) holding such output. A
//     multipath route on one line writes its nexthops as `ip route add`
//     takes them: "default nexthop via A dev X nexthop via B dev Y".
//   - iptables, ip6tables: iptables-save text in a literal block (|).
//   - sysctl: flat dotted names; true/false become 1/0.
//   - listen: sockets that answer, "tcp/22" or "udp/[2001:db8::1]:53";
//     0.0.0.0 and :: mean any address.
//   - owns: prefixes an external node answers for beyond its interfaces.
//   - ttl: the initial TTL of packets the node originates (1..255).
//   - iface_kinds: NAME: KIND, overriding the kind of an interface, for the
//     cases where the name heuristics of `ip addr` parsing guess wrong.
//
// A node gives each kind of state at most once: as a file or inline, never
// both. A node with neither files nor inline state is an error unless it is
// external.
//
// # Defaults pktflow fills in
//
//   - Every node has a loopback device "lo" with 127.0.0.1/8 and ::1/128
//     when its input lists none, as every Linux network namespace does
//     (its Origin is Synthesized).
//   - Interface kinds parsed from `ip addr` follow the heuristics of
//     iproute.ParseAddr; links refine them: both ends of a veth link are
//     veth and the first end of a tap link is a tap, unless iface_kinds
//     names them.
//   - Nodes keep the order of topology.yaml.
//
// # Validation
//
// Load reports every problem it finds, not just the first: unknown keys,
// unknown kinds, bad prefixes, addresses or listen specs, links naming
// unknown nodes or interfaces (listing the interfaces the node has), an
// interface in two links, routes, neighbors or masters naming devices the
// node lacks, names that are not addresses. Each error is an
// *ingest.Error naming the file (joined with the snapshot folder) and
// line; several are joined with errors.Join. Origins in the loaded model
// name files relative to the snapshot folder ("nodes/mayura/ip-addr",
// "topology.yaml") so that explanations stay readable.
package snapshot
