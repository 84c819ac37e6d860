package iptlist

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/netfilter"
)

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseFile(t testing.TB, name string, family int, table string) *model.Ruleset {
	t.Helper()
	text := readFile(t, filepath.Join("testdata", name))
	rs, err := ParseString(name, text, family, table)
	if err != nil {
		t.Fatal(err)
	}
	checkOrigins(t, name, text, rs)
	return rs
}

// checkOrigins asserts that every origin that is not a placeholder names
// a line of the input with its text, and that positions count from 1.
func checkOrigins(t testing.TB, file, text string, rs *model.Ruleset) {
	t.Helper()
	lines := strings.Split(text, "\n")
	check := func(what string, o model.Origin) {
		t.Helper()
		if o.File != file {
			t.Fatalf("%s: origin file %q, want %q", what, o.File, file)
		}
		if o.Synthesized {
			if o.Line != 0 || o.Text == "" {
				t.Fatalf("%s: placeholder origin %+v", what, o)
			}
			return
		}
		if o.Line < 1 || o.Line > len(lines) || strings.TrimSuffix(lines[o.Line-1], "\r") != o.Text {
			t.Fatalf("%s: origin %+v does not name a line of the input", what, o)
		}
	}
	for _, tb := range rs.Tables {
		check("table "+tb.Name, tb.Origin)
		for _, c := range tb.Chains {
			check("chain "+c.Name, c.Origin)
			for i, r := range c.Rules {
				check(c.Name+" rule", r.Origin)
				if r.Pos != i+1 || r.Chain != c.Name {
					t.Fatalf("%s rule %d: pos %d chain %s", c.Name, i+1, r.Pos, r.Chain)
				}
			}
		}
	}
}

