package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pktflow/pktflow/internal/conformance"
)

func init() { subcommands = append(subcommands, conformanceCmd) }

func conformanceCmd() *cobra.Command {
	var seeds, parallel int
	var start int64
	var failDir, format string
	c := &cobra.Command{
		Use:   "conformance [--seeds N] [--start S] [--parallel P] [--fail-dir DIR] [--format text|json]",
		Short: "Check the engine against the kernel on random generated networks",
		Long: `Generate N random but realistic networks (seeds S, S+1, ...; the same seed
always gives the same network), build each as network namespaces, send its
probes for real and compare every interface with pktflow's predictions
(as 'pktflow verify' does). Scenarios with a disagreement are saved under
--fail-dir as snapshot folders that 'pktflow verify --snapshot DIR'
reproduces (see FAILURES.txt in each).

Needs root. Exit status: 0 when no probe disagreed, 1 when one did (or a
scenario could not be built or checked), 2 on usage or setup errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if seeds <= 0 {
				return usageErr("--seeds must be at least 1")
			}
			if format != "text" && format != "json" {
				return usageErr("--format must be text or json, not %q", format)
			}
			if err := needRoot("conformance"); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opt := conformance.Options{FailDir: failDir, Parallel: parallel}
			for i := 0; i < seeds; i++ {
				opt.Seeds = append(opt.Seeds, start+int64(i))
			}
			if format == "text" {
				opt.Log = cmd.OutOrStdout()
			}
			sum, err := conformance.Run(ctx, opt)
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("interrupted: %v (%s)", err, sum)}
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(sum); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
			} else {
				if failed := sum.FailedSeeds(); len(failed) > 0 {
					fmt.Fprintf(out, "failed seeds: %v (saved under %s)\n", failed, dirOr(failDir))
				}
				fmt.Fprintln(out, sum)
			}
			if !sum.OK() {
				return &exitError{code: exitNotReach}
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&seeds, "seeds", 20, "number of scenarios")
	f.Int64Var(&start, "start", 1, "first seed")
	f.IntVar(&parallel, "parallel", 2, "labs checked at once")
	f.StringVar(&failDir, "fail-dir", "", "where failing scenarios are saved (default $TMPDIR/pktflow-conformance-failures)")
	f.StringVar(&format, "format", "text", "output format: text or json")
	return c
}

func dirOr(d string) string {
	if d == "" {
		return conformance.DefaultFailDir()
	}
	return d
}
