// Package conformance keeps pktflow's engine honest against the Linux
// kernel: it generates random but realistic networks (seeded and
// deterministic), builds each one as network namespaces, sends probes
// through it for real and compares every interface's packets with what
// the engine predicts (internal/verify).
//
// # Scenarios
//
// Generate(seed) makes one scenario of 3 to 7 nodes: an external
// "internet" owning public addresses, a router (MASQUERADE, SNAT or a
// routed LAN; an open or stateful firewall with REJECT variants; maybe
// blackhole, unreachable and prohibit routes, forwarding disabled, a
// port forward with NAT loopback) and one to three sites behind it:
//
//   - plain hosts with listeners, RHEL-style firewalls (REJECT with every
//     icmp-* type and tcp-reset, in INPUT, FORWARD and OUTPUT) and
//     unreachable routes;
//   - Docker 24 hosts: docker0 and user-defined bridges, containers,
//     published ports with docker's nat and filter chains, userland-proxy
//     on (docker-proxy listens) or off (hairpin NAT), icc=false,
//     br_netfilter on;
//   - libvirt hosts: a NAT network with LIBVIRT_* chains, VMs on taps, a
//     port forward hook, and Docker inside a VM (nested NAT: container in
//     VM in host behind the router);
//   - a Kubernetes node: pods on cni0, kube-proxy's KUBE-SERVICES,
//     KUBE-SVC (statistic random with two endpoints), KUBE-SEP, NodePorts,
//     KUBE-MARK-MASQ and MASQUERADE --random-fully, the CNI plugin's
//     per-pod masquerade chains, a service without endpoints (REJECT);
//   - a multi-homed host: two uplinks with route metrics, source policy
//     routing and fwmark routing set by mangle OUTPUT.
//
// About two scenarios in five also run IPv6 beside IPv4 on the internet,
// the router and the first LAN (gen6.go): a routed or NAT66 (MASQUERADE)
// LAN, stateful ip6tables on the router — maybe without ICMPv6 in INPUT,
// which silences neighbour discovery — and RHEL's ip6tables rules on
// hosts, every ICMPv6 REJECT variant, IPv6 blackhole, unreachable and
// prohibit routes, hop-limit expiry, and IPv6 forwarding turned off. That
// layer draws from its own random stream, so a seed's IPv4 network is the
// same with or without it.
//
// Its probes are a sample of verify.DefaultProbes (published ports and
// listeners, ICMP between nodes) plus TTL expiry, closed ports, the
// router's route types and NodePorts. A scenario is a topology.yaml with
// every node's state inline, loaded by snapshot.Load: the exact input a
// saved failure reproduces with `pktflow verify --snapshot DIR`.
//
// # Runner
//
// Run builds each scenario's lab once, checks its probes with
// verify.Check and tallies agreed, disagreed and uncertain probes (an
// uncertain trace is never counted as agreement). A disagreement saves
// the scenario under Options.FailDir as SEED/topology.yaml with the
// differences and the commands that reproduce them.
package conformance
