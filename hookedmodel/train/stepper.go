package train

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// Stepper is one optimisation step on batches the caller supplies: the
// forward pass with the mean next-token loss, the backward pass, gradient
// clipping and AdamW. Run builds its loop on it; benchmarks and custom
// loops use it alone.
type Stepper struct {
	m    *hookedmodel.HookedTransformer
	opt  *adamW
	clip float64
	dp   parallel // the ranks the gradients are averaged over
}

// NewStepper turns on gradient recording for m's weights and makes AdamW's
// state for them, from cfg's betas, eps, weight decay and clipping
// (DefaultTrainConfig gives torch's defaults). m stays the caller's.
func NewStepper(m *hookedmodel.HookedTransformer, cfg TrainConfig) (*Stepper, error) {
	if err := m.SetRequiresGrad(true); err != nil {
		return nil, err
	}
	opt, err := newAdamW(m.Parameters(), cfg)
	if err != nil {
		return nil, err
	}
	return &Stepper{m: m, opt: opt, clip: cfg.Clip}, nil
}

// Free releases the optimiser's state, not the model.
func (st *Stepper) Free() { st.opt.free() }

// Step trains on tokens [batch seq] at learning rate lr and returns the
// loss before the update and the gradient norm before clipping. An error
// before the update leaves the weights as they were; one in the update
// (out of device memory) leaves the model unusable.
func (st *Stepper) Step(ctx context.Context, tokens *gotch.Tensor, lr float64) (loss, gradNorm float64, err error) {
	loss, gradNorm, _, err = st.step(ctx, tokens, lr, false)
	return loss, gradNorm, err
}

// step is Step that also tells the other data-parallel ranks whether this
// one wants to stop after the step, and says whether any does: ranks stop
// together, after the same step, or the others would wait for the one
// gone in their next all-reduce.
func (st *Stepper) step(ctx context.Context, tokens *gotch.Tensor, lr float64, wantStop bool) (loss, gradNorm float64, stop bool, err error) {
	s := gotch.NewScope()
	defer s.Close()
	defer st.zeroGrads()
	out, err := st.m.Forward(ctx, hookedmodel.Tokens(tokens), hookedmodel.Return(hookedmodel.ReturnLoss))
	if err != nil {
		return 0, 0, false, err
	}
	defer out.Free()
	if err := out.Backward(); err != nil {
		return 0, 0, false, fmt.Errorf("backward: %w", err)
	}
	if loss, err = out.Loss.Item(); err != nil {
		return 0, 0, false, err
	}
	grads := make([]*gotch.Tensor, len(st.opt.params))
	err = gotch.Try(func() {
		for i, p := range st.opt.params {
			grads[i] = s.Attach(p.Tensor.MustGrad())
		}
	})
	if err != nil {
		return loss, 0, false, err
	}
	if loss, stop, err = st.averageOverRanks(ctx, s, grads, loss, wantStop); err != nil {
		return loss, 0, false, err
	}
	// After the average, so that every rank sees the same loss and stops
	// together rather than leave the others waiting in the next all-reduce.
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, 0, stop, fmt.Errorf("the loss is %g: training diverged", loss)
	}
	err = gotch.NoGrad(func() error {
		return gotch.Try(func() {
			gradNorm = clipGrads(grads, st.clip)
			st.opt.update(s, grads, lr)
		})
	})
	if err != nil {
		return loss, gradNorm, stop, fmt.Errorf("update: %w", err)
	}
	return loss, gradNorm, stop, nil
}

// averageOverRanks makes the gradients and the loss their means over the
// data-parallel ranks in one all-reduce, the loss and the ranks' wishes to
// stop riding with the gradients; one process returns them as they are.
func (st *Stepper) averageOverRanks(ctx context.Context, s *gotch.Scope, grads []*gotch.Tensor, loss float64, wantStop bool) (float64, bool, error) {
	if st.dp.size() == 1 {
		return loss, wantStop, nil
	}
	flag := 0.0
	if wantStop {
		flag = 1
	}
	extra, err := gotch.FromSlice([]float64{loss, flag}, []int64{2}, st.m.Device()) // averaged: [mean loss, share of ranks stopping]
	if err != nil {
		return loss, false, err
	}
	s.Attach(extra)
	if err := gotch.NoGrad(func() error { return st.dp.average(ctx, append(slices.Clip(grads), extra)) }); err != nil {
		return loss, false, err
	}
	v, err := gotch.ToSlice[float64](extra)
	if err != nil {
		return loss, false, err
	}
	return v[0], v[1] > 0, nil
}

// zeroGrads drops the gradients, as optimizer.zero_grad(set_to_none=True).
func (st *Stepper) zeroGrads() {
	for _, p := range st.opt.params {
		_ = p.Tensor.ZeroGrad() // fails only on a freed tensor
	}
}
