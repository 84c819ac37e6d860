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
//	DIR/nodes/NAME/ip-addr.json  `ip -j addr`              (instead of ip-addr)
//	DIR/nodes/NAME/ip-link       `ip -d link show`         (or ip-link.json: `ip -j -d link`)
//	DIR/nodes/NAME/ip-route      `ip route show [table all]`, main table unless a line says table X
//	                             (or ip-route.json: `ip -j route show [table all]`, either family)
//	DIR/nodes/NAME/ip6-route     `ip -6 route show [table all]`, added to the same tables (or ip6-route.json)
//	DIR/nodes/NAME/ip-neigh      `ip neigh`                (or ip-neigh.json: `ip -j neigh`)
//	DIR/nodes/NAME/ip-rule       `ip rule`                 (or ip-rule.json: `ip -j rule`)
//	DIR/nodes/NAME/bridge-fdb.json   `bridge -j fdb`
//	DIR/nodes/NAME/bridge-link.json  `bridge -j link`: ports' masters, STP states, hairpin
//	DIR/nodes/NAME/iptables-save `iptables-save`
//	DIR/nodes/NAME/iptables-L    `iptables -L -n -v [--line-numbers] [-t TABLE]` listings, one or more,
//	                             each table named by the pasted command line's -t
//	DIR/nodes/NAME/iptables-L-TABLE  a listing of one table (iptables-L-nat, iptables-L-filter ...)
//	DIR/nodes/NAME/ip6tables-save `ip6tables-save` (or ip6tables-L, ip6tables-L-TABLE)
//	DIR/nodes/NAME/sysctl        `sysctl -a` lines: "net.ipv4.ip_forward = 1"
//	DIR/nodes/NAME/ss            `ss -tulpn`, `ss -H -tuln`: the node's listeners
//	DIR/nodes/NAME/conntrack     `conntrack -L` (or /proc/net/nf_conntrack): connections already tracked
//	DIR/nodes/NAME/virsh-net-dumpxml.xml  `virsh net-dumpxml NET`, one or more documents
//	                             (or virsh-net-dumpxml-NET.xml, several files)
//	DIR/nodes/NAME/virsh-net-dhcp-leases  `virsh net-dhcp-leases NET`
//	DIR/nodes/NAME/virsh-dumpxml.xml      `virsh dumpxml DOMAIN` (or virsh-dumpxml-DOMAIN.xml, several)
//	DIR/nodes/NAME/docker-inspect.json    `docker inspect CONTAINER...`
//	DIR/nodes/NAME/docker-network-inspect.json  `docker network inspect NETWORK...`
//
// Every file is optional; text files may carry a .txt extension. Files may
// keep the shell prompt line ("[root@mayura ~]# ip addr show", "virsh #
// net-dumpxml default"), blank lines and code fences. A folder under
// nodes/ that topology.yaml does not declare, or a file there with another
// name, is an error: pktflow never ignores input it was given. So are two
// files that give one fact (ip-addr and ip-addr.json; iptables-save and an
// iptables -L listing; ss and an inline listen:), a table listed in two
// listing files, and an ip-link that contradicts ip-addr (another MAC or
// master, or a device only one of them lists): they are meant to be taken
// together.
//
// What each file gives:
//
//   - ip-link refines the interfaces of ip-addr (the exact kind from -d,
//     the veth peer index and link-netnsid, bridge port state and hairpin
//     mode); alone it gives interfaces without addresses. bridge-link.json
//     sets ports' masters, states and hairpin modes; bridge-fdb.json fills
//     Node.FDB.
//   - JSON routes, rules and neighbors are read as the `ip` line they
//     stand for (their Origin text), so both forms give the same model.
//   - An iptables -L listing is read back into iptables-save form (see
//     the iptlist package); what it cannot say is attached to each rule
//     (model.Rule.Lossy) and reported as uncertain by the trace that uses
//     the rule. Built-in chains and jump targets a listing does not show,
//     and the filter and nat tables when it shows none of their chains,
//     are placeholders whose single rule says so. The "!" a listing glues
//     to an interface name is settled by the node's interfaces.
//   - ss gives Node.Listeners, conntrack Node.Conntrack, the leases
//     Node.Leases.
//   - virsh-dumpxml wires each tap it names (<target dev='vnet0'/>) to the
//     node that has an interface with the guest NIC's MAC, unless
//     topology.yaml wires either end: a tap link with a synthesized
//     Origin naming the XML line, and a note.
//   - virsh-net-dumpxml and the docker inspect files are read and checked,
//     and used only with LoadOptions.Synthesize (pktflow trace
//     --synthesize), which fills in what libvirt and Docker install:
//     their iptables and ip6tables rules, replayed in the order they run
//     their commands (libvirt 5.1 and later with its iptables backend;
//     Docker 20.10 to 24 with its default daemon options), unless the node
//     has a real ruleset, which wins; the bridges and their addresses, and
//     libvirt's static routes, when the input lacks them; the forwarding
//     sysctls they turn on, unless the input gives them; and the
//     listeners of dnsmasq and docker-proxy when the node has no listener
//     information. Everything synthesized has an Origin marked Synthesized
//     whose File is "synthesized from nodes/NAME/FILE" and whose Line is
//     the element or object it comes from.
//
// Snapshot.Notes lists, one sentence each, what the loader filled in or
// set aside: synthesized rules, bridges and sysctls, a real ruleset
// winning over a synthesized one, descriptions read but unused without
// --synthesize, rulesets read back from listings, taps wired from
// virsh dumpxml.
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
