package snapshot

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pktflow/pktflow/internal/ingest/sysctl"
	"github.com/pktflow/pktflow/internal/model"
)

// sysctlFile parses `sysctl -a` output (or a sysctl.conf) with the sysctl
// package: every key is kept, a later line for the same key wins.
func (ld *loader) sysctlFile(rel string) map[string]model.Sysctl {
	f, ok := ld.open(rel)
	if !ok {
		return nil
	}
	defer f.Close()
	m, err := sysctl.Parse(rel, f)
	if err != nil {
		ld.add(err)
		return nil
	}
	return m
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

// normSysctl writes a sysctl name in the dotted form sysctl -a prints
// (sysctl.Norm).
func normSysctl(k string) string { return sysctl.Norm(k) }
