package netfilter

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/packet"
)

// mcase is one match test: the rule "-A CHAIN <rule> -j ACCEPT" in a
// table whose chain policy is DROP, so the verdict says whether it matched.
type mcase struct {
	name  string
	rule  string
	ctx   *Ctx
	want  bool
	unc   bool   // uncertainty expected
	msg   string // substring of the step message (matched) or Explain message (not)
	chain string // default INPUT
	table string // default filter
	v6    bool
}

func runMatchCases(t *testing.T, cases []mcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain, table, fam := tc.chain, tc.table, 4
			if chain == "" {
				chain = "INPUT"
			}
			if table == "" {
				table = "filter"
			}
			if tc.v6 {
				fam = 6
			}
			src := "*" + table + "\n:" + chain + " DROP [0:0]\n-A " + chain + " " + tc.rule + " -j ACCEPT\n"
			c := mustCompile(t, fam, src)
			h, _ := hookOfChain(chain)
			ctx := *tc.ctx
			r := c.Run(table, h, &ctx)
			if got := r.Verdict == Accept; got != tc.want {
				t.Fatalf("rule %q: matched=%v, want %v\n%s", tc.rule, got, tc.want, dump(r))
			}
			if got := len(r.Uncertain) > 0; got != tc.unc {
				t.Errorf("uncertain=%v, want %v: %v", got, tc.unc, r.Uncertain)
			}
			if tc.msg == "" {
				return
			}
			var msg string
			if tc.want {
				msg = r.Steps[0].Message
			} else {
				checks := c.Explain(table, h, tc.ctx)
				if len(checks) != 1 || checks[0].Matched {
					t.Fatalf("explain: %+v", checks)
				}
				if checks[0].Uncertain != tc.unc {
					t.Errorf("explain uncertain=%v, want %v", checks[0].Uncertain, tc.unc)
				}
				msg = checks[0].Message
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not contain %q", msg, tc.msg)
			}
		})
	}
}

func withIf(c *Ctx, in, out string) *Ctx { c.InIface, c.OutIface = in, out; return c }

func TestBaseMatches(t *testing.T) {
	p := tcpPkt("10.1.2.3", 40000, "192.168.1.1", 80)
	c := func() *Ctx { return newCtx(p) }
	runMatchCases(t, []mcase{
		{name: "src prefix", rule: "-s 10.0.0.0/8", ctx: c(), want: true, msg: "-s 10.0.0.0/8 matched src 10.1.2.3"},
		{name: "src prefix miss", rule: "-s 11.0.0.0/8", ctx: c(), msg: "-s 11.0.0.0/8 did not match src 10.1.2.3"},
		{name: "src negated", rule: "! -s 11.0.0.0/8", ctx: c(), want: true, msg: "! -s 11.0.0.0/8 matched src 10.1.2.3"},
		{name: "src negated miss", rule: "! -s 10.0.0.0/8", ctx: c()},
		{name: "host without mask", rule: "-d 192.168.1.1", ctx: c(), want: true, msg: "-d 192.168.1.1/32 matched dst 192.168.1.1"},
		{name: "dotted mask normalised", rule: "-s 10.1.99.99/255.255.0.0", ctx: c(), want: true, msg: "-s 10.1.0.0/16 matched"},
		{name: "non-contiguous mask", rule: "-s 10.0.0.3/255.0.0.255", ctx: c(), want: true, msg: "-s 10.0.0.3/255.0.0.255 matched"},
		{name: "non-contiguous mask miss", rule: "-s 10.0.0.4/255.0.0.255", ctx: c()},
		{name: "prefix zero", rule: "-s 0.0.0.0/0", ctx: c(), want: true},
		{name: "address list", rule: "-s 10.9.9.9,10.1.2.3", ctx: c(), want: true, msg: "-s 10.1.2.3/32 matched"},
		{name: "in exact", rule: "-i eth0", ctx: withIf(c(), "eth0", ""), want: true, msg: "-i eth0 matched in eth0"},
		{name: "in exact miss", rule: "-i eth0", ctx: withIf(c(), "eth01", ""), msg: "-i eth0 did not match in eth01"},
		{name: "in wildcard", rule: "-i eth+", ctx: withIf(c(), "eth12", ""), want: true},
		{name: "in wildcard exact stem", rule: "-i eth+", ctx: withIf(c(), "eth", ""), want: true},
		{name: "in wildcard miss", rule: "-i eth+", ctx: withIf(c(), "veth0", "")},
		{name: "in plus alone", rule: "-i +", ctx: withIf(c(), "anything", ""), want: true},
		{name: "in negated", rule: "! -i eth0", ctx: withIf(c(), "eth1", ""), want: true, msg: "! -i eth0 matched in eth1"},
		{name: "out negated", rule: "-s 10.0.0.0/8 ! -o docker0", chain: "FORWARD", ctx: withIf(c(), "docker0", "enp1s0"), want: true,
			msg: "-s 10.0.0.0/8 matched src 10.1.2.3; ! -o docker0 matched out enp1s0"},
		{name: "out miss", rule: "-o docker0", chain: "FORWARD", ctx: withIf(c(), "eth0", "eth1"), msg: "-o docker0 did not match out eth1"},
		{name: "proto name", rule: "-p tcp", ctx: c(), want: true, msg: "-p tcp matched tcp"},
		{name: "proto upper case", rule: "-p TCP", ctx: c(), want: true},
		{name: "proto number", rule: "-p 6", ctx: c(), want: true},
		{name: "proto miss", rule: "-p udp", ctx: c(), msg: "-p udp did not match tcp"},
		{name: "proto negated", rule: "! -p udp", ctx: c(), want: true, msg: "! -p udp matched tcp"},
		{name: "proto all", rule: "-p all", ctx: c(), want: true},
		{name: "proto icmp", rule: "-p icmp", ctx: newCtx(icmpPkt("1.1.1.1", "2.2.2.2", 8, 0)), want: true},
		{name: "fragment", rule: "-f", ctx: c(), msg: "-f did not match"},
		{name: "not fragment", rule: "! -f", ctx: c(), want: true},
	})
}

