package snapshot

import (
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// sysctlFile parses `sysctl -a` output (or a sysctl.conf): "name = value"
// lines. Blank lines, # and ; comments and the "sysctl: permission
// denied ..." complaints that sysctl -a prints for unreadable keys are
// skipped. Every key is kept, known to pktflow or not; a later line for the
// same key wins, as with sysctl -p.
func (ld *loader) sysctlFile(rel string) map[string]model.Sysctl {
	f, ok := ld.open(rel)
	if !ok {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		ld.fail(rel, 0, "reading: %v", err)
		return nil
	}
	out := map[string]model.Sysctl{}
	for i, raw := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(raw)
		if t == "" || t[0] == '#' || t[0] == ';' || strings.HasPrefix(t, "sysctl: ") || isPromptLine(t) {
			continue
		}
		k, v, found := strings.Cut(t, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !found || k == "" || strings.ContainsAny(k, " \t") {
			ld.add(ingest.Errorf(rel, i+1, t, "expected a sysctl line like \"net.ipv4.ip_forward = 1\""))
			return nil
		}
		out[normSysctl(k)] = model.Sysctl{Value: v, Origin: model.Origin{File: rel, Line: i + 1, Text: t}}
	}
	return out
}

// inlineSysctl reads sysctl: from topology.yaml. YAML booleans become 1
// and 0, which is what the kernel stores.
func (ld *loader) inlineSysctl(v *yaml.Node) map[string]model.Sysctl {
	keys, vals, _ := ld.pairs(v, "sysctl")
	out := map[string]model.Sysctl{}
	for i, k := range keys {
		val := resolve(vals[i])
		if val == nil || val.Kind != yaml.ScalarNode || isNull(val) {
			ld.fail(TopologyFile, k.Line, "sysctl %s: expected a single value; write names flat (net.ipv4.ip_forward: 1)", k.Value)
			continue
		}
		s := val.Value
		if val.Tag == "!!bool" {
			s = map[bool]string{true: "1", false: "0"}[strings.EqualFold(s, "true") || strings.EqualFold(s, "yes") || strings.EqualFold(s, "on")]
		}
		out[normSysctl(k.Value)] = model.Sysctl{Value: s, Origin: ld.topoOrigin(k.Line)}
	}
	return out
}

// normSysctl writes a sysctl name in the dotted form sysctl -a prints.
// The slash form (net/ipv4/conf/eth0.100/rp_filter, or a /proc/sys path)
// swaps the roles of '/' and '.', as sysctl(8) does, so that interface
// names with dots survive: net.ipv4.conf.eth0/100.rp_filter.
func normSysctl(k string) string {
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

// isPromptLine recognises the echo of the command a file was made with,
// "[root@mayura ~]# sysctl -a" or "$ sysctl -a", which carries no setting.
func isPromptLine(t string) bool {
	if strings.HasPrefix(t, "$ ") {
		return true
	}
	if t[0] == '[' {
		if i := strings.Index(t, "]"); i > 0 && i+1 < len(t) && (t[i+1] == '#' || t[i+1] == '$') {
			return true
		}
	}
	return false
}
