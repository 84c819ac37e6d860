package engine

import (
	"fmt"

	"github.com/pktflow/pktflow/internal/conntrack"
	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/netfilter"
	"github.com/pktflow/pktflow/internal/packet"
	"github.com/pktflow/pktflow/internal/trace"
)

// Tables in the order the kernel calls them at each hook (by their
// registration priorities: raw -300, mangle -150, nat DNAT -100, filter 0,
// security 50, nat SNAT 100). Connection tracking (-200) sits between raw
// and mangle at PREROUTING and OUTPUT; confirmation comes last at
// POSTROUTING and INPUT. The nat entries are handled by natStage.
var hookTables = [...][]string{
	netfilter.PreRouting:  {"raw", "conntrack", "mangle", "nat"},
	netfilter.Input:       {"mangle", "filter", "security", "nat", "confirm"},
	netfilter.Forward:     {"mangle", "filter", "security"},
	netfilter.Output:      {"raw", "conntrack", "mangle", "nat", "filter", "security"},
	netfilter.PostRouting: {"mangle", "nat", "confirm"},
}

// hook runs every table registered at h for the packet. It returns false
// when the packet's journey ends here (drop or reject, already recorded).
// rerouted, for OUTPUT, is called when the destination or mark changed so
// the kernel would route the packet again (ip_route_me_harder).
func (r *run) hook(c *pctx, h netfilter.Hook, reroute func() bool) bool {
	for _, t := range hookTables[h] {
		if r.done {
			return false
		}
		switch t {
		case "conntrack":
			r.conntrackIn(c, h)
			continue
		case "confirm":
			if c.ent != nil && !c.ent.Confirmed {
				r.table(c.ns).Confirm(c.ent)
				m := len(r.msg)
				r.msg = append(append(r.msg, "conntrack confirms the new connection: original "...), r.tuple(c.ent.Orig)...)
				r.msg = append(append(r.msg, ", reply "...), r.tuple(c.ent.Reply)...)
				r.emitMsg(trace.Event{Leg: c.leg, Node: c.ns.n.Name, Kind: trace.EvConntrack, Hook: hookOf(h)}, m)
			}
			continue
		case "nat":
			before := c.pkt
			if !r.natStage(c, h) {
				return false
			}
			if h == netfilter.Output && before.Dst != c.pkt.Dst && reroute != nil && !reroute() {
				return false
			}
			continue
		}
		if !c.ns.nf(&c.pkt).HasTable(t) {
			continue
		}
		before, beforeMark := c.pkt, c.mark
		res := r.runTable(c, h, t)
		switch res.Verdict {
		case netfilter.Drop:
			r.drop(c, c.iif, fmt.Sprintf("%s %s %s", t, h, decided(res)), deciderOrigin(res))
			return false
		case netfilter.Reject:
			r.drop(c, c.iif, fmt.Sprintf("%s %s %s", t, h, decided(res)), deciderOrigin(res))
			r.reject(c, res)
			return false
		}
		if t == "raw" && res.NoTrack {
			c.state = netfilter.CTUntracked
			c.tracked = true
			r.emit(trace.Event{Leg: c.leg, Node: c.ns.n.Name, Kind: trace.EvConntrack, Hook: hookOf(h), Table: t,
				Message: "NOTRACK: connection tracking skips this packet, so no NAT applies to it"})
		}
		if h == netfilter.Output && t == "mangle" && (before.Dst != c.pkt.Dst || before.Src != c.pkt.Src || beforeMark != c.mark) && reroute != nil {
			if !reroute() {
				return false
			}
		}
	}
	return !r.done
}

// decided describes what gave the verdict.
func decided(res netfilter.Result) string {
	if len(res.Steps) == 0 {
		return res.Verdict.String()
	}
	s := res.Steps[len(res.Steps)-1]
	if s.Rule == nil {
		return fmt.Sprintf("chain %s policy %s", s.Chain, res.Verdict)
	}
	return fmt.Sprintf("chain %s rule %d (%s): %s", s.Chain, s.Rule.Pos, s.Rule.Origin.Text, res.Verdict)
}

