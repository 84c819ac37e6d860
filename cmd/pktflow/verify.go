package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/lab"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/verify"
)

func init() { subcommands = append(subcommands, verifyCmd) }

type verifyOpts struct {
	snapshot string
	format   string
	prefix   string
	labLog   string
}

func verifyCmd() *cobra.Command {
	o := &verifyOpts{}
	c := &cobra.Command{
		Use:   "verify --snapshot DIR [--format text|json] [PROBE...]",
		Short: "Check pktflow's predictions against the Linux kernel in a lab",
		Long: `Build the snapshot as network namespaces on this machine (as 'pktflow lab up'
does), send each probe for real while tcpdump captures every interface, trace
the same probe with pktflow and compare interface by interface and header by
header, for the request, the reply and any ICMP error; also compare what the
sending program saw with pktflow's verdict. The lab is removed afterwards.

A PROBE is one argument: "NODE PROTO DEST[:PORT] [ttl=N] [sport=N]", e.g.
"mayura tcp 192.168.122.120:1443" or "rhel8a tcp [2001:db8:ca2:3::1]:22".
Without probes: ICMP from every node to every other node's addresses (IPv4,
and IPv6 from nodes that have IPv6) and to each external node's owned
ranges, TCP/UDP to every declared listener from every other node, and each
port a node publishes with DNAT to a listener, on each of its IPv4
addresses.

Each probe is agreed, disagreed (pktflow was certain and wrong) or uncertain
(pktflow said it could not be sure: never counted as agreement).

Needs root. Exit status: 0 when no probe disagreed, 1 when one did (or could
not be checked), 2 on usage, input or lab errors.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runVerify(cmd, o, args) },
	}
	f := c.Flags()
	f.StringVar(&o.snapshot, "snapshot", "", "snapshot folder (holds topology.yaml)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringVar(&o.prefix, "prefix", "", "namespace name prefix (default: pf and a random token)")
	f.StringVar(&o.labLog, "lab-log", "", "write every command the lab runs to this file")
	return c
}

func runVerify(cmd *cobra.Command, o *verifyOpts, args []string) error {
	if o.snapshot == "" {
		return usageErr("verify needs --snapshot DIR")
	}
	if o.format != "text" && o.format != "json" {
		return usageErr("--format must be text or json, not %q", o.format)
	}
	snap, err := snapshot.Load(o.snapshot)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	var probes []engine.Probe
	for _, a := range args {
		p, err := verify.ParseProbe(snap, a)
		if err != nil {
			return usageErr("%v", err)
		}
		probes = append(probes, p)
	}
	if len(args) == 0 {
		probes = verify.DefaultProbes(snap)
	}
	verify.AssignPorts(probes)
	eng, err := engine.New(snap)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := needRoot("verify"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opt := lab.Options{Prefix: o.prefix}
	if o.labLog != "" {
		lf, err := os.Create(o.labLog)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		defer lf.Close()
		opt.Log = lf
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "building %s as network namespaces...\n", o.snapshot)
	l, err := lab.Up(ctx, snap, opt)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	defer l.Down()
	fmt.Fprintf(stderr, "checking %d probes against the kernel...\n", len(probes))
	i := 0
	progress := func(p verify.ProbeReport) {
		i++
		if isTerminal(stderr) {
			fmt.Fprintf(stderr, "[%d/%d] %s: %s\n", i, len(probes), p.Probe, p.Result)
		}
	}
	rep := verify.Run(ctx, l, eng, probes, progress)
	rep.Snapshot = o.snapshot
	if err := l.Down(); err != nil {
		fmt.Fprintf(stderr, "pktflow: tearing the lab down: %v\n", err)
	}
	if ctx.Err() != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("interrupted after %d of %d probes", len(rep.Probes), len(probes))}
	}
	out := cmd.OutOrStdout()
	if o.format == "json" {
		err = rep.WriteJSON(out)
	} else {
		err = rep.WriteText(out)
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if !rep.OK() {
		return &exitError{code: exitNotReach}
	}
	return nil
}

// needRoot says clearly that a lab command cannot run unprivileged.
func needRoot(what string) error {
	if os.Geteuid() != 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s needs root: it builds network namespaces (run it with sudo)", what)}
	}
	if err := lab.Available(); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}

// isTerminal reports whether w is a terminal (progress lines go there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
