package netfilter

import (
	"net/netip"

	"github.com/pktflow/pktflow/internal/packet"
	"reflect"
	"strings"
	"testing"
)

func TestReject(t *testing.T) {
	cases := []struct {
		fam  int
		rule string
		want RejectWith
	}{
		{4, "-j REJECT", "icmp-port-unreachable"},
		{4, "-j REJECT --reject-with icmp-host-prohibited", "icmp-host-prohibited"},
		{4, "-j REJECT --reject-with host-prohib", "icmp-host-prohibited"},
		{4, "-j REJECT --reject-with net-unreach", "icmp-net-unreachable"},
		{4, "-j REJECT --reject-with icmp-net-unreachable", "icmp-net-unreachable"},
		{4, "-j REJECT --reject-with ICMP-ADMIN-PROHIBITED", "icmp-admin-prohibited"},
		{4, "-j REJECT --reject-with proto-unreach", "icmp-proto-unreachable"},
		{4, "-p tcp -j REJECT --reject-with tcp-reset", "tcp-reset"},
		{4, "-p tcp -j REJECT --reject-with tcp-rst", "tcp-reset"},
		{6, "-j REJECT", "icmp6-port-unreachable"},
		{6, "-j REJECT --reject-with adm-prohibited", "icmp6-adm-prohibited"},
		{6, "-j REJECT --reject-with icmp6-no-route", "icmp6-no-route"},
		{6, "-p tcp -j REJECT --reject-with tcp-reset", "tcp-reset"},
	}
	for _, tc := range cases {
		c := mustCompile(t, tc.fam, "-A INPUT "+tc.rule)
		p := tcpPkt("10.0.0.1", 1, "10.0.0.2", 2)
		if tc.fam == 6 {
			p = tcpPkt("fd00::1", 1, "fd00::2", 2)
		}
		r := c.Run("filter", Input, newCtx(p))
		if r.Verdict != Reject || r.Reject != tc.want {
			t.Errorf("%s: %v %q, want REJECT %q", tc.rule, r.Verdict, r.Reject, tc.want)
		}
		if !strings.HasSuffix(r.Steps[0].Message, "→ REJECT with "+string(tc.want)) {
			t.Errorf("message %q", r.Steps[0].Message)
		}
	}
}

