package hookedmodel

import "github.com/golens/golens/gotch"

// LayerNorm is TransformerLens's LayerNorm (normalization_type "LN") or,
// with no weights, LayerNormPre ("LNPre", what fold_ln leaves):
//
//	x = x - mean(x);  scale = sqrt(mean(x²) + eps)      hook_scale      [... 1]
//	return x / scale * w + b                             hook_normalized [... length]
//
// hook_normalized is the norm's output, after w and b, where
// TransformerLens's HookedTransformer (components/layer_norm.py, the 2.x
// releases that from_pretrained_no_processing and the ARENA notebooks use)
// takes it; in LNPre that is x / scale. TransformerLens's 3.x line moved
// it before w and b (PR #770); golens follows the 2.x placement, which the
// ln hooks of an unprocessed model are checked against.
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
	s := p.scope()
	defer s.Close()
	x = s.in(x)
	dtype := x.DType()
	low := dtype == gotch.Half || dtype == gotch.BFloat16
	if !low && !p.wants(ln.hookScale) && !p.wants(ln.hookNorm) {
		return s.Keep(x.MustLayerNorm([]int64{x.Size(-1)}, ln.W, ln.B, ln.eps))
	}
	if low {
		x = x.MustTo(gotch.Float) // normalise in float32, as TransformerLens does
	}
	x = x.MustSub(x.MustMeanDims([]int64{-1}, true))                                // x - mean(x)
	msq := x.MustPowScalar(2).MustMeanDims([]int64{-1}, true).MustAddScalar(ln.eps) // mean(x²) + eps [... 1]
	scale := p.at(ln.hookScale, msq.MustSqrt())                                     // [... 1]
	out := x.MustDiv(scale)
	if ln.W != nil {
		out = out.MustMul(ln.W).MustAdd(ln.B)
	}
	out = p.at(ln.hookNorm, out)
	if low {
		out = out.MustTo(dtype)
	}
	return s.Keep(out)
}
