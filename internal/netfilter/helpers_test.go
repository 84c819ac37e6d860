package netfilter

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest/iptsave"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/packet"
)

// saveText turns a short test ruleset into iptables-save text: "*table"
// lines start tables (filter if none), declarations missing for chains
// that have -A rules are added (built-in chains with policy ACCEPT; an
// empty user chain must be declared explicitly), and each table is
// COMMITted.
func saveText(src string) string {
	type tbl struct {
		name     string
		declared map[string]bool
		decls    []string
		rules    []string
	}
	var tables []*tbl
	var cur *tbl
	builtins := map[string]bool{"PREROUTING": true, "INPUT": true, "FORWARD": true, "OUTPUT": true, "POSTROUTING": true}
	// Explicit declarations first, so that auto-declaration never
	// duplicates one written later in the text.
	explicit := map[string]map[string]bool{}
	tname := "filter"
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "*") {
			tname = line[1:]
		} else if strings.HasPrefix(line, ":") {
			if explicit[tname] == nil {
				explicit[tname] = map[string]bool{}
			}
			explicit[tname][strings.Fields(line[1:])[0]] = true
		}
	}
	declare := func(name string) {
		if cur.declared[name] || knownTargets[name] || explicit[cur.name][name] {
			return
		}
		cur.declared[name] = true
		if builtins[name] {
			cur.decls = append(cur.decls, ":"+name+" ACCEPT [0:0]")
		} else {
			cur.decls = append(cur.decls, ":"+name+" - [0:0]")
		}
	}
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			cur = &tbl{name: line[1:], declared: map[string]bool{}}
			tables = append(tables, cur)
		case strings.HasPrefix(line, ":"):
			if cur == nil {
				cur = &tbl{name: "filter", declared: map[string]bool{}}
				tables = append(tables, cur)
			}
			cur.decls = append(cur.decls, line)
		default:
			if cur == nil {
				cur = &tbl{name: "filter", declared: map[string]bool{}}
				tables = append(tables, cur)
			}
			f := strings.Fields(line)
			if len(f) > 1 && f[0] == "-A" {
				declare(f[1])
			}
			cur.rules = append(cur.rules, line)
		}
	}
	var b strings.Builder
	for _, t := range tables {
		fmt.Fprintf(&b, "*%s\n", t.name)
		for _, d := range t.decls {
			b.WriteString(d + "\n")
		}
		for _, r := range t.rules {
			b.WriteString(r + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

func parse(t testing.TB, family int, src string) *model.Ruleset {
	t.Helper()
	rs, err := iptsave.ParseString("test.rules", saveText(src), family)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, saveText(src))
	}
	return rs
}

func mustCompile(t testing.TB, family int, src string) *Compiled {
	t.Helper()
	c, err := Compile(parse(t, family, src))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

func compileErr(t testing.TB, family int, src string) error {
	t.Helper()
	_, err := Compile(parse(t, family, src))
	return err
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func tcpPkt(src string, sport uint16, dst string, dport uint16) *packet.Packet {
	return &packet.Packet{Src: addr(src), Dst: addr(dst), Proto: packet.TCP, SPort: sport, DPort: dport, TCPFlags: packet.SYN, TTL: 64}
}

func udpPkt(src string, sport uint16, dst string, dport uint16) *packet.Packet {
	return &packet.Packet{Src: addr(src), Dst: addr(dst), Proto: packet.UDP, SPort: sport, DPort: dport, TTL: 64}
}

func icmpPkt(src, dst string, typ, code uint8) *packet.Packet {
	p := &packet.Packet{Src: addr(src), Dst: addr(dst), Proto: packet.ICMP, ICMPType: typ, ICMPCode: code, TTL: 64}
	if addr(src).Is6() {
		p.Proto = packet.ICMPv6
	}
	return p
}

// newCtx is a NEW connection's context for a packet.
func newCtx(p *packet.Packet) *Ctx {
	return &Ctx{Pkt: p, State: CTNew, OrigSrc: p.Src, OrigDst: p.Dst, OrigSPort: p.SPort, OrigDPort: p.DPort,
		ReplySrc: p.Dst, ReplyDst: p.Src, ReplySPort: p.DPort, ReplyDPort: p.SPort}
}

// trail renders steps compactly: "CHAIN#pos:what" (pos 0 for steps
// without a rule), space-separated.
func trail(r Result) string {
	var parts []string
	for _, s := range r.Steps {
		pos := 0
		if s.Rule != nil {
			pos = s.Rule.Pos
		}
		parts = append(parts, fmt.Sprintf("%s#%d:%s", s.Chain, pos, s.What))
	}
	return strings.Join(parts, " ")
}

func dump(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict %v reject %q nat %+v notrack %v\n", r.Verdict, r.Reject, r.NAT, r.NoTrack)
	for _, s := range r.Steps {
		b.WriteString("  " + s.String() + "\n")
	}
	for _, u := range r.Uncertain {
		b.WriteString("  uncertain: " + u + "\n")
	}
	return b.String()
}
