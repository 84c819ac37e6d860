package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/snapshot"
)

func init() { subcommands = append(subcommands, labCmd) }

// labRunDir holds one state file per lab that `pktflow lab up` made
// (PREFIX.json) and its server's log (PREFIX.log). PKTFLOW_RUN_DIR
// overrides it.
var labRunDir = func() string {
	if d := os.Getenv("PKTFLOW_RUN_DIR"); d != "" {
		return d
	}
	return "/run/pktflow"
}()

// defaultLabPrefix names the namespaces of `pktflow lab up` without
// --prefix.
const defaultLabPrefix = "pf"

// labState is what `lab up` made, written by the server that owns it, so
// that `lab exec` finds a node's namespace and `lab down` removes exactly
// those namespaces.
type labState struct {
	Prefix   string `json:"prefix"`
	Snapshot string `json:"snapshot"`
	// PID is the `pktflow lab serve` process that holds the listeners.
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Nodes maps each node to its namespace, in snapshot order.
	Nodes []labNode `json:"nodes"`
	// Namespaces lists every namespace the lab created, hidden segment
	// and stub namespaces included.
	Namespaces []string `json:"namespaces"`
	Warnings   []string `json:"warnings,omitempty"`
}

type labNode struct {
	Node      string `json:"node"`
	Namespace string `json:"namespace"`
	Kind      string `json:"kind,omitempty"`
}

func statePath(prefix string) string { return filepath.Join(labRunDir, prefix+".json") }
func logPath(prefix string) string   { return filepath.Join(labRunDir, prefix+".log") }

func labCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "lab",
		Short: "Build a snapshot as network namespaces on this machine (up, exec, down)",
		Long: `Build a snapshot as real, isolated network namespaces: one per node, veth
pairs and bridges for its wires, its addresses, routes, rules, sysctls,
neighbour entries, iptables rules, and small responders where it says
something listens. Nothing is changed in the machine's own namespace.

  pktflow lab up --snapshot DIR [--prefix P]    build it and keep it running
  pktflow lab exec [--prefix P] NODE -- CMD...  run a command inside a node
  pktflow lab down [--prefix P]                 remove exactly what up made
  pktflow lab list                              labs that are up

Namespaces are named PREFIX-NODE (default prefix "pf"). The listeners are
served by a background 'pktflow lab serve' process; what a lab made is
recorded in ` + labRunDir + `/PREFIX.json. Needs root.`,
	}
	c.AddCommand(labUpCmd(), labDownCmd(), labExecCmd(), labListCmd(), labServeCmd())
	return c
}

func addPrefixFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "prefix", defaultLabPrefix, "namespace name prefix: the lab's namespaces are PREFIX-NODE")
}

// checkPrefix keeps prefixes short and safe as file and namespace names.
func checkPrefix(p string) error {
	if p == "" || len(p) > 16 || p[0] == '.' || p[0] == '-' {
		return usageErr("--prefix %q: want 1 to 16 letters, digits, '.', '_' or '-'", p)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return usageErr("--prefix %q: want 1 to 16 letters, digits, '.', '_' or '-'", p)
		}
	}
	return nil
}

func readState(prefix string) (*labState, error) {
	data, err := os.ReadFile(statePath(prefix))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("no lab with prefix %q is up (%s does not exist)%s", prefix, statePath(prefix), otherLabs())}
	}
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	var st labState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: %v", statePath(prefix), err)}
	}
	return &st, nil
}

// otherLabs names the labs that are up, for an error message.
func otherLabs() string {
	labs := listLabs()
	if len(labs) == 0 {
		return ""
	}
	return "; labs up: " + strings.Join(labs, ", ") + " (use --prefix)"
}

func listLabs() []string {
	ms, _ := filepath.Glob(filepath.Join(labRunDir, "*.json"))
	var out []string
	for _, m := range ms {
		out = append(out, strings.TrimSuffix(filepath.Base(m), ".json"))
	}
	sort.Strings(out)
	return out
}

func writeState(st *labState) error {
	if err := os.MkdirAll(labRunDir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(st.Prefix) + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(st.Prefix))
}

// serverAlive reports whether pid is still the `pktflow lab serve` of
// this prefix (not a process that happens to have reused the pid).
func serverAlive(pid int, prefix string) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	isServe, hasPrefix := false, false
	for i, a := range args {
		if a == "serve" && i > 0 && args[i-1] == "lab" {
			isServe = true
		}
		if (a == "--prefix" && i+1 < len(args) && args[i+1] == prefix) || a == "--prefix="+prefix {
			hasPrefix = true
		}
	}
	return isServe && hasPrefix
}

