// Package merge joins snapshot folders taken on separate machines — a VM
// and the host it runs on, say — into one snapshot.
//
// Nodes keep their names and files; two snapshots with a node of the same
// name are an error naming both. Links, names and inline nodes of every
// topology.yaml are kept, and an extra topology.yaml (Options.Links) may
// add wires, names and inline nodes (a router, the internet) that no
// machine reported. Then every host tap is joined to the guest NIC it
// carries, by libvirt's convention: the tap's MAC is the guest NIC's with
// the first byte set to fe (fe:54:00:xx:yy:zz carries 52:54:00:xx:yy:zz).
// Such a guest node of kind host becomes kind vm. The result is loaded
// with snapshot.Load before it is put in place, so a merge never leaves a
// folder pktflow cannot read.
package merge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/snapshot"
)

// Options say what to merge.
type Options struct {
	// Output is the folder to write; it must not exist or be empty.
	Output string
	// Snapshots are the folders to join, in order.
	Snapshots []string
	// Links is an optional extra topology.yaml with links, names and
	// inline nodes.
	Links string
}

// Result says what the merge did.
type Result struct {
	Nodes int
	// Taps are the tap links added from MACs, as "host:tap guest:nic".
	Taps []string
	// Notes are things a person should know (an ambiguous tap, ...).
	Notes []string
}

// source is one input topology: where it came from and its parts.
type source struct {
	name  string // the folder, or the --links file
	dir   string // "" for the --links file
	nodes []*yaml.Node
	vals  []*yaml.Node
	links []*yaml.Node
	names []*yaml.Node // key, value pairs flattened
	model *model.Snapshot
}

// Merge joins the snapshots into Options.Output.
func Merge(opt Options) (*Result, error) {
	if opt.Output == "" {
		return nil, errors.New("merge: no output folder")
	}
	if len(opt.Snapshots) == 0 {
		return nil, errors.New("merge: no snapshot to merge")
	}
	if ents, err := os.ReadDir(opt.Output); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("merge: %s is not empty", opt.Output)
	}
	var srcs []*source
	for _, dir := range opt.Snapshots {
		s, err := readSource(dir, filepath.Join(dir, snapshot.TopologyFile))
		if err != nil {
			return nil, err
		}
		m, err := snapshot.Load(dir)
		if err != nil {
			return nil, fmt.Errorf("merge: snapshot %s does not load: %w", dir, err)
		}
		s.dir, s.model = dir, m
		srcs = append(srcs, s)
	}
	if opt.Links != "" {
		s, err := readSource("", opt.Links)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, s)
	}

	res := &Result{}
	doc := &yaml.Node{Kind: yaml.MappingNode}
	nodes := &yaml.Node{Kind: yaml.MappingNode}
	links := &yaml.Node{Kind: yaml.SequenceNode}
	names := &yaml.Node{Kind: yaml.MappingNode}
	owner := map[string]string{}
	nameOwner := map[string]*source{}
	nameVal := map[string]string{}
	var errs []error
	for _, s := range srcs {
		for i, k := range s.nodes {
			if prev, dup := owner[k.Value]; dup {
				errs = append(errs, fmt.Errorf("merge: node %s is in both %s and %s; rename one (its folder under nodes/ and its entries in topology.yaml)", k.Value, prev, s.name))
				continue
			}
			owner[k.Value] = s.name
			nodes.Content = append(nodes.Content, k, s.vals[i])
			res.Nodes++
		}
		links.Content = append(links.Content, s.links...)
		for i := 0; i+1 < len(s.names); i += 2 {
			k, v := s.names[i], s.names[i+1]
			text := render(v)
			if prev, dup := nameOwner[k.Value]; dup {
				if nameVal[k.Value] != text {
					errs = append(errs, fmt.Errorf("merge: name %s means %s in %s but %s in %s", k.Value, nameVal[k.Value], prev.name, text, s.name))
				}
				continue
			}
			nameOwner[k.Value], nameVal[k.Value] = s, text
			names.Content = append(names.Content, k, v)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	taps := tapLinks(srcs, links, res)
	for _, t := range taps {
		links.Content = append(links.Content, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			scalar("tap"),
			{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{scalar(t.host.String()), scalar(t.guest.String())}},
		}})
		res.Taps = append(res.Taps, t.host.String()+" "+t.guest.String())
		setVM(nodes, t.guest.Node)
	}

	doc.Content = append(doc.Content, scalar("nodes"), nodes)
	if len(links.Content) > 0 {
		doc.Content = append(doc.Content, scalar("links"), links)
	}
	if len(names.Content) > 0 {
		doc.Content = append(doc.Content, scalar("names"), names)
	}
	var from []string
	for _, s := range srcs {
		from = append(from, s.name)
	}
	doc.HeadComment = "Merged by `pktflow snapshot merge` from " + strings.Join(from, ", ") + "."
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}); err != nil {
		return nil, fmt.Errorf("merge: writing topology.yaml: %w", err)
	}
	enc.Close()
	text := buf.Bytes()

	// Build beside the output, check it loads, then move it in place.
	parent := filepath.Dir(filepath.Clean(opt.Output))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, ".pktflow-merge-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, s := range srcs {
		if s.dir == "" {
			continue
		}
		for _, sub := range []string{"nodes", "extra"} {
			if err := copyTree(filepath.Join(s.dir, sub), filepath.Join(tmp, sub)); err != nil {
				return nil, fmt.Errorf("merge: copying %s: %w", filepath.Join(s.dir, sub), err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, snapshot.TopologyFile), text, 0o644); err != nil {
		return nil, err
	}
	if _, err := snapshot.Load(tmp); err != nil {
		return nil, fmt.Errorf("merge: the merged snapshot does not load: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, opt.Output); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	return res, nil
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

func render(n *yaml.Node) string {
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Sprint(n.Value)
	}
	return strings.TrimSpace(string(b))
}

// readSource reads a topology.yaml's top-level parts.
func readSource(dir, file string) (*source, error) {
	name := dir
	if name == "" {
		name = file
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("merge: %s: %w", file, err)
	}
	s := &source{name: name}
	if len(doc.Content) == 0 {
		if dir == "" {
			return s, nil
		}
		return nil, fmt.Errorf("merge: %s is empty", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("merge: %s: expected a mapping with nodes, links and names", file)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "nodes":
			if v.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("merge: %s:%d: nodes must be a mapping", file, v.Line)
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				s.nodes = append(s.nodes, v.Content[j])
				s.vals = append(s.vals, v.Content[j+1])
			}
		case "links":
			if v.Kind == yaml.SequenceNode {
				s.links = append(s.links, v.Content...)
			} else if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
				return nil, fmt.Errorf("merge: %s:%d: links must be a list", file, v.Line)
			}
		case "names":
			if v.Kind == yaml.MappingNode {
				s.names = append(s.names, v.Content...)
			}
		default:
			return nil, fmt.Errorf("merge: %s:%d: unknown top-level key %q; expected nodes, links or names", file, k.Line, k.Value)
		}
	}
	return s, nil
}