func TestNATTargets(t *testing.T) {
	a := netip.MustParseAddr
	cases := []struct {
		fam   int
		chain string
		rule  string
		want  NAT
		note  string
	}{
		{4, "PREROUTING", "-j DNAT --to-destination 10.0.0.1", NAT{Kind: DNAT, AddrMin: a("10.0.0.1"), AddrMax: a("10.0.0.1")}, ""},
		{4, "PREROUTING", "-p tcp -m tcp -j DNAT --to-destination 10.0.0.1:8080", NAT{Kind: DNAT, AddrMin: a("10.0.0.1"), AddrMax: a("10.0.0.1"), PortMin: 8080, PortMax: 8080}, ""},
		{4, "OUTPUT", "-p udp -j DNAT --to-destination 10.0.0.1-10.0.0.5:8000-8010 --random --persistent",
			NAT{Kind: DNAT, AddrMin: a("10.0.0.1"), AddrMax: a("10.0.0.5"), PortMin: 8000, PortMax: 8010, Random: true, Persistent: true}, ""},
		{4, "PREROUTING", "-p tcp -j DNAT --to-destination :8080", NAT{Kind: DNAT, PortMin: 8080, PortMax: 8080}, ""},
		{4, "PREROUTING", "-j DNAT --to-destination 10.0.0.1 --to-destination 10.0.0.2", NAT{Kind: DNAT, AddrMin: a("10.0.0.1"), AddrMax: a("10.0.0.1")},
			"further --to-destination 10.0.0.2 ignored"},
		{4, "POSTROUTING", "-j SNAT --to-source 192.0.2.1", NAT{Kind: SNAT, AddrMin: a("192.0.2.1"), AddrMax: a("192.0.2.1")}, ""},
		{4, "INPUT", "-p tcp -j SNAT --to-source 192.0.2.1:1024-2048 --random-fully", NAT{Kind: SNAT, AddrMin: a("192.0.2.1"), AddrMax: a("192.0.2.1"), PortMin: 1024, PortMax: 2048, RandomFully: true}, ""},
		{4, "POSTROUTING", "-j MASQUERADE", NAT{Kind: Masquerade}, ""},
		{4, "POSTROUTING", "-j MASQUERADE --random-fully", NAT{Kind: Masquerade, RandomFully: true}, ""},
		{4, "POSTROUTING", "-p udp -j MASQUERADE --to-ports 1000-2000 --random", NAT{Kind: Masquerade, PortMin: 1000, PortMax: 2000, Random: true}, ""},
		{4, "PREROUTING", "-p tcp -j REDIRECT --to-ports 15001", NAT{Kind: Redirect, PortMin: 15001, PortMax: 15001}, ""},
		{4, "OUTPUT", "-j REDIRECT", NAT{Kind: Redirect}, ""},
		{6, "PREROUTING", "-j DNAT --to-destination fd00::1", NAT{Kind: DNAT, AddrMin: a("fd00::1"), AddrMax: a("fd00::1")}, ""},
		{6, "PREROUTING", "-p tcp -j DNAT --to-destination [fd00::1]:80", NAT{Kind: DNAT, AddrMin: a("fd00::1"), AddrMax: a("fd00::1"), PortMin: 80, PortMax: 80}, ""},
		{6, "PREROUTING", "-p tcp -j DNAT --to-destination [fd00::1-fd00::9]:80-90", NAT{Kind: DNAT, AddrMin: a("fd00::1"), AddrMax: a("fd00::9"), PortMin: 80, PortMax: 90}, ""},
		{6, "POSTROUTING", "-j SNAT --to-source fd00::1-fd00::2", NAT{Kind: SNAT, AddrMin: a("fd00::1"), AddrMax: a("fd00::2")}, ""},
	}
	for _, tc := range cases {
		c := mustCompile(t, tc.fam, "*nat\n-A "+tc.chain+" "+tc.rule)
		p := tcpPkt("10.0.0.9", 1, "10.0.0.8", 2)
		if tc.fam == 6 {
			p = tcpPkt("fd00::9", 1, "fd00::8", 2)
		}
		if strings.Contains(tc.rule, "-p udp") {
			p.Proto = packet.UDP
		}
		h, _ := hookOfChain(tc.chain)
		r := c.Run("nat", h, newCtx(p))
		if r.Verdict != Accept || r.NAT == nil || !reflect.DeepEqual(*r.NAT, tc.want) {
			t.Errorf("%s: got %s\nwant %+v", tc.rule, dump(r), tc.want)
			continue
		}
		if r.Steps[0].What != "verdict" {
			t.Errorf("%s: NAT must be terminal: %s", tc.rule, trail(r))
		}
		if tc.note != "" && !strings.Contains(r.Steps[0].Message, tc.note) {
			t.Errorf("%s: message %q lacks %q", tc.rule, r.Steps[0].Message, tc.note)
		}
	}
	// Each Run gets its own NAT value.
	c := mustCompile(t, 4, "*nat\n-A PREROUTING -j DNAT --to-destination 10.0.0.1")
	r1 := c.Run("nat", PreRouting, newCtx(tcpPkt("1.1.1.1", 1, "2.2.2.2", 2)))
	r1.NAT.AddrMin = netip.Addr{}
	if r2 := c.Run("nat", PreRouting, newCtx(tcpPkt("1.1.1.1", 1, "2.2.2.2", 2))); !r2.NAT.AddrMin.IsValid() {
		t.Error("NAT results share memory")
	}
}

func TestMARK(t *testing.T) {
	cases := []struct {
		opt        string
		from, want uint32
	}{
		{"--set-xmark 0x4000/0x4000", 0x1, 0x4001},
		{"--set-xmark 0x4000/0x0", 0x4000, 0x0}, // kube-proxy's "clear the masquerade bit"
		{"--set-xmark 0x4000/0x0", 0x1, 0x4001}, // xor: toggles
		{"--set-xmark 0x1", 0xff, 0x1},
		{"--set-xmark 0x5/0x1", 0x0, 0x5}, // bits outside the mask are xored too
		{"--set-mark 0x1/0x3", 0xf, 0xd},  // (mark & ~m) | v
		{"--set-mark 0x10", 0xff, 0x10},
		{"--set-mark 0x4/0x1", 0x3, 0x6}, // v outside m is still set: m |= v
		{"--and-mark 0xf0", 0xff, 0xf0},
		{"--or-mark 0x100", 0x1, 0x101},
		{"--xor-mark 0x3", 0x1, 0x2},
	}
	for _, tc := range cases {
		c := mustCompile(t, 4, "*mangle\n-A PREROUTING -j MARK "+tc.opt)
		ctx := newCtx(udpPkt("1.1.1.1", 1, "2.2.2.2", 2))
		ctx.Mark = tc.from
		r := c.Run("mangle", PreRouting, ctx)
		if ctx.Mark != tc.want {
			t.Errorf("MARK %s from %#x: got %#x, want %#x", tc.opt, tc.from, ctx.Mark, tc.want)
		}
		if r.Steps[0].What != "match" || r.Steps[1].What != "policy" {
			t.Errorf("MARK must be non-terminal: %s", trail(r))
		}
	}
}

