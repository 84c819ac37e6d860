package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/pktflow/pktflow/internal/engine"
	"github.com/pktflow/pktflow/internal/snapshot"
	"github.com/pktflow/pktflow/internal/tracepath"
)

func init() {
	subcommands = append(subcommands, func() *cobra.Command { return pathCmd("tracepath") }, func() *cobra.Command { return pathCmd("traceroute") })
}

// pathCmd builds `pktflow tracepath` and `pktflow traceroute`: what those
// tools would print when run on a node of the snapshot.
func pathCmd(tool string) *cobra.Command {
	var snapDir, from string
	var numeric bool
	var maxHops int
	c := &cobra.Command{
		Use:   tool + " --snapshot DIR --from NODE [flags] DEST",
		Short: "Print what `" + tool + "` would print on a node of the snapshot",
		Long: "Probes DEST with rising TTLs through the snapshot and prints what `" + tool + "` would\n" +
			"print, hop addresses as Linux chooses them (the source of each ICMP error as it\n" +
			"reaches the sender, after NAT). Round-trip times are not modelled and are left out.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("%s needs DEST", tool)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if snapDir == "" || from == "" {
				return usageErr("%s needs --snapshot DIR and --from NODE", tool)
			}
			snap, err := snapshot.Load(snapDir)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if snap.Node(from) == nil {
				return usageErr("--from: no node %q in the snapshot", from)
			}
			dst, name, err := resolveHost(snap, strings.TrimSpace(args[0]))
			if err != nil {
				return err
			}
			eng, err := engine.New(snap)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			p := engine.Probe{From: from, Dst: dst, DstName: name}
			out := cmd.OutOrStdout()
			var res *tracepath.Result
			if tool == "tracepath" {
				res = tracepath.Run(eng, p, tracepath.Options{MaxHops: maxHops, BasePort: 44444, Discover: true})
				tracepath.Tracepath(out, res, numeric)
			} else {
				res = tracepath.Run(eng, p, tracepath.Options{MaxHops: maxHops, BasePort: 33434, Len: 32})
				tracepath.Traceroute(out, res, maxHops, 60)
			}
			if !res.Reached {
				return &exitError{code: exitNotReach}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&snapDir, "snapshot", "", "snapshot folder (holds topology.yaml)")
	f.StringVar(&from, "from", "", "node the tool runs on")
	f.IntVarP(&maxHops, "max-hops", "m", 30, "maximum number of hops")
	if tool == "tracepath" {
		f.BoolVarP(&numeric, "numeric", "n", false, "print addresses, not node names")
	}
	return c
}
