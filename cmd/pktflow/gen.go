package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pktflow/pktflow/internal/gen"
)

func init() { subcommands = append(subcommands, genCmd) }

type genOpts struct {
	output     string
	services   int
	endpoints  int
	containers int
	nodes      int
	seed       uint64
}

func genCmd() *cobra.Command {
	o := &genOpts{}
	c := &cobra.Command{
		Use:   "gen kube|docker|fleet --output DIR [--services N --endpoints E | --containers N | --nodes N] [--seed S]",
		Short: "Write a large generated snapshot (for benchmarks and scale tests)",
		Long: `Write a realistic, deterministic snapshot folder that pktflow trace reads:

  kube    a Kubernetes node with kube-proxy in iptables mode: --services
          ClusterIP services (one in ten also a NodePort) of --endpoints
          endpoints each, two client pods on cni0, and the rest of the
          cluster as an external node; 10,000 services x 3 endpoints make
          about 110,000 rules
  docker  a Docker 24 host with --containers containers on docker0 and
          user bridge networks, each publishing one or two ports
  fleet   --nodes nodes in all: Docker hosts with containers in LANs behind
          NAT routers (port forwards to published ports), uplinked to one
          external node for the internet

The same options and --seed write the same files. DIR must be new, empty,
or an earlier pktflow gen output (which is replaced). The command prints
traces to try.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "kube" && args[0] != "docker" && args[0] != "fleet") {
				return usageErr("gen needs one of kube, docker or fleet")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runGen(cmd, o, args[0]) },
	}
	f := c.Flags()
	f.StringVar(&o.output, "output", "", "folder to write the snapshot into")
	f.IntVar(&o.services, "services", 1000, "kube: number of services")
	f.IntVar(&o.endpoints, "endpoints", 3, "kube: endpoints per service")
	f.IntVar(&o.containers, "containers", 100, "docker: number of containers")
	f.IntVar(&o.nodes, "nodes", 1000, "fleet: total number of nodes")
	f.Uint64Var(&o.seed, "seed", 1, "random seed")
	return c
}

func runGen(cmd *cobra.Command, o *genOpts, kind string) error {
	if o.output == "" {
		return usageErr("gen needs --output DIR")
	}
	flags := cmd.Flags()
	for name, kinds := range map[string]string{"services": "kube", "endpoints": "kube", "containers": "docker", "nodes": "fleet"} {
		if flags.Changed(name) && kinds != kind {
			return usageErr("--%s is for gen %s, not gen %s", name, kinds, kind)
		}
	}
	var s *gen.Snapshot
	switch kind {
	case "kube":
		if o.services < 1 || o.services > 500_000 || o.endpoints < 1 || o.endpoints > 1000 {
			return usageErr("gen kube needs 1-500000 --services and 1-1000 --endpoints")
		}
		s = gen.Kube(gen.KubeOptions{Services: o.services, Endpoints: o.endpoints, Seed: o.seed})
	case "docker":
		if o.containers < 1 || o.containers > 60_000 {
			return usageErr("gen docker needs 1-60000 --containers")
		}
		s = gen.Docker(gen.DockerOptions{Containers: o.containers, Seed: o.seed})
	case "fleet":
		if o.nodes > 1_000_000 {
			return usageErr("gen fleet: at most 1000000 --nodes")
		}
		var err error
		if s, err = gen.Fleet(gen.FleetOptions{Nodes: o.nodes, Seed: o.seed}); err != nil {
			return usageErr("gen fleet: %v", err)
		}
	}
	if err := s.Write(o.output); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "wrote %s: %d nodes, %d iptables rules", o.output, len(s.Nodes), s.Rules)
	if s.BigNode != "" {
		if n := s.Node(s.BigNode); n != nil {
			fmt.Fprintf(out, " (%d on %s)", n.Rules, n.Name)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "try:")
	seen := map[string]bool{}
	for _, p := range s.Probes {
		if seen[p.What] {
			continue
		}
		seen[p.What] = true
		fmt.Fprintf(out, "  pktflow trace --snapshot %s %s    # %s: %s\n", o.output, strings.Join(p.Args(), " "), p.What, p.Expect)
	}
	return nil
}