func TestTCPUDPMatches(t *testing.T) {
	c := func(sport, dport uint16, flags uint8) *Ctx {
		p := tcpPkt("10.0.0.1", sport, "10.0.0.2", dport)
		p.TCPFlags = flags
		return newCtx(p)
	}
	u := func(dport uint16) *Ctx { return newCtx(udpPkt("10.0.0.1", 5353, "10.0.0.2", dport)) }
	runMatchCases(t, []mcase{
		{name: "dport", rule: "-p tcp -m tcp --dport 80", ctx: c(1, 80, packet.SYN), want: true, msg: "--dport 80 matched dport 80"},
		{name: "dport miss", rule: "-p tcp -m tcp --dport 80", ctx: c(1, 81, packet.SYN), msg: "--dport 80 did not match dport 81"},
		{name: "dport range", rule: "-p tcp -m tcp --dport 1000:2000", ctx: c(1, 1500, packet.SYN), want: true},
		{name: "dport range end", rule: "-p tcp -m tcp --dport 1000:2000", ctx: c(1, 2001, packet.SYN)},
		{name: "dport open low", rule: "-p tcp -m tcp --dport :1023", ctx: c(1, 22, packet.SYN), want: true},
		{name: "dport open high", rule: "-p tcp -m tcp --dport 1024:", ctx: c(1, 1023, packet.SYN)},
		{name: "dport open high hit", rule: "-p tcp -m tcp --dport 1024:", ctx: c(1, 65535, packet.SYN), want: true},
		{name: "dport negated", rule: "-p tcp -m tcp ! --dport 22", ctx: c(1, 80, packet.SYN), want: true, msg: "! --dport 22 matched dport 80"},
		{name: "dport service name", rule: "-p tcp -m tcp --dport ssh", ctx: c(1, 22, packet.SYN), want: true},
		{name: "sport and dport", rule: "-p tcp -m tcp --sport 1024:65535 --dport 443", ctx: c(40000, 443, packet.SYN), want: true,
			msg: "--sport 1024:65535 matched sport 40000; --dport 443 matched dport 443"},
		{name: "sport fails first", rule: "-p tcp -m tcp --sport 1024:65535 --dport 443", ctx: c(80, 443, packet.SYN), msg: "--sport 1024:65535 did not match sport 80"},
		{name: "implicit tcp module", rule: "-p tcp --dport 80", ctx: c(1, 80, packet.SYN), want: true},
		{name: "bare -m tcp", rule: "-p tcp -m tcp", ctx: c(1, 80, packet.SYN), want: true, msg: "-m tcp matched tcp"},
		{name: "tcp-flags syn", rule: "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN", ctx: c(1, 80, packet.SYN), want: true, msg: "matched flags SYN"},
		{name: "tcp-flags synack", rule: "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN", ctx: c(1, 80, packet.SYN|packet.ACK), msg: "did not match flags SYN,ACK"},
		{name: "syn", rule: "-p tcp -m tcp --syn", ctx: c(1, 80, packet.SYN), want: true},
		{name: "syn miss on ack", rule: "-p tcp -m tcp --syn", ctx: c(1, 80, packet.ACK)},
		{name: "not syn", rule: "-p tcp -m tcp ! --syn", ctx: c(1, 80, packet.ACK|packet.PSH), want: true},
		{name: "flags ALL NONE", rule: "-p tcp -m tcp --tcp-flags ALL NONE", ctx: c(1, 80, 0), want: true},
		{name: "flags lower case", rule: "-p tcp -m tcp --tcp-flags syn,ack ack", ctx: c(1, 80, packet.ACK), want: true},
		{name: "tcp-option uncertain", rule: "-p tcp -m tcp --tcp-option 2", ctx: c(1, 80, packet.SYN), unc: true, msg: "TCP options"},
		{name: "udp dport", rule: "-p udp -m udp --dport 53", ctx: u(53), want: true},
		{name: "udp dport miss", rule: "-p udp -m udp --dport 53", ctx: u(54)},
		{name: "udp module on tcp packet", rule: "-p udp -m udp --dport 80", ctx: c(1, 80, packet.SYN)},
		{name: "multiport dports", rule: "-p tcp -m multiport --dports 80,443,8000:8080", ctx: c(1, 8080, packet.SYN), want: true, msg: "--dports 80,443,8000:8080 matched dport 8080"},
		{name: "multiport dports miss", rule: "-p tcp -m multiport --dports 80,443,8000:8080", ctx: c(1, 8081, packet.SYN)},
		{name: "multiport sports", rule: "-p tcp -m multiport --sports 1,2", ctx: c(2, 9, packet.SYN), want: true},
		{name: "multiport ports either", rule: "-p udp -m multiport --ports 53", ctx: newCtx(udpPkt("1.1.1.1", 53, "2.2.2.2", 9999)), want: true},
		{name: "multiport negated", rule: "-p tcp -m multiport ! --dports 80,443", ctx: c(1, 22, packet.SYN), want: true},
		{name: "multiport negated miss", rule: "-p tcp -m multiport ! --dports 80,443", ctx: c(1, 443, packet.SYN)},
	})
}

