package train

import (
	"context"
	"fmt"
	"math"

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
	s := gotch.NewScope()
	defer s.Close()
	defer st.zeroGrads()
	out, err := st.m.Forward(ctx, hookedmodel.Tokens(tokens), hookedmodel.Return(hookedmodel.ReturnLoss))
	if err != nil {
		return 0, 0, err
	}
	defer out.Free()
	if err := out.Backward(); err != nil {
		return 0, 0, fmt.Errorf("backward: %w", err)
	}
	if loss, err = out.Loss.Item(); err != nil {
		return 0, 0, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, 0, fmt.Errorf("the loss is %g: training diverged", loss)
	}
	err = gotch.NoGrad(func() error {
		return gotch.Try(func() {
			grads := make([]*gotch.Tensor, len(st.opt.params))
			for i, p := range st.opt.params {
				grads[i] = s.Attach(p.Tensor.MustGrad())
			}
			gradNorm = clipGrads(grads, st.clip)
			st.opt.update(s, grads, lr)
		})
	})
	if err != nil {
		return loss, gradNorm, fmt.Errorf("update: %w", err)
	}
	return loss, gradNorm, nil
}

// zeroGrads drops the gradients, as optimizer.zero_grad(set_to_none=True).
func (st *Stepper) zeroGrads() {
	for _, p := range st.opt.params {
		_ = p.Tensor.ZeroGrad() // fails only on a freed tensor
	}
}
