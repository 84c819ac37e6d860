// Package conntrack reads `conntrack -L` output (conntrack-tools 1.4.x,
// both families, with or without `-o extended`) and the same lines from
// /proc/net/nf_conntrack into the pre-existing connections of a node.
//
// Each line is "[L3 L3NUM] PROTO PROTONUM TIMEOUT [STATE] ORIGINAL-TUPLE
// [FLAGS] REPLY-TUPLE [FLAGS] key=value...": a tuple is src= dst= and the
// protocol's keys (sport= dport= for TCP, UDP, SCTP, DCCP and UDP-Lite;
// type= code= id= for ICMP and ICMPv6; srckey= dstkey= for GRE). For ICMP
// echo the tuple's ports hold the echo id, as the model wants. Status
// words in brackets ([ASSURED], [UNREPLIED], [OFFLOAD] ...) become Flags;
// mark= and zone= are kept; other keys (use=, secctx=, labels=, helper=,
// timestamps) do not change a path and are accepted. The summary line
// conntrack prints to stderr ("conntrack v1.4.5 (conntrack-tools): 3 flow
// entries have been shown.") and pasted prompts are skipped.
package conntrack

import (
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// Parse reads conntrack -L output.
func Parse(file string, r io.Reader) ([]model.ConntrackEntry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	var out []model.ConntrackEntry
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimRight(raw, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "```") || ingest.PromptCommand(t) != "" ||
			(strings.HasPrefix(t, "conntrack v") && strings.Contains(t, "flow entries have been shown")) {
			continue
		}
		e, msg := entry(t)
		if msg != "" {
			return nil, ingest.Errorf(file, n, line, "%s", msg)
		}
		e.Origin = model.Origin{File: file, Line: n, Text: line}
		out = append(out, e)
	}
	return out, nil
}

const want = "expected a conntrack -L line: PROTO NUM TIMEOUT [STATE] src=... dst=... [sport=... dport=...] src=... dst=... ..."

// protoNums are the layer-4 protocols conntrack names.
var protoNums = map[string]int{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "dccp": 33,
	"udplite": 136, "gre": 47, "unknown": -1}

func entry(t string) (model.ConntrackEntry, string) {
	var e model.ConntrackEntry
	f := strings.Fields(t)
	k := 0
	// "-o extended" and /proc/net/nf_conntrack start with the family.
	if len(f) > 2 && (f[0] == "ipv4" || f[0] == "ipv6") {
		e.Family = 4
		if f[0] == "ipv6" {
			e.Family = 6
		}
		if !isNum(f[1]) {
			return e, want
		}
		k = 2
	}
	if k+3 > len(f) {
		return e, want
	}
	proto := f[k]
	num, known := protoNums[proto]
	if !known {
		return e, "unknown protocol " + strconv.Quote(proto) + "; " + want
	}
	if !isNum(f[k+1]) || (num >= 0 && strconv.Itoa(num) != f[k+1]) {
		return e, "protocol number " + strconv.Quote(f[k+1]) + " does not match " + proto
	}
	to, err := strconv.Atoi(f[k+2])
	if err != nil || to < 0 {
		return e, "timeout " + strconv.Quote(f[k+2]) + ": expected the seconds left"
	}
	e.Proto, e.Timeout = proto, to
	if proto == "unknown" {
		e.Proto = "proto-" + f[k+1]
	}
	k += 3
	if k < len(f) && !strings.Contains(f[k], "=") && !strings.HasPrefix(f[k], "[") {
		e.State = f[k]
		k++
	}
	tuple := 0 // 1 original, 2 reply
	var cur *model.Tuple
	seen := map[string]bool{}
	for ; k < len(f); k++ {
		w := f[k]
		if strings.HasPrefix(w, "[") && strings.HasSuffix(w, "]") {
			e.Flags = append(e.Flags, w[1:len(w)-1])
			continue
		}
		key, val, ok := strings.Cut(w, "=")
		if !ok {
			return e, "unexpected " + strconv.Quote(w) + "; " + want
		}
		if key == "src" {
			tuple++
			if tuple > 2 {
				return e, "a third src=: expected the original and the reply tuple only"
			}
			cur = &e.Orig
			if tuple == 2 {
				cur = &e.Reply
			}
			seen = map[string]bool{}
		}
		switch key {
		case "src", "dst", "sport", "dport", "type", "code", "id", "srckey", "dstkey":
			if cur == nil {
				return e, key + "= before src=: " + want
			}
			if seen[key] {
				return e, key + "= twice in one tuple: expected src= to start the reply tuple"
			}
			seen[key] = true
		}
		switch key {
		case "src", "dst":
			a, err := netip.ParseAddr(val)
			if err != nil || a.Zone() != "" {
				return e, key + "=" + val + ": expected an IP address"
			}
			if key == "src" {
				cur.Src = a
			} else {
				cur.Dst = a
			}
		case "sport", "dport", "id":
			p, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return e, key + "=" + val + ": expected a number from 0 to 65535"
			}
			switch key {
			case "sport":
				cur.SPort = uint16(p)
			case "dport":
				cur.DPort = uint16(p)
			case "id":
				// ICMP: the echo id in both port fields.
				cur.SPort, cur.DPort = uint16(p), uint16(p)
			}
		case "type", "code":
			if _, err := strconv.ParseUint(val, 10, 8); err != nil {
				return e, key + "=" + val + ": expected a number from 0 to 255"
			}
		case "mark":
			m, err := strconv.ParseUint(val, 0, 32)
			if err != nil {
				return e, "mark=" + val + ": expected a number"
			}
			e.Mark = uint32(m)
		case "zone":
			z, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return e, "zone=" + val + ": expected a number"
			}
			e.Zone = int(z)
		}
	}
	if tuple != 2 {
		return e, "expected an original and a reply tuple (two src= ... dst= ...)"
	}
	for _, tp := range []model.Tuple{e.Orig, e.Reply} {
		if !tp.Src.IsValid() || !tp.Dst.IsValid() || tp.Src.Is4() != tp.Dst.Is4() {
			return e, "each tuple needs src= and dst= of one family"
		}
	}
	if e.Orig.Src.Is4() != e.Reply.Src.Is4() {
		return e, "the original and reply tuples are of different families"
	}
	fam := 6
	if e.Orig.Src.Is4() {
		fam = 4
	}
	if e.Family != 0 && e.Family != fam {
		return e, "the line says " + f[0] + " but its addresses are IPv" + strconv.Itoa(fam)
	}
	e.Family = fam
	switch e.Proto {
	case "tcp", "udp", "sctp", "dccp", "udplite":
		if !seen["sport"] && e.Orig.SPort == 0 && e.Orig.DPort == 0 {
			return e, e.Proto + " entry without sport= and dport="
		}
	}
	return e, ""
}

func isNum(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
