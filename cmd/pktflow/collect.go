package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/pktflow/pktflow/internal/collect"
)

func init() { subcommands = append(subcommands, collectCmd) }

type collectOpts struct {
	output  string
	netns   []string
	all     bool
	current bool
	verbose bool
}

func collectCmd() *cobra.Command {
	o := &collectOpts{}
	c := &cobra.Command{
		Use:   "collect --output DIR [--netns NAME]... [--all-netns] [--current]",
		Short: "Write a snapshot of this host's network namespaces (read-only)",
		Long: `Read the live host's network state — interfaces, addresses, routes of every
table, policy rules, neighbors, iptables and ip6tables rulesets, sysctls and
listening sockets — and write it as a snapshot folder that 'pktflow trace'
reads: topology.yaml plus nodes/NAME/ip-addr, ip-route, ... in the exact text
the commands print, so it can be read, edited and shared.

Without flags the current network namespace is collected, named after the
hostname. --netns NAME collects named namespaces (/run/netns/NAME; the node
keeps the name, so 'pktflow trace --from NAME' works); --current adds the
current namespace to them. --all-netns collects every named namespace and
every process's namespace, containers included, each once; Docker
containers are named as Docker names them. Veth pairs between collected
namespaces become links in topology.yaml.

collect never changes the host: it reads netlink, /proc and the output of
iptables-save, ip6tables-save, nft and conntrack, and writes only DIR, which
must not exist or be empty. Reading other namespaces needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCollect(cmd, o) },
	}
	f := c.Flags()
	f.StringVarP(&o.output, "output", "o", "", "snapshot folder to write (must not exist or be empty)")
	f.StringArrayVar(&o.netns, "netns", nil, "named network namespace to collect (repeatable)")
	f.BoolVar(&o.all, "all-netns", false, "collect every named and every process's network namespace")
	f.BoolVar(&o.current, "current", false, "also collect the current namespace when --netns is given")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "say which namespace is read")
	return c
}

func runCollect(cmd *cobra.Command, o *collectOpts) error {
	if o.output == "" {
		return usageErr("collect needs --output DIR")
	}
	if ents, err := os.ReadDir(o.output); err == nil && len(ents) > 0 {
		return usageErr("--output %s is not empty; collect writes a new snapshot folder", o.output)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opt := collect.Options{NetNS: o.netns, AllNetNS: o.all, Current: o.current}
	if o.verbose {
		opt.Log = cmd.ErrOrStderr()
	}
	snap, err := collect.Collect(ctx, opt)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if !o.verbose {
		for _, w := range snap.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), "pktflow: warning:", w)
		}
	}
	warnings, err := snap.Write(o.output)
	for _, w := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "pktflow: warning:", w)
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "wrote %s: %d node(s), %d veth link(s)\n", o.output, len(snap.Nodes), len(snap.Links))
	for _, n := range snap.Nodes {
		fmt.Fprintf(out, "  %-20s %-9s %s\n", n.Target.Node, n.Kind, n.Target.How)
	}
	if len(snap.Nodes) > 0 {
		fmt.Fprintf(out, "next: pktflow trace --snapshot %s --from %s icmp DEST\n", o.output, snap.Nodes[0].Target.Node)
	}
	return nil
}