// --- lab up ---

func labUpCmd() *cobra.Command {
	var dir, prefix string
	c := &cobra.Command{
		Use:   "up --snapshot DIR [--prefix P]",
		Short: "Build the snapshot as network namespaces and keep it running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usageErr("lab up needs --snapshot DIR")
			}
			if err := checkPrefix(prefix); err != nil {
				return err
			}
			snap, err := snapshot.Load(dir)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if err := needRoot("lab"); err != nil {
				return err
			}
			if st, err := readState(prefix); err == nil {
				if serverAlive(st.PID, prefix) {
					return usageErr("a lab with prefix %q is already up (snapshot %s, pid %d): 'pktflow lab down --prefix %s' first, or choose another --prefix",
						prefix, st.Snapshot, st.PID, prefix)
				}
				return usageErr("%s is left from a lab whose server is gone: 'pktflow lab down --prefix %s' removes its namespaces", statePath(prefix), prefix)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			st, err := startServer(cmd.Context(), abs, prefix)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "lab %s is up: %d nodes from %s (listeners served by pid %d)\n", prefix, len(snap.Nodes), dir, st.PID)
			for _, n := range st.Nodes {
				fmt.Fprintf(out, "  %-20s %s\n", n.Node, n.Namespace)
			}
			for _, w := range st.Warnings {
				fmt.Fprintf(out, "warning: %s\n", w)
			}
			fl := ""
			if prefix != defaultLabPrefix {
				fl = " --prefix " + prefix
			}
			fmt.Fprintf(out, "run a command in a node: pktflow lab exec%s NODE -- COMMAND\n", fl)
			fmt.Fprintf(out, "remove it:               pktflow lab down%s\n", fl)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "snapshot", "", "snapshot folder (holds topology.yaml)")
	addPrefixFlag(c, &prefix)
	return c
}

// serverReady is the line `lab serve` prints once the lab is up and its
// state file is written.
const serverReady = "pktflow-lab-ready"

// startServer starts a detached `pktflow lab serve` and waits until it
// reports the lab up (or fails).
func startServer(ctx context.Context, dir, prefix string) (*labState, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	if err := os.MkdirAll(labRunDir, 0o755); err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	logf, err := os.Create(logPath(prefix))
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	defer logf.Close()
	cmd := exec.Command(exe, "lab", "serve", "--snapshot", dir, "--prefix", prefix)
	cmd.Env = os.Environ()
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlive this command and its terminal
	r, err := cmd.StdoutPipe()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	if err := cmd.Start(); err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if sc.Text() == serverReady {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	ok := false
	select {
	case ok = <-ready:
	case <-ctx.Done():
	}
	if !ok {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logText, _ := os.ReadFile(logPath(prefix))
		os.Remove(logPath(prefix))
		msg := strings.TrimSpace(lastLines(string(logText), 15))
		if msg == "" {
			msg = "the lab server exited without a word"
		}
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("lab up failed:\n%s", msg)}
	}
	// The server keeps running on its own; reap nothing, just let go.
	cmd.Process.Release()
	st, err := readState(prefix)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// --- lab serve (internal) ---

func labServeCmd() *cobra.Command {
	var dir, prefix string
	c := &cobra.Command{
		Use:    "serve --snapshot DIR --prefix P",
		Short:  "Build a lab and serve its listeners until SIGTERM (started by lab up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return labServe(cmd, dir, prefix)
		},
	}
	c.Flags().StringVar(&dir, "snapshot", "", "snapshot folder")
	addPrefixFlag(c, &prefix)
	return c
}