func TestConntrackMatches(t *testing.T) {
	p := tcpPkt("10.0.0.1", 40000, "10.96.0.10", 80)
	st := func(s CTState) *Ctx { c := newCtx(p); c.State = s; return c }
	reply := func() *Ctx { c := st(CTEstablished); c.Reply = true; return c }
	noTuple := func() *Ctx { return &Ctx{Pkt: p, State: CTNew} }
	withStatus := func(s CTStatus) *Ctx { c := st(CTEstablished); c.Status, c.HasStatus = s, true; return c }
	runMatchCases(t, []mcase{
		{name: "ctstate new", rule: "-m conntrack --ctstate NEW", ctx: st(CTNew), want: true, msg: "--ctstate NEW matched state NEW"},
		{name: "ctstate new on established", rule: "-m conntrack --ctstate NEW", ctx: st(CTEstablished), msg: "--ctstate NEW did not match state ESTABLISHED"},
		{name: "ctstate list", rule: "-m conntrack --ctstate RELATED,ESTABLISHED", ctx: st(CTEstablished), want: true},
		{name: "ctstate negated", rule: "-m conntrack ! --ctstate INVALID", ctx: st(CTNew), want: true},
		{name: "ctstate invalid", rule: "-m conntrack --ctstate INVALID", ctx: st(CTInvalid), want: true},
		{name: "ctstate dnat bit", rule: "-m conntrack --ctstate DNAT", ctx: st(CTNew | CTDNAT), want: true},
		{name: "ctstate dnat bit absent", rule: "-m conntrack --ctstate DNAT", ctx: st(CTNew)},
		{name: "ctstate prefix name", rule: "-m conntrack --ctstate EST", ctx: st(CTEstablished), want: true},
		{name: "ctstate unknown state", rule: "-m conntrack --ctstate NEW", ctx: &Ctx{Pkt: p}, unc: true, msg: "conntrack state"},
		// Without a conntrack entry only --ctstate counts (xt_conntrack).
		{name: "no ct: state passes, rest ignored", rule: "-m conntrack --ctstate INVALID --ctorigdst 1.2.3.4", ctx: st(CTInvalid), want: true},
		{name: "no ct: no state option", rule: "-m conntrack --ctorigdst 10.96.0.10", ctx: st(CTUntracked), msg: "without a conntrack entry"},
		{name: "ctdir original", rule: "-m conntrack --ctdir ORIGINAL", ctx: st(CTEstablished), want: true, msg: "--ctdir ORIGINAL matched direction ORIGINAL"},
		{name: "ctdir original on reply", rule: "-m conntrack --ctdir ORIGINAL", ctx: reply()},
		{name: "ctdir reply", rule: "-m conntrack --ctdir REPLY", ctx: reply(), want: true},
		{name: "ctorigdst", rule: "-m conntrack --ctorigdst 10.96.0.0/12", ctx: st(CTNew), want: true, msg: "--ctorigdst 10.96.0.0/12 matched original dst 10.96.0.10"},
		{name: "ctorigsrc negated", rule: "-m conntrack ! --ctorigsrc 192.168.0.0/16", ctx: st(CTNew), want: true},
		{name: "ctorigsrc negated miss", rule: "-m conntrack ! --ctorigsrc 10.0.0.0/8", ctx: st(CTNew)},
		{name: "ctreplsrc", rule: "-m conntrack --ctreplsrc 10.96.0.10", ctx: st(CTNew), want: true},
		{name: "ctrepldst miss", rule: "-m conntrack --ctrepldst 10.0.0.2", ctx: st(CTNew)},
		{name: "ctorigdstport", rule: "-m conntrack --ctorigdstport 80", ctx: st(CTNew), want: true},
		{name: "ctorigdstport range", rule: "-m conntrack --ctorigdstport 81:90", ctx: st(CTNew)},
		{name: "ctreplsrcport", rule: "-m conntrack --ctreplsrcport 80", ctx: st(CTNew), want: true},
		{name: "ctproto", rule: "-m conntrack --ctproto tcp", ctx: st(CTNew), want: true},
		{name: "ctproto miss", rule: "-m conntrack --ctproto udp", ctx: st(CTNew)},
		{name: "ct tuple unknown", rule: "-m conntrack --ctorigdst 1.2.3.4", ctx: noTuple(), unc: true, msg: "tuple"},
		{name: "ctstatus confirmed on new", rule: "-m conntrack --ctstatus CONFIRMED", ctx: st(CTNew)},
		{name: "ctstatus confirmed on established", rule: "-m conntrack --ctstatus CONFIRMED", ctx: st(CTEstablished), want: true},
		{name: "ctstatus seen reply negated on new", rule: "-m conntrack ! --ctstatus SEEN_REPLY", ctx: st(CTNew), want: true},
		{name: "ctstatus assured unknown", rule: "-m conntrack --ctstatus ASSURED", ctx: st(CTEstablished), unc: true, msg: "status is not known"},
		{name: "ctstatus given", rule: "-m conntrack --ctstatus ASSURED", ctx: withStatus(CTStatusAssured | CTStatusConfirmed), want: true},
		{name: "ctstatus NONE never matches", rule: "-m conntrack --ctstatus NONE", ctx: withStatus(0)},
		{name: "ctexpire", rule: "-m conntrack --ctexpire 10:20", ctx: st(CTEstablished), unc: true, msg: "lifetime"},
		{name: "state new", rule: "-m state --state NEW", ctx: st(CTNew | CTDNAT), want: true, msg: "--state NEW matched state NEW"},
		{name: "state list", rule: "-m state --state ESTABLISHED,RELATED", ctx: st(CTRelated), want: true},
		{name: "state negated", rule: "-m state ! --state INVALID", ctx: st(CTInvalid)},
		{name: "state unknown", rule: "-m state --state NEW", ctx: &Ctx{Pkt: p}, unc: true},
	})
}

