package iptsave

import (
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// checkTable runs at COMMIT, when every chain of the table is known (a rule
// may jump to a chain declared after it, as iptables-restore allows). It
// checks what the kernel would refuse to load:
//   - -g to anything but a user-defined chain of the table;
//   - -j or -g to a built-in chain;
//   - options after a jump to a chain (a chain takes none);
//   - jump loops, which would send the engine round forever.
//
// A -j target that is not a chain of the table is an extension (ACCEPT,
// DNAT, or one pktflow does not know): that is left to the engine, which
// reports unknown targets as uncertain rather than failing the parse.
func (p *parser) checkTable() *ingest.Error {
	t := p.tbl
	// Chain-to-chain edges, grouped by source chain: edges of chain c are
	// edges[start[c]:start[c+1]].
	type edge struct {
		to   int
		rule *model.Rule
	}
	edges := make([]edge, 0, len(p.tblRules))
	start := make([]int, len(t.Chains)+1)
	for ci, c := range t.Chains {
		start[ci] = len(edges)
		for _, r := range c.Rules {
			if r.Target == "" {
				continue
			}
			j, isChain := int(r.TargetChain)-1, r.TargetChain != 0
			if !isChain && p.lateDecl {
				// The chain may have been declared after the rule.
				if j, isChain = p.chainIdx[r.Target]; isChain {
					r.Target = t.Chains[j].Name
					r.TargetChain = int32(j + 1)
				}
			}
			switch {
			case !isChain && r.Goto:
				return p.errf(r.Origin.Line, r.Origin.Text, "-g %s: table %s has no chain %s: expected -g to a user-defined chain declared with :%s - [0:0]", r.Target, t.Name, r.Target, r.Target)
			case !isChain:
				continue
			case t.Chains[j].Builtin:
				return p.errf(r.Origin.Line, r.Origin.Text, "jump to built-in chain %s: expected a user-defined chain or an extension target (the kernel refuses jumps to built-in chains)", r.Target)
			case len(r.TargetOpts) > 0:
				return p.errf(r.Origin.Line, r.Origin.Text, "option %s after a jump to chain %s: expected no options (a chain target takes none)", r.TargetOpts[0].Name, r.Target)
			}
			edges = append(edges, edge{to: j, rule: r})
		}
	}
	start[len(t.Chains)] = len(edges)
	if len(edges) == 0 {
		return nil
	}

	// Depth-first search from each chain in declared order, so that the
	// reported loop is the same on every run.
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, len(t.Chains))
	type frame struct{ chain, next int }
	var path []frame
	for root := range t.Chains {
		if state[root] != unseen {
			continue
		}
		state[root] = onPath
		path = append(path[:0], frame{root, start[root]})
		for len(path) > 0 {
			f := &path[len(path)-1]
			if f.next == start[f.chain+1] {
				state[f.chain] = done
				path = path[:len(path)-1]
				continue
			}
			e := edges[f.next]
			f.next++
			switch state[e.to] {
			case unseen:
				state[e.to] = onPath
				path = append(path, frame{e.to, start[e.to]})
			case onPath:
				var names []string
				for k := range path {
					if path[k].chain == e.to {
						for _, g := range path[k:] {
							names = append(names, t.Chains[g.chain].Name)
						}
						break
					}
				}
				names = append(names, t.Chains[e.to].Name)
				return p.errf(e.rule.Origin.Line, e.rule.Origin.Text, "jump to %s makes a loop (%s): expected chains without loops (the kernel refuses them)", t.Chains[e.to].Name, strings.Join(names, " -> "))
			}
		}
	}
	return nil
}