func TestCONNMARK(t *testing.T) {
	cases := []struct {
		opt              string
		mark, ct         uint32
		state            CTState
		wantMark, wantCT uint32
		msg              string
	}{
		{"--set-xmark 0x1/0xff", 0, 0x102, CTNew, 0, 0x101, "ctmark 0x102 becomes 0x101"},
		{"--set-mark 0x1/0x3", 0, 0xf, CTNew, 0, 0xd, ""},
		{"--set-mark 0x7", 0, 0xff00, CTNew, 0, 0x7, ""},
		{"--and-mark 0xf0", 0, 0xff, CTNew, 0, 0xf0, ""},
		{"--or-mark 0x1", 0, 0x10, CTNew, 0, 0x11, ""},
		{"--xor-mark 0x3", 0, 0x1, CTNew, 0, 0x2, ""},
		{"--save-mark", 0x4000, 0x1, CTNew, 0x4000, 0x4000, ""},
		{"--save-mark --nfmask 0xffffffff --ctmask 0xffffffff", 0x4000, 0x1, CTNew, 0x4000, 0x4000, ""},
		{"--save-mark --nfmask 0xff00 --ctmask 0xff00", 0x1234, 0xabcd, CTNew, 0x1234, 0x12cd, ""},
		{"--save-mark --mask 0xf", 0x35, 0x40, CTNew, 0x35, 0x45, ""},
		{"--restore-mark", 0x100, 0x7, CTEstablished, 0x7, 0x7, "mark 0x100 becomes 0x7"},
		{"--restore-mark --nfmask 0xff --ctmask 0xf", 0x1ff, 0x35, CTEstablished, 0x105, 0x35, ""},
		{"--restore-mark --mask 0xff00", 0x12ab, 0x3456, CTEstablished, 0x34ab, 0x3456, ""},
		{"--save-mark --nfmask 0xff --ctmask 0xff00 --left-shift-mark 8", 0x12, 0xab, CTNew, 0x12, 0x12ab, ""},
		{"--restore-mark --nfmask 0xff --ctmask 0xff00 --right-shift-mark 8", 0x1, 0x3400, CTEstablished, 0x34, 0x3400, ""},
		{"--set-xmark 0x1/0xffffffff", 0, 0x5, CTInvalid, 0, 0x5, "no conntrack entry"},
		{"--restore-mark", 0x9, 0x5, CTUntracked, 0x9, 0x5, ""},
	}
	for _, tc := range cases {
		c := mustCompile(t, 4, "*mangle\n-A PREROUTING -j CONNMARK "+tc.opt)
		ctx := newCtx(udpPkt("1.1.1.1", 1, "2.2.2.2", 2))
		ctx.Mark, ctx.CTMark, ctx.State = tc.mark, tc.ct, tc.state
		r := c.Run("mangle", PreRouting, ctx)
		if ctx.Mark != tc.wantMark || ctx.CTMark != tc.wantCT {
			t.Errorf("CONNMARK %s (mark %#x ct %#x): got mark %#x ct %#x, want %#x %#x",
				tc.opt, tc.mark, tc.ct, ctx.Mark, ctx.CTMark, tc.wantMark, tc.wantCT)
		}
		if tc.msg != "" && !strings.Contains(r.Steps[0].Message, tc.msg) {
			t.Errorf("CONNMARK %s: message %q lacks %q", tc.opt, r.Steps[0].Message, tc.msg)
		}
		if len(r.Uncertain) != 0 {
			t.Errorf("CONNMARK %s: uncertain %v", tc.opt, r.Uncertain)
		}
	}
}

