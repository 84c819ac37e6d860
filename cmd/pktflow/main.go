// Command pktflow explains how a packet travels through Linux networking
// across the nodes of a snapshot. This file only wires flags to the
// internal packages and maps results to exit codes.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes: 0 the request was answered, 1 it was not (the output says
// where and why), 2 usage or input errors.
const (
	exitOK       = 0
	exitNotReach = 1
	exitUsage    = 2
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// subcommands are registered by the files that define them (in init), so
// each command lives in its own file.
var subcommands []func() *cobra.Command

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// newRoot builds the command tree.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "pktflow",
		Short:         "Explain how a packet travels through Linux routing, netfilter and NAT",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(traceCmd())
	for _, c := range subcommands {
		root.AddCommand(c())
	}
	return root
}

// run executes the command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "pktflow:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "pktflow:", err)
	return exitUsage
}
