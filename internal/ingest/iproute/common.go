package iproute

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// line is one input line: its 1-based number, the text as written (without
// the line end and trailing blanks) and its whitespace-separated fields.
type line struct {
	num      int
	text     string
	fields   []string
	indented bool
}

// readLines reads the whole input and returns the lines that carry
// content, skipping blank lines, comments, prompt echoes and code fences.
// Reading everything first keeps the parsers free of bufio.Scanner's line
// length limit.
func readLines(file string, r io.Reader) ([]line, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading input: %v", err)
	}
	var out []line
	n := 0
	for s := string(data); len(s) > 0; {
		var raw string
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			raw, s = s[:i], s[i+1:]
		} else {
			raw, s = s, ""
		}
		n++
		text := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(text)
		if skippable(trimmed) {
			continue
		}
		out = append(out, line{
			num:      n,
			text:     trimmed,
			fields:   strings.Fields(trimmed),
			indented: text[0] == ' ' || text[0] == '\t',
		})
	}
	return out, nil
}

// skippable reports whether a trimmed line carries no facts: blank, a
// comment, a code fence or the echo of the command that was run.
func skippable(t string) bool {
	return t == "" || t[0] == '#' || strings.HasPrefix(t, "```") || isPrompt(t)
}

// isPrompt recognises a shell prompt followed by a command, as pasted
// from a terminal: "[root@mayura ~]# ip addr show", "user@host:~$ ip r",
// "$ ip route". No iproute2 output line has this shape.
func isPrompt(t string) bool {
	if strings.HasPrefix(t, "$ ") || t == "$" {
		return true
	}
	if t[0] == '[' {
		i := strings.IndexByte(t, ']')
		if i < 0 || i+1 >= len(t) {
			return false
		}
		c := t[i+1]
		return (c == '#' || c == '$') && (i+2 == len(t) || t[i+2] == ' ')
	}
	// user@host:path# cmd — the prompt has no blank before the # or $.
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case ' ', '\t':
			return false
		case '#', '$':
			return i > 0 && strings.Contains(t[:i], "@") && (i+1 == len(t) || t[i+1] == ' ')
		}
	}
	return false
}

// errf builds an *ingest.Error for a line.
func errf(file string, l line, format string, args ...any) *ingest.Error {
	return ingest.Errorf(file, l.num, l.text, format, args...)
}

// origin records where a value came from.
func origin(file string, l line) model.Origin {
	return model.Origin{File: file, Line: l.num, Text: l.text}
}

// parseAddr parses an address without a zone: a zone names an interface
// of the machine that printed it and has no meaning in a snapshot.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// parsePrefixOrHost parses "10.0.0.0/8" or a bare address, which iproute2
// prints for host routes and means /32 (or /128). It rejects prefixes with
// host bits set, which the kernel would refuse as a route destination.
func parsePrefixOrHost(s string) (netip.Prefix, string) {
	if !strings.Contains(s, "/") {
		a, ok := parseAddr(s)
		if !ok {
			return netip.Prefix{}, "an address or prefix"
		}
		return netip.PrefixFrom(a, a.BitLen()), ""
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return netip.Prefix{}, "an address or prefix"
	}
	if p.Masked() != p {
		return netip.Prefix{}, "a prefix without host bits set (did you mean " + p.Masked().String() + "?)"
	}
	return p, ""
}

// canonicalMAC returns a link-layer address in lower-case colon form, or
// false if it is not one.
func canonicalMAC(s string) (string, bool) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return "", false
	}
	return hw.String(), true
}

// parseTable maps a routing table name or number to its number. Only the
// names every system has are known: other names come from the machine's
// /etc/iproute2/rt_tables, which a snapshot does not carry.
func parseTable(s string) (int, string) {
	switch s {
	case "local":
		return model.TableLocal, ""
	case "main":
		return model.TableMain, ""
	case "default":
		return model.TableDefault, ""
	case "unspec":
		// ip -6 route show table all prints the catch-all "unreachable
		// default dev lo table unspec" route in table 0.
		return 0, ""
	case "[l3mdev-table]":
		return 0, "l3mdev (VRF) table lookups are not modelled" + removeHint
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, "unknown routing table name " + strconv.Quote(s) +
			": pktflow knows local, main and default; replace the name with its number from /etc/iproute2/rt_tables"
	}
	return int(n), ""
}

// removeHint ends messages about input the model cannot represent: the
// user may knowingly drop the line and trace without it.
const removeHint = "; remove the line to trace without it"

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoi parses a small non-negative decimal number (at most 32 bits).
func atoi(s string) (int, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}
