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
// halves. The angles are computed in float64 and cast to the model's
// dtype.
type rotary struct {
	dim     int64
	invFreq []float64 // [dim/2]: base^(−2i/dim)
}

func newRotary(cfg *Config) *rotary {
	if cfg.PositionalEmbeddingType != "rotary" {
		return nil
	}
	r := &rotary{dim: int64(cfg.RotaryDim)}
	for i := range r.dim / 2 {
		r.invFreq = append(r.invFreq, math.Pow(cfg.RotaryBase, -float64(2*i)/float64(r.dim)))
	}
	return r
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
	half := r.dim / 2
	freq := s.Attach(gotch.MustFromSlice(r.invFreq, []int64{half}, x.Device()))        // [dim/2] float64
	angles := ids.MustTo(gotch.Double).MustUnsqueeze(-1).MustMul(freq)                 // [batch pos dim/2]
	angles = gotch.MustCat([]*gotch.Tensor{angles, angles}, -1).MustUnsqueeze(2)       // [batch pos 1 dim]
	cos, sin := angles.MustCos().MustTo(x.DType()), angles.MustSin().MustTo(x.DType()) // [batch pos 1 dim]
	xr := x.MustNarrow(-1, 0, r.dim)                                                   // [batch pos head dim]
	x1, x2 := xr.MustNarrow(-1, 0, half), xr.MustNarrow(-1, half, half)                // [batch pos head dim/2]
	rotated := xr.MustMul(cos).MustAdd(gotch.MustCat([]*gotch.Tensor{x2.MustNeg(), x1}, -1).MustMul(sin))
	if r.dim == x.Size(-1) {
		return rotated
	}
	return gotch.MustCat([]*gotch.Tensor{rotated, x.MustNarrow(-1, r.dim, x.Size(-1)-r.dim)}, -1) // partial rotary: the rest passes
}
