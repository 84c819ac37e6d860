package collect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/snapshot"
)

// fileOrder is the order node files are written and listed in.
var fileOrder = []string{"ip-addr", "ip-route", "ip6-route", "ip-rule", "ip-neigh", "iptables-save", "ip6tables-save", "sysctl"}

// Write writes the snapshot folder: topology.yaml, nodes/NAME/* and
// extra/NAME/*. dir must not exist or be empty: a collection never
// overwrites files. It then loads the folder as pktflow would; a line
// pktflow cannot read in an iproute2 file (a route type it does not
// model, say) is turned into a comment that says why, so that the
// snapshot loads, and each such change is returned as a warning.
func (s *Snapshot) Write(dir string) (warnings []string, err error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s is not empty; collect writes a new snapshot folder", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, n := range s.Nodes {
		nd := filepath.Join(dir, "nodes", n.Target.Node)
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return nil, err
		}
		for _, f := range fileOrder {
			if text, ok := n.Files[f]; ok {
				if err := os.WriteFile(filepath.Join(nd, f), []byte(text), 0o644); err != nil {
					return nil, err
				}
			}
		}
		if len(n.Extra) > 0 {
			ed := filepath.Join(dir, "extra", n.Target.Node)
			if err := os.MkdirAll(ed, 0o755); err != nil {
				return nil, err
			}
			for name, text := range n.Extra {
				if err := os.WriteFile(filepath.Join(ed, name), []byte(text), 0o644); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, snapshot.TopologyFile), []byte(s.topology()), 0o644); err != nil {
		return nil, err
	}
	return s.makeLoadable(dir)
}

// topology renders topology.yaml.
func (s *Snapshot) topology() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Collected by `pktflow collect` on %s at %s.\n", s.Host, s.Time.Format("2006-01-02T15:04:05Z"))
	b.WriteString("# nodes/NAME/ holds each network namespace's `ip addr show`, `ip -4 route show table all`\n")
	b.WriteString("# (ip-route), `ip -6 route show table all` (ip6-route), `ip rule`, `ip neigh`,\n")
	b.WriteString("# iptables-save/ip6tables-save and sysctls as the commands print them; this file adds\n")
	b.WriteString("# what no single command prints.\n")
	b.WriteString("nodes:\n")
	for _, n := range s.Nodes {
		fmt.Fprintf(&b, "  %s:\n", n.Target.Node)
		fmt.Fprintf(&b, "    kind: %s  # %s\n", n.Kind, oneLine(n.Target.How))
		for _, note := range n.Notes {
			fmt.Fprintf(&b, "    # %s\n", oneLine(note))
		}
		if n.TTL != 0 {
			fmt.Fprintf(&b, "    ttl: %d  # net.ipv4.ip_default_ttl\n", n.TTL)
		}
		if len(n.Listen) > 0 {
			q := make([]string, len(n.Listen))
			for i, l := range n.Listen {
				q[i] = strconv.Quote(l)
			}
			fmt.Fprintf(&b, "    listen: [%s]\n", strings.Join(q, ", "))
		}
		if len(n.IfaceKinds) > 0 {
			var names []string
			for k := range n.IfaceKinds {
				names = append(names, k)
			}
			sort.Strings(names)
			b.WriteString("    iface_kinds:  # what netlink says these devices are\n")
			for _, k := range names {
				fmt.Fprintf(&b, "      %s: %s\n", strconv.Quote(k), n.IfaceKinds[k])
			}
		}
	}
	if len(s.Links) > 0 {
		b.WriteString("links:  # veth pairs, from each end's peer index and link-netnsid\n")
		for _, l := range s.Links {
			fmt.Fprintf(&b, "  - veth: [%s, %s]\n", strconv.Quote(l[0].String()), strconv.Quote(l[1].String()))
		}
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// commentable are the files where a line pktflow cannot read can be
// commented out without changing what the rest of the file means.
var commentable = map[string]bool{"ip-addr": true, "ip-route": true, "ip6-route": true, "ip-rule": true, "ip-neigh": true, "sysctl": true}

// makeLoadable loads the folder and comments out the iproute2 lines the
// loader rejects, until it loads or nothing more can be done.
func (s *Snapshot) makeLoadable(dir string) ([]string, error) {
	var warnings []string
	for round := 0; round < 20; round++ {
		_, err := snapshot.Load(dir)
		if err == nil {
			return warnings, nil
		}
		var fixed bool
		var rest []error
		for _, e := range flatten(err) {
			var ie *ingest.Error
			if !errors.As(e, &ie) || ie.Line == 0 {
				rest = append(rest, e)
				continue
			}
			rel, rerr := filepath.Rel(dir, ie.File)
			base := filepath.Base(rel)
			if rerr != nil || !strings.HasPrefix(rel, "nodes"+string(filepath.Separator)) || !commentable[base] {
				rest = append(rest, e)
				continue
			}
			if commentOut(filepath.Join(dir, rel), ie.Line, base == "ip-addr", ie.Msg) {
				warnings = append(warnings, fmt.Sprintf("%s:%d: commented out, pktflow cannot read it: %s", rel, ie.Line, ie.Msg))
				fixed = true
				break // line numbers of later errors are still right, but reload to be sure
			}
			rest = append(rest, e)
		}
		if !fixed {
			return warnings, fmt.Errorf("the collected snapshot does not load: %w", errors.Join(rest...))
		}
	}
	return warnings, errors.New("the collected snapshot does not load after commenting out 20 lines")
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// commentOut turns line n (1-based) into a comment saying why; for an
// ip-addr interface header, the indented lines under it too.
func commentOut(path string, n int, block bool, why string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) || strings.HasPrefix(strings.TrimSpace(lines[n-1]), "#") {
		return false
	}
	start, end := n-1, n
	if block {
		if strings.HasPrefix(lines[start], " ") {
			for start > 0 && strings.HasPrefix(lines[start], " ") {
				start--
			}
		}
		end = start + 1
		for end < len(lines) && strings.HasPrefix(lines[end], " ") {
			end++
		}
	}
	var out []string
	out = append(out, lines[:start]...)
	out = append(out, "# pktflow cannot read the next lines: "+oneLine(why))
	for _, l := range lines[start:end] {
		out = append(out, "# "+l)
	}
	out = append(out, lines[end:]...)
	return os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644) == nil
}
