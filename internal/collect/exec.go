package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/pktflow/pktflow/internal/nsthread"
)

// CommandTimeout bounds each command the collector runs.
var CommandTimeout = 30 * time.Second

// runIn runs a read-only command inside a target's namespace: `ip netns
// exec NAME` for a named namespace, `nsenter --net=/proc/PID/ns/net` for
// a process's, directly for the current one. Without nsenter the command
// is started from a thread that has joined the namespace (a child
// inherits its parent thread's namespaces).
func runIn(ctx context.Context, t *Target, argv ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	if _, err := exec.LookPath(argv[0]); err != nil {
		return "", "", err
	}
	var full []string
	threadNS := ""
	switch {
	case t.Current:
		full = argv
	case t.NetNS != "":
		full = append([]string{"ip", "netns", "exec", t.NetNS}, argv...)
	default:
		if _, err := exec.LookPath("nsenter"); err == nil {
			full = append([]string{"nsenter", "--net=" + t.Path}, argv...)
		} else {
			full, threadNS = argv, t.Path
		}
	}
	var ob, eb bytes.Buffer
	run := func() error {
		cmd := exec.CommandContext(ctx, full[0], full[1:]...)
		cmd.Stdout, cmd.Stderr = &ob, &eb
		return cmd.Run()
	}
	if threadNS != "" {
		err = nsthread.InPath(threadNS, run)
	} else {
		err = run()
	}
	if err != nil {
		err = fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(eb.String()))
	}
	return ob.String(), eb.String(), err
}

// hasTables reports whether iptables-save output holds a table.
func hasTables(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "*") {
			return true
		}
	}
	return false
}

// hasRules reports whether iptables-save output holds a rule or a policy
// other than ACCEPT: whether the ruleset does anything at all.
func hasRules(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "-A ") {
			return true
		}
		if strings.HasPrefix(line, ":") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[1] != "ACCEPT" && f[1] != "-" {
				return true
			}
		}
	}
	return false
}

// netfilterState is what the collector saves of a namespace's rules.
type netfilterState struct {
	v4, v6    string // iptables-save and ip6tables-save output, verbatim
	nft       string // `nft -j list ruleset`, when only nft has rules
	conntrack string // `conntrack -L`, when installed
}

// readNetfilter runs iptables-save and ip6tables-save in the namespace.
// When they report legacy tables, the legacy tools are asked too and the
// ruleset that has rules is kept. When neither family has tables but nft
// has a ruleset, that ruleset is kept as JSON for reference.
func (c *collector) readNetfilter(ctx context.Context, t *Target) netfilterState {
	var st netfilterState
	for _, fam := range []struct {
		save   string
		legacy string
		out    *string
	}{{"iptables-save", "iptables-legacy-save", &st.v4}, {"ip6tables-save", "ip6tables-legacy-save", &st.v6}} {
		out, errOut, err := runIn(ctx, t, fam.save)
		if err != nil {
			var ee *exec.Error
			if errors.As(err, &ee) {
				c.notef(t, "%s is not installed: no %s ruleset collected", fam.save, fam.save[:len(fam.save)-5])
			} else {
				c.warnf("%s: %v", t.Node, err)
				c.notef(t, "%s failed, so this node's %s ruleset is missing: %v", fam.save, fam.save[:len(fam.save)-5], err)
			}
			continue
		}
		if strings.Contains(errOut, "legacy tables present") {
			if lout, _, lerr := runIn(ctx, t, fam.legacy); lerr == nil && hasRules(lout) {
				if hasRules(out) {
					c.notef(t, "%s: both nf_tables and legacy %s rules are loaded; the kernel runs both, the snapshot keeps the nf_tables ones (%s shows the others)",
						fam.save, fam.save[:len(fam.save)-5], fam.legacy)
				} else {
					out = lout
				}
			}
		}
		if hasTables(out) {
			*fam.out = out
		}
	}
	if st.v4 == "" && st.v6 == "" {
		if out, _, err := runIn(ctx, t, "nft", "list", "ruleset"); err == nil && strings.TrimSpace(out) != "" {
			if js, _, err := runIn(ctx, t, "nft", "-j", "list", "ruleset"); err == nil {
				st.nft = js
			}
		}
	}
	if out, _, err := runIn(ctx, t, "conntrack", "-L"); err == nil && strings.TrimSpace(out) != "" {
		st.conntrack = out
	}
	return st
}