func deciderOrigin(res netfilter.Result) *model.Origin {
	if len(res.Steps) == 0 {
		return nil
	}
	s := res.Steps[len(res.Steps)-1]
	if s.Rule == nil {
		return nil
	}
	// The rule's own Origin: the model is immutable.
	return &s.Rule.Origin
}

// nfctx builds the context netfilter's matches look at.
func (r *run) nfctx(c *pctx, h netfilter.Hook) *netfilter.Ctx {
	if r.chooseFn == nil {
		r.chooseFn = func(what string, p float64) bool { return r.chooseAt(r.chooseNode, what, p) }
	}
	r.chooseNode = c.ns.n.Name
	// One context per run, reused: netfilter keeps no reference to it.
	ctx := &r.nfc
	*ctx = netfilter.Ctx{Pkt: &c.pkt, State: c.state, Reply: c.reply, Mark: c.mark, AddrType: c.ns.addrTypeFn,
		Choose: r.chooseFn, PhysIn: c.physIn, PhysOut: c.physOut, Bridged: c.bridged}
	switch h {
	case netfilter.PreRouting, netfilter.Input:
		ctx.InIface = c.iif
	case netfilter.Output:
		ctx.OutIface = c.oif
	case netfilter.Forward, netfilter.PostRouting:
		ctx.InIface, ctx.OutIface = c.iif, c.oif
	}
	if e := c.ent; e != nil {
		ctx.CTMark = e.Mark
		ctx.OrigSrc, ctx.OrigDst, ctx.OrigSPort, ctx.OrigDPort = e.Orig.Src, e.Orig.Dst, e.Orig.SPort, e.Orig.DPort
		ctx.ReplySrc, ctx.ReplyDst = e.Reply.Src, e.Reply.Dst
		ctx.ReplySPort, ctx.ReplyDPort = e.Reply.SPort, e.Reply.DPort
		if e.SrcNAT {
			ctx.State |= netfilter.CTSNAT
		}
		if e.DstNAT {
			ctx.State |= netfilter.CTDNAT
		}
	}
	return ctx
}

// runTable walks one table and records what matched.
func (r *run) runTable(c *pctx, h netfilter.Hook, table string) netfilter.Result {
	ctx := r.nfctx(c, h)
	// The walk writes its messages straight into the branch's.
	sc := &r.sh.nf
	sc.Msgs = r.msg
	res := c.ns.nf(&c.pkt).RunScratch(table, h, ctx, sc)
	r.msg = sc.Msgs
	c.mark = ctx.Mark
	if c.ent != nil {
		c.ent.Mark = ctx.CTMark
	}
	for i, s := range res.Steps {
		ev := trace.Event{Leg: c.leg, Node: c.ns.n.Name, Kind: trace.EvRule, Hook: hookOf(h), Table: s.Table, Chain: s.Chain, Message: s.Message}
		if sp := sc.Spans[i]; sp[0] >= 0 {
			r.pend = append(r.pend, msgSpan{int32(len(r.tr.Hops)), sp[0], sp[1]})
		}
		if s.Rule != nil {
			// The rule's own Origin: the model is immutable.
			ev.Rule, ev.Target, ev.Origin = int32(s.Rule.Pos), s.Rule.Target, &s.Rule.Origin
		} else if s.What == "policy" {
			ev.Kind = trace.EvPolicy
			ev.Target = res.Verdict.String()
		}
		if ev.Iface == "" {
			ev.Iface = c.iif
			if h == netfilter.Output || h == netfilter.PostRouting {
				ev.Iface = c.oif
			}
		}
		r.emit(ev)
	}
	for _, u := range res.Uncertain {
		r.uncertain(c.ns, u)
	}
	return res
}

