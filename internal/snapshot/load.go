package snapshot

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/ingest/libvirt"
	"github.com/pktflow/pktflow/internal/model"
)

// TopologyFile is the name of the file that declares a snapshot's nodes.
const TopologyFile = "topology.yaml"

// maxErrors caps the errors one Load reports: past this many the input is
// probably not a snapshot at all and more lines would only bury the first.
const maxErrors = 50

// loader carries one Load: the folder, topology.yaml's lines (for
// Origin texts), the options, the errors found so far and the notes.
type loader struct {
	dir       string
	opts      LoadOptions
	topoLines []string
	errs      []*ingest.Error
	notes     []string
	// domains holds each node's `virsh dumpxml` guests, for the tap
	// links they imply once every node is loaded.
	domains map[string][]*libvirt.Domain
}

// LoadOptions change how a snapshot is read.
type LoadOptions struct {
	// Synthesize fills in what libvirt and Docker install on a node from
	// its virsh-net-dumpxml and docker inspect files: their iptables
	// rules (unless the node has a real ruleset, which wins), the bridge
	// devices and addresses and the forwarding sysctls they set when the
	// input lacks them, and the listeners of dnsmasq and docker-proxy
	// when the node has no listener information. Everything synthesized
	// has an Origin marked Synthesized; Snapshot.Notes says what was
	// filled in and what was set aside. Without it those files are read
	// (and checked) but only their facts are used: leases, and the taps
	// `virsh dumpxml` names.
	Synthesize bool
}

// Load reads the snapshot folder dir (see the package documentation for
// its layout) into a model snapshot. On any problem it returns nil and an
// error: one *ingest.Error, or several joined with errors.Join.
func Load(dir string) (*model.Snapshot, error) {
	return LoadWith(dir, LoadOptions{})
}

// LoadWith is Load with options (--synthesize).
func LoadWith(dir string, opts LoadOptions) (*model.Snapshot, error) {
	ld := &loader{dir: dir, opts: opts, domains: map[string][]*libvirt.Domain{}}
	data, err := os.ReadFile(filepath.Join(dir, TopologyFile))
	if err != nil {
		return nil, ingest.Errorf(filepath.Join(dir, TopologyFile), 0, "", "reading the snapshot's topology: %v", errors.Unwrap(err))
	}
	snap := ld.load(data)
	if len(ld.errs) > 0 {
		return nil, ld.err()
	}
	return snap, nil
}

// load does the work of Load once topology.yaml is read.
func (ld *loader) load(data []byte) *model.Snapshot {
	ld.topoLines = strings.Split(string(data), "\n")
	topo := ld.parseTopology(data)
	if topo == nil {
		return nil
	}
	files := ld.nodeFiles(topo)
	snap := &model.Snapshot{Dir: ld.dir, Names: topo.names}
	broken := map[string]bool{}
	for _, spec := range topo.nodes {
		before := len(ld.errs)
		n := ld.buildNode(spec, files[spec.name])
		if len(ld.errs) > before {
			broken[spec.name] = true
		}
		snap.Nodes = append(snap.Nodes, n)
	}
	snap.Links = ld.buildLinks(topo, snap, broken)
	snap.Links = append(snap.Links, ld.domainLinks(topo, snap, broken)...)
	snap.Notes = ld.notes
	return snap
}

// note records something the loader filled in or set aside, for
// Snapshot.Notes.
func (ld *loader) note(node, format string, args ...any) {
	ld.notes = append(ld.notes, node+": "+fmt.Sprintf(format, args...))
}