func TestMarkMatches(t *testing.T) {
	p := udpPkt("10.0.0.1", 1, "10.0.0.2", 2)
	m := func(mark, ctmark uint32, s CTState) *Ctx {
		c := newCtx(p)
		c.Mark, c.CTMark, c.State = mark, ctmark, s
		return c
	}
	runMatchCases(t, []mcase{
		{name: "mark masked", rule: "-m mark --mark 0x4000/0x4000", ctx: m(0x4001, 0, CTNew), want: true, msg: "--mark 0x4000/0x4000 matched mark 0x4001"},
		{name: "mark masked miss", rule: "-m mark --mark 0x4000/0x4000", ctx: m(0x1, 0, CTNew), msg: "--mark 0x4000/0x4000 did not match mark 0x1"},
		{name: "mark negated", rule: "-m mark ! --mark 0x4000/0x4000", ctx: m(0, 0, CTNew), want: true},
		{name: "mark exact", rule: "-m mark --mark 5", ctx: m(5, 0, CTNew), want: true},
		{name: "mark exact miss", rule: "-m mark --mark 5", ctx: m(0x105, 0, CTNew)},
		{name: "connmark", rule: "-m connmark --mark 0x1", ctx: m(0, 1, CTEstablished), want: true, msg: "-m connmark --mark 0x1 matched ctmark 0x1"},
		{name: "connmark masked", rule: "-m connmark --mark 0x10/0xf0", ctx: m(0, 0x1f, CTEstablished), want: true},
		{name: "connmark without conntrack", rule: "-m connmark --mark 0x0", ctx: m(0, 0, CTInvalid)},
		{name: "connmark negated without conntrack", rule: "-m connmark ! --mark 0x1", ctx: m(0, 0, CTUntracked)},
		{name: "comment", rule: `-m comment --comment "hello world"`, ctx: m(0, 0, CTNew), want: true, msg: "/* hello world */"},
	})
}

