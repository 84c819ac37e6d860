// Package sysctl reads `sysctl -a` output (or any subset, or a
// sysctl.conf): "name = value" lines, in the dotted or the slash form.
//
// Blank lines, # and ; comments, pasted prompt lines and the "sysctl:
// permission denied on key ..." complaints `sysctl -a` prints for keys it
// cannot read are skipped. Every key is kept, known to pktflow or not; a
// later line for the same key wins, as with sysctl -p. Names are
// normalised to the dotted form sysctl -a prints (Norm).
package sysctl

import (
	"io"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// Parse reads sysctl lines.
func Parse(file string, r io.Reader) (map[string]model.Sysctl, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	out := map[string]model.Sysctl{}
	for i, raw := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(raw)
		if t == "" || t[0] == '#' || t[0] == ';' || strings.HasPrefix(t, "sysctl: ") || strings.HasPrefix(t, "```") || isPrompt(t) {
			continue
		}
		k, v, found := strings.Cut(t, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !found || k == "" || strings.ContainsAny(k, " \t") {
			return nil, ingest.Errorf(file, i+1, t, "expected a sysctl line like \"net.ipv4.ip_forward = 1\"")
		}
		out[Norm(k)] = model.Sysctl{Value: v, Origin: model.Origin{File: file, Line: i + 1, Text: t}}
	}
	return out, nil
}

// Norm writes a sysctl name in the dotted form sysctl -a prints. The
// slash form (net/ipv4/conf/eth0.100/rp_filter, or a /proc/sys path)
// swaps the roles of '/' and '.', as sysctl(8) does, so that interface
// names with dots survive: net.ipv4.conf.eth0/100.rp_filter.
func Norm(k string) string {
	k = strings.TrimPrefix(k, "/proc/sys/")
	slash, dot := strings.IndexByte(k, '/'), strings.IndexByte(k, '.')
	if slash < 0 || (dot >= 0 && dot < slash) {
		return k // dotted form; a '/' is part of an interface name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '.'
		case '.':
			return '/'
		}
		return r
	}, k)
}

// isPrompt recognises the echo of the command a file was made with,
// "[root@mayura ~]# sysctl -a" or "$ sysctl -a", which carries no setting.
func isPrompt(t string) bool {
	if strings.HasPrefix(t, "$ ") {
		return true
	}
	if t[0] == '[' {
		if i := strings.Index(t, "]"); i > 0 && i+1 < len(t) && (t[i+1] == '#' || t[i+1] == '$') {
			return true
		}
	}
	return ingest.PromptCommand(t) != ""
}
