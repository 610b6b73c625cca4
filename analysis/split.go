package analysis

import (
	"context"
	"fmt"
)

// Group is what a sweep split over processes needs of their group (a
// torch.distributed process group, as backend/dist joins one): this
// process's rank, the number of ranks, and an all-reduce sum of float64s
// that leaves the sum on every rank.
type Group interface {
	Rank() int
	Size() int
	SumFloat64(ctx context.Context, v []float64) error
}

// SplitOver runs a sweep's patched or ablated passes over the ranks of g:
// rank r runs passes i with i mod size = r, and the ranks' results are
// summed, each pass's value coming from exactly one rank and zeros from the
// others, so every rank gets what one process gets, bit for bit. Each pass
// is the same computation whichever rank runs it. The clean and corrupted
// (or unablated) baselines run on every rank.
func SplitOver(g Group) Option { return option(optSplit, func(o *options) { o.group = g }) }

// split is the share of a sweep's passes this process runs.
type split struct {
	g Group
}

func (o *options) split() (split, error) {
	if o.group == nil {
		return split{}, nil
	}
	if n, r := o.group.Size(), o.group.Rank(); n <= 0 || r < 0 || r >= n {
		return split{}, fmt.Errorf("split over rank %d of %d ranks: want 0 <= rank < size", r, n)
	}
	return split{o.group}, nil
}

// mine says whether this process runs pass i.
func (s split) mine(i int) bool { return s.g == nil || i%s.g.Size() == s.g.Rank() }

// count is how many of n passes this process runs.
func (s split) count(n int) int {
	if s.g == nil {
		return n
	}
	return (n - s.g.Rank() + s.g.Size() - 1) / s.g.Size()
}

// gather makes vals, holding this process's passes (zeros elsewhere),
// hold every pass's value.
func (s split) gather(ctx context.Context, vals []float64) error {
	if s.g == nil || s.g.Size() == 1 {
		return nil
	}
	if err := s.g.SumFloat64(ctx, vals); err != nil {
		return fmt.Errorf("gathering the ranks' passes: %w", err)
	}
	return nil
}
