package iptsave

import "github.com/pktflow/pktflow/internal/model"

// slabs hand out the slices a rule keeps (its Rule, Matches, Options and
// Args, and Chains) from larger arrays, so a kube-proxy host's 100k rules cost a few
// hundred allocations instead of a million. Every slice handed out has its
// capacity capped at its length, so a caller appending to one rule's
// Matches gets a fresh array and never writes over the next rule's.
type slabs struct {
	chains  slab[model.Chain]
	rules   slab[model.Rule]
	matches slab[model.Match]
	opts    slab[model.Option]
	args    slab[string]
}

// Slab sizes double with use: small inputs stay small, big ones settle at
// maxSlab elements per allocation.
const (
	minSlab = 16
	maxSlab = 4096
)

type slab[T any] struct {
	free []T
	size int // elements in the last array made
}

// take returns n fresh elements, refilling the slab when short. It returns
// nil for n == 0 so empty parts of a rule stay nil.
func (s *slab[T]) take(n int) []T {
	if n == 0 {
		return nil
	}
	if len(s.free) < n {
		s.size = min(max(2*s.size, minSlab), maxSlab)
		s.free = make([]T, max(s.size, n))
	}
	r := s.free[:n:n]
	s.free = s.free[n:]
	return r
}