// seedSave parses one of the seed's iptables-save files.
func seedSave(t testing.TB, node string) *model.Ruleset {
	t.Helper()
	name := filepath.Join("..", "..", "..", "examples", "seed", "nodes", node, "iptables-save")
	rs, err := iptsave.ParseString(name, readFile(t, name), 4)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// sameRules checks that every chain the listing shows reads back to
// exactly the rules iptables-save has for it, and that every chain of
// the save that the listing lacks became a placeholder.
func sameRules(t *testing.T, list, save *model.Ruleset, tables ...string) {
	t.Helper()
	for _, tname := range tables {
		lt, st := list.Table(tname), save.Table(tname)
		if lt == nil || st == nil {
			t.Fatalf("table %s: listing has it %v, save has it %v", tname, lt != nil, st != nil)
		}
		for _, sc := range st.Chains {
			lc := lt.Chain(sc.Name)
			if lc == nil {
				// Not listed and not needed: a listing of some chains.
				continue
			}
			if lc.Origin.Synthesized {
				continue
			}
			if lc.Policy != sc.Policy || lc.Builtin != sc.Builtin {
				t.Errorf("%s %s: policy %q builtin %v, save has %q %v", tname, sc.Name, lc.Policy, lc.Builtin, sc.Policy, sc.Builtin)
			}
			var got, want []string
			for _, r := range lc.Rules {
				got = append(got, SaveText(r))
			}
			for _, r := range sc.Rules {
				want = append(want, r.Origin.Text)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %s read back as\n  %s\nwant\n  %s", tname, sc.Name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
	}
}

// The seed's listings, verbatim (tabs and all), read back into exactly
// the rules of the seed's iptables-save for rhel8a.
func TestSeedListings(t *testing.T) {
	save := seedSave(t, "rhel8a")
	for _, name := range []string{"seed-postrouting.txt", "seed-docker.txt", "seed-nat.txt"} {
		t.Run(name, func(t *testing.T) {
			rs := parseFile(t, name, 4, "")
			if len(rs.Tables) != 1 || rs.Tables[0].Name != "nat" {
				t.Fatalf("tables %v: the DNAT and MASQUERADE targets say nat", tableNames(rs))
			}
			sameRules(t, rs, save, "nat")
			for _, c := range rs.Tables[0].Chains {
				if c.Origin.Synthesized {
					if len(c.Rules) != 1 || len(c.Rules[0].Lossy) != 1 || !strings.Contains(c.Rules[0].Lossy[0], "not in the iptables -L listing") {
						t.Errorf("placeholder chain %s: %+v", c.Name, c.Rules)
					}
					continue
				}
				for _, r := range c.Rules {
					bang := strings.Contains(r.Origin.Text, "!docker0")
					if bang != (len(r.Lossy) == 1 && strings.HasPrefix(r.Lossy[0], NoteBangIface)) {
						t.Errorf("%s: lossy %q", r.Origin.Text, r.Lossy)
					}
				}
			}
		})
	}
	rs := parseFile(t, "seed-nat.txt", 4, "")
	post := rs.Table("nat").Chain("POSTROUTING")
	if post.Rules[0].Packets != 12 || post.Rules[0].Bytes != 869 {
		t.Errorf("counters %d %d", post.Rules[0].Packets, post.Rules[0].Bytes)
	}
	// With the node's interfaces known, the glued ! is settled.
	ResolveInterfaces(rs, func(name string) bool { return name == "docker0" })
	for _, c := range rs.Tables[0].Chains {
		for _, r := range c.Rules {
			if !c.Origin.Synthesized && len(r.Lossy) != 0 {
				t.Errorf("after ResolveInterfaces: %s still has %q", r.Origin.Text, r.Lossy)
			}
		}
	}
	rs = parseFile(t, "seed-nat.txt", 4, "")
	ResolveInterfaces(rs, func(name string) bool { return name == "!docker0" })
	if len(rs.Table("nat").Chain("POSTROUTING").Rules[0].Lossy) != 1 {
		t.Error("a node with an interface named !docker0 keeps the note")
	}
}

func tableNames(rs *model.Ruleset) []string {
	var s []string
	for _, t := range rs.Tables {
		s = append(s, t.Name)
	}
	return s
}

// Whole listings with their command lines read back into the seed's
// iptables-save rules.
func TestListingsMatchSave(t *testing.T) {
	for _, tc := range []struct {
		file, node string
		tables     []string
	}{
		{"rhel8a-filter-line-numbers.txt", "rhel8a", []string{"filter"}},
		{"rhel8a-nat.txt", "rhel8a", []string{"nat"}},
		{"mayura-all-tables.txt", "mayura", []string{"filter", "nat", "mangle"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rs := parseFile(t, tc.file, 4, "")
			if got := tableNames(rs); !slices.Equal(got, tc.tables) {
				t.Fatalf("tables %v, want %v", got, tc.tables)
			}
			sameRules(t, rs, seedSave(t, tc.node), tc.tables...)
			for _, tb := range rs.Tables {
				for _, c := range tb.Chains {
					if c.Origin.Synthesized {
						t.Errorf("placeholder %s %s: the listing shows every chain", tb.Name, c.Name)
					}
					for _, r := range c.Rules {
						for _, l := range r.Lossy {
							if !strings.HasPrefix(l, NoteBangIface) {
								t.Errorf("%s: unexpected note %q", r.Origin.Text, l)
							}
						}
					}
				}
			}
		})
	}
	// The file's table must agree with the command lines in it.
	if _, err := ParseString("f", readFile(t, "testdata/rhel8a-nat.txt"), 4, "nat"); err != nil {
		t.Errorf("table nat given and on the command line: %v", err)
	}
	// Counters: K suffixes and -x.
	rs := parseFile(t, "mayura-all-tables.txt", 4, "")
	in := rs.Table("filter").Chain("INPUT")
	if in.Rules[0].Packets != 2611 || in.Rules[0].Bytes != 201000 {
		t.Errorf("INPUT counters %d %d", in.Rules[0].Packets, in.Rules[0].Bytes)
	}
	if r := rs.Table("nat").Chain("POSTROUTING").Rules[0]; r.Packets != 412 || r.Bytes != 31244 {
		t.Errorf("nat POSTROUTING counters %d %d", r.Packets, r.Bytes)
	}
}

func TestIP6Listing(t *testing.T) {
	rs := parseFile(t, "mayura-ip6tables.txt", 6, "")
	want := map[string][]string{
		"FORWARD":     {"-A FORWARD -j LIBVIRT_FWX", "-A FORWARD -j LIBVIRT_FWI", "-A FORWARD -j LIBVIRT_FWO"},
		"LIBVIRT_FWI": {"-A LIBVIRT_FWI -d 2001:db8:ca2:3::/64 -o virbr0 -j ACCEPT", "-A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp6-port-unreachable"},
		"LIBVIRT_FWO": {"-A LIBVIRT_FWO -s 2001:db8:ca2:3::/64 -i virbr0 -j ACCEPT", "-A LIBVIRT_FWO -i virbr0 -j REJECT --reject-with icmp6-port-unreachable"},
		"LIBVIRT_INP": {"-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 547 -j ACCEPT", "-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 53 -j ACCEPT",
			"-A LIBVIRT_INP -i virbr0 -p tcp -m tcp --dport 53 -j ACCEPT"},
	}
	f := rs.Table("filter")
	for chain, lines := range want {
		var got []string
		for _, r := range f.Chain(chain).Rules {
			got = append(got, SaveText(r))
		}
		if !slices.Equal(got, lines) {
			t.Errorf("%s:\n  %s\nwant\n  %s", chain, strings.Join(got, "\n  "), strings.Join(lines, "\n  "))
		}
	}
	// An ip6tables listing in an iptables file is refused, and v.v.
	if _, err := ParseString("f", readFile(t, "testdata/mayura-ip6tables.txt"), 4, ""); err == nil || !strings.Contains(err.Error(), "ip6tables-L") {
		t.Errorf("ip6tables listing as family 4: %v", err)
	}
}

// Rules as the listing prints them, read back.
func TestRows(t *testing.T) {
	const head = "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n pkts bytes target     prot opt in     out     source               destination\n"
	const head6 = "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n pkts bytes target     prot opt in     out     source               destination\n"
	for _, tc := range []struct {
		name   string
		family int
		row    string
		want   string
		lossy  []string // substrings, one per note
	}{
		{"plain", 4, "0 0 ACCEPT all -- lo * 0.0.0.0/0 0.0.0.0/0", "-A INPUT -i lo -j ACCEPT", nil},
		{"ctstate", 4, "1 2 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 ctstate RELATED,ESTABLISHED", "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", nil},
		{"not ctstate", 4, "1 2 DROP all -- * * 0.0.0.0/0 0.0.0.0/0 ! ctstate NEW ctdir REPLY", "-A INPUT -m conntrack ! --ctstate NEW --ctdir REPLY -j DROP", nil},
		{"state", 4, "1 2 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 state RELATED,ESTABLISHED", "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT", nil},
		{"icmptype", 4, "1 2 ACCEPT icmp -- eth1 * 0.0.0.0/0 0.0.0.0/0 icmptype 8", "-A INPUT -i eth1 -p icmp -m icmp --icmp-type 8 -j ACCEPT", nil},
		{"icmp code", 4, "1 2 ACCEPT icmp -- * * 0.0.0.0/0 0.0.0.0/0 icmptype 3 code 4", "-A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT", nil},
		{"icmp not type", 4, "1 2 ACCEPT icmp -- * * 0.0.0.0/0 0.0.0.0/0 icmp !type 8", "-A INPUT -p icmp -m icmp ! --icmp-type 8 -j ACCEPT", nil},
		{"icmp any", 4, "1 2 ACCEPT icmp -- * * 0.0.0.0/0 0.0.0.0/0 icmptype 255", "-A INPUT -p icmp -m icmp --icmp-type any -j ACCEPT", nil},
		{"icmpv6", 6, "1 2 ACCEPT ipv6-icmp * * ::/0 ::/0 ipv6-icmptype 128", "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT", nil},
		{"icmpv6 with opt column", 6, "1 2 ACCEPT ipv6-icmp -- * * ::/0 ::/0 ipv6-icmptype 135 code 0", "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135/0 -j ACCEPT", nil},
		{"v6 counting rule", 6, "1 2 all * * 2001:db8::1 ::/0", "-A INPUT -s 2001:db8::1/128", nil},
		{"multiport", 4, "0 0 ACCEPT tcp -- * * 0.0.0.0/0 0.0.0.0/0 multiport dports 80,443,8000:8080", "-A INPUT -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT", nil},
		{"multiport negated", 4, "0 0 ACCEPT udp -- * * 0.0.0.0/0 0.0.0.0/0 multiport sports  !53,123", "-A INPUT -p udp -m multiport ! --sports 53,123 -j ACCEPT", nil},
		{"ports", 4, "0 0 ACCEPT tcp -- eth+ * 0.0.0.0/0 0.0.0.0/0 tcp spts:1024:65535 dpt:!25", "-A INPUT -i eth+ -p tcp -m tcp --sport 1024:65535 ! --dport 25 -j ACCEPT", nil},
		{"udp spt dpt", 4, "0 0 ACCEPT udp -- * * 0.0.0.0/0 0.0.0.0/0 udp spt:67 dpt:68", "-A INPUT -p udp -m udp --sport 67 --dport 68 -j ACCEPT", nil},
		{"tcp flags", 4, "0 0 REJECT tcp -- * * 0.0.0.0/0 0.0.0.0/0 tcp flags:0x17/0x02 reject-with tcp-reset", "-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REJECT --reject-with tcp-reset", nil},
		{"comment", 4, "3 180 ACCEPT tcp -- eth1 * 10.0.0.0/8 0.0.0.0/0 tcp dpt:22 ctstate NEW /* ssh from the office */", `-A INPUT -s 10.0.0.0/8 -i eth1 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment "ssh from the office" -j ACCEPT`, nil},
		{"limit and LOG", 4, `9 540 LOG all -- * * 0.0.0.0/0 0.0.0.0/0 limit: avg 3/min burst 5 LOG flags 0 level 4 prefix "INPUT drop: "`, `-A INPUT -m limit --limit 3/min --limit-burst 5 -j LOG --log-level 4 --log-prefix "INPUT drop: "`, nil},
		{"counting rule", 4, "0 0 all -- * * 192.0.2.0/24 0.0.0.0/0", "-A INPUT -s 192.0.2.0/24", nil},
		{"fragment", 4, "0 0 DROP all -f * * 0.0.0.0/0 0.0.0.0/0", "-A INPUT -f -j DROP", nil},
		{"not fragment", 4, "0 0 DROP all !f * * 0.0.0.0/0 0.0.0.0/0", "-A INPUT ! -f -j DROP", nil},
		{"mac", 4, "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 MAC 52:54:00:01:1A:A2", "-A INPUT -m mac --mac-source 52:54:00:01:1A:A2 -j ACCEPT", nil},
		{"mac negated", 4, "0 0 DROP all -- * * 0.0.0.0/0 0.0.0.0/0 MAC ! 52:54:00:01:1A:A2", "-A INPUT -m mac ! --mac-source 52:54:00:01:1A:A2 -j DROP", nil},
		{"iprange", 4, "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 source IP range 10.0.0.1-10.0.0.9 destination IP range ! 10.1.0.1-10.1.0.2", "-A INPUT -m iprange --src-range 10.0.0.1-10.0.0.9 ! --dst-range 10.1.0.1-10.1.0.2 -j ACCEPT", nil},
		{"mark", 4, "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 mark match 0x1/0xff", "-A INPUT -m mark --mark 0x1/0xff -j ACCEPT", nil},
		{"mark negated", 4, "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 mark match !0x4000/0x4000", "-A INPUT -m mark ! --mark 0x4000/0x4000 -j ACCEPT", nil},
		{"negated proto and dst", 4, "0 0 ACCEPT !tcp -- eth2 * 0.0.0.0/0 !10.0.0.0/8", "-A INPUT ! -d 10.0.0.0/8 -i eth2 ! -p tcp -j ACCEPT", nil},
		{"dotted mask", 4, "0 0 ACCEPT all -- * * 10.0.0.0/255.0.0.0 0.0.0.0/0", "-A INPUT -s 10.0.0.0/8 -j ACCEPT", nil},
		{"addrtype", 4, "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 ADDRTYPE match src-type LOCAL dst-type !LOCAL limit-out", "-A INPUT -m addrtype --src-type LOCAL ! --dst-type LOCAL --limit-iface-out -j ACCEPT", nil},
		{"physdev", 4, "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 PHYSDEV match --physdev-in vnet0 ! --physdev-is-bridged", "-A INPUT -m physdev --physdev-in vnet0 ! --physdev-is-bridged -j ACCEPT", nil},
		{"statistic", 4, "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 statistic mode random probability 0.50000000000", "-A INPUT -m statistic --mode random --probability 0.50000000000 -j ACCEPT", nil},
		{"pkttype", 4, "0 0 DROP all -- * * 0.0.0.0/0 0.0.0.0/0 PKTTYPE = broadcast", "-A INPUT -m pkttype --pkt-type broadcast -j DROP", nil},
		{"match-set", 4, "0 0 DROP all -- * * 0.0.0.0/0 0.0.0.0/0 match-set blocklist src", "-A INPUT -m set --match-set blocklist src -j DROP", nil},
		{"unknown match", 4, "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 hashlimit: up to 10/sec burst 5 mode srcip", `-A INPUT -m listing --text "hashlimit: up to 10/sec burst 5 mode srcip" -j ACCEPT`, []string{"could not be read back into a match"}},
		{"unknown target text", 4, "0 0 NFLOG all -- * * 0.0.0.0/0 0.0.0.0/0 nflog-prefix  drop nflog-group 5", "-A INPUT -j NFLOG", []string{"could not be read back: the target's options are unknown"}},
		{"goto", 4, "0 0 MYCHAIN all -- * * 0.0.0.0/0 0.0.0.0/0 [goto] tcp dpt:1", "", nil},
		{"bang iface", 4, "0 0 ACCEPT all -- !eth0 * 0.0.0.0/0 0.0.0.0/0", "-A INPUT ! -i eth0 -j ACCEPT", []string{NoteBangIface + `"!eth0"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := head
			if tc.family == 6 {
				h = head6
			}
			text := h + tc.row + "\n"
			if tc.name == "goto" {
				text = h + "0 0 MYCHAIN tcp -- * * 0.0.0.0/0 0.0.0.0/0 [goto] tcp dpt:1\n"
				tc.want = "-A INPUT -p tcp -m tcp --dport 1 -g MYCHAIN"
			}
			rs, err := ParseString("t", text, tc.family, "filter")
			if err != nil {
				t.Fatal(err)
			}
			r := rs.Table("filter").Chain("INPUT").Rules[0]
			if got := SaveText(r); got != tc.want {
				t.Errorf("read back as\n  %s\nwant\n  %s", got, tc.want)
			}
			if len(r.Lossy) != len(tc.lossy) {
				t.Fatalf("lossy %q, want %d notes", r.Lossy, len(tc.lossy))
			}
			for i, l := range tc.lossy {
				if !strings.Contains(r.Lossy[i], l) {
					t.Errorf("note %q lacks %q", r.Lossy[i], l)
				}
			}
		})
	}
}

func TestMiscListing(t *testing.T) {
	rs := parseFile(t, "router-filter-misc.txt", 4, "")
	f := rs.Table("filter")
	if f == nil || f.Chain("INPUT").Policy != "DROP" {
		t.Fatalf("tables %v", tableNames(rs))
	}
	var got []string
	for _, r := range f.Chain("INPUT").Rules {
		got = append(got, SaveText(r))
	}
	want := []string{
		"-A INPUT -i lo -j ACCEPT",
		"-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"-A INPUT -m conntrack --ctstate INVALID -j DROP",
		"-A INPUT -i eth1 -p icmp -m icmp --icmp-type 8 -j ACCEPT",
		`-A INPUT -s 10.0.0.0/8 -i eth1 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment "ssh from the office" -j ACCEPT`,
		"-A INPUT -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT",
		"-A INPUT -p udp -m udp --sport 67 --dport 68 -j ACCEPT",
		`-A INPUT -m limit --limit 3/min --limit-burst 5 -j LOG --log-level 4 --log-prefix "INPUT drop: "`,
		"-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REJECT --reject-with tcp-reset",
		"-A INPUT -s 192.0.2.0/24",
		"-A INPUT -f -j DROP",
		"-A INPUT -m mac --mac-source 52:54:00:01:1A:A2 -j ACCEPT",
		"-A INPUT -m iprange --src-range 10.0.0.1-10.0.0.9 -j ACCEPT",
		"-A INPUT -g MYCHAIN",
		"-A INPUT -m mark --mark 0x1/0xff -j ACCEPT",
		"-A INPUT ! -d 10.0.0.0/8 -i eth2 ! -p tcp -j ACCEPT",
		`-A INPUT -m listing --text "hashlimit: up to 10/sec burst 5 mode srcip htable-expire 10000" -j ACCEPT`,
		"-A INPUT -i eth+ -p tcp -m tcp --sport 1024:65535 ! --dport 25 -j ACCEPT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("read back as\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if r := f.Chain("INPUT").Rules[1]; r.Packets != 56000000 || r.Bytes != 40000000000 {
		t.Errorf("counters %d %d", r.Packets, r.Bytes)
	}
	// The listing names only INPUT: FORWARD, OUTPUT and MYCHAIN (which
	// rule 14 jumps to) are placeholders.
	for _, c := range []string{"FORWARD", "OUTPUT", "MYCHAIN"} {
		ch := f.Chain(c)
		if ch == nil || !ch.Origin.Synthesized || len(ch.Rules) != 1 || len(ch.Rules[0].Lossy) != 1 {
			t.Errorf("placeholder %s: %+v", c, ch)
		}
	}
}

func TestWithoutVerbose(t *testing.T) {
	rs := parseFile(t, "no-verbose.txt", 4, "")
	r := rs.Table("nat").Chain("POSTROUTING").Rules[0]
	if got := SaveText(r); got != "-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE" {
		t.Errorf("read back as %s", got)
	}
	if len(r.Lossy) != 1 || !strings.Contains(r.Lossy[0], "without -v") {
		t.Errorf("lossy %q", r.Lossy)
	}
}

// A table the listing does not show is inferred, and says so.
func TestTableInference(t *testing.T) {
	text := `Chain LIBVIRT_PRT (1 references)
 pkts bytes target     prot opt in     out     source               destination
    2   656 CHECKSUM   udp  --  *      virbr0  0.0.0.0/0            0.0.0.0/0            udp dpt:68 CHECKSUM fill

Chain MYCHAIN (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 ACCEPT     all  --  *      *       0.0.0.0/0            0.0.0.0/0

Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    0     0 OTHER      all  --  *      *       0.0.0.0/0            0.0.0.0/0

Chain OTHER (1 references)
 pkts bytes target     prot opt in     out     source               destination
`
	rs, err := ParseString("t", text, 4, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := tableNames(rs); !slices.Equal(got, []string{"mangle", "filter", "nat"}) {
		t.Fatalf("tables %v", got)
	}
	if r := rs.Table("mangle").Chain("LIBVIRT_PRT").Rules[0]; len(r.Lossy) != 0 || SaveText(r) != "-A LIBVIRT_PRT -o virbr0 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill" {
		t.Errorf("CHECKSUM rule %s %q", SaveText(r), r.Lossy)
	}
	if r := rs.Table("filter").Chain("MYCHAIN").Rules[0]; len(r.Lossy) != 1 || !strings.Contains(r.Lossy[0], "read as filter") {
		t.Errorf("MYCHAIN: %q", r.Lossy)
	}
	if r := rs.Table("nat").Chain("PREROUTING").Rules[0]; len(r.Lossy) != 1 || !strings.Contains(r.Lossy[0], "read as nat") {
		t.Errorf("PREROUTING: %q", r.Lossy)
	}
	if rs.Table("nat").Chain("OTHER") == nil {
		t.Errorf("OTHER should follow PREROUTING into nat")
	}
}

func TestFillUnlisted(t *testing.T) {
	rs := parseFile(t, "seed-nat.txt", 4, "")
	FillUnlisted(rs, "f")
	f := rs.Table("filter")
	if f == nil || len(f.Chains) != 3 || !f.Origin.Synthesized {
		t.Fatalf("filter placeholder: %+v", f)
	}
	for _, c := range f.Chains {
		if c.Policy != "ACCEPT" || len(c.Rules) != 1 || !strings.Contains(c.Rules[0].Lossy[0], "iptables -t filter -L -n -v") {
			t.Errorf("chain %s: %+v", c.Name, c.Rules)
		}
	}
	if len(rs.Table("nat").Chains) != 5 {
		t.Errorf("nat was listed and keeps its chains")
	}
	FillUnlisted(nil, "f")
}

func TestEmpty(t *testing.T) {
	for _, s := range []string{"", "\n\n", "# Warning: iptables-legacy tables present, use iptables-legacy to see them\n", "```\n```\n"} {
		rs, err := ParseString("t", s, 4, "")
		if err != nil || rs == nil || len(rs.Tables) != 0 {
			t.Errorf("%q: %v %v", s, rs, err)
		}
	}
}

func TestErrors(t *testing.T) {
	const head = " pkts bytes target     prot opt in     out     source               destination\n"
	for _, tc := range []struct {
		name, text string
		family     int
		table      string
		line       int
		want       string
	}{
		{"text before a chain", "hello\n", 4, "", 1, "outside a chain"},
		{"malformed chain", "Chain FOO\n", 4, "", 1, "malformed chain line"},
		{"bad policy", "Chain INPUT (policy MAYBE)\n", 4, "", 1, "expected ACCEPT or DROP"},
		{"policy on user chain", "Chain FOO (policy ACCEPT)\n", 4, "", 1, "only the built-in chains"},
		{"built-in without policy", "Chain INPUT (1 references)\n", 4, "", 1, "without its policy"},
		{"no header", "Chain FOO (1 references)\n    0     0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0\n", 4, "", 2, "unexpected column header"},
		{"header missing at end", "Chain FOO (1 references)\n", 4, "", 1, "no column header"},
		{"bad counters", "Chain FOO (1 references)\n" + head + "   x     0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0\n", 4, "", 3, "counters"},
		{"names, not -n", "Chain FOO (1 references)\n" + head + "    0     0 ACCEPT all -- * * anywhere anywhere\n", 4, "", 3, "list with -n"},
		{"missing columns", "Chain FOO (1 references)\n" + head + "    0     0 ACCEPT all --\n", 4, "", 3, "expected the columns"},
		{"v6 address in v4", "Chain FOO (1 references)\n" + head + "    0     0 ACCEPT all -- * * ::/0 ::/0\n", 4, "", 3, "expected the columns"},
		{"rule number gap", "Chain FOO (1 references)\nnum" + head + "2 0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0\n", 4, "", 3, "lines missing"},
		{"long interface", "Chain FOO (1 references)\n" + head + "0 0 ACCEPT all -- abcdefghijklmnopq * 0.0.0.0/0 0.0.0.0/0\n", 4, "", 3, "at most 15"},
		{"DNAT without to", "Chain DOCKER (1 references)\n" + head + "0 0 DNAT tcp -- * * 0.0.0.0/0 0.0.0.0/0 tcp dpt:80\n", 4, "", 3, "without \"to:ADDRESS\""},
		{"bad masq ports", "Chain P (1 references)\n" + head + "0 0 MASQUERADE tcp -- * * 0.0.0.0/0 0.0.0.0/0 masq ports: x-y\n", 4, "", 3, "port range"},
		{"table mismatch", "[root@h ~]# iptables -t nat -L -n -v\n", 4, "filter", 1, "is for table filter"},
		{"unknown table", "# iptables -t foo -L -n -v\n", 4, "", 1, "unknown table"},
		{"v6 prompt in v4 file", "$ ip6tables -L -n -v\n", 4, "", 1, "ip6tables-L"},
		{"FORWARD in nat", "Chain FORWARD (policy ACCEPT)\ntarget     prot opt source               destination\n", 4, "nat", 1, "no such built-in chain"},
		{"chain twice", "Chain FOO (1 references)\n" + head + "\nChain FOO (1 references)\n" + head, 4, "", 4, "listed twice"},
		{"rejected by iptables-save rules", "Chain P (1 references)\n" + head + "0 0 ACCEPT all -- * * 0.0.0.0/0 0.0.0.0/0 tcp dpt:80\n", 4, "", 3, ""},
		{"family", "", 5, "", 0, "family 5"},
		{"table arg", "", 4, "bogus", 0, "unknown table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := ParseString("t", tc.text, tc.family, tc.table)
			if tc.name == "rejected by iptables-save rules" {
				// "tcp dpt:80" without -p tcp is not the tcp match's:
				// it stays unread, as an unknown match.
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || rs != nil {
				t.Fatalf("no error (ruleset %v)", rs)
			}
			var ie *ingest.Error
			if !errors.As(err, &ie) {
				t.Fatalf("%T is not *ingest.Error", err)
			}
			if ie.File != "t" || ie.Line != tc.line || !strings.Contains(ie.Msg, tc.want) {
				t.Errorf("got %v; want line %d and %q", err, tc.line, tc.want)
			}
		})
	}
}

// FuzzParse checks that no input panics, and that errors name a line of
// the input with its text.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), uint8(0))
	}
	f.Add("Chain INPUT (policy ACCEPT)\ntarget prot opt source destination\nACCEPT all -- 0.0.0.0/0 0.0.0.0/0 /* a */\n", uint8(3))
	f.Fuzz(func(t *testing.T, text string, sel uint8) {
		family := 4 + 2*int(sel&1)
		table := []string{"", "", "nat", "filter"}[sel>>1&3]
		rs, err := ParseString("fuzz", text, family, table)
		if err != nil {
			if rs != nil {
				t.Fatal("ruleset with an error")
			}
			var ie *ingest.Error
			if !errors.As(err, &ie) {
				t.Fatalf("%T %v", err, err)
			}
			lines := strings.Split(text, "\n")
			if ie.Line < 1 || ie.Line > len(lines) || strings.TrimSuffix(lines[ie.Line-1], "\r") != ie.Text {
				t.Fatalf("error %v does not name a line of the input", err)
			}
			return
		}
		checkOrigins(t, "fuzz", text, rs)
	})
}

// Every sample compiles: what the listing is read back into is something
// netfilter gives meaning to (placeholders and unknown matches included).
func TestSamplesCompile(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, name := range files {
		fam := 4
		if strings.Contains(name, "ip6tables") {
			fam = 6
		}
		rs := parseFile(t, filepath.Base(name), fam, "")
		FillUnlisted(rs, name)
		if _, err := netfilter.Compile(rs); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
