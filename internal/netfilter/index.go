package netfilter

import "github.com/pktflow/pktflow/internal/packet"

// indexMinRules is the chain length from which a chain gets an index.
const indexMinRules = 64

// chainIndex lets a walk skip the rules of a long chain that cannot match
// the packet. kube-proxy's KUBE-SERVICES holds one rule per service port,
// "-d CLUSTERIP/32 -p tcp -m tcp --dport PORT -j KUBE-SVC-X": a packet
// can only match the rules of its own destination address. The index maps
// a key of the packet (its destination address, or its protocol and
// destination port for chains like KUBE-NODEPORTS) to the positions of the
// rules that require exactly that key; rules that require no single key
// stay in rest. The walk merges both lists by position, so rules are still
// evaluated in chain order and every rule that could match is evaluated:
// the Result is the same as walking every rule.
//
// Skipping a rule must not change anything but time: a rule is only
// placed under a key if everything evaluated before the keyed test is
// pure (cannot record uncertainty or make a random choice), so a skipped
// rule is one whose plain evaluation would have stopped silently.
type chainIndex struct {
	byDst  map[addr128][]int32
	byPort map[uint32][]int32
	rest   []int32
}

// lookup returns the candidate rules for the walker's packet.
func (ix *chainIndex) lookup(w *walker) []int32 {
	if ix.byDst != nil {
		return ix.byDst[w.dst]
	}
	if p := w.pkt; p.Proto == packet.TCP || p.Proto == packet.UDP {
		return ix.byPort[portKey(p.Proto, p.DPort)]
	}
	return nil
}

func portKey(proto uint8, port uint16) uint32 { return uint32(proto)<<16 | uint32(port) }

// dstKey returns the destination a rule requires, if it requires exactly
// one (-d a.b.c.d/32, not negated). Base matches are pure and -s, the
// only one evaluated before -d, cannot record anything.
func dstKey(r *crule, family int) (addr128, bool) {
	if r.has&bDst == 0 || r.neg&bDst != 0 || !r.addrs.dst.full(family) {
		return addr128{}, false
	}
	return r.addrs.dst.addr, true
}

// portKeys returns the (protocol, destination port) keys a rule requires:
// a non-negated -p tcp/udp with a single --dport (or a --dports list of
// single ports) in a tcp/udp/multiport match preceded only by pure
// matches.
func portKeys(r *crule) []uint32 {
	if r.has&bProto == 0 || r.neg&bProto != 0 || (r.proto != packet.TCP && r.proto != packet.UDP) {
		return nil
	}
	for _, m := range r.mods {
		switch pm := m.(type) {
		case *portsMatch:
			if pm.hasD && !pm.negD && pm.dport.lo == pm.dport.hi {
				return []uint32{portKey(r.proto, pm.dport.lo)}
			}
		case *multiportMatch:
			if pm.which == 'd' && !pm.neg {
				keys := make([]uint32, 0, len(pm.ranges))
				for _, pr := range pm.ranges {
					if pr.lo != pr.hi {
						return nil
					}
					keys = append(keys, portKey(r.proto, pr.lo))
				}
				return keys
			}
		}
		if !m.pure() {
			return nil
		}
	}
	return nil
}

// buildIndex indexes a chain on whichever key places more rules, or
// returns nil when neither places enough to be worth it.
func buildIndex(ch *cchain, family int) *chainIndex {
	nd, np := 0, 0
	for i := range ch.rules {
		if _, ok := dstKey(&ch.rules[i], family); ok {
			nd++
		}
		if portKeys(&ch.rules[i]) != nil {
			np++
		}
	}
	if nd < indexMinRules/2 && np < indexMinRules/2 {
		return nil
	}
	ix := &chainIndex{}
	if nd >= np {
		ix.byDst = map[addr128][]int32{}
		for i := range ch.rules {
			if k, ok := dstKey(&ch.rules[i], family); ok {
				ix.byDst[k] = append(ix.byDst[k], int32(i))
			} else {
				ix.rest = append(ix.rest, int32(i))
			}
		}
		return ix
	}
	ix.byPort = map[uint32][]int32{}
	for i := range ch.rules {
		keys := portKeys(&ch.rules[i])
		if keys == nil {
			ix.rest = append(ix.rest, int32(i))
			continue
		}
		for _, k := range keys {
			l := ix.byPort[k]
			if n := len(l); n > 0 && l[n-1] == int32(i) {
				continue // the same port listed twice
			}
			ix.byPort[k] = append(l, int32(i))
		}
	}
	return ix
}
