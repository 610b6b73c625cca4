package analysis

import (
	"context"
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// CompositionResult holds the composition scores of every pair of heads.
type CompositionResult struct {
	// Q, K and V [layer head layer head] are the Q-, K- and
	// V-composition scores of an earlier head (the first two indices) into
	// a later one (the last two), TransformerLens's all_composition_scores:
	// zero unless the second head's layer is later than the first's.
	Q, K, V *Table
	// Baseline is the mean score of random matrices of the same shapes
	// (Gaussian factors, so the same for all three kinds): what a score
	// is to be compared with.
	Baseline float64
}

// factored is a batch of matrices A·B kept as their factors, A [n l k]
// and B [n k r], with their Gram matrices AᵀA and BBᵀ [n k k].
type factored struct{ a, b, ga, gb *gotch.Tensor }

func newFactored(a, b *gotch.Tensor) factored {
	return factored{a, b, a.MustTranspose(-2, -1).MustMatmul(a), b.MustMatmul(b.MustTranspose(-2, -1))}
}

// norm2 is ‖A·B‖²_F = tr(AᵀA · BBᵀ) [n].
func (f factored) norm2() *gotch.Tensor {
	return f.ga.MustMul(f.gb).MustSumDims([]int64{-2, -1}, false)
}

// productNorm2 is ‖X_i · Y_j‖²_F [n_y] for the matrix i of x and every
// matrix of y: with M = B_i A_j, ‖A_i M B_j‖² = tr(AᵢᵀAᵢ M B_jB_jᵀ Mᵀ), all
// in the small inner dimension.
func productNorm2(x factored, i int64, y factored) *gotch.Tensor {
	mid := x.b.MustSelect(0, i).MustMatmul(y.a) // [n_y k k]
	left := x.ga.MustSelect(0, i).MustMatmul(mid)
	right := mid.MustMatmul(y.gb)
	return left.MustMul(right).MustSumDims([]int64{-2, -1}, false)
}

// compositionOptions are the options CompositionScores reads.
const compositionOptions = optBaselineSamples | optSeed

// CompositionScores computes the Q-, K- and V-composition scores of Elhage
// et al. between every head and every head of a later layer: ‖W_A W_B‖_F /
// (‖W_A‖_F ‖W_B‖_F) with W_A the earlier head's OV circuit W_V W_O and W_B
// the later head's W_Q W_Kᵀ (Q), W_K W_Qᵀ (K) or W_V W_O (V), in
// TransformerLens's row-vector convention. The matrices stay factored and
// each norm is taken through Gram matrices of the factors, d_head × d_head:
// the cost grows with d_head³ per pair, and no pair's product is ever
// formed (hookedmodel's FactoredMatrix.MulFactored would make a [d_model
// d_head] factor per pair). Options: BaselineSamples, WithSeed.
func CompositionScores(ctx context.Context, m *hookedmodel.HookedTransformer, opts ...Option) (*CompositionResult, error) {
	o, err := collect("CompositionScores", opts, compositionOptions)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("composition scores: nil model")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("composition scores: %w", err)
	}
	if o.baselineSamples < 1 {
		return nil, fmt.Errorf("composition scores: %d baseline samples", o.baselineSamples)
	}
	s := gotch.NewScope()
	defer s.Close()
	nl, nh := len(m.Blocks), m.Cfg.NHeads
	shape := []int{nl, nh, nl, nh}
	axes := []string{"layer", "head", "layer", "head"}
	res := &CompositionResult{Q: NewTable(axes, shape...), K: NewTable(axes, shape...), V: NewTable(axes, shape...)}
	err = gotch.Try(func() {
		// stacked is a weight of every head [n_layers·n_heads ...], in
		// float64: the block's view, so that grouped-query keys and values
		// are repeated per query head as TransformerLens's W_K and W_V are
		// (the state dict holds them as _W_K/_W_V with n_key_value_heads).
		stacked := func(view func(*hookedmodel.Attention) (*gotch.Tensor, error)) *gotch.Tensor {
			ws := make([]*gotch.Tensor, nl)
			for l := range nl {
				ws[l] = must(s.Borrow(must(view(m.Blocks[l].Attn))))
			}
			st := gotch.MustStack(ws, 0).MustTo(gotch.Double)
			return st.MustReshape(append([]int64{int64(nl * nh)}, st.Shape()[2:]...))
		}
		wQ, wK, wV, wO := stacked((*hookedmodel.Attention).W_Q), stacked((*hookedmodel.Attention).W_K), stacked((*hookedmodel.Attention).W_V), stacked((*hookedmodel.Attention).W_O)
		ov := newFactored(wV, wO)                        // [d_model d_model] per head
		qk := newFactored(wQ, wK.MustTranspose(-2, -1))  // W_Q W_Kᵀ
		qkT := newFactored(wK, wQ.MustTranspose(-2, -1)) // (W_Q W_Kᵀ)ᵀ
		norm := func(f factored) []float64 { return must(gotch.ToSlice[float64](f.norm2().MustSqrt())) }
		ovN, qkN := norm(ov), norm(qk)

		for i := range (nl - 1) * nh { // the earlier head: not in the last layer
			if err := ctx.Err(); err != nil {
				panic(err)
			}
			l1, h1 := i/nh, i%nh
			for _, c := range []struct {
				t      *Table
				right  factored
				rightN []float64
			}{{res.Q, qk, qkN}, {res.K, qkT, qkN}, {res.V, ov, ovN}} {
				num := must(gotch.ToSlice[float64](productNorm2(ov, int64(i), c.right).MustSqrt()))
				for j := (l1 + 1) * nh; j < nl*nh; j++ {
					c.t.Set(num[j]/(ovN[i]*c.rightN[j]), l1, h1, j/nh, j%nh)
				}
			}
		}

		// The baseline: the same score for random factors of these shapes.
		gen := must(gotch.NewGenerator(o.seed))
		defer gen.Free()
		dm, dh, n := int64(m.Cfg.DModel), int64(m.Cfg.DHead), int64(o.baselineSamples)
		rnd := func(shape ...int64) *gotch.Tensor {
			return s.Attach(gotch.MustRandn(shape, gen, gotch.Double, m.Device()))
		}
		left, right := newFactored(rnd(n, dm, dh), rnd(n, dh, dm)), newFactored(rnd(n, dm, dh), rnd(n, dh, dm))
		mid := left.b.MustMatmul(right.a)
		num := left.ga.MustMatmul(mid).MustMul(mid.MustMatmul(right.gb)).MustSumDims([]int64{-2, -1}, false).MustSqrt()
		score := num.MustDiv(left.norm2().MustSqrt().MustMul(right.norm2().MustSqrt()))
		res.Baseline = score.MustMean().MustItem()
	})
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("composition scores: %w", cerr) // not the panic's stack
	}
	if err != nil {
		return nil, fmt.Errorf("composition scores: %w", err)
	}
	return res, nil
}
