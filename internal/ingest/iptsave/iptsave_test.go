package iptsave

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// Helpers to write expected rules compactly.

func opt(name string, args ...string) model.Option {
	if len(args) == 0 {
		args = nil
	}
	return model.Option{Name: name, Args: args}
}

func nopt(name string, args ...string) model.Option {
	o := opt(name, args...)
	o.Negate = true
	return o
}

func base(name, arg string) model.Match { return model.Match{Options: []model.Option{opt(name, arg)}} }
func nbase(name, arg string) model.Match {
	return model.Match{Options: []model.Option{nopt(name, arg)}}
}

func match(module string, opts ...model.Option) model.Match {
	if len(opts) == 0 {
		opts = nil
	}
	return model.Match{Module: module, Options: opts}
}

// checkRuleset asserts what every successful parse must satisfy: origins
// point at the right lines, positions count from 1 without gaps, and each
// rule names its chain.
func checkRuleset(t testing.TB, file, text string, family int, rs *model.Ruleset) {
	t.Helper()
	lines := strings.Split(text, "\n")
	lineOK := func(what string, o model.Origin) {
		t.Helper()
		if o.File != file || o.Line < 1 || o.Line > len(lines) {
			t.Fatalf("%s: origin %+v out of range (file %q, %d lines)", what, o, file, len(lines))
		}
		if want := strings.TrimSuffix(lines[o.Line-1], "\r"); o.Text != want {
			t.Fatalf("%s: origin text %q, line %d is %q", what, o.Text, o.Line, want)
		}
	}
	if rs.Family != family || rs.Origin.File != file {
		t.Fatalf("ruleset family %d origin %+v, want family %d file %q", rs.Family, rs.Origin, family, file)
	}
	for _, tb := range rs.Tables {
		lineOK("table "+tb.Name, tb.Origin)
		for _, c := range tb.Chains {
			lineOK("chain "+c.Name, c.Origin)
			if c.Builtin != (c.Policy != "") {
				t.Fatalf("chain %s: builtin %v with policy %q", c.Name, c.Builtin, c.Policy)
			}
			for k, r := range c.Rules {
				lineOK("rule", r.Origin)
				if r.Pos != k+1 || r.Chain != c.Name {
					t.Fatalf("rule %d of %s: Pos %d Chain %q", k, c.Name, r.Pos, r.Chain)
				}
				checkRule(t, tb, r)
			}
		}
	}
}

// checkRule asserts the shape every parsed rule has: base matches hold
// one known option, extension matches and options are named, and targets
// obey the chain rules.
func checkRule(t testing.TB, tb *model.Table, r *model.Rule) {
	t.Helper()
	for _, m := range r.Matches {
		if m.Module == "" {
			if len(m.Options) != 1 {
				t.Fatalf("%s: base match with %d options", r.Origin.Text, len(m.Options))
			}
			o := m.Options[0]
			switch {
			case o.Name == "-f" && len(o.Args) == 0:
			case slices.Contains([]string{"-s", "-d", "-i", "-o", "-p"}, o.Name) && len(o.Args) == 1 && o.Args[0] != "":
			default:
				t.Fatalf("%s: bad base option %+v", r.Origin.Text, o)
			}
			continue
		}
		for _, o := range m.Options {
			if !strings.HasPrefix(o.Name, "--") || len(o.Name) < 3 {
				t.Fatalf("%s: bad option name %q in -m %s", r.Origin.Text, o.Name, m.Module)
			}
		}
	}
	if r.Target == "" && (r.Goto || len(r.TargetOpts) > 0) {
		t.Fatalf("%s: goto or target options without a target", r.Origin.Text)
	}
	for _, o := range r.TargetOpts {
		if !strings.HasPrefix(o.Name, "--") || len(o.Name) < 3 {
			t.Fatalf("%s: bad target option name %q", r.Origin.Text, o.Name)
		}
	}
	if c := tb.Chain(r.Target); c != nil && (c.Builtin || len(r.TargetOpts) > 0) {
		t.Fatalf("%s: bad jump to chain %s", r.Origin.Text, c.Name)
	}
	if r.Goto && tb.Chain(r.Target) == nil {
		t.Fatalf("%s: goto to no chain", r.Origin.Text)
	}
	// The target's chain index is set exactly when the target is a
	// chain, and names it.
	idx := slices.IndexFunc(tb.Chains, func(c *model.Chain) bool { return c.Name == r.Target })
	if int(r.TargetChain) != idx+1 {
		t.Fatalf("%s: TargetChain %d, want %d", r.Origin.Text, r.TargetChain, idx+1)
	}
}

type chainSum struct {
	Name, Policy string
	Builtin      bool
	Rules        int
}

type tableSum struct {
	Name   string
	Chains []chainSum
}

func summarize(rs *model.Ruleset) []tableSum {
	var out []tableSum
	for _, t := range rs.Tables {
		ts := tableSum{Name: t.Name}
		for _, c := range t.Chains {
			ts.Chains = append(ts.Chains, chainSum{c.Name, c.Policy, c.Builtin, len(c.Rules)})
		}
		out = append(out, ts)
	}
	return out
}

// spot is one rule to compare in full (all but Origin, which
// checkRuleset verifies for every rule).
type spot struct {
	table, chain string
	pos          int
	want         model.Rule
}

var ignoreOrigin = cmpopts.IgnoreFields(model.Rule{}, "Origin", "TargetChain")

