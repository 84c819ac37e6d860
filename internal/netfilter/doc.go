package netfilter

// How the walk follows the kernel (net/ipv4/netfilter/ip_tables.c and the
// xt_* modules), and what pktflow does where it cannot.
//
// Chains. Run starts at the hook's built-in chain. Rules are evaluated in
// order; a rule matches when its base matches (-s -d -i -o -p -f, in the
// kernel's order) and then its -m matches (in rule order, stopping at the
// first that fails) all match. ACCEPT, DROP, REJECT and the nat targets end
// the walk of the table, wherever they are. -j CHAIN pushes a frame; -g CHAIN
// replaces the current one, so a RETURN (or the end) of the chain gone to
// returns to the chain that called the goto's caller. RETURN, or the end of a
// user chain, pops a frame; with no frame left (RETURN in the built-in chain,
// or the end of a chain reached by -g from it) the built-in chain's policy
// decides, as the kernel's underflow rule does. The end of a built-in chain
// is its policy.
//
// Why some rules fail to compile. iptables refuses "-i" in OUTPUT and
// POSTROUTING (a locally generated packet has no input device) and "-o" in
// PREROUTING and INPUT (the output device is chosen by routing, later), so
// such rules cannot come from a real system; in user chains the kernel simply
// compares against an empty name, and so does pktflow. Likewise the kernel
// refuses nat targets outside the nat table and outside their hooks (DNAT and
// REDIRECT before routing, SNAT after it or at INPUT, MASQUERADE only at
// POSTROUTING), -m tcp without -p tcp, --reject-with tcp-reset without
// -p tcp, -m mac where there is no received frame, and chain loops (a loop
// would never end; loops no hook reaches are never walked and are allowed).
//
// Supported exactly: -s/-d (any mask, address lists), -i/-o (with +), -p
// (names, numbers, all), -f; tcp/udp (--sport, --dport, ranges, --tcp-flags,
// --syn), multiport, conntrack (--ctstate with SNAT/DNAT, --ctdir,
// --ctproto, --ctorig*/--ctrepl* addresses and ports; a packet without a
// conntrack entry only sees --ctstate), state, mark, connmark, comment, icmp,
// icmp6, iprange, addrtype (through Ctx.AddrType, with --limit-iface-*),
// statistic (nth from Ctx.NthPacket; random through Ctx.Choose), physdev
// (xt_physdev's quirks included), mac (through Ctx.SrcMAC), ttl, hl, length,
// pkttype. Targets: ACCEPT, DROP, RETURN, REJECT (every --reject-with name
// and alias, normalised to the long form), DNAT, SNAT, MASQUERADE,
// REDIRECT, MARK and CONNMARK (xt_mark/xt_connmark arithmetic, masks and
// shifts), CT --notrack and NOTRACK (Result.NoTrack).
//
// Noted, without effect on the walk: LOG, NFLOG, ULOG, TRACE, CHECKSUM,
// TCPMSS (it changes the MSS option only), other CT options, DSCP, TOS, ECN,
// CLASSIFY, SECMARK, CONNSECMARK, AUDIT and similar.
//
// Uncertain, reported in Result.Uncertain with the rule's origin: a match
// pktflow does not model (set, owner, socket, u32, bpf, recent, string,
// time, connlimit, ...) or an option it does not know is assumed NOT to
// match (the rule is skipped and a step says so); limit and hashlimit are
// assumed within their limit; random statistic without Ctx.Choose is
// assumed taken; --tcp-option, --ctstatus bits that cannot be derived,
// --ctexpire, a conntrack/state match when Ctx.State is zero, addrtype
// without Ctx.AddrType, mac without Ctx.SrcMAC, and a length that depends on
// the TCP header length are skipped. A target pktflow does not model
// (NFQUEUE, TPROXY, SET, TTL, NETMAP, ...) is treated as non-terminal.
//
// Speed. Compile parses everything once: addresses become masked 128-bit
// words, ports ranges, names flags. Run allocates only its Result (the
// steps, one string holding every message, and the NAT request). Chains of
// 64 rules or more get an index (see chainIndex) so that kube-proxy's
// KUBE-SERVICES costs a map lookup rather than a walk over every service.