func labServe(cmd *cobra.Command, dir, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	snap, err := snapshot.Load(dir)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	logw := cmd.ErrOrStderr()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	l, err := lab.Up(ctx, snap, lab.Options{Prefix: prefix, Log: logw})
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	st := &labState{Prefix: prefix, Snapshot: dir, PID: os.Getpid(), Started: time.Now().UTC(),
		Namespaces: l.Namespaces(), Warnings: l.Warnings()}
	for _, n := range snap.Nodes {
		st.Nodes = append(st.Nodes, labNode{Node: n.Name, Namespace: l.NS(n.Name), Kind: string(n.Kind)})
	}
	if err := writeState(st); err != nil {
		l.Down()
		return &exitError{code: exitUsage, err: err}
	}
	if ctx.Err() == nil {
		fmt.Fprintln(cmd.OutOrStdout(), serverReady)
		if f, ok := cmd.OutOrStdout().(*os.File); ok {
			f.Close() // the starter stops reading here
		}
		fmt.Fprintf(logw, "lab %s up; serving until SIGTERM\n", prefix)
		<-ctx.Done()
	}
	fmt.Fprintf(logw, "lab %s: tearing down\n", prefix)
	err = l.Down()
	if err == nil {
		os.Remove(statePath(prefix))
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}

// --- lab down ---

func labDownCmd() *cobra.Command {
	var prefix string
	c := &cobra.Command{
		Use:   "down [--prefix P]",
		Short: "Remove exactly the namespaces lab up made",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPrefix(prefix); err != nil {
				return err
			}
			if err := needRoot("lab"); err != nil {
				return err
			}
			st, err := readState(prefix)
			if err != nil {
				return err
			}
			if serverAlive(st.PID, prefix) {
				syscall.Kill(st.PID, syscall.SIGTERM)
				deadline := time.Now().Add(20 * time.Second)
				for serverAlive(st.PID, prefix) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if serverAlive(st.PID, prefix) {
					return &exitError{code: exitUsage, err: fmt.Errorf("the lab server (pid %d) did not stop within 20s", st.PID)}
				}
			}
			// The server deletes its namespaces; whatever is left (the
			// server died, say) is deleted here, by exact name.
			var errs []error
			removed := 0
			for i := len(st.Namespaces) - 1; i >= 0; i-- {
				ns := st.Namespaces[i]
				if !strings.HasPrefix(ns, prefix) {
					continue // never anything the lab did not name
				}
				if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
					continue
				}
				if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
					errs = append(errs, fmt.Errorf("ip netns delete %s: %v: %s", ns, err, strings.TrimSpace(string(out))))
					continue
				}
				removed++
			}
			if len(errs) > 0 {
				return &exitError{code: exitUsage, err: errors.Join(errs...)}
			}
			os.Remove(statePath(prefix))
			os.Remove(logPath(prefix))
			msg := fmt.Sprintf("lab %s is down (%d namespaces removed)", prefix, len(st.Namespaces))
			if removed > 0 {
				msg += fmt.Sprintf("; %d were left by a server that had died", removed)
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	addPrefixFlag(c, &prefix)
	return c
}

// --- lab exec ---

func labExecCmd() *cobra.Command {
	var prefix string
	c := &cobra.Command{
		Use:   "exec [--prefix P] NODE -- COMMAND [ARG...]",
		Short: "Run a command inside a node's namespace; its exit status is passed through",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErr("lab exec needs NODE and a COMMAND, e.g. 'pktflow lab exec mayura -- ping -c1 10.0.2.1'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPrefix(prefix); err != nil {
				return err
			}
			if err := needRoot("lab"); err != nil {
				return err
			}
			st, err := readState(prefix)
			if err != nil {
				return err
			}
			node, argv := args[0], args[1:]
			if len(argv) > 0 && argv[0] == "--" {
				argv = argv[1:]
			}
			ns := ""
			var names []string
			for _, n := range st.Nodes {
				names = append(names, n.Node)
				if n.Node == node {
					ns = n.Namespace
				}
			}
			if ns == "" {
				return usageErr("lab %s has no node %q (nodes: %s)", prefix, node, strings.Join(names, ", "))
			}
			if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
				return usageErr("namespace %s of node %s is gone: 'pktflow lab down --prefix %s' and up again", ns, node, prefix)
			}
			if len(argv) == 0 {
				return usageErr("lab exec needs a COMMAND after NODE")
			}
			c := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
			c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = c.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code := ee.ExitCode()
				if code < 0 {
					code = 128 + int(syscall.SIGKILL)
					if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
						code = 128 + int(ws.Signal())
					}
				}
				return &exitError{code: code}
			}
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return nil
		},
	}
	c.Flags().SetInterspersed(false) // flags after NODE belong to COMMAND
	addPrefixFlag(c, &prefix)
	return c
}

// --- lab list ---

func labListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the labs that lab up made and that are still up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			for _, p := range listLabs() {
				st, err := readState(p)
				if err != nil {
					continue
				}
				state := "up"
				if !serverAlive(st.PID, p) {
					state = "server gone: run 'pktflow lab down --prefix " + p + "'"
				}
				fmt.Fprintf(out, "%s\t%s\t%d nodes\t%s\n", p, st.Snapshot, len(st.Nodes), state)
			}
			return nil
		},
	}
}
