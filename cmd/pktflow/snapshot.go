package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pktflow/pktflow/internal/merge"
)

func init() { subcommands = append(subcommands, snapshotCmd) }

func snapshotCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "snapshot",
		Short: "Work with snapshot folders",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr("snapshot needs a subcommand: merge")
		},
	}
	c.AddCommand(mergeCmd())
	return c
}

func mergeCmd() *cobra.Command {
	o := merge.Options{}
	c := &cobra.Command{
		Use:   "merge --output DIR [--links FILE] SNAPSHOT...",
		Short: "Join snapshots taken on separate machines into one",
		Long: `Join snapshot folders from separate machines (a VM's and its host's, each
made with 'pktflow collect' or by hand) into one folder.

Nodes keep their names and files; a node name in two snapshots is an error
naming both. Every host tap is joined to the guest NIC it carries by the MAC
libvirt gives them: the tap's fe:54:00:xx:yy:zz carries the guest's
52:54:00:xx:yy:zz (the guest node becomes kind vm). Other wires, names and
inline nodes (a router, the internet) can be declared in an extra
topology.yaml given with --links. The result is checked to load before it
is written; DIR must not exist or be empty.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("merge needs at least one SNAPSHOT folder")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Output == "" {
				return usageErr("merge needs --output DIR")
			}
			o.Snapshots = args
			res, err := merge.Merge(o)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s: %d node(s) from %d snapshot(s)\n", o.Output, res.Nodes, len(args))
			for _, t := range res.Taps {
				fmt.Fprintf(out, "  tap link %s\n", t)
			}
			for _, n := range res.Notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "pktflow: note:", n)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&o.Output, "output", "o", "", "merged snapshot folder to write")
	f.StringVar(&o.Links, "links", "", "extra topology.yaml with links, names and inline nodes to add")
	return c
}