// err returns the collected errors, sorted by file and line.
func (ld *loader) err() error {
	slices.SortStableFunc(ld.errs, func(a, b *ingest.Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	if len(ld.errs) == 1 {
		return ld.errs[0]
	}
	errs := make([]error, 0, len(ld.errs))
	for _, e := range ld.errs {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// fail records an error at a line of a snapshot file (rel is relative to
// the snapshot folder). The text of topology.yaml lines is filled in.
func (ld *loader) fail(rel string, line int, format string, args ...any) {
	text := ""
	if rel == TopologyFile {
		text = ld.topoText(line)
	}
	ld.add(ingest.Errorf(rel, line, text, format, args...))
}

// add records a parser's error. Parsers name files relative to the
// snapshot folder (that is what Origins hold); errors name them as the
// user can open them.
func (ld *loader) add(err error) {
	if len(ld.errs) >= maxErrors {
		return
	}
	var ie *ingest.Error
	if !errors.As(err, &ie) {
		ie = ingest.Errorf("", 0, "", "%v", err)
	}
	e := *ie
	e.File = filepath.Join(ld.dir, filepath.FromSlash(e.File))
	ld.errs = append(ld.errs, &e)
}

// topoText returns a topology.yaml line as written, trimmed.
func (ld *loader) topoText(line int) string {
	if line < 1 || line > len(ld.topoLines) {
		return ""
	}
	return strings.TrimSpace(ld.topoLines[line-1])
}

// topoOrigin is the Origin of a value declared at a topology.yaml line.
func (ld *loader) topoOrigin(line int) model.Origin {
	return model.Origin{File: TopologyFile, Line: line, Text: ld.topoText(line)}
}

// nodeFiles lists DIR/nodes: for each declared node, its files by the
// fact they give. Folders for undeclared nodes, stray files and unknown
// file names are errors: a snapshot's input is never silently ignored.
func (ld *loader) nodeFiles(topo *topology) map[string]nodeFiles {
	out := map[string]nodeFiles{}
	entries, err := os.ReadDir(filepath.Join(ld.dir, "nodes"))
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	if err != nil {
		ld.fail("nodes", 0, "reading the node folders: %v", err)
		return out
	}
	declared := map[string]bool{}
	var names []string
	for _, s := range topo.nodes {
		declared[s.name] = true
		names = append(names, s.name)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		rel := path.Join("nodes", e.Name())
		if !e.IsDir() {
			ld.fail(rel, 0, "unexpected file: per-node files go in nodes/NODE/ (for example nodes/NODE/ip-addr)")
			continue
		}
		if !declared[e.Name()] {
			ld.fail(rel, 0, "folder for node %q, which %s does not declare (it declares: %s)",
				e.Name(), TopologyFile, strings.Join(names, ", "))
			continue
		}
		out[e.Name()] = ld.stateFilesOf(rel)
	}
	return out
}

// stateFilesOf lists the state files in one node folder. Two files that
// give the same fact (ip-addr and ip-addr.json, iptables-save and an
// iptables -L listing) are an error: the node would have two truths.
func (ld *loader) stateFilesOf(rel string) nodeFiles {
	files := nodeFiles{}
	entries, err := os.ReadDir(filepath.Join(ld.dir, filepath.FromSlash(rel)))
	if err != nil {
		ld.fail(rel, 0, "reading the node folder: %v", err)
		return files
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		frel := path.Join(rel, name)
		k, ok := classify(name)
		if !ok || e.IsDir() {
			ld.fail(frel, 0, "unexpected %s in a node folder; expected files named %s",
				map[bool]string{true: "folder", false: "file"}[e.IsDir()], fileNames)
			continue
		}
		if prev := files[k.fact]; len(prev) > 0 {
			pk := kindOf(prev[0])
			if !k.multi || !pk.multi || pk.format != k.format {
				ld.fail(frel, 0, "both %s and %s give the node's %s; keep one", prev[0], frel, k.fact)
				continue
			}
		}
		files[k.fact] = append(files[k.fact], frel)
	}
	return files
}

// open opens a snapshot file by its relative name.
func (ld *loader) open(rel string) (*os.File, bool) {
	f, err := os.Open(filepath.Join(ld.dir, filepath.FromSlash(rel)))
	if err != nil {
		ld.fail(rel, 0, "%v", errors.Unwrap(err))
		return nil, false
	}
	return f, true
}
