package hookedmodel

import (
	"math"

	"github.com/golens/golens/gotch"
)

// rotary is rotary positional embedding (positional_embedding_type
// "rotary") in GPT-NeoX's rotate-half layout, as Hugging Face's
// apply_rotary_pos_emb computes it: the first dim dimensions of each head
// (rotary_dim; the rest pass through) are split in two halves x1, x2, and
// at position p
//
//	x_rot = x·cos(p θ) + rotate_half(x)·sin(p θ),  rotate_half(x) = (−x2, x1)
//
// with θ_i = base^(−2i/dim) for i < dim/2, each angle used for both
// halves. With rotary_adjacent_pairs (GPT-J's layout) dimensions 2i and
// 2i+1 pair instead, rotate_every_two(x) = (−x[2i+1], x[2i]) and θ_i
// turns that pair. The angles are computed in float64 and cast to the
// model's dtype.
type rotary struct {
	dim      int64
	invFreq  []float64 // [dim/2]: base^(−2i/dim)
	adjacent bool      // rotary_adjacent_pairs
}

func newRotary(cfg *Config) *rotary {
	if cfg.PositionalEmbeddingType != "rotary" {
		return nil
	}
	r := &rotary{dim: int64(cfg.RotaryDim), adjacent: cfg.RotaryAdjacentPairs}
	for i := range r.dim / 2 {
		r.invFreq = append(r.invFreq, math.Pow(cfg.RotaryBase, -float64(2*i)/float64(r.dim)))
	}
	if cfg.UseNTKByPartsRope {
		r.scaleNTKByParts(cfg)
	}
	return r
}

// scaleNTKByParts applies Llama 3.1's rope_scaling to the frequencies
// (Hugging Face's modeling_rope_utils.py, rope_type "llama3"): a pair whose
// wavelength 2π/θ is below ctx/high keeps θ, one above ctx/low turns slow
// by factor, and between them θ is interpolated with weight
// smooth = (ctx/wavelength − low) / (high − low) on the unscaled θ.
func (r *rotary) scaleNTKByParts(cfg *Config) {
	ctx, factor := float64(cfg.NTKOriginalCtxLen), cfg.NTKByPartsFactor
	low, high := cfg.NTKByPartsLowFreqFactor, cfg.NTKByPartsHighFreqFactor
	for i, theta := range r.invFreq {
		wavelength := 2 * math.Pi / theta
		switch {
		case wavelength < ctx/high:
		case wavelength > ctx/low:
			r.invFreq[i] = theta / factor
		default:
			smooth := (ctx/wavelength - low) / (high - low)
			r.invFreq[i] = (1-smooth)*theta/factor + smooth*theta
		}
	}
}

// positions are the rotary positions of the queries and keys, [batch or
// 1, pos] int64: the query at index i of this pass sits at offset + i and
// keys cover the cached positions too; with a padding mask ([batch key]),
// a position counts the real tokens before it, as the positional
// embedding does (padding gets position 0; its keys are masked anyway).
func (r *rotary) positions(s *callScope, padMask *gotch.Tensor, offset, nq, nk int64, dev gotch.Device) (q, k *gotch.Tensor) {
	if padMask == nil {
		k = s.Attach(gotch.MustArange(0, float64(nk), 1, gotch.Int64, dev)).MustUnsqueeze(0) // [1 key]
	} else {
		k = s.in(padMask).MustTo(gotch.Int64).MustCumsum(1).MustSubScalar(1).MustClamp(0, math.MaxInt32) // [batch key]
	}
	return k.MustNarrow(1, offset, nq), k
}

// apply rotates x [batch pos head d_head] at positions ids [batch or 1,
// pos], in x's scope.
func (r *rotary) apply(s *callScope, x, ids *gotch.Tensor) *gotch.Tensor {
	freq := s.Attach(gotch.MustFromSlice(r.invFreq, []int64{r.dim / 2}, x.Device()))   // [dim/2] float64
	angles := ids.MustTo(gotch.Double).MustUnsqueeze(-1).MustMul(freq)                 // [batch pos dim/2]
	angles = r.spread(angles).MustUnsqueeze(2)                                         // [batch pos 1 dim]
	cos, sin := angles.MustCos().MustTo(x.DType()), angles.MustSin().MustTo(x.DType()) // [batch pos 1 dim]
	xr := x.MustNarrow(-1, 0, r.dim)                                                   // [batch pos head dim]
	rotated := xr.MustMul(cos).MustAdd(r.rotate(xr).MustMul(sin))
	if r.dim == x.Size(-1) {
		return rotated
	}
	return gotch.MustCat([]*gotch.Tensor{rotated, x.MustNarrow(-1, r.dim, x.Size(-1)-r.dim)}, -1) // partial rotary: the rest passes
}

// spread lays the dim/2 angles [... dim/2] over the dim rotated
// dimensions: (θ, θ) for the halves, each θ_i twice in a row for adjacent
// pairs.
func (r *rotary) spread(a *gotch.Tensor) *gotch.Tensor {
	if !r.adjacent {
		return gotch.MustCat([]*gotch.Tensor{a, a}, -1)
	}
	return gotch.MustStack([]*gotch.Tensor{a, a}, -1).MustFlatten(-2, -1)
}

// rotate is x [... dim] turned a quarter in each pair: rotate_half (−x2,
// x1) of the halves, or (−x[2i+1], x[2i]) of each adjacent pair.
func (r *rotary) rotate(x *gotch.Tensor) *gotch.Tensor {
	half := r.dim / 2
	if !r.adjacent {
		x1, x2 := x.MustNarrow(-1, 0, half), x.MustNarrow(-1, half, half) // [... dim/2]
		return gotch.MustCat([]*gotch.Tensor{x2.MustNeg(), x1}, -1)
	}
	shape := x.Shape()
	pairs := x.MustReshape(append(shape[:len(shape)-1:len(shape)-1], half, 2)) // [... dim/2 2]
	return gotch.MustStack([]*gotch.Tensor{pairs.MustSelect(-1, 1).MustNeg(), pairs.MustSelect(-1, 0)}, -1).MustFlatten(-2, -1)
}