// conntrackIn is nf_conntrack_in: find the packet's connection, or start
// one, and classify it (NEW, ESTABLISHED, RELATED, INVALID).
func (r *run) conntrackIn(c *pctx, h netfilter.Hook) {
	if c.tracked {
		return
	}
	c.tracked = true
	tab := r.table(c.ns)
	ev := trace.Event{Leg: c.leg, Node: c.ns.n.Name, Kind: trace.EvConntrack, Hook: hookOf(h)}
	if c.pkt.IsICMPError() {
		in := c.pkt.Inner
		if in == nil {
			c.state = netfilter.CTInvalid
			ev.Message = "ICMP error without its embedded header: INVALID"
			r.emit(ev)
			return
		}
		it, ok := conntrack.TupleOf(in)
		if ok {
			if e, isReply := tab.Find(it.Invert()); e != nil {
				// The error travels opposite to the packet it quotes.
				c.ent, c.reply, c.state = e, isReply, netfilter.CTRelated
				ev.Message = fmt.Sprintf("ICMP error about %s: RELATED to connection %s (%s direction)", it, e.Orig, dirName(isReply))
				r.emit(ev)
				return
			}
		}
		c.state = netfilter.CTInvalid
		ev.Message = fmt.Sprintf("ICMP error about %s matches no tracked connection: INVALID", it)
		r.emit(ev)
		return
	}
	t, ok := conntrack.TupleOf(&c.pkt)
	if !ok {
		c.state = netfilter.CTInvalid
		return
	}
	if e, isReply := tab.Find(t); e != nil {
		c.ent, c.reply = e, isReply
		if isReply {
			e.SeenReply = true
		}
		if isReply || e.SeenReply {
			c.state = netfilter.CTEstablished
			m := len(r.msg)
			r.msg = append(append(r.msg, r.tuple(t)...), " belongs to connection "...)
			r.msg = append(append(append(append(r.msg, r.tuple(e.Orig)...), " ("...), dirName(isReply)...), " direction): ESTABLISHED"...)
			if e.Preexisting {
				r.msg = append(append(r.msg, " — entry from "...), e.Where...)
			}
			r.emitMsg(ev, m)
			return
		}
		c.state = netfilter.CTNew
		ev.Message = fmt.Sprintf("%s is a retransmission of connection %s awaiting a reply: NEW", t, e.Orig)
		if e.Preexisting {
			ev.Message += " — entry from " + e.Where
		}
		r.emit(ev)
		return
	}
	if c.pkt.Proto == packet.TCP && c.pkt.TCPFlags&packet.SYN == 0 && c.pkt.TCPFlags&packet.RST != 0 {
		c.state = netfilter.CTInvalid
		ev.Message = fmt.Sprintf("%s is a reset for no tracked connection: INVALID", t)
		r.emit(ev)
		return
	}
	if c.pkt.Proto == packet.TCP && c.pkt.TCPFlags&(packet.SYN|packet.ACK) == packet.SYN|packet.ACK {
		// TCP tracking starts a connection at a SYN, or picks one up at
		// an ACK; a SYN-ACK from the NONE state is invalid
		// (nf_conntrack_proto_tcp: sNO -> sIV), as when this node
		// forwards only the answer of a handshake it did not see begin.
		c.state = netfilter.CTInvalid
		ev.Message = fmt.Sprintf("%s is a SYN-ACK for no tracked connection (this node did not see its SYN): INVALID", t)
		r.emit(ev)
		return
	}
	if (c.pkt.Proto == packet.ICMP && c.pkt.ICMPType == packet.ICMPEchoReply) || (c.pkt.Proto == packet.ICMPv6 && c.pkt.ICMPType == packet.ICMPv6EchoReply) {
		c.state = netfilter.CTInvalid
		ev.Message = fmt.Sprintf("%s is an echo reply for no tracked echo request: INVALID", t)
		r.emit(ev)
		return
	}
	c.ent = tab.New(t, c.ns.where[h])
	c.reply, c.state = false, netfilter.CTNew
	m := len(r.msg)
	r.msg = append(append(r.msg, r.tuple(t)...), " starts a new connection: NEW"...)
	r.emitMsg(ev, m)
}

func dirName(reply bool) string {
	if reply {
		return "reply"
	}
	return "original"
}

// hookOf names a netfilter hook in a trace.
func hookOf(h netfilter.Hook) trace.Hook {
	return trace.HookPreRouting + trace.Hook(h-netfilter.PreRouting)
}
