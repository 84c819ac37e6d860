package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/render"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/trace"
)

type traceOpts struct {
	snapshot   string
	from       string
	src        string
	format     string
	icmpID     uint16
	seq        uint16
	ttl        int
	length     int
	only4      bool
	synthesize bool
	only6      bool
}

func traceCmd() *cobra.Command {
	o := &traceOpts{}
	c := &cobra.Command{
		Use:   "trace --snapshot DIR --from NODE[:IFACE] [flags] PROTO DEST[:PORT]",
		Short: "Trace a packet and its answer through the snapshot",
		Long: `Trace one packet from a node (or arriving on one of its interfaces) to a
destination, and the answer back, showing every routing decision, netfilter
rule, NAT rewrite and what tcpdump would print on each interface.

PROTO is icmp, tcp or udp; DEST an address or a name the snapshot resolves,
with :PORT for tcp and udp.

Exit status: 0 when the request is delivered and its answer gets back,
1 when not (the output says where and why), 2 on usage or input errors.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErr("trace needs PROTO and DEST[:PORT], e.g. 'icmp www.google.com' or 'tcp 192.168.122.120:1443'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runTrace(cmd, o, args) },
	}
	f := c.Flags()
	f.StringVar(&o.snapshot, "snapshot", "", "snapshot folder (holds topology.yaml)")
	f.StringVar(&o.from, "from", "", "sending node, or NODE:IFACE for a packet arriving on that interface")
	f.StringVar(&o.src, "src", "", "source ADDR[:PORT] (default: chosen by the route; port 40000)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.Uint16Var(&o.icmpID, "icmp-id", 1, "ICMP echo identifier")
	f.Uint16Var(&o.seq, "seq", 1, "ICMP echo sequence number")
	f.IntVar(&o.ttl, "ttl", 0, "initial TTL (default: the sender's, 64 on Linux)")
	f.BoolVar(&o.synthesize, "synthesize", false, "fill in the rules libvirt and Docker install, from virsh net-dumpxml and docker inspect files, where a node has no iptables-save")
	f.BoolVarP(&o.only4, "ipv4", "4", false, "a name with both families: trace only its IPv4 address")
	f.BoolVarP(&o.only6, "ipv6", "6", false, "a name with both families: trace only its IPv6 address")
	f.IntVar(&o.length, "length", 0, "length tcpdump prints: ICMP message (default 64) or UDP payload (default 32)")
	return c
}

func runTrace(cmd *cobra.Command, o *traceOpts, args []string) error {
	if o.snapshot == "" || o.from == "" {
		return usageErr("trace needs --snapshot DIR and --from NODE[:IFACE]")
	}
	if o.format != "text" && o.format != "json" {
		return usageErr("--format must be text or json, not %q", o.format)
	}
	snap, err := snapshot.LoadWith(o.snapshot, snapshot.LoadOptions{Synthesize: o.synthesize})
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	p, err := buildProbe(snap, o, args)
	if err != nil {
		return err
	}
	eng, err := engine.New(snap)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	t := eng.Trace(p)
	if p6, ok := otherFamily(snap, p, o); ok {
		t = bothFamilies(t, eng.Trace(p6))
	}
	t.Notes = snap.Notes
	out := cmd.OutOrStdout()
	if o.format == "json" {
		err = render.JSON(out, t)
	} else {
		err = render.Text(out, t)
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if t.Verdict != trace.Answered {
		return &exitError{code: exitNotReach}
	}
	return nil
}

// buildProbe turns the command line into an engine.Probe.
func buildProbe(snap *model.Snapshot, o *traceOpts, args []string) (engine.Probe, error) {
	var p engine.Probe
	node, iface, _ := strings.Cut(o.from, ":")
	n := snap.Node(node)
	if n == nil {
		var names []string
		for _, x := range snap.Nodes {
			names = append(names, x.Name)
		}
		return p, usageErr("--from: no node %q in the snapshot (nodes: %s)", node, strings.Join(names, ", "))
	}
	if iface != "" && n.Iface(iface) == nil {
		return p, usageErr("--from: node %s has no interface %q", node, iface)
	}
	p.From, p.FromIface = node, iface
	switch strings.ToLower(args[0]) {
	case "icmp":
		p.Proto = packet.ICMP
	case "tcp":
		p.Proto = packet.TCP
	case "udp":
		p.Proto = packet.UDP
	default:
		return p, usageErr("PROTO must be icmp, tcp or udp, not %q", args[0])
	}
	host, port, err := splitHostPort(args[1], p.Proto != packet.ICMP)
	if err != nil {
		return p, usageErr("DEST %q: %v", args[1], err)
	}
	if p.Dst, p.DstName, err = resolveHost(snap, host); err != nil {
		return p, err
	}
	if o.only6 && p.DstName != "" {
		for _, a := range snap.Names[p.DstName] {
			if a.Is6() {
				p.Dst = a
				break
			}
		}
	}
	p.DPort = port
	if o.src != "" {
		sh, sp, err := splitHostPort(o.src, false)
		if err != nil {
			return p, usageErr("--src %q: %v", o.src, err)
		}
		a, err := netip.ParseAddr(sh)
		if err != nil {
			return p, usageErr("--src %q: not an address", o.src)
		}
		p.Src, p.SPort = a, sp
	}
	if p.Proto != packet.ICMP && p.SPort == 0 {
		p.SPort = engine.DefaultSPort
	}
	if iface != "" && !p.Src.IsValid() {
		return p, usageErr("--from %s:%s injects a packet arriving from outside: give its source with --src", node, iface)
	}
	if o.ttl < 0 || o.ttl > 255 {
		return p, usageErr("--ttl must be 1-255")
	}
	p.TTL, p.ICMPID, p.ICMPSeq, p.Len = o.ttl, o.icmpID, o.seq, o.length
	return p, nil
}

// otherFamily returns the probe for a name's IPv6 address when the name
// has addresses of both families and neither -4 nor -6 was given.
func otherFamily(snap *model.Snapshot, p engine.Probe, o *traceOpts) (engine.Probe, bool) {
	if p.DstName == "" || o.only4 || o.only6 || p.Src.IsValid() || !hasGlobal6(snap.Node(p.From)) {
		// Like getaddrinfo with AI_ADDRCONFIG, a sender with no global
		// IPv6 address does not try the name's IPv6 address.
		return p, false
	}
	for _, a := range snap.Names[p.DstName] {
		if a.Is6() && p.Dst.Is4() {
			p.Dst = a
			return p, true
		}
	}
	return p, false
}

// hasGlobal6 reports whether a node has an IPv6 address other than
// loopback and link-local.
func hasGlobal6(n *model.Node) bool {
	if n == nil {
		return false
	}
	for _, i := range n.Interfaces {
		for _, a := range i.Addrs {
			ad := a.Prefix.Addr()
			if ad.Is6() && !ad.Is4In6() && !ad.IsLoopback() && !ad.IsLinkLocalUnicast() {
				return true
			}
		}
	}
	return false
}

// bothFamilies joins the IPv4 and IPv6 traces of a dual-stack name.
func bothFamilies(t4, t6 *trace.Trace) *trace.Trace {
	t := &trace.Trace{Probe: t4.Probe + " and " + t6.Probe, Uncertain: []string{}, Hops: []trace.Event{}, Captures: []trace.Capture{},
		Probability: 1, Families: []*trace.Trace{t4, t6}}
	t.Uncertain = append(append(t.Uncertain, t4.Uncertain...), t6.Uncertain...)
	switch {
	case t4.Verdict == t6.Verdict:
		t.Verdict = t4.Verdict
	default:
		t.Verdict = trace.Mixed
	}
	t.Reason = fmt.Sprintf("IPv4: %s; IPv6: %s", t4.Reason, t6.Reason)
	return t
}

// resolveHost turns an address or a name from topology.yaml's names into
// an address (IPv4 preferred, as ping without -6 does).
func resolveHost(snap *model.Snapshot, host string) (netip.Addr, string, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, "", nil
	}
	addrs, ok := snap.Names[host]
	if !ok || len(addrs) == 0 {
		return netip.Addr{}, "", usageErr("DEST %q is neither an address nor a name in topology.yaml's names", host)
	}
	for _, a := range addrs {
		if a.Is4() {
			return a, host, nil
		}
	}
	return addrs[0], host, nil
}

// splitHostPort splits ADDR[:PORT] (IPv6 as [ADDR]:PORT or bare).
func splitHostPort(s string, needPort bool) (string, uint16, error) {
	host, portStr := s, ""
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "]")
		if i < 0 {
			return "", 0, fmt.Errorf("missing ]")
		}
		host, portStr = s[1:i], strings.TrimPrefix(s[i+1:], ":")
	} else if strings.Count(s, ":") == 1 {
		host, portStr, _ = strings.Cut(s, ":")
	}
	if portStr == "" {
		if needPort {
			return "", 0, fmt.Errorf("tcp and udp need a port: ADDR:PORT")
		}
		return host, 0, nil
	}
	n, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	return host, uint16(n), nil
}
