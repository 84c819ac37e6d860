// Package ss reads the socket listings of `ss -tulpn`, `ss -tuln`, `ss -H
// -tuln` (and -t or -u alone, with or without -p and -a) into the
// listeners of a node.
//
// A TCP socket in state LISTEN and a UDP socket in state UNCONN answer
// packets and become model.Listeners; other sockets (ESTAB, TIME-WAIT ...
// in an `ss -a` listing) are connections, not listeners, and are passed
// over. Both address styles are read: iproute2 4.x (`*:22`, `:::22`) and
// 5.x/6.x (`0.0.0.0:22`, `[::]:22`, `*:80` for a dual-stack socket), with
// a bound device (`0.0.0.0%virbr0:67`, `[fe80::1]%eth0:546`).
//
// An unspecified address (0.0.0.0, ::) is kept as such, so the listener
// keeps its family; `*` becomes an invalid address (any). Errors are
// *ingest.Error naming the file, line and what was expected.
package ss

import (
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

var netids = map[string]bool{"tcp": true, "udp": true, "raw": true, "sctp": true, "dccp": true, "mptcp": true,
	"u_str": true, "u_dgr": true, "u_seq": true, "nl": true, "p_raw": true, "p_dgr": true, "v_str": true, "v_dgr": true, "xdp": true, "tipc": true}

var states = map[string]bool{"LISTEN": true, "UNCONN": true, "ESTAB": true, "TIME-WAIT": true, "SYN-SENT": true,
	"SYN-RECV": true, "FIN-WAIT-1": true, "FIN-WAIT-2": true, "CLOSE-WAIT": true, "LAST-ACK": true, "CLOSING": true,
	"CLOSED": true, "UNKNOWN": true, "CLOSE": true, "BOUND-INACTIVE": true}

// Parse reads ss output.
func Parse(file string, r io.Reader) ([]model.Listener, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	var out []model.Listener
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimRight(raw, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "```") || ingest.PromptCommand(t) != "" {
			continue
		}
		f := strings.Fields(t)
		if f[0] == "Netid" || f[0] == "State" {
			continue // the column header
		}
		k := 0
		proto := ""
		if netids[f[0]] {
			proto = f[0]
			k = 1
		}
		if k >= len(f) || !states[f[k]] {
			return nil, ingest.Errorf(file, n, line, "expected a socket line: [Netid] State Recv-Q Send-Q Local-Address:Port Peer-Address:Port [Process] (the output of ss -tulpn)")
		}
		state := f[k]
		if proto == "" {
			// ss prints no Netid column when one socket type was
			// asked for: -t lists LISTEN sockets, -u UNCONN ones.
			switch state {
			case "LISTEN":
				proto = "tcp"
			case "UNCONN":
				proto = "udp"
			}
		}
		if len(f) < k+5 {
			return nil, ingest.Errorf(file, n, line, "expected Recv-Q, Send-Q, the local and the peer address after the state")
		}
		if !digits(f[k+1]) || !digits(f[k+2]) {
			return nil, ingest.Errorf(file, n, line, "Recv-Q %q and Send-Q %q: expected numbers", f[k+1], f[k+2])
		}
		local := f[k+3]
		listening := (proto == "tcp" && state == "LISTEN") || (proto == "udp" && state == "UNCONN")
		if !listening {
			continue
		}
		l, msg := localAddr(local)
		if msg != "" {
			return nil, ingest.Errorf(file, n, line, "local address %q: %s", local, msg)
		}
		l.Proto = proto
		if len(f) > k+5 {
			// The process column may hold blanks in a program name.
			rest := t
			for j := 0; j < k+5; j++ {
				rest = strings.TrimLeft(rest, " \t")
				rest = rest[len(f[j]):]
			}
			l.Process = strings.TrimSpace(rest)
		}
		l.Origin = model.Origin{File: file, Line: n, Text: line}
		out = append(out, l)
	}
	return out, nil
}

// localAddr reads "0.0.0.0:22", "[::]:22", "*:80", ":::22",
// "127.0.0.53%lo:53", "*%virbr0:67", "[fe80::1]%eth0:546".
func localAddr(s string) (model.Listener, string) {
	var l model.Listener
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return l, "expected ADDRESS:PORT"
	}
	host, port := s[:i], s[i+1:]
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return l, "expected a port number after the last ':'"
	}
	l.Port = uint16(p)
	if j := strings.LastIndexByte(host, '%'); j >= 0 && !strings.Contains(host[j:], "]") {
		l.Dev = host[j+1:]
		host = host[:j]
		if l.Dev == "" || len(l.Dev) > 15 || strings.ContainsAny(l.Dev, "/: ") {
			return l, "expected an interface name after %"
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "*" {
		return l, ""
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return l, "expected an IPv4 or IPv6 address (or *) before the port"
	}
	l.Addr = a.WithZone("").Unmap()
	return l, ""
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