func TestSamples(t *testing.T) {
	u := func(name string, rules int) chainSum { return chainSum{name, "", false, rules} }
	acc := func(name string, rules int) chainSum { return chainSum{name, "ACCEPT", true, rules} }
	drop := func(name string, rules int) chainSum { return chainSum{name, "DROP", true, rules} }

	tests := []struct {
		file   string
		family int
		tables []tableSum
		spots  []spot
	}{
		{
			file: "docker.save", family: 4,
			tables: []tableSum{
				{"nat", []chainSum{acc("PREROUTING", 1), acc("INPUT", 0), acc("OUTPUT", 1), acc("POSTROUTING", 4), u("DOCKER", 4)}},
				{"filter", []chainSum{acc("INPUT", 0), drop("FORWARD", 10), acc("OUTPUT", 0), u("DOCKER", 2),
					u("DOCKER-ISOLATION-STAGE-1", 3), u("DOCKER-ISOLATION-STAGE-2", 3), u("DOCKER-USER", 1)}},
			},
			spots: []spot{
				{"nat", "OUTPUT", 1, model.Rule{Chain: "OUTPUT", Pos: 1,
					Matches: []model.Match{nbase("-d", "127.0.0.0/8"), match("addrtype", opt("--dst-type", "LOCAL"))},
					Target:  "DOCKER"}},
				{"nat", "POSTROUTING", 2, model.Rule{Chain: "POSTROUTING", Pos: 2,
					Matches: []model.Match{base("-s", "172.17.0.0/16"), nbase("-o", "docker0")},
					Target:  "MASQUERADE"}},
				{"nat", "POSTROUTING", 3, model.Rule{Chain: "POSTROUTING", Pos: 3,
					Matches: []model.Match{base("-s", "172.17.0.2/32"), base("-d", "172.17.0.2/32"), base("-p", "tcp"),
						match("tcp", opt("--dport", "443"))},
					Target: "MASQUERADE"}},
				{"nat", "DOCKER", 3, model.Rule{Chain: "DOCKER", Pos: 3,
					Matches: []model.Match{nbase("-i", "docker0"), base("-p", "tcp"), match("tcp", opt("--dport", "1443"))},
					Target:  "DNAT", TargetOpts: []model.Option{opt("--to-destination", "172.17.0.2:443")}}},
				{"filter", "FORWARD", 7, model.Rule{Chain: "FORWARD", Pos: 7,
					Matches: []model.Match{base("-o", "docker0"), match("conntrack", opt("--ctstate", "RELATED,ESTABLISHED"))},
					Target:  "ACCEPT"}},
				{"filter", "DOCKER-ISOLATION-STAGE-1", 2, model.Rule{Chain: "DOCKER-ISOLATION-STAGE-1", Pos: 2,
					Matches: []model.Match{base("-i", "docker0"), nbase("-o", "docker0")},
					Target:  "DOCKER-ISOLATION-STAGE-2"}},
			},
		},
		{
			file: "libvirt.save", family: 4,
			tables: []tableSum{
				{"mangle", []chainSum{acc("PREROUTING", 0), acc("INPUT", 0), acc("FORWARD", 0), acc("OUTPUT", 0), acc("POSTROUTING", 1), u("LIBVIRT_PRT", 1)}},
				{"nat", []chainSum{acc("PREROUTING", 0), acc("INPUT", 0), acc("OUTPUT", 0), acc("POSTROUTING", 1), u("LIBVIRT_PRT", 5)}},
				{"filter", []chainSum{acc("INPUT", 1), acc("FORWARD", 3), acc("OUTPUT", 1), u("LIBVIRT_FWI", 2), u("LIBVIRT_FWO", 2),
					u("LIBVIRT_FWX", 1), u("LIBVIRT_INP", 4), u("LIBVIRT_OUT", 4)}},
			},
			spots: []spot{
				{"mangle", "LIBVIRT_PRT", 1, model.Rule{Chain: "LIBVIRT_PRT", Pos: 1,
					Matches: []model.Match{base("-o", "virbr0"), base("-p", "udp"), match("udp", opt("--dport", "68"))},
					Target:  "CHECKSUM", TargetOpts: []model.Option{opt("--checksum-fill")}}},
				{"nat", "LIBVIRT_PRT", 3, model.Rule{Chain: "LIBVIRT_PRT", Pos: 3,
					Matches: []model.Match{base("-s", "192.168.122.0/24"), nbase("-d", "192.168.122.0/24"), base("-p", "tcp")},
					Target:  "MASQUERADE", TargetOpts: []model.Option{opt("--to-ports", "1024-65535")}}},
				{"filter", "LIBVIRT_FWI", 1, model.Rule{Chain: "LIBVIRT_FWI", Pos: 1,
					Matches: []model.Match{base("-d", "192.168.122.0/24"), base("-o", "virbr0"), match("conntrack", opt("--ctstate", "RELATED,ESTABLISHED"))},
					Target:  "ACCEPT"}},
				{"filter", "LIBVIRT_FWO", 2, model.Rule{Chain: "LIBVIRT_FWO", Pos: 2,
					Matches: []model.Match{base("-i", "virbr0")},
					Target:  "REJECT", TargetOpts: []model.Option{opt("--reject-with", "icmp-port-unreachable")}}},
			},
		},
		{
			file: "kube-proxy.save", family: 4,
			tables: []tableSum{
				{"nat", []chainSum{acc("PREROUTING", 2), acc("INPUT", 0), acc("OUTPUT", 1), acc("POSTROUTING", 1),
					u("KUBE-EXT-2CMXP7HKUVJN7L6M", 2), u("KUBE-KUBELET-CANARY", 0), u("KUBE-MARK-MASQ", 1), u("KUBE-NODEPORTS", 1),
					u("KUBE-POSTROUTING", 3), u("KUBE-PROXY-CANARY", 0),
					u("KUBE-SEP-IT2ZTR26TO4XFPTO", 2), u("KUBE-SEP-N4G2XR5TDX7PQE7P", 2), u("KUBE-SEP-XQ2ROIHX5GB6ZD34", 2),
					u("KUBE-SEP-YIL6JZP7A3QYXJU2", 2), u("KUBE-SEP-ZHICQ2ODADGCY5BE", 2), u("KUBE-SERVICES", 4),
					u("KUBE-SVC-2CMXP7HKUVJN7L6M", 4), u("KUBE-SVC-NPX46M4PTMTKRN6Y", 2), u("KUBE-SVC-TCOU7JCQXEZGVUNU", 2)}},
			},
			spots: []spot{
				{"nat", "PREROUTING", 1, model.Rule{Chain: "PREROUTING", Pos: 1,
					Matches: []model.Match{base("-d", "203.0.113.10/32"), base("-p", "tcp"),
						match("comment", opt("--comment", `ops: "legacy" VIP, see TICKET-4411`)), match("tcp", opt("--dport", "8443"))},
					Target: "DNAT", TargetOpts: []model.Option{opt("--to-destination", "10.96.120.7:80")}}},
				{"nat", "KUBE-POSTROUTING", 1, model.Rule{Chain: "KUBE-POSTROUTING", Pos: 1,
					Matches: []model.Match{match("mark", nopt("--mark", "0x4000/0x4000"))},
					Target:  "RETURN"}},
				{"nat", "KUBE-POSTROUTING", 3, model.Rule{Chain: "KUBE-POSTROUTING", Pos: 3,
					Matches: []model.Match{match("comment", opt("--comment", "kubernetes service traffic requiring SNAT"))},
					Target:  "MASQUERADE", TargetOpts: []model.Option{opt("--random-fully")}}},
				{"nat", "KUBE-SEP-IT2ZTR26TO4XFPTO", 2, model.Rule{Chain: "KUBE-SEP-IT2ZTR26TO4XFPTO", Pos: 2,
					Matches: []model.Match{base("-p", "tcp"), match("comment", opt("--comment", "default/web:http")), match("tcp")},
					Target:  "DNAT", TargetOpts: []model.Option{opt("--to-destination", "10.244.1.5:8080")}}},
				{"nat", "KUBE-SERVICES", 4, model.Rule{Chain: "KUBE-SERVICES", Pos: 4,
					Matches: []model.Match{
						match("comment", opt("--comment", "kubernetes service nodeports; NOTE: this must be the last rule in this chain")),
						match("addrtype", opt("--dst-type", "LOCAL"))},
					Target: "KUBE-NODEPORTS"}},
				{"nat", "KUBE-SVC-2CMXP7HKUVJN7L6M", 1, model.Rule{Chain: "KUBE-SVC-2CMXP7HKUVJN7L6M", Pos: 1,
					Matches: []model.Match{nbase("-s", "10.244.0.0/16"), base("-d", "10.96.120.7/32"), base("-p", "tcp"),
						match("comment", opt("--comment", "default/web:http cluster IP")), match("tcp", opt("--dport", "80"))},
					Target: "KUBE-MARK-MASQ"}},
				{"nat", "KUBE-SVC-2CMXP7HKUVJN7L6M", 2, model.Rule{Chain: "KUBE-SVC-2CMXP7HKUVJN7L6M", Pos: 2,
					Matches: []model.Match{match("comment", opt("--comment", "default/web:http -> 10.244.1.5:8080")),
						match("statistic", opt("--mode", "random"), opt("--probability", "0.33333333349"))},
					Target: "KUBE-SEP-IT2ZTR26TO4XFPTO"}},
			},
		},
		{
			file: "nft-counters.save", family: 4,
			tables: []tableSum{
				{"raw", []chainSum{acc("PREROUTING", 1), acc("OUTPUT", 0)}},
				{"mangle", []chainSum{acc("PREROUTING", 1), acc("INPUT", 0), acc("FORWARD", 1), acc("OUTPUT", 0), acc("POSTROUTING", 0)}},
				{"filter", []chainSum{drop("INPUT", 8), drop("FORWARD", 0), acc("OUTPUT", 0), u("f2b-sshd", 2)}},
			},
			spots: []spot{
				{"raw", "PREROUTING", 1, model.Rule{Chain: "PREROUTING", Pos: 1,
					Matches: []model.Match{base("-p", "udp"), match("udp", opt("--dport", "123"))},
					Target:  "CT", TargetOpts: []model.Option{opt("--notrack")}}},
				{"mangle", "PREROUTING", 1, model.Rule{Chain: "PREROUTING", Pos: 1,
					Target:     "CONNMARK",
					TargetOpts: []model.Option{opt("--restore-mark"), opt("--nfmask", "0xffffffff"), opt("--ctmask", "0xffffffff")},
					Packets:    1023411, Bytes: 881233107}},
				{"filter", "INPUT", 5, model.Rule{Chain: "INPUT", Pos: 5,
					Matches: []model.Match{base("-p", "tcp"),
						match("tcp", opt("--dport", "22"), opt("--tcp-flags", "FIN,SYN,RST,ACK", "SYN")),
						match("conntrack", opt("--ctstate", "NEW"))},
					Target: "ACCEPT", Packets: 2940, Bytes: 176400}},
				{"filter", "INPUT", 7, model.Rule{Chain: "INPUT", Pos: 7,
					Matches: []model.Match{base("-s", "198.51.100.0/24"), match("comment", opt("--comment", `office "HQ" VPN`))},
					Target:  "ACCEPT"}},
				{"filter", "INPUT", 8, model.Rule{Chain: "INPUT", Pos: 8,
					Matches: []model.Match{match("limit", opt("--limit", "3/min"))},
					Target:  "LOG", TargetOpts: []model.Option{opt("--log-prefix", "INPUT drop: "), opt("--log-level", "4")},
					Packets: 403, Bytes: 24180}},
				{"filter", "f2b-sshd", 2, model.Rule{Chain: "f2b-sshd", Pos: 2, Target: "RETURN", Packets: 2940, Bytes: 176400}},
			},
		},
		{
			file: "ip6tables.save", family: 6,
			tables: []tableSum{
				{"filter", []chainSum{drop("INPUT", 11), drop("FORWARD", 4), acc("OUTPUT", 0), u("DOCKER", 1)}},
				{"nat", []chainSum{acc("PREROUTING", 1), acc("INPUT", 0), acc("OUTPUT", 1), acc("POSTROUTING", 1), u("DOCKER", 2)}},
			},
			spots: []spot{
				{"filter", "INPUT", 4, model.Rule{Chain: "INPUT", Pos: 4,
					Matches: []model.Match{base("-p", "ipv6-icmp"), match("icmp6", opt("--icmpv6-type", "133")), match("hl", opt("--hl-eq", "255"))},
					Target:  "ACCEPT"}},
				{"filter", "INPUT", 9, model.Rule{Chain: "INPUT", Pos: 9,
					Matches: []model.Match{base("-s", "fe80::/10"), base("-d", "fe80::/64"), base("-p", "udp"),
						match("udp", opt("--sport", "547"), opt("--dport", "546"))},
					Target: "ACCEPT"}},
				{"nat", "POSTROUTING", 1, model.Rule{Chain: "POSTROUTING", Pos: 1,
					Matches: []model.Match{base("-s", "fd00:dead:beef::/64"), nbase("-o", "docker0")},
					Target:  "MASQUERADE"}},
				{"nat", "DOCKER", 2, model.Rule{Chain: "DOCKER", Pos: 2,
					Matches: []model.Match{nbase("-i", "docker0"), base("-p", "tcp"), match("tcp", opt("--dport", "8080"))},
					Target:  "DNAT", TargetOpts: []model.Option{opt("--to-destination", "[fd00:dead:beef::2]:80")}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			rs, err := Parse(tc.file, strings.NewReader(string(b)), tc.family)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkRuleset(t, tc.file, string(b), tc.family, rs)
			if diff := cmp.Diff(tc.tables, summarize(rs)); diff != "" {
				t.Errorf("tables (-want +got):\n%s", diff)
			}
			for _, s := range tc.spots {
				c := rs.Table(s.table).Chain(s.chain)
				if c == nil || s.pos > len(c.Rules) {
					t.Errorf("%s/%s #%d: no such rule", s.table, s.chain, s.pos)
					continue
				}
				if diff := cmp.Diff(&s.want, c.Rules[s.pos-1], ignoreOrigin); diff != "" {
					t.Errorf("%s/%s #%d (-want +got):\n%s", s.table, s.chain, s.pos, diff)
				}
			}
			// ParseString gives the same ruleset as Parse.
			rs2, err := ParseString(tc.file, string(b), tc.family)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(rs, rs2); diff != "" {
				t.Errorf("ParseString differs from Parse:\n%s", diff)
			}
		})
	}
}

// TestOrigins pins the origin of a table, a chain and a counted rule: the
// line exactly as written, counters prefix and all.
func TestOrigins(t *testing.T) {
	text := "# Generated\r\n*filter\r\n:INPUT ACCEPT [5:6]\r\n  [1:2] -A INPUT -j ACCEPT  \r\nCOMMIT\r\n"
	rs, err := ParseString("x.save", text, 4)
	if err != nil {
		t.Fatal(err)
	}
	tb := rs.Table("filter")
	got := []model.Origin{rs.Origin, tb.Origin, tb.Chains[0].Origin, tb.Chains[0].Rules[0].Origin}
	want := []model.Origin{
		{File: "x.save"},
		{File: "x.save", Line: 2, Text: "*filter"},
		{File: "x.save", Line: 3, Text: ":INPUT ACCEPT [5:6]"},
		{File: "x.save", Line: 4, Text: "  [1:2] -A INPUT -j ACCEPT  "},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("origins (-want +got):\n%s", diff)
	}
}

func TestEmptyInputs(t *testing.T) {
	for _, text := range []string{"", "\n\n", "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n"} {
		rs, err := ParseString("e", text, 6)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if diff := cmp.Diff(&model.Ruleset{Family: 6, Origin: model.Origin{File: "e"}}, rs); diff != "" {
			t.Errorf("%q (-want +got):\n%s", text, diff)
		}
	}
}

// TestRuleForms covers the ways a rule may be written beyond what the
// samples show: long option names, both negation styles, implicit
// protocol matches, counters, quoting.
func TestRuleForms(t *testing.T) {
	tests := []struct {
		name   string
		rule   string // after "-A INPUT "
		family int
		want   model.Rule
	}{
		{"long base options", "--source 10.0.0.1 --destination 10.0.0.2 --in-interface eth0 --protocol tcp --jump ACCEPT", 4,
			model.Rule{Matches: []model.Match{base("-s", "10.0.0.1"), base("-d", "10.0.0.2"), base("-i", "eth0"), base("-p", "tcp")}, Target: "ACCEPT"}},
		{"src dst aliases", "--src 10.0.0.1 --dst 10.0.0.2 --out-interface eth1", 4,
			model.Rule{Matches: []model.Match{base("-s", "10.0.0.1"), base("-d", "10.0.0.2"), base("-o", "eth1")}}},
		{"fragment", "-f -j DROP", 4,
			model.Rule{Matches: []model.Match{{Options: []model.Option{opt("-f")}}}, Target: "DROP"}},
		{"negated fragment long", "! --fragment -j DROP", 4,
			model.Rule{Matches: []model.Match{{Options: []model.Option{nopt("-f")}}}, Target: "DROP"}},
		{"old negation base", "-s ! 1.2.3.4 -i ! lo -j DROP", 4,
			model.Rule{Matches: []model.Match{nbase("-s", "1.2.3.4"), nbase("-i", "lo")}, Target: "DROP"}},
		{"old negation extension", "-p tcp -m tcp --dport ! 80 -j DROP", 4,
			model.Rule{Matches: []model.Match{base("-p", "tcp"), match("tcp", nopt("--dport", "80"))}, Target: "DROP"}},
		{"new negation extension", "-p tcp -m tcp --syn ! --dport 80 -j DROP", 4,
			model.Rule{Matches: []model.Match{base("-p", "tcp"), match("tcp", opt("--syn"), nopt("--dport", "80"))}, Target: "DROP"}},
		{"match module twice", "-m comment --comment a -m tcp --dport 1 -m comment --comment b", 4,
			model.Rule{Matches: []model.Match{match("comment", opt("--comment", "a")), match("tcp", opt("--dport", "1")), match("comment", opt("--comment", "b"))}}},
		{"implicit tcp match", "-p tcp --dport 22 --sport 1024:65535 -j ACCEPT", 4,
			model.Rule{Matches: []model.Match{base("-p", "tcp"), match("tcp", opt("--dport", "22"), opt("--sport", "1024:65535"))}, Target: "ACCEPT"}},
		{"implicit icmp6 match", "-p ipv6-icmp --icmpv6-type 128 -j ACCEPT", 6,
			model.Rule{Matches: []model.Match{base("-p", "ipv6-icmp"), match("icmp6", opt("--icmpv6-type", "128"))}, Target: "ACCEPT"}},
		{"set match", "-m set ! --match-set blocklist src,dst -j DROP", 4,
			model.Rule{Matches: []model.Match{match("set", nopt("--match-set", "blocklist", "src,dst"))}, Target: "DROP"}},
		{"goto", "-i eth0 -g X", 4,
			model.Rule{Matches: []model.Match{base("-i", "eth0")}, Target: "X", Goto: true}},
		{"long goto", "--goto X", 4, model.Rule{Target: "X", Goto: true}},
		{"inline counters", "-c 10 2000 -j ACCEPT", 4, model.Rule{Target: "ACCEPT", Packets: 10, Bytes: 2000}},
		{"inline counters comma", "-j ACCEPT --set-counters 7,99", 4, model.Rule{Target: "ACCEPT", Packets: 7, Bytes: 99}},
		{"comment starting with dash", "-m comment --comment -x- -j ACCEPT", 4,
			model.Rule{Matches: []model.Match{match("comment", opt("--comment", "-x-"))}, Target: "ACCEPT"}},
		{"quoted option-like args", `-m comment --comment "-j" -m string --string "!" --algo bm`, 4,
			model.Rule{Matches: []model.Match{match("comment", opt("--comment", "-j")), match("string", opt("--string", "!"), opt("--algo", "bm"))}}},
		{"empty quoted arg", `-m comment --comment ""`, 4,
			model.Rule{Matches: []model.Match{match("comment", opt("--comment", ""))}}},
		{"escapes and mid-word quotes", `-m comment --comment a"b \"c\" \\ \'d"e`, 4,
			model.Rule{Matches: []model.Match{match("comment", opt("--comment", `ab "c" \ 'de`))}}},
		{"tabs", "-p\tudp\t-m udp\t--dport 53\t-j\tACCEPT", 4,
			model.Rule{Matches: []model.Match{base("-p", "udp"), match("udp", opt("--dport", "53"))}, Target: "ACCEPT"}},
		{"target options then base option", "-j DNAT --to-destination 10.0.0.1 -p tcp --random", 4,
			model.Rule{Matches: []model.Match{base("-p", "tcp")}, Target: "DNAT",
				TargetOpts: []model.Option{opt("--to-destination", "10.0.0.1"), opt("--random")}}},
		{"mark target", "-j MARK --set-xmark 0x1/0xffffffff", 4,
			model.Rule{Target: "MARK", TargetOpts: []model.Option{opt("--set-xmark", "0x1/0xffffffff")}}},
		{"unknown extension target", "-j FOOBAR --foo 1", 4,
			model.Rule{Target: "FOOBAR", TargetOpts: []model.Option{opt("--foo", "1")}}},
		{"jump to chain declared later", "-j LATER", 4, model.Rule{Target: "LATER"}},
		{"counting rule", "-s 10.0.0.0/8", 4, model.Rule{Matches: []model.Match{base("-s", "10.0.0.0/8")}}},
		{"empty rule", "", 4, model.Rule{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := "*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n-A INPUT " + tc.rule + "\n:LATER - [0:0]\nCOMMIT\n"
			rs, err := ParseString("t", text, tc.family)
			if err != nil {
				t.Fatal(err)
			}
			checkRuleset(t, "t", text, tc.family, rs)
			got := rs.Table("filter").Chain("INPUT").Rules[0]
			tc.want.Chain, tc.want.Pos = "INPUT", 1
			if diff := cmp.Diff(&tc.want, got, ignoreOrigin); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []token
		ok   bool
	}{
		{"a b\t c ", []token{{s: "a"}, {s: "b"}, {s: "c"}}, true},
		{`"x y" z`, []token{{s: "x y", quoted: true}, {s: "z"}}, true},
		{`"" x`, []token{{s: "", quoted: true}, {s: "x"}}, true},
		{`a"b c"d`, []token{{s: "ab cd", quoted: true}}, true},
		{`"a\"b\\c"`, []token{{s: `a"b\c`, quoted: true}}, true},
		{`a\b`, []token{{s: `a\b`}}, true},
		{`! "!"`, []token{{s: "!"}, {s: "!", quoted: true}}, true},
		{`"abc`, nil, false},
		{`"abc\"`, nil, false},
		{`"abc\`, nil, false},
	}
	for _, tc := range tests {
		p := &parser{}
		ok := p.tokenize(tc.in)
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok {
			if diff := cmp.Diff(tc.want, p.toks, cmp.AllowUnexported(token{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%q (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

// TestSlicesAreIndependent makes sure the slab-allocated slices of one
// rule cannot be grown into the next rule's.
func TestSlicesAreIndependent(t *testing.T) {
	text := "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 1 -j ACCEPT\n-A INPUT -p udp -m udp --dport 2 -j LOG --log-level 4\nCOMMIT\n"
	rs, err := ParseString("t", text, 4)
	if err != nil {
		t.Fatal(err)
	}
	rules := rs.Table("filter").Chain("INPUT").Rules
	first := rules[0]
	_ = append(first.Matches, match("x"))
	_ = append(first.Matches[1].Options, opt("--y"))
	_ = append(first.Matches[1].Options[0].Args, "z")
	want := &model.Rule{Chain: "INPUT", Pos: 2,
		Matches: []model.Match{base("-p", "udp"), match("udp", opt("--dport", "2"))},
		Target:  "LOG", TargetOpts: []model.Option{opt("--log-level", "4")}}
	if diff := cmp.Diff(want, rules[1], ignoreOrigin); diff != "" {
		t.Errorf("second rule changed (-want +got):\n%s", diff)
	}
}

// TestChainOrderAndJumps covers rules of chains interleaved (legal in
// iptables-restore input), jumps into a diamond (not a loop), chains of
// the same name in two tables, and a jump to another table's chain, which
// is just an unknown extension target here.
func TestChainOrderAndJumps(t *testing.T) {
	text := `*nat
:PREROUTING ACCEPT [0:0]
:C - [0:0]
-A PREROUTING -j C
COMMIT
*filter
:INPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
:C - [0:0]
-A A -j B
-A INPUT -j A
-A A -j C
-A B -j C
-A INPUT -j D
-A A -g B
COMMIT
`
	rs, err := ParseString("t", text, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkRuleset(t, "t", text, 4, rs)
	type r struct {
		Chain  string
		Pos    int
		Target string
		Line   int
	}
	var got []r
	for _, c := range rs.Table("filter").Chains {
		for _, x := range c.Rules {
			got = append(got, r{x.Chain, x.Pos, x.Target, x.Origin.Line})
		}
	}
	want := []r{{"INPUT", 1, "A", 12}, {"INPUT", 2, "D", 15}, {"A", 1, "B", 11}, {"A", 2, "C", 13}, {"A", 3, "B", 16}, {"B", 1, "C", 14}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := len(rs.Table("nat").Chain("C").Rules); n != 0 {
		t.Errorf("nat C has %d rules", n)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadError(t *testing.T) {
	_, err := Parse("f", failingReader{}, 4)
	var ie *ingest.Error
	if !errors.As(err, &ie) || ie.File != "f" || ie.Line != 0 || !strings.Contains(ie.Msg, "disk on fire") {
		t.Fatalf("got %#v", err)
	}
}

func TestMalformed(t *testing.T) {
	const hdr = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:A - [0:0]\n:B - [0:0]\n" // rules start at line 6
	tests := []struct {
		name   string
		text   string
		family int
		line   int
		msg    string // a substring of the message
	}{
		{"bad family", "", 5, 0, "expected 4 (iptables-save) or 6"},
		{"rule outside table", "# c\n-A INPUT -j ACCEPT\n", 4, 2, "rule outside a table: expected *TABLE"},
		{"rule after commit", hdr + "COMMIT\n-A INPUT -j ACCEPT\n", 4, 7, "rule outside a table"},
		{"chain outside table", ":INPUT ACCEPT [0:0]\n", 4, 1, "chain declaration outside a table"},
		{"commit outside table", "COMMIT\n", 4, 1, "COMMIT outside a table"},
		{"no commit at eof", "# x\n*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT", 4, 2, "table nat is not COMMITted by the end of the input: expected a COMMIT"},
		{"table inside table", "*nat\n*filter\nCOMMIT\n", 4, 2, "table nat (line 1) is not COMMITted: expected COMMIT before the next *table"},
		{"unknown table", "*natt\nCOMMIT\n", 4, 1, `unknown table "natt": expected *filter, *nat`},
		{"missing table name", "*\n", 4, 1, "missing table name"},
		{"duplicate table", "*raw\nCOMMIT\n*raw\nCOMMIT\n", 4, 3, "table raw appears twice (first at line 1)"},
		{"chain line too short", "*filter\n:INPUT\n", 4, 2, "expected :CHAIN POLICY [packets:bytes]"},
		{"chain line too long", "*filter\n:INPUT ACCEPT [0:0] x\n", 4, 2, "expected :CHAIN POLICY [packets:bytes]"},
		{"chain bad counters", "*filter\n:INPUT ACCEPT [0-0]\n", 4, 2, `malformed counters "[0-0]": expected [packets:bytes]`},
		{"builtin without policy", "*filter\n:INPUT - [0:0]\n", 4, 2, `built-in chain INPUT has policy "-": expected ACCEPT or DROP`},
		{"builtin bad policy", "*filter\n:INPUT REJECT [0:0]\n", 4, 2, `policy "REJECT": expected ACCEPT or DROP`},
		{"user chain with policy", "*filter\n:MINE ACCEPT [0:0]\n", 4, 2, `user-defined chain MINE has policy "ACCEPT": expected -`},
		{"hook not in table", "*filter\n:PREROUTING ACCEPT [0:0]\n", 4, 2, "table filter has no built-in chain PREROUTING (it has INPUT, FORWARD, OUTPUT)"},
		{"duplicate chain", hdr + ":A - [0:0]\n", 4, 6, "chain A is declared twice in table filter"},
		{"chain named ACCEPT", "*filter\n:ACCEPT - [0:0]\n", 4, 2, "chain name ACCEPT is a standard verdict"},
		{"chain named with dash", "*filter\n:-X - [0:0]\n", 4, 2, "starts with '-'"},
		{"insert rule", hdr + "-I INPUT 1 -j ACCEPT\n", 4, 6, "-I is not something iptables-save prints: expected -A CHAIN"},
		{"new chain command", hdr + "-N C\n", 4, 6, "-N is not something iptables-save prints"},
		{"unknown command", hdr + "-Q INPUT\n", 4, 6, `unexpected "-Q" at the start of a rule: expected -A CHAIN`},
		{"missing chain name", hdr + "-A\n", 4, 6, "missing chain name: expected -A CHAIN"},
		{"missing chain name before option", hdr + "-A -j ACCEPT\n", 4, 6, "missing chain name"},
		{"undeclared chain", hdr + "-A OUTPUT -j ACCEPT\n", 4, 6, "chain OUTPUT is not declared in table filter: expected a :OUTPUT line"},
		{"unterminated quote", hdr + `-A INPUT -m comment --comment "abc -j ACCEPT` + "\n", 4, 6, `unterminated double quote: expected a closing "`},
		{"unknown short option", hdr + "-A INPUT -x 1\n", 4, 6, "unknown option -x: expected -s, -d"},
		{"second -A", hdr + "-A INPUT -j ACCEPT -A INPUT\n", 4, 6, "unexpected -A inside a rule: expected one rule per line"},
		{"stray word", hdr + "-A INPUT tcp -j ACCEPT\n", 4, 6, `unexpected "tcp": expected an option`},
		{"word after target", hdr + "-A INPUT -j ACCEPT now\n", 4, 6, `unexpected "now": expected an option`},
		{"word after base value", hdr + "-A INPUT -s 1.2.3.4 5.6.7.8\n", 4, 6, `unexpected "5.6.7.8"`},
		{"double bang", hdr + "-A INPUT ! ! -s 1.2.3.4\n", 4, 6, "two ! in a row: expected one !"},
		{"double negation old and new", hdr + "-A INPUT ! -s ! 1.2.3.4\n", 4, 6, "-s negated twice: expected one !"},
		{"double negation extension", hdr + "-A INPUT -m tcp ! --dport ! 1\n", 4, 6, "--dport negated twice"},
		{"negated -m", hdr + "-A INPUT ! -m tcp --dport 1\n", 4, 6, "! cannot negate -m"},
		{"negated -j", hdr + "-A INPUT ! -j ACCEPT\n", 4, 6, "! cannot negate -j"},
		{"trailing bang", hdr + "-A INPUT -j ACCEPT !\n", 4, 6, "! at the end of the rule: expected an option after it"},
		{"source without value", hdr + "-A INPUT -s\n", 4, 6, "-s needs a value: expected an address or prefix"},
		{"source followed by option", hdr + "-A INPUT -s -j ACCEPT\n", 4, 6, "-s needs a value"},
		{"old bang without value", hdr + "-A INPUT -s !\n", 4, 6, "-s needs a value"},
		{"empty interface", hdr + `-A INPUT -i ""` + "\n", 4, 6, "-i needs a value: expected an interface name"},
		{"source twice", hdr + "-A INPUT -s 1.1.1.1 --source 2.2.2.2\n", 4, 6, "--source given twice: expected at most one -s"},
		{"two targets", hdr + "-A INPUT -j ACCEPT -j DROP\n", 4, 6, "second target -j: expected one -j or -g"},
		{"jump and goto", hdr + "-A INPUT -j A -g B\n", 4, 6, "second target -g"},
		{"jump without target", hdr + "-A INPUT -j\n", 4, 6, "-j needs a target: expected -j TARGET"},
		{"goto without chain", hdr + "-A INPUT -g -s 1.1.1.1\n", 4, 6, "-g needs a chain: expected -g CHAIN"},
		{"match without module", hdr + "-A INPUT -m --dport 1\n", 4, 6, "-m needs a module name: expected -m MODULE"},
		{"option without match", hdr + "-A INPUT --dport 22 -j ACCEPT\n", 4, 6, "option --dport belongs to no match or target: expected -m MODULE"},
		{"option after negated proto", hdr + "-A INPUT ! -p tcp --dport 22\n", 4, 6, "option --dport belongs to no match or target"},
		{"lone double dash", hdr + "-A INPUT -m tcp --\n", 4, 6, "unknown option --"},
		{"comment without value", hdr + "-A INPUT -m comment --comment\n", 4, 6, "--comment needs a value: expected --comment TEXT"},
		{"fragment in ipv6", hdr + "-A INPUT -f -j DROP\n", 6, 6, "-f is IPv4-only: expected -m frag"},
		{"interface too long", hdr + "-A INPUT -i abcdefghijklmnop\n", 4, 6, `interface name "abcdefghijklmnop" is longer than 15 characters`},
		{"goto undeclared", hdr + "-A INPUT -j ACCEPT\n-A INPUT -g NOPE\nCOMMIT\n", 4, 7, "-g NOPE: table filter has no chain NOPE: expected -g to a user-defined chain"},
		{"goto extension", hdr + "-A INPUT -g ACCEPT\nCOMMIT\n", 4, 6, "-g ACCEPT: table filter has no chain ACCEPT"},
		{"jump to builtin", hdr + "-A A -j FORWARD\nCOMMIT\n", 4, 6, "jump to built-in chain FORWARD"},
		{"goto builtin", hdr + "-A A -g INPUT\nCOMMIT\n", 4, 6, "jump to built-in chain INPUT"},
		{"chain jump with options", hdr + "-A INPUT -j A --foo 1\nCOMMIT\n", 4, 6, "option --foo after a jump to chain A: expected no options"},
		{"loop", hdr + "-A INPUT -j A\n-A A -j B\n-A B -g A\nCOMMIT\n", 4, 8, "jump to A makes a loop (A -> B -> A)"},
		{"self loop", hdr + "-A A -j RETURN\n-A A -j A\nCOMMIT\n", 4, 7, "jump to A makes a loop (A -> A)"},
		{"counters twice", hdr + "[1:2] -A INPUT -c 1 2 -j ACCEPT\n", 4, 6, "counters given twice"},
		{"bad inline counters", hdr + "-A INPUT -c 1 -j ACCEPT\n", 4, 6, "malformed -c: expected -c PACKETS BYTES"},
		{"inline counters at end", hdr + "-A INPUT -j ACCEPT -c 1\n", 4, 6, "malformed -c"},
		{"bad counter prefix", hdr + "[1:x] -A INPUT -j ACCEPT\n", 4, 6, `malformed counters "[1:x]"`},
		{"unterminated counter prefix", hdr + "[1:2 -A INPUT\n", 4, 6, "unterminated counters"},
		{"counters without rule", hdr + "[1:2]\n", 4, 6, "expected a rule after the counters"},
		{"counters glued to rule", hdr + "[1:2]-A INPUT\n", 4, 6, "expected a rule after the counters"},
		{"counters then garbage", hdr + "[1:2] COMMIT\n", 4, 6, "expected a rule after the counters"},
		{"commit with text", hdr + "COMMIT now\n", 4, 6, "expected COMMIT alone on its line"},
		{"garbage line", hdr + "hello\n", 4, 6, "unrecognised line: expected *TABLE, :CHAIN POLICY"},
		{"lowercase commit", hdr + "commit\n", 4, 6, "unrecognised line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := ParseString("bad.save", tc.text, tc.family)
			if rs != nil {
				t.Errorf("got a ruleset with the error")
			}
			var ie *ingest.Error
			if !errors.As(err, &ie) {
				t.Fatalf("got %T %v, want *ingest.Error", err, err)
			}
			if ie.File != "bad.save" || ie.Line != tc.line || !strings.Contains(ie.Msg, tc.msg) {
				t.Errorf("got %s:%d %q\nwant %s:%d containing %q", ie.File, ie.Line, ie.Msg, "bad.save", tc.line, tc.msg)
			}
			if tc.line > 0 {
				if want := strings.Split(tc.text, "\n")[tc.line-1]; ie.Text != want {
					t.Errorf("error text %q, want line %q", ie.Text, want)
				}
			}
			if !strings.Contains(ie.Msg, "expected") && !strings.Contains(ie.Msg, "expect") {
				t.Errorf("message %q does not say what was expected", ie.Msg)
			}
		})
	}
}
