package train

import (
	"context"
	"fmt"

	"github.com/golens/golens/gotch"
)

// Group is the process group a data-parallel run trains over (a
// torch.distributed group, as backend/dist joins one): this process's rank,
// the number of ranks, an in-place all-reduce sum of tensors on their
// device, and a barrier.
type Group interface {
	Rank() int
	Size() int
	SumTensors(ctx context.Context, ts []*gotch.Tensor) error
	Barrier(ctx context.Context) error
}

// DataParallel trains over the ranks of g as PyTorch's
// DistributedDataParallel does: every rank holds the whole model (the same
// seed, or the same checkpoint), takes its slice of each step's batch (rank
// r the rows [r·B/N, (r+1)·B/N) of B, which N must divide) and averages
// the gradients over the ranks before clipping and AdamW, so N ranks train
// the weights one process would with the whole batch, up to float32
// round-off. Rank 0 alone writes the out folder (config, metrics,
// checkpoints, the final model) and evaluates; every rank resumes from its
// latest checkpoint.
func DataParallel(g Group) Option { return func(o *options) { o.group = g } }

// parallel is a run's place in its group; the zero value is one process.
type parallel struct{ g Group }

func newParallel(g Group) (parallel, error) {
	if g == nil {
		return parallel{}, nil
	}
	if n, r := g.Size(), g.Rank(); n <= 0 || r < 0 || r >= n {
		return parallel{}, fmt.Errorf("data parallel: rank %d of %d ranks: want 0 <= rank < size", r, n)
	}
	return parallel{g}, nil
}

// lead says whether this process writes the run's files: rank 0, or the
// only one.
func (p parallel) lead() bool { return p.g == nil || p.g.Rank() == 0 }

func (p parallel) size() int {
	if p.g == nil {
		return 1
	}
	return p.g.Size()
}

// rows is this rank's slice of a step's batch.
func (p parallel) rows(batch [][]int64) ([][]int64, error) {
	n := p.size()
	if n == 1 {
		return batch, nil
	}
	if len(batch)%n != 0 {
		return nil, fmt.Errorf("data parallel: a batch of %d rows does not split over %d ranks (make the batch a multiple of the world size)", len(batch), n)
	}
	per := len(batch) / n
	r := p.g.Rank()
	return batch[r*per : (r+1)*per], nil
}

func (p parallel) barrier(ctx context.Context) error {
	if p.size() == 1 {
		return nil
	}
	if err := p.g.Barrier(ctx); err != nil {
		return fmt.Errorf("data parallel: waiting for the other ranks: %w", err)
	}
	return nil
}

// average makes each tensor (gradients and the loss, on the model's
// device) the mean of its values over the ranks.
func (p parallel) average(ctx context.Context, ts []*gotch.Tensor) error {
	n := p.size()
	if n == 1 {
		return nil
	}
	if err := p.g.SumTensors(ctx, ts); err != nil {
		return fmt.Errorf("data parallel: all-reduce of the gradients: %w", err)
	}
	return gotch.Try(func() {
		for _, t := range ts {
			t.MustMulScalar_(1 / float64(n))
		}
	})
}
