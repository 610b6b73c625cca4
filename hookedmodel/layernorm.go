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
//
// With rms set it is TransformerLens's RMSNorm ("RMS") or, with no weight,
// RMSNormPre ("RMSPre"), as Hugging Face's LlamaRMSNorm computes it:
//
//	scale = sqrt(mean(x²) + eps)                         hook_scale      [... 1]
//	return (x / scale) * w                               hook_normalized [... length], before w
//
// No centring and no bias; hook_normalized is x / scale, before w, where
// TransformerLens's RMSNorm takes it (unlike its 2.x LayerNorm). A
// float16/bfloat16 input is normalised in float32 and cast back before w,
// as both TransformerLens and Hugging Face do.
type LayerNorm struct {
	W, B      *gotch.Tensor // [length]; nil for LNPre and RMSPre; B nil for RMS
	eps       float64
	rms       bool // RMSNorm: no centring, no bias
	affine    bool // has W (and B unless rms): LN or RMS, not LNPre or RMSPre
	plusOne   bool // RMSNorm scales by (1 + w) (Gemma), in float32 before the cast back
	hookScale string
	hookNorm  string
}

// newLayerNorm is a LayerNorm (affine) or LayerNormPre under prefix.
func newLayerNorm(prefix string, eps float64, affine bool) *LayerNorm {
	return &LayerNorm{eps: eps, affine: affine, hookScale: prefix + ".hook_scale", hookNorm: prefix + ".hook_normalized"}
}

// newNorm is the norm normalization_type kind asks for under prefix, or
// nil for none; an RMSNorm scales by (1 + w) with rms_norm_weight_plus_one.
func newNorm(kind, prefix string, cfg *Config) *LayerNorm {
	if kind == "" {
		return nil
	}
	ln := newLayerNorm(prefix, cfg.Eps, kind == "LN" || kind == "RMS")
	ln.rms = kind == "RMS" || kind == "RMSPre"
	ln.plusOne = ln.rms && cfg.NormWeightPlusOne
	return ln
}

// tlClass is the TransformerLens module class of ln.
func (ln *LayerNorm) tlClass() string {
	c := "LayerNorm"
	if ln.rms {
		c = "RMSNorm"
	}
	if !ln.affine {
		c += "Pre"
	}
	return c
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
	if ln.rms {
		return s.Keep(ln.rmsNorm(p, s, x, low))
	}
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

// rmsNorm is the RMSNorm of x [... length] in x's scope.
func (ln *LayerNorm) rmsNorm(p *pass, s *callScope, x *gotch.Tensor, low bool) *gotch.Tensor {
	dtype := x.DType()
	if low {
		x = x.MustTo(gotch.Float)
	}
	msq := x.MustPowScalar(2).MustMeanDims([]int64{-1}, true).MustAddScalar(ln.eps) // mean(x²) + eps [... 1]
	scale := p.at(ln.hookScale, msq.MustSqrt())                                     // [... 1]
	out := p.at(ln.hookNorm, x.MustDiv(scale))                                      // [... length]
	if ln.W != nil && ln.plusOne {
		// Gemma: (1 + w) in float32, before the cast back, as GemmaRMSNorm
		out = out.MustMul(s.in(ln.W).MustTo(out.DType()).MustAddScalar(1))
	}
	if low {
		out = out.MustTo(dtype)
	}
	if ln.W != nil && !ln.plusOne {
		out = out.MustMul(ln.W) // Llama: w after the cast back, as LlamaRMSNorm
	}
	return out
}
