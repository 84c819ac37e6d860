// Package lab builds a model.Snapshot as real Linux network namespaces,
// sends real packets through them and captures what every interface saw,
// so that pktflow's predictions can be checked against the kernel itself.
//
// # Isolation
//
// The machine's root namespace is shared and is never touched: every
// namespace the lab creates is named Prefix+"-"+node (hidden segment
// namespaces Prefix+"seg"+N), every interface is created inside a lab
// namespace (veth pairs are made with `ip -n A link add X type veth peer
// name Y netns B`, so no device ever exists in the root namespace), and
// sysctls are written through /proc/sys from a thread that has joined the
// lab namespace; only net.* keys that exist inside that namespace are
// written, so a global knob can never be changed by accident. Down
// deletes exactly the namespaces Up created, by name.
//
// Code that must run inside a namespace (sysctl writes, probe and listener
// sockets) runs on a fresh goroutine that locks its OS thread, joins the
// namespace and never unlocks: when the goroutine ends the Go runtime
// destroys the thread, so a thread in a foreign namespace can never be
// reused by unrelated code even if restoring it failed. Sockets keep the
// namespace they were created in, so they can be used from any goroutine
// afterwards.
//
// # Mapping the model
//
// One namespace per node. A LinkVeth, a LinkTap (a tap cannot be emulated
// better without a hypervisor: the guest side becomes the other end of a
// veth pair) and a two-ended LinkSegment become a veth pair; a segment
// with one or three and more ends becomes a hidden namespace holding a
// bridge with a veth to every end. Bridges (Kind bridge, or named as some
// interface's Master) are created with STP off and no forward delay;
// every other interface that is not on a link becomes a dummy so that its
// addresses exist (on kernels without the dummy driver, such as this
// project's machines, a veth into a hidden stub namespace with ARP off:
// it too has carrier, does no ARP and drops what is sent). Then MACs, MTUs, masters, addresses (noprefixroute is
// kept; ::1 is skipped where IPv6 is off), admin state, routes of every
// table except local (kernel-protocol routes are added only when the
// kernel did not already derive them from an address; routes whose
// gateway depends on another model route are retried after it), policy
// rules (the three default ones are the kernel's), permanent neighbour
// entries, iptables/ip6tables rulesets through iptables-restore, the
// local routes of an external node's Owns prefixes, and the listeners.
//
// Admin state: a device is set up when Interface.Up is true, or when its
// flags say UP without carrier (docker0 with no containers): the lab's
// device then lacks carrier for the same reason (a bridge without ports,
// a veth whose peer is down).
//
// Every device gets an explicit interface index: the model's when it is
// free, else one counted from 1000. The two ends of a veth must differ:
// the kernel treats a veth whose index equals its peer's (natural when
// each namespace numbers from 2) as not stacked and applies its carrier
// change through the linkwatch worker up to a second late, during which a
// bridge port is not forwarding and drops frames. Up then waits until
// every device with carrier is operationally up and every bridge port is
// forwarding, so the first packet sent after Up is never lost.
//
// # Sysctls: an explicit baseline
//
// A new namespace inherits IPv4 devconf settings (forwarding, rp_filter,
// redirects...) from the root namespace (net.core.devconf_inherit_init_net
// defaults to 0), so on a machine that forwards, a new namespace forwards
// too: net.ipv4.ip_forward is NOT 0 by default there. The lab therefore
// writes a baseline in every namespace, then the snapshot's own net.*
// values on top:
//
//	net.ipv4.ip_forward=0               the kernel default for a host; 1 (and
//	                                    net.ipv6.conf.all.forwarding=1) on
//	                                    an external node, which stands for
//	                                    networks that route
//	net.ipv4.conf.{all,default}.rp_filter=0   the engine models rp_filter itself
//	net.ipv4.conf.{all,default}.{accept_local,route_localnet,proxy_arp}=0
//	net.ipv4.conf.{all,default}.send_redirects=1
//	net.ipv4.ip_default_ttl=Node.InitialTTL (64 when zero)
//	net.ipv4.icmp_ratelimit=0           ICMP errors are never rate limited,
//	net.ipv6.icmp.ratelimit=0           so a capture does not depend on timing
//	net.bridge.bridge-nf-call-{iptables,ip6tables,arptables}=0
//	net.ipv6.conf.{all,default}.disable_ipv6=1 unless the node has IPv6
//	addresses, routes, owned prefixes or an ip6tables ruleset; then
//	disable_ipv6=0 and accept_dad=0 so that addresses are usable at once.
//
// br_netfilter's bridge-nf-call-* knobs are per namespace on this kernel
// (6.x; since 5.3) and default to 1 in every namespace once the module is
// loaded; the lab sets them to 0 (a host without br_netfilter) unless the
// snapshot sets them. On an older kernel where they are global they do
// not exist inside a namespace and are left alone (a warning is logged if
// the snapshot asked for a value).
//
// Interface sysctls (net.ipv4.conf.IFACE.*) are written after the
// interfaces exist and before addresses are added; global ones are written
// before any interface is created so that "default" values are inherited.
// A failed write of a baseline key fails Up; a failed write of any other
// snapshot key (read-only keys from a `sysctl -a` dump, say) is only a
// warning, see Lab.Warnings.
//
// # Captures
//
// Capture runs two tcpdumps per interface, `-Q in` and `-Q out`, with -p
// (no promiscuous mode: a bridge device must not see frames merely
// forwarded between its ports), --immediate-mode (libpcap's TPACKET_V3
// blocks would otherwise hold packets back) and nanosecond timestamps,
// writing pcap to stdout. Direction thus comes from the kernel rather
// than from MACs: "source MAC is mine, so out" fails on bridge ports,
// whose outgoing frames carry other devices' MACs. The two streams are
// merged by timestamp. Each tcpdump is waited for until it prints
// "listening on" (its packet socket is bound). Before stopping them the
// lab waits until every tcpdump sleeps with its output no longer growing:
// on SIGINT libpcap breaks its loop before reading what is still in its
// ring, so on a loaded machine the last packets would otherwise be lost.
// The tcpdumps are started from one locked OS thread with PDEATHSIG, so
// they die with the test process. The pcap stream is read by a small
// reader in this package: gopacket's pcapgo imports golang.org/x/net/bpf
// on Linux, which is not a dependency of this module.
//
// # Probes and listeners
//
// Ping sends ICMP echo requests from a raw socket created inside the
// node's namespace (no dependency on iputils ping, which is often not
// installed); TCPConnect and UDPSend use ordinary sockets created there.
// Listeners are in-process: TCP accepts and echoes until EOF, UDP echoes
// every datagram once, replying from the address it was sent to
// (IP_PKTINFO) so an external node answers for any address of its Owns
// prefixes, which are local routes on its loopback.
//
// Not built: pre-existing conntrack entries (Node.Conntrack), and the
// no-carrier state of a device that has carrier in the lab whatever its
// peer does (a dummy).
package lab