func TestICMPMatches(t *testing.T) {
	i4 := func(typ, code uint8) *Ctx { return newCtx(icmpPkt("10.0.0.1", "10.0.0.2", typ, code)) }
	i6 := func(typ, code uint8) *Ctx { return newCtx(icmpPkt("fd00::1", "fd00::2", typ, code)) }
	runMatchCases(t, []mcase{
		{name: "number", rule: "-p icmp -m icmp --icmp-type 8", ctx: i4(8, 0), want: true, msg: "--icmp-type 8 matched type 8 code 0"},
		{name: "number miss", rule: "-p icmp -m icmp --icmp-type 8", ctx: i4(0, 0), msg: "--icmp-type 8 did not match type 0 code 0"},
		{name: "name", rule: "-p icmp -m icmp --icmp-type echo-request", ctx: i4(8, 0), want: true},
		{name: "alias", rule: "-p icmp -m icmp --icmp-type ping", ctx: i4(8, 0), want: true},
		{name: "type/code", rule: "-p icmp -m icmp --icmp-type 3/3", ctx: i4(3, 3), want: true},
		{name: "type/code miss", rule: "-p icmp -m icmp --icmp-type 3/3", ctx: i4(3, 1)},
		{name: "type any code", rule: "-p icmp -m icmp --icmp-type destination-unreachable", ctx: i4(3, 13), want: true},
		{name: "code name", rule: "-p icmp -m icmp --icmp-type port-unreachable", ctx: i4(3, 3), want: true},
		{name: "code name miss", rule: "-p icmp -m icmp --icmp-type port-unreachable", ctx: i4(3, 1)},
		{name: "frag needed", rule: "-p icmp -m icmp --icmp-type fragmentation-needed", ctx: i4(3, 4), want: true},
		{name: "ttl zero", rule: "-p icmp -m icmp --icmp-type ttl-zero-during-transit", ctx: i4(11, 0), want: true},
		{name: "any", rule: "-p icmp -m icmp --icmp-type any", ctx: i4(42, 7), want: true},
		{name: "negated", rule: "-p icmp -m icmp ! --icmp-type echo-request", ctx: i4(0, 0), want: true},
		{name: "unambiguous prefix", rule: "-p icmp -m icmp --icmp-type echo-req", ctx: i4(8, 0), want: true},
		{name: "implicit module", rule: "-p icmp --icmp-type 0", ctx: i4(0, 0), want: true},
		{name: "v6 echo", rule: "-p ipv6-icmp -m icmp6 --icmpv6-type echo-request", ctx: i6(128, 0), want: true, v6: true},
		{name: "v6 neighbour", rule: "-p ipv6-icmp -m icmp6 --icmpv6-type neighbor-solicitation", ctx: i6(135, 0), want: true, v6: true},
		{name: "v6 type/code", rule: "-p ipv6-icmp -m icmp6 --icmpv6-type 1/4", ctx: i6(1, 4), want: true, v6: true},
		{name: "v6 code name miss", rule: "-p ipv6-icmp -m icmp6 --icmpv6-type port-unreachable", ctx: i6(1, 3), v6: true},
		{name: "v6 icmpv6 alias proto", rule: "-p icmpv6 -m icmp6 --icmpv6-type 129", ctx: i6(129, 0), want: true, v6: true},
	})
}

