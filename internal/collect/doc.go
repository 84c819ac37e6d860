// Package collect reads a live Linux host's network namespaces into a
// snapshot folder in exactly the format a person would assemble by hand
// (see package snapshot), so that `pktflow collect` followed by `pktflow
// trace` works on the machine it ran on, and the folder can be read,
// edited and shared.
//
// # What is collected
//
// Namespaces: the current one by default; named ones (/run/netns/NAME,
// as `ip netns` makes them) with Options.NetNS; with Options.AllNetNS
// every named namespace and every process's namespace, found through
// /proc/PID/ns/net and de-duplicated by namespace identity (the nsfs
// device and inode). Node names: a named namespace keeps its name, a
// Docker container gets the name Docker gives it (matched by the
// namespace of its State.Pid, through the engine's API socket or the
// docker command), another process's namespace the hostname in its root
// (/proc/PID/root/etc/hostname) or "pid-N", the current namespace the
// hostname. Clashing names get a "-2" suffix; named namespaces keep
// theirs.
//
// Per namespace, through netlink handles opened on it
// (netlink.NewHandleAt): links, addresses, routes of every table of both
// families, neighbors; policy rules and the link attributes the library
// does not report (qdisc, broadcast address, peer index, rule actions)
// come from raw dumps on a route socket opened in the namespace. They are
// rendered as the text `ip addr show` (ip-addr), `ip -4 route show table
// all` (ip-route), `ip -6 route show table all` (ip6-route), `ip rule` and
// `ip neigh` print (see render.go for the two deliberate differences), so
// the iproute parsers read them back. IPv6 policy rules other than the
// kernel's defaults are kept in ip-rule as comments: the model's rules have
// no family. iptables-save and ip6tables-save run inside the
// namespace (`ip netns exec NAME`, `nsenter --net=/proc/PID/ns/net`) and
// are stored verbatim; when they report legacy tables the legacy tools are
// asked as well. When neither has tables but `nft list ruleset` shows
// rules, `nft -j list ruleset` is kept under extra/NODE/ (pktflow does not
// read nft rulesets yet, and topology.yaml says so); `conntrack -L`, when
// installed, is kept there too. Sysctls (forwarding, rp_filter,
// route_localnet, arp_ignore for all, default and every device;
// ip_forward, ip_local_port_range, ip_default_ttl, bridge-nf-call-*) and
// listening sockets (/proc/net/{tcp,tcp6,udp,udp6}) are read from a thread
// that has joined the namespace.
//
// topology.yaml gets each node's kind (container for a process's or
// Docker's namespace, host for the current one and for named ones unless
// it obviously is a router: it forwards between two or more addressed
// interfaces and has no bridge), its listen list, iface_kinds where the
// ip-addr text alone would make pktflow guess a device's kind wrong, and
// the veth pairs joined across the collected namespaces from each end's
// peer index and link-netnsid. Bridge ports are recorded by the "master"
// of their ip-addr lines.
//
// # Read-only
//
// Collecting never changes the host: it only sends netlink dump requests
// (and RTM_GETNSID, which never assigns an id), reads /proc, and runs the
// save/list commands above. Nothing is written outside the output folder.
// Threads that join another namespace are locked and thrown away, never
// handed back to the Go scheduler.
//
// # Loadable output
//
// Write loads the folder it wrote with snapshot.Load. A line of an
// iproute2 file that pktflow cannot model (a source-specific route, a
// tos rule) is turned into a comment that says why, and reported, so the
// snapshot loads and nothing is dropped silently.
package collect
