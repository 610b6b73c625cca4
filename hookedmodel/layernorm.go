package hookedmodel

import "github.com/golens/golens/gotch"

// LayerNorm is TransformerLens's LayerNorm (normalization_type "LN") or,
// with no weights, LayerNormPre ("LNPre", what fold_ln leaves):
//
//	x = x - mean(x);  scale = sqrt(mean(x²) + eps)      hook_scale      [... 1]
//	x = x / scale                                        hook_normalized [... length]
//	return x * w + b
//
// hook_normalized is taken before w and b, where TransformerLens takes it
// since v3.0.0 (components/layer_norm.py, PR #770, which made LayerNorm
// agree with LayerNormPre and RMSNorm: issue #747). TransformerLens 2.x
// (through v2.18.0) took it after them, as x / scale * w + b, so an
// unprocessed model's ln1, ln2 and ln_final hook_normalized differ from
// 2.x's by the LayerNorm weights; every other activation is the same.
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
	normed := p.at(ln.hookNorm, centred.MustDiv(scale))
	p.release(mean, sq, msq, v, centred, scale)
	if xf != x {
		p.release(xf)
	}
	out := normed
	if low {
		out = normed.MustTo(dtype)
	}
	if ln.W != nil {
		scaled := out.MustMul(ln.W)
		affine := scaled.MustAdd(ln.B)
		p.release(scaled)
		if out != normed {
			p.release(out)
		}
		out = affine
	}
	if out != normed {
		p.release(normed)
	}
	return out
}