func TestAddrtypeMatch(t *testing.T) {
	local := netip.MustParseAddr("10.0.0.1")
	bcast := netip.MustParseAddr("10.0.0.255")
	var gotDev string
	types := func(a netip.Addr, dev string) AddrType {
		gotDev = dev
		switch {
		case a == local && (dev == "" || dev == "eth0"):
			return AddrLocal
		case a == bcast:
			return AddrBroadcast
		case a.IsMulticast():
			return AddrMulticast
		}
		return AddrUnicast
	}
	c := func(dst string, in string) *Ctx {
		x := newCtx(udpPkt("192.168.1.1", 1, dst, 2))
		x.AddrType, x.InIface = types, in
		return x
	}
	runMatchCases(t, []mcase{
		{name: "dst local", rule: "-m addrtype --dst-type LOCAL", ctx: c("10.0.0.1", "eth0"), want: true, msg: "--dst-type LOCAL matched dst 10.0.0.1 (LOCAL)"},
		{name: "dst local miss", rule: "-m addrtype --dst-type LOCAL", ctx: c("10.0.0.2", "eth0"), msg: "--dst-type LOCAL did not match dst 10.0.0.2 (UNICAST)"},
		{name: "dst negated", rule: "-m addrtype ! --dst-type LOCAL", ctx: c("10.0.0.2", "eth0"), want: true},
		{name: "dst list", rule: "-m addrtype --dst-type LOCAL,BROADCAST", ctx: c("10.0.0.255", "eth0"), want: true},
		{name: "src and dst", rule: "-m addrtype --src-type UNICAST --dst-type LOCAL", ctx: c("10.0.0.1", "eth0"), want: true},
		{name: "src fails first", rule: "-m addrtype --src-type LOCAL --dst-type LOCAL", ctx: c("10.0.0.1", "eth0"), msg: "--src-type LOCAL did not match src 192.168.1.1"},
		{name: "limit iface in", rule: "-m addrtype --dst-type LOCAL --limit-iface-in", table: "mangle", chain: "PREROUTING", ctx: c("10.0.0.1", "eth1")},
		{name: "limit iface in hit", rule: "-m addrtype --dst-type LOCAL --limit-iface-in", table: "mangle", chain: "PREROUTING", ctx: c("10.0.0.1", "eth0"), want: true, msg: "on eth0"},
		{name: "no addrtype function", rule: "-m addrtype --dst-type LOCAL", ctx: newCtx(udpPkt("1.1.1.1", 1, "10.0.0.1", 2)), unc: true, msg: "Ctx.AddrType is nil"},
	})
	// --limit-iface-in passes the input device.
	c2 := mustCompile(t, 4, "*mangle\n-A PREROUTING -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT")
	c2.Run("mangle", PreRouting, c("10.0.0.1", "eth7"))
	if gotDev != "eth7" {
		t.Errorf("AddrType got dev %q, want eth7", gotDev)
	}
}

