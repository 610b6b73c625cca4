package train

import (
	"fmt"
	"math"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// adamW is torch.optim.AdamW: per parameter, with g its gradient and t its
// own count of updates,
//
//	p ← p · (1 - lr·wd)                       decoupled weight decay
//	m ← β₁ m + (1-β₁) g                        first moment
//	v ← β₂ v + (1-β₂) g²                       second moment
//	p ← p - lr/(1-β₁ᵗ) · m / (√v / √(1-β₂ᵗ) + ε)
//
// The moments live on the parameters' device in their dtype and belong to
// the optimiser. A parameter without a gradient is skipped, its count too.
type adamW struct {
	params []hookedmodel.Parameter
	decay  []bool          // weight decay applies (matrices, or all with decay_all)
	m, v   []*gotch.Tensor // the moments, shaped as the parameters
	steps  []int64         // updates done per parameter
	cfg    TrainConfig
}

func newAdamW(params []hookedmodel.Parameter, cfg TrainConfig) (*adamW, error) {
	a := &adamW{params: params, cfg: cfg, steps: make([]int64, len(params))}
	err := gotch.Try(func() {
		for _, p := range params {
			a.decay = append(a.decay, cfg.DecayAll || p.Tensor.Dim() >= 2)
			a.m = append(a.m, gotch.MustZeros(p.Tensor.Shape(), p.Tensor.DType(), p.Tensor.Device()))
			a.v = append(a.v, gotch.MustZeros(p.Tensor.Shape(), p.Tensor.DType(), p.Tensor.Device()))
		}
	})
	if err != nil {
		a.free()
		return nil, fmt.Errorf("optimizer state: %w", err)
	}
	return a, nil
}

func (a *adamW) free() {
	for i := range a.m {
		a.m[i].Free()
		a.v[i].Free()
	}
}

// update applies one step at learning rate lr with grads (one per
// parameter, nil where there is none). Run it under gotch.NoGrad; the
// temporaries land in s.
func (a *adamW) update(s *gotch.Scope, grads []*gotch.Tensor, lr float64) {
	b1, b2 := a.cfg.Betas[0], a.cfg.Betas[1]
	for i, p := range a.params {
		g := grads[i]
		if g == nil {
			continue
		}
		a.steps[i]++
		t := float64(a.steps[i])
		bc1, bc2 := 1-math.Pow(b1, t), 1-math.Pow(b2, t)
		if a.decay[i] && a.cfg.WeightDecay != 0 {
			p.Tensor.MustMulScalar_(1 - lr*a.cfg.WeightDecay)
		}
		m, v := a.m[i], a.v[i]
		m.MustLerp_(g, 1-b1)
		v.MustMulScalar_(b2)
		v.MustAddcmul_(g, g, 1-b2)
		denom := borrow(s, v).MustSqrt().MustDivScalar(math.Sqrt(bc2)).MustAddScalar(a.cfg.Eps)
		p.Tensor.MustAddcdiv_(m, denom, -lr/bc1)
	}
}

// clipGrads scales grads in place so that their global L2 norm is at most
// maxNorm (no limit when it is 0), as torch.nn.utils.clip_grad_norm_ does,
// and returns the norm before clipping. The gradients belong to a scope,
// where the temporaries land too.
func clipGrads(grads []*gotch.Tensor, maxNorm float64) float64 {
	var norms []*gotch.Tensor
	for _, g := range grads {
		if g != nil {
			norms = append(norms, g.MustVectorNorm(2, nil, false))
		}
	}
	if len(norms) == 0 {
		return 0
	}
	total := gotch.MustStack(norms, 0).MustVectorNorm(2, nil, false).MustItem()
	if coef := maxNorm / (total + 1e-6); maxNorm > 0 && coef < 1 {
		for _, g := range grads {
			if g != nil {
				g.MustMulScalar_(coef)
			}
		}
	}
	return total
}

// borrow is a handle to t in s, so that ops on it put their results in s.
func borrow(s *gotch.Scope, t *gotch.Tensor) *gotch.Tensor {
	b, err := s.Borrow(t)
	if err != nil {
		panic(err)
	}
	return b
}
