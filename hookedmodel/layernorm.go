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
// same thing. It releases what it made but its result.
func (ln *LayerNorm) forward(p *pass, x *gotch.Tensor) *gotch.Tensor {
	dtype := x.DType()
	low := dtype == gotch.Half || dtype == gotch.BFloat16
	if !low && !p.wants(ln.hookScale) && !p.wants(ln.hookNorm) {
		return x.MustLayerNorm([]int64{x.Size(-1)}, ln.W, ln.B, ln.eps)
	}
	xf := x
	if low {
		xf = x.MustTo(gotch.Float) // normalise in float32, as TransformerLens does
	}
	mean := xf.MustMeanDims([]int64{-1}, true)
	centred := xf.MustSub(mean)
	sq := centred.MustPowScalar(2)
	msq := sq.MustMeanDims([]int64{-1}, true)
	v := msq.MustAddScalar(ln.eps)
	scale := p.at(ln.hookScale, v.MustSqrt())
	out := centred.MustDiv(scale)
	p.release(mean, sq, msq, v, centred, scale)
	if xf != x {
		p.release(xf)
	}
	if ln.W != nil {
		scaled := out.MustMul(ln.W)
		affine := scaled.MustAdd(ln.B)
		p.release(scaled, out)
		out = affine
	}
	out = p.at(ln.hookNorm, out)
	if low {
		lowOut := out.MustTo(dtype)
		p.release(out)
		out = lowOut
	}
	return out
}