// tap is a host tap and the guest NIC it carries.
type tap struct{ host, guest model.Endpoint }

// tapLinks finds, for each host interface whose MAC starts with fe, the
// one guest interface elsewhere with the same MAC but for the first byte.
// Interfaces already on a link are left alone.
func tapLinks(srcs []*source, links *yaml.Node, res *Result) []tap {
	wired := map[model.Endpoint]bool{}
	for _, l := range links.Content {
		for _, v := range l.Content {
			for _, e := range v.Content {
				node, iface, _ := strings.Cut(e.Value, ":")
				wired[model.Endpoint{Node: node, Iface: iface}] = true
			}
		}
	}
	type iface struct {
		ep     model.Endpoint
		mac    net.HardwareAddr
		bridge bool
	}
	var all []iface
	for _, s := range srcs {
		if s.model == nil {
			continue
		}
		for _, n := range s.model.Nodes {
			for _, i := range n.Interfaces {
				hw, err := net.ParseMAC(i.MAC)
				if err != nil || len(hw) != 6 || i.Kind == model.IfLoopback || i.Origin.Synthesized {
					continue
				}
				all = append(all, iface{model.Endpoint{Node: n.Name, Iface: i.Name}, hw, i.Kind == model.IfBridge})
			}
		}
	}
	var out []tap
	used := map[model.Endpoint]bool{}
	for _, h := range all {
		if h.mac[0] != 0xfe || wired[h.ep] || h.bridge {
			continue
		}
		var cands []iface
		for _, g := range all {
			if g.ep.Node == h.ep.Node || g.mac[0] == 0xfe || string(g.mac[1:]) != string(h.mac[1:]) {
				continue
			}
			cands = append(cands, g)
		}
		// A guest bridge takes its first port's MAC: the port is the NIC.
		if len(cands) > 1 {
			var nb []iface
			for _, c := range cands {
				if !c.bridge {
					nb = append(nb, c)
				}
			}
			cands = nb
		}
		switch {
		case len(cands) == 0:
			continue
		case len(cands) > 1:
			var eps []string
			for _, c := range cands {
				eps = append(eps, c.ep.String())
			}
			res.Notes = append(res.Notes, fmt.Sprintf("tap %s (%s) could carry any of %s; declare the right one in a --links file", h.ep, h.mac, strings.Join(eps, ", ")))
			continue
		}
		g := cands[0]
		if wired[g.ep] || used[g.ep] {
			continue
		}
		used[g.ep] = true
		out = append(out, tap{h.ep, g.ep})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].host.String() < out[j].host.String() })
	return out
}

// setVM makes a guest node of kind host (or no kind) a vm.
func setVM(nodes *yaml.Node, name string) {
	for i := 0; i+1 < len(nodes.Content); i += 2 {
		if nodes.Content[i].Value != name {
			continue
		}
		v := nodes.Content[i+1]
		if v.Kind != yaml.MappingNode {
			return
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			if v.Content[j].Value == "kind" {
				if v.Content[j+1].Value == string(model.KindHost) {
					v.Content[j+1].Value = string(model.KindVM)
					v.Content[j+1].LineComment = strings.TrimSpace(v.Content[j+1].LineComment + " (a guest: a host tap carries its NIC)")
				}
				return
			}
		}
		v.Content = append([]*yaml.Node{scalar("kind"), scalar(string(model.KindVM))}, v.Content...)
		return
	}
}

// copyTree copies a folder's files (regular files and folders only);
// a missing source is nothing to copy.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == src {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			if _, err := os.Stat(target); err == nil {
				return fmt.Errorf("%s exists twice", target)
			}
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil
	})
}