func TestMiscMatches(t *testing.T) {
	p := udpPkt("10.0.0.7", 1, "10.0.0.20", 2)
	c := func() *Ctx { return newCtx(p) }
	choose := func(v bool) *Ctx { x := c(); x.Choose = func(string, float64) bool { return v }; return x }
	nth := func(n uint64) *Ctx { x := c(); x.NthPacket = n; return x }
	bridged := func(in, out string) *Ctx { x := c(); x.Bridged, x.PhysIn, x.PhysOut = true, in, out; return x }
	mac := func(m string) *Ctx { x := c(); x.SrcMAC = m; return x }
	ttl := func(v uint8) *Ctx { q := *p; q.TTL = v; return newCtx(&q) }
	length := func(proto uint8, n int) *Ctx { q := *p; q.Proto, q.Len = proto, n; return newCtx(&q) }
	dst := func(d string) *Ctx { q := *p; q.Dst = netip.MustParseAddr(d); return newCtx(&q) }
	runMatchCases(t, []mcase{
		{name: "iprange src", rule: "-m iprange --src-range 10.0.0.5-10.0.0.10", ctx: c(), want: true, msg: "--src-range 10.0.0.5-10.0.0.10 matched src 10.0.0.7"},
		{name: "iprange src miss", rule: "-m iprange --src-range 10.0.0.8-10.0.0.10", ctx: c()},
		{name: "iprange dst negated", rule: "-m iprange ! --dst-range 10.0.0.1-10.0.0.10", ctx: c(), want: true},
		{name: "iprange single", rule: "-m iprange --dst-range 10.0.0.20", ctx: c(), want: true},
		{name: "random taken", rule: "-m statistic --mode random --probability 0.25", ctx: choose(true), want: true, msg: "random branch taken"},
		{name: "random not taken", rule: "-m statistic --mode random --probability 0.25", ctx: choose(false), msg: "random branch not taken"},
		{name: "random negated", rule: "-m statistic --mode random ! --probability 0.25", ctx: choose(false), want: true},
		{name: "random not enumerated", rule: "-m statistic --mode random --probability 0.25", ctx: c(), want: true, unc: true, msg: "assumed taken"},
		{name: "nth hit", rule: "-m statistic --mode nth --every 3 --packet 1", ctx: nth(4), want: true},
		{name: "nth miss", rule: "-m statistic --mode nth --every 3 --packet 1", ctx: nth(5)},
		{name: "physdev not bridged", rule: "-m physdev --physdev-in veth0", ctx: c()},
		{name: "physdev not bridged negated", rule: "-m physdev ! --physdev-in veth0", ctx: c(), want: true},
		{name: "physdev is-bridged not bridged", rule: "-m physdev --physdev-is-bridged", ctx: c(), chain: "FORWARD"},
		{name: "physdev in", rule: "-m physdev --physdev-in veth0", ctx: bridged("veth0", "veth1"), chain: "FORWARD", want: true, msg: "bridge ports in veth0 out veth1"},
		{name: "physdev in wildcard", rule: "-m physdev --physdev-in veth+", ctx: bridged("veth0", "veth1"), chain: "FORWARD", want: true},
		{name: "physdev in miss", rule: "-m physdev --physdev-in veth9", ctx: bridged("veth0", "veth1"), chain: "FORWARD"},
		{name: "physdev in without in port passes", rule: "-m physdev --physdev-in veth9", ctx: bridged("", "veth1"), chain: "FORWARD", want: true},
		{name: "physdev out bridged", rule: "-m physdev --physdev-out veth1 --physdev-is-bridged", ctx: bridged("veth0", "veth1"), chain: "FORWARD", want: true},
		{name: "physdev out without out port", rule: "-m physdev ! --physdev-out veth1", ctx: bridged("veth0", ""), chain: "FORWARD"},
		{name: "physdev is-bridged to host", rule: "-m physdev --physdev-is-bridged", ctx: bridged("veth0", ""), chain: "FORWARD"},
		{name: "physdev is-in", rule: "-m physdev --physdev-is-in", ctx: bridged("veth0", ""), want: true},
		{name: "mac", rule: "-m mac --mac-source AA:BB:CC:00:11:22", ctx: mac("aa:bb:cc:00:11:22"), want: true, msg: "source MAC aa:bb:cc:00:11:22"},
		{name: "mac miss", rule: "-m mac --mac-source AA:BB:CC:00:11:22", ctx: mac("aa:bb:cc:00:11:23")},
		{name: "mac negated", rule: "-m mac ! --mac-source AA:BB:CC:00:11:22", ctx: mac("aa:bb:cc:00:11:23"), want: true},
		{name: "mac unknown", rule: "-m mac --mac-source AA:BB:CC:00:11:22", ctx: c(), unc: true, msg: "source MAC"},
		{name: "limit", rule: "-m limit --limit 5/min --limit-burst 10", ctx: c(), want: true, unc: true, msg: "assumed within the limit"},
		{name: "hashlimit upto", rule: "-m hashlimit --hashlimit-upto 5/sec --hashlimit-name x", ctx: c(), want: true, unc: true},
		{name: "hashlimit above", rule: "-m hashlimit --hashlimit-above 5/sec --hashlimit-name x", ctx: c(), unc: true},
		{name: "length udp", rule: "-m length --length 128", ctx: length(packet.UDP, 100), want: true, msg: "--length 128 matched length 128"},
		{name: "length udp miss", rule: "-m length --length 0:127", ctx: length(packet.UDP, 100)},
		{name: "length tcp certain", rule: "-p tcp -m length --length 0:100", ctx: length(packet.TCP, 0), want: true},
		{name: "length tcp uncertain", rule: "-p tcp -m length --length 60:100", ctx: length(packet.TCP, 0), unc: true},
		{name: "ttl eq", rule: "-m ttl --ttl-eq 64", ctx: ttl(64), want: true, msg: "--ttl-eq 64 matched TTL 64"},
		{name: "ttl ne", rule: "-m ttl ! --ttl-eq 64", ctx: ttl(64)},
		{name: "ttl lt", rule: "-m ttl --ttl-lt 10", ctx: ttl(5), want: true},
		{name: "ttl gt", rule: "-m ttl --ttl-gt 10", ctx: ttl(5)},
		{name: "pkttype multicast", rule: "-m pkttype --pkt-type multicast", ctx: dst("224.0.0.251"), want: true},
		{name: "pkttype unicast", rule: "-m pkttype --pkt-type unicast", ctx: c(), want: true},
		{name: "pkttype broadcast", rule: "-m pkttype --pkt-type broadcast", ctx: dst("255.255.255.255"), want: true},
		{name: "pkttype broadcast miss", rule: "-m pkttype --pkt-type broadcast", ctx: c()},
		{name: "unknown module", rule: "-m set --match-set KUBE-X dst", ctx: c(), unc: true,
			msg: "rule skipped: unknown match -m set --match-set KUBE-X dst; assumed not matching"},
		{name: "unknown option", rule: "-p udp -m udp --dport 2 --weird 1", ctx: c(), unc: true, msg: "--weird 1"},
		{name: "owner unknown", rule: "-m owner --uid-owner 0", chain: "OUTPUT", ctx: c(), unc: true},
		{name: "hl v6", rule: "-m hl --hl-eq 64", ctx: newCtx(udpPkt("fd00::1", 1, "fd00::2", 2)), want: true, v6: true},
		{name: "frag v6 never matches", rule: "-m frag ! --fragid 5", ctx: newCtx(udpPkt("fd00::1", 1, "fd00::2", 2)), v6: true, msg: "without a fragment header"},
		{name: "frag v4 is unknown", rule: "-m frag --fragid 5", ctx: c(), unc: true},
		{name: "iprange v6", rule: "-m iprange --src-range fd00::1-fd00::ff", ctx: newCtx(udpPkt("fd00::10", 1, "fd00::2", 2)), want: true, v6: true},
	})
}

// An uncertain match is evaluated only when everything before it
// matched: a rule whose -d fails records nothing.
func TestUncertaintyOnlyWhenReached(t *testing.T) {
	c := mustCompile(t, 4, "-A INPUT -d 1.2.3.4 -m set --match-set X src -j DROP\n-A INPUT -m set --match-set Y src -j DROP")
	r := c.Run("filter", Input, newCtx(udpPkt("10.0.0.1", 1, "10.0.0.2", 2)))
	if len(r.Uncertain) != 1 || !strings.Contains(r.Uncertain[0], "filter INPUT rule 2 (test.rules:") || !strings.Contains(r.Uncertain[0], "-m set --match-set Y src") {
		t.Fatalf("uncertain: %q", r.Uncertain)
	}
	if trail(r) != "INPUT#2:uncertain INPUT#0:policy" {
		t.Errorf("trail %s", trail(r))
	}
}