func TestNotedTargets(t *testing.T) {
	cases := []struct {
		rule    string
		notrack bool
		unc     bool
		msg     string
	}{
		{`-j LOG --log-prefix "IN: " --log-level 4`, false, false, `LOG --log-prefix "IN: " --log-level 4: logged, continue`},
		{"-j NFLOG --nflog-group 5", false, false, "logged via nflog"},
		{"-j TRACE", false, false, "packet tracing enabled"},
		{"-p udp -j CHECKSUM --checksum-fill", false, false, "checksum filled in"},
		{"-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu", false, false, "MSS only"},
		{"-j CT --notrack", true, false, "connection not tracked"},
		{"-j NOTRACK", true, false, "connection not tracked"},
		{"-j CT --helper ftp", false, false, "not modelled"},
		{"-j DSCP --set-dscp 0x10", false, false, "DSCP field changed"},
		{"-j NFQUEUE --queue-num 1", false, true, "target NFQUEUE --queue-num 1 is not modelled; treated as non-terminal"},
		{"-j TPROXY --on-port 1 --tproxy-mark 0x1/0x1", false, true, "TPROXY"},
		{"-j SOMETHINGNEW --opt 1", false, true, "SOMETHINGNEW"},
	}
	for _, tc := range cases {
		c := mustCompile(t, 4, "*raw\n:PREROUTING DROP [0:0]\n-A PREROUTING "+tc.rule)
		p := tcpPkt("1.1.1.1", 1, "2.2.2.2", 2)
		if strings.Contains(tc.rule, "-p udp") {
			p.Proto = packet.UDP
		}
		r := c.Run("raw", PreRouting, newCtx(p))
		if r.Verdict != Drop || len(r.Steps) != 2 {
			t.Errorf("%s must be non-terminal: %s", tc.rule, dump(r))
			continue
		}
		if r.NoTrack != tc.notrack || (len(r.Uncertain) > 0) != tc.unc {
			t.Errorf("%s: notrack %v uncertain %v", tc.rule, r.NoTrack, r.Uncertain)
		}
		if !strings.Contains(r.Steps[0].Message, tc.msg) {
			t.Errorf("%s: message %q lacks %q", tc.rule, r.Steps[0].Message, tc.msg)
		}
		if tc.unc && (r.Steps[0].What != "uncertain" || !strings.Contains(r.Uncertain[0], "raw PREROUTING rule 1 (test.rules:")) {
			t.Errorf("%s: %s %v", tc.rule, trail(r), r.Uncertain)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		fam  int
		src  string
		want string
	}{
		{4, "-A INPUT -s 10.0.0.300 -j ACCEPT", "-s 10.0.0.300: expected an IPv4 address"},
		{4, "-A INPUT -s 10.0.0.0/33 -j ACCEPT", "prefix length 0-32"},
		{4, "-A INPUT -d fd00::1 -j ACCEPT", "expected an IPv4 address"},
		{6, "-A INPUT -s 10.0.0.1 -j ACCEPT", "expected an IPv6 address"},
		{4, "-A INPUT -p tcp -m tcp --dport 99999 -j ACCEPT", "--dport 99999: expected a port"},
		{4, "-A INPUT -p tcp -m tcp --dport 200:100 -j ACCEPT", "(min <= max)"},
		{4, "-A INPUT -p tcp -m tcp --dport nosuchservice -j ACCEPT", "expected a port"},
		{4, "-A INPUT -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16 -j ACCEPT", "too many ports"},
		{4, "-A INPUT -j NOSUCHCHAIN", "-j NOSUCHCHAIN: no such chain in table filter"},
		{4, "-A INPUT -o eth0 -j ACCEPT", "-o cannot be used in INPUT"},
		{4, "*nat\n-A PREROUTING -o eth0 -j ACCEPT", "-o cannot be used in PREROUTING"},
		{4, "-A OUTPUT -i eth0 -j ACCEPT", "-i cannot be used in OUTPUT"},
		{4, "*nat\n-A POSTROUTING -i eth0 -j ACCEPT", "-i cannot be used in POSTROUTING"},
		{4, "-A INPUT -p udp -j REJECT --reject-with tcp-reset", "tcp-reset is only valid with -p tcp"},
		{4, "-A INPUT ! -p tcp -j REJECT --reject-with tcp-reset", "tcp-reset is only valid with -p tcp"},
		{4, "-A INPUT -j REJECT --reject-with icmp-bogus", "--reject-with icmp-bogus: expected one of"},
		{4, "-A INPUT -j DNAT --to-destination 1.2.3.4", "only valid in the nat table"},
		{4, "*nat\n-A POSTROUTING -j DNAT --to-destination 1.2.3.4", "-j DNAT is only valid in PREROUTING and OUTPUT, but chain POSTROUTING is reachable from POSTROUTING"},
		{4, "*nat\n-A PREROUTING -j X\n-A OUTPUT -j X\n-A X -j MASQUERADE", "chain X is reachable from PREROUTING,OUTPUT"},
		{4, "*nat\n-A PREROUTING -j DNAT --to-destination 1.2.3.4:80", "a port needs -p tcp"},
		{4, "*nat\n-A PREROUTING -p tcp -j DNAT --to-destination 1.2.3.4:0", "expected [ipaddr[-ipaddr]][:port[-port]]"},
		{4, "*nat\n-A PREROUTING -p tcp -j DNAT --to-destination 1.2.3.9-1.2.3.4", "first address <= last"},
		{4, "*nat\n-A PREROUTING -j DNAT", "-j DNAT needs --to-destination"},
		{4, "*nat\n-A PREROUTING -j REDIRECT --to-ports 80", "--to-ports needs -p tcp"},
		{4, "-A INPUT -m tcp --dport 80 -j ACCEPT", "-m tcp needs -p tcp"},
		{4, "-A INPUT -p udp -m tcp --dport 80 -j ACCEPT", "-m tcp needs -p tcp"},
		{4, "-A INPUT -m multiport --dports 80 -j ACCEPT", "-m multiport needs"},
		{4, "-A INPUT -p icmp -m icmp --icmp-type bogus -j ACCEPT", "--icmp-type bogus: expected"},
		{4, "-A INPUT -p icmp -m icmp --icmp-type echo-re -j ACCEPT", "unambiguous"},
		{6, "-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT", "expected -m icmp6"},
		{4, "-A INPUT -m mark --mark zz -j ACCEPT", "--mark zz: expected value[/mask]"},
		{4, "-A INPUT -m conntrack --ctstate BOGUS -j ACCEPT", "--ctstate BOGUS: expected"},
		{4, "-A INPUT -m state --state DNAT -j ACCEPT", "--state DNAT: expected"},
		{4, "-A INPUT -m addrtype --dst-type BOGUS -j ACCEPT", "--dst-type BOGUS: expected"},
		{6, "-A INPUT -m addrtype --dst-type BROADCAST -j ACCEPT", "ip6tables addrtype"},
		{4, "-A OUTPUT -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT", "--limit-iface-in needs an input interface"},
		{4, "-A OUTPUT -m mac --mac-source 00:11:22:33:44:55 -j ACCEPT", "-m mac needs a received frame"},
		{4, "-A INPUT -m mac --mac-source 00:11:22:33:44 -j ACCEPT", "expected XX:XX:XX:XX:XX:XX"},
		{4, "-A OUTPUT -m physdev --physdev-out veth0 -j ACCEPT", "--physdev-out and --physdev-is-out only work"},
		{4, "-A INPUT -m statistic --mode random -j ACCEPT", "needs --probability"},
		{4, "-A INPUT -m statistic --mode random --probability 1.5 -j ACCEPT", "between 0 and 1"},
		{4, "-A INPUT -m statistic --mode nth --every 2 --packet 2 -j ACCEPT", "0 <= p <= n-1"},
		{4, "-A INPUT -p bogusproto -j ACCEPT", `unknown protocol "bogusproto"`},
		{4, "-A INPUT ! -p all -j ACCEPT", "would never match"},
		{4, "-A INPUT -j MARK", "-j MARK needs"},
		{4, "-A INPUT -j MARK --set-xmark 0xzz", "--set-xmark 0xzz: expected value[/mask]"},
		{4, "-A INPUT -j CONNMARK --nfmask 0x1", "-j CONNMARK needs an operation"},
		{4, "-A INPUT -m ttl --ttl-eq 300 -j ACCEPT", "expected a number 0-255"},
		{4, "-A INPUT ! -s 1.1.1.1,2.2.2.2 -j ACCEPT", "negate an address list"},
	}
	for _, tc := range cases {
		err := compileErr(t, tc.fam, tc.src)
		if err == nil {
			t.Errorf("%q: no error, want %q", tc.src, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.src, err, tc.want)
		}
		if !strings.Contains(err.Error(), "test.rules:") {
			t.Errorf("%q: error does not name the file and line: %v", tc.src, err)
		}
	}
}

// Unknown extensions are not errors.
func TestUnknownIsNotAnError(t *testing.T) {
	mustCompile(t, 4, `
-A INPUT -m set --match-set X src -j ACCEPT
-A INPUT -m u32 --u32 "0>>22&0x3C@ 12>>26&0x3F=0x10" -j DROP
-A INPUT -m bpf --bytecode "4,48 0 0 9" -j DROP
-A INPUT -p sctp -m sctp --dport 80 -j ACCEPT
-A INPUT -j NFQUEUE
-A INPUT -j SET --add-set X src
-A INPUT -m recent --name x --rcheck --seconds 60 -j DROP
`)
}
