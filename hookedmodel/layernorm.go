package hookedmodel

import "github.com/golens/golens/gotch"

// LayerNorm is TransformerLens's LayerNorm (normalization_type "LN") or,
// with no weights, LayerNormPre ("LNPre", what fold_ln leaves):
//
//	x = x - mean(x);  scale = sqrt(mean(x²) + eps)      hook_scale      [... 1]
//	x = x / scale                                        hook_normalized [... length]
//	return x * w + b
type LayerNorm struct {
	W, B      *gotch.Tensor // [length]; nil for LNPre
	eps       float64
	hookScale string
	hookNorm  string
}

func newLayerNorm(prefix string, eps float64) *LayerNorm {
	return &LayerNorm{eps: eps, hookScale: prefix + ".hook_scale", hookNorm: prefix + ".hook_normalized"}
}

func (ln *LayerNorm) hookNames() []string { return []string{ln.hookScale, ln.hookNorm} }

// forward normalises x [... length]. When nobody observes the scale or the
// normalised value it takes ATen's fused layer_norm, which computes the
// same thing.
func (ln *LayerNorm) forward(p *pass, x *gotch.Tensor) *gotch.Tensor {
	dtype := x.DType()
	low := dtype == gotch.Half || dtype == gotch.BFloat16
	if !low && !p.wants(ln.hookScale) && !p.wants(ln.hookNorm) {
		return x.MustLayerNorm([]int64{x.Size(-1)}, ln.W, ln.B, ln.eps)
	}
	if low {
		x = x.MustTo(gotch.Float) // normalise in float32, as TransformerLens does
	}
	centred := x.MustSub(x.MustMeanDims([]int64{-1}, true))
	scale := p.at(ln.hookScale, centred.MustPowScalar(2).MustMeanDims([]int64{-1}, true).MustAddScalar(ln.eps).MustSqrt())
	normed := p.at(ln.hookNorm, centred.MustDiv(scale))
	if low {
		normed = normed.MustTo(dtype)
	}
	if ln.W == nil {
		return normed
	}
	return normed.MustMul(ln.W).MustAdd(ln.B)
}
