package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/pktflow/pktflow/internal/model"
)

// NetnsDir is where `ip netns` keeps named namespaces.
var NetnsDir = "/run/netns"

// nsID identifies a network namespace: the device and inode of its nsfs
// file, which every path to it (/proc/PID/ns/net, /run/netns/NAME) shares.
type nsID struct{ dev, ino uint64 }

func (id nsID) String() string { return fmt.Sprintf("net:[%d]", id.ino) }

func statNS(path string) (nsID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nsID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nsID{}, fmt.Errorf("%s: no inode information", path)
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// Target is one network namespace to collect.
type Target struct {
	// Node is the node name the namespace gets in the snapshot.
	Node string
	Kind model.NodeKind
	// Path opens the namespace: /run/netns/NAME, /proc/PID/ns/net, or
	// /proc/self/ns/net for the current one.
	Path string
	// NetNS is the name of a named namespace; PID a process inside the
	// namespace (0 for a named namespace no process uses).
	NetNS   string
	PID     int
	Current bool
	// Container is the Docker container name, if any.
	Container string
	// How says how the namespace was found, for topology.yaml.
	How string
	id  nsID
}

// nodeNameRE is what snapshot.Load accepts as a node name.
var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// cleanName makes s a valid node name.
func cleanName(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "/")
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	s = string(b)
	if s == "" || !nodeNameRE.MatchString(s) {
		s = "_" + s
	}
	return s
}

// discover lists the namespaces the options select, de-duplicated by
// namespace identity, with their node names.
func (c *collector) discover(ctx context.Context) ([]*Target, error) {
	o := c.opt
	var out []*Target
	seen := map[nsID]*Target{}
	add := func(t *Target) bool {
		id, err := statNS(t.Path)
		if err != nil {
			c.warnf("skipping %s: %v", t.How, err)
			return false
		}
		t.id = id
		if prev, dup := seen[id]; dup {
			if t.NetNS != "" && prev.NetNS == "" && !prev.Current {
				// A named namespace a process also uses: the name wins.
				prev.NetNS, prev.Path, prev.Node, prev.Kind, prev.How = t.NetNS, t.Path, t.Node, t.Kind, t.How
			}
			return false
		}
		seen[id] = t
		out = append(out, t)
		return true
	}

	wantCurrent := o.Current || (len(o.NetNS) == 0 && !o.AllNetNS)
	var named []string
	named = append(named, o.NetNS...)
	if o.AllNetNS {
		wantCurrent = true
		all, err := listNamed()
		if err != nil {
			return nil, err
		}
		for _, n := range all {
			if !contains(named, n) {
				named = append(named, n)
			}
		}
	}
	for _, n := range named {
		if strings.ContainsAny(n, "/\x00") || n == "" || n == "." || n == ".." {
			return nil, fmt.Errorf("bad namespace name %q", n)
		}
		p := filepath.Join(NetnsDir, n)
		if _, err := os.Stat(p); err != nil {
			if contains(o.NetNS, n) {
				return nil, fmt.Errorf("no named network namespace %q (%v); `ip netns list` shows the names", n, errors.Unwrap(err))
			}
			continue // vanished since listed
		}
		t := &Target{Node: cleanName(n), Kind: model.KindHost, Path: p, NetNS: n, How: "named network namespace " + n}
		if o.Keep != nil && !o.Keep(t) {
			continue
		}
		add(t)
	}
	if wantCurrent {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		t := &Target{Node: cleanName(host), Kind: model.KindHost, Path: "/proc/self/ns/net", Current: true, PID: os.Getpid(),
			How: "the current network namespace (host " + host + ")"}
		if o.Keep == nil || o.Keep(t) {
			add(t)
		}
	}
	if o.AllNetNS {
		procs, err := c.processNamespaces(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range procs {
			if o.Keep != nil && !o.Keep(t) {
				continue
			}
			add(t)
		}
	}
	c.nameUniquely(out)
	return out, nil
}

// listNamed lists /run/netns.
func listNamed() ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// processNamespaces finds every process's network namespace through
// /proc, one Target per namespace (the lowest PID in it), named after the
// Docker container that owns it, the hostname inside it, or the PID.
func (c *collector) processNamespaces(ctx context.Context) ([]*Target, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	byID := map[nsID]*Target{}
	var out []*Target
	for _, pid := range pids {
		p := fmt.Sprintf("/proc/%d/ns/net", pid)
		id, err := statNS(p)
		if err != nil {
			continue // exited, or a kernel thread without one
		}
		if _, ok := byID[id]; ok {
			continue
		}
		t := &Target{Kind: model.KindContainer, Path: p, PID: pid, id: id}
		byID[id] = t
		out = append(out, t)
	}
	containers := c.dockerContainers(ctx)
	for _, ct := range containers {
		id, err := statNS(fmt.Sprintf("/proc/%d/ns/net", ct.PID))
		if err != nil {
			continue
		}
		if t := byID[id]; t != nil && t.Container == "" {
			t.Container = ct.Name
		}
	}
	for _, t := range out {
		switch {
		case t.Container != "":
			t.Node = cleanName(t.Container)
			t.How = fmt.Sprintf("Docker container %s (process %d's network namespace)", t.Container, t.PID)
		default:
			if h := readHostname(t.PID); h != "" {
				t.Node = cleanName(h)
				t.How = fmt.Sprintf("process %d's network namespace (hostname %s)", t.PID, h)
			} else {
				t.Node = fmt.Sprintf("pid-%d", t.PID)
				t.How = fmt.Sprintf("process %d's network namespace", t.PID)
			}
		}
	}
	return out, nil
}

// readHostname reads /etc/hostname as the process sees it.
func readHostname(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/hostname", pid))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, " \t\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// nameUniquely gives targets whose names clash a suffix: named
// namespaces keep their names (trace --from NAME must work), then the
// current namespace, then the others in order.
func (c *collector) nameUniquely(ts []*Target) {
	rank := func(t *Target) int {
		switch {
		case t.NetNS != "":
			return 0
		case t.Current:
			return 1
		}
		return 2
	}
	order := append([]*Target(nil), ts...)
	sort.SliceStable(order, func(i, j int) bool { return rank(order[i]) < rank(order[j]) })
	used := map[string]bool{}
	for _, t := range order {
		name := t.Node
		for i := 2; used[name]; i++ {
			name = fmt.Sprintf("%s-%d", t.Node, i)
		}
		if name != t.Node {
			c.warnf("%s is named %s: %s is taken", t.How, name, t.Node)
			t.Node = name
		}
		used[name] = true
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
