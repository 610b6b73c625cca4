package hookedmodel

import (
	"fmt"

	"github.com/golens/golens/gotch"
)

// Processing says which of from_pretrained's weight transformations a
// loader applies. Each leaves the model's log-probabilities unchanged
// while making its weights easier to read.
type Processing struct {
	FoldLN               bool // fold LayerNorm weights into the layers that read them (LN -> LNPre)
	CenterWritingWeights bool // make what each layer writes to the residual stream mean-zero
	CenterUnembed        bool // make the logits mean-zero (softmax ignores a shift)
	FoldValueBiases      bool // move b_V into b_O
	RefactorFactoredAttn bool // balance W_Q/W_K and W_V/W_O through their SVDs
}

// DefaultProcessing is from_pretrained's default: everything but the
// refactoring.
var DefaultProcessing = Processing{FoldLN: true, CenterWritingWeights: true, CenterUnembed: true, FoldValueBiases: true}

// Process applies pr in from_pretrained's order. Like TransformerLens it
// skips folding and centring where the model has no LayerNorm to absorb
// them.
func (m *HookedTransformer) Process(pr Processing) error {
	hasLN := m.Cfg.NormalizationType == "LN" || m.Cfg.NormalizationType == "LNPre"
	steps := []struct {
		on bool
		fn func(stateDict)
	}{
		{pr.FoldLN && m.Cfg.NormalizationType == "LN", m.foldLayerNorm},
		{pr.CenterWritingWeights && hasLN, m.centerWritingWeights},
		{pr.CenterUnembed, m.centerUnembed},
		{pr.FoldValueBiases, m.foldValueBiases},
		{pr.RefactorFactoredAttn, m.refactorFactoredAttn},
	}
	err := gotch.NoGrad(func() error {
		return gotch.Try(func() {
			for _, st := range steps {
				if !st.on {
					continue
				}
				sd, s, err := m.StateDict()
				if err != nil {
					panic(err)
				}
				func() {
					defer s.Close()
					st.fn(sd)
				}()
			}
		})
	})
	// The weights changed, perhaps partly on error. prepare runs outside
	// NoGrad so that the views it remakes record gradients when the
	// weights do.
	if perr := gotch.Try(m.prepare); err == nil {
		err = perr
	}
	return err
}

// stateDict is StateDict's result for the processing steps: views whose
// in-place updates change the model, and whose ops land in its scope.
type stateDict map[string]*gotch.Tensor

func (sd stateDict) w(name string) *gotch.Tensor {
	t, ok := sd[name]
	if !ok {
		panic(fmt.Errorf("process weights: no %s", name))
	}
	return t
}

// foldInto folds a LayerNorm (weight w, bias b over d_model) into a weight
// W that reads its output along dim: b_W += Σ b·W, W *= w, then W is
// centred along dim, since LayerNormPre's output is centred anyway.
func foldInto(W, bias, lnW, lnB *gotch.Tensor, dim int64, shape []int64) {
	wB := lnB.MustView(shape)
	bias.MustAdd_(W.MustMul(wB).MustSumDims([]int64{dim}, false))
	W.MustMul_(lnW.MustView(shape))
	W.MustSub_(W.MustMeanDims([]int64{dim}, true))
}

func (m *HookedTransformer) foldLayerNorm(sd stateDict) {
	for l, b := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		for _, n := range []string{"Q", "K", "V"} {
			// W [head d_model d_head] reads d_model (dim 1)
			foldInto(sd.w(pre+"attn.W_"+n), sd.w(pre+"attn.b_"+n), sd.w(pre+"ln1.w"), sd.w(pre+"ln1.b"), 1, []int64{1, -1, 1})
		}
		dropLN(b.Ln1)
		if b.MLP != nil {
			foldInto(sd.w(pre+"mlp.W_in"), sd.w(pre+"mlp.b_in"), sd.w(pre+"ln2.w"), sd.w(pre+"ln2.b"), 0, []int64{-1, 1})
			dropLN(b.Ln2)
			if b.MLP.ln != nil {
				foldInto(sd.w(pre+"mlp.W_out"), sd.w(pre+"mlp.b_out"), sd.w(pre+"mlp.ln.w"), sd.w(pre+"mlp.ln.b"), 0, []int64{-1, 1})
				dropLN(b.MLP.ln)
			}
		}
	}
	foldInto(sd.w("unembed.W_U"), sd.w("unembed.b_U"), sd.w("ln_final.w"), sd.w("ln_final.b"), 0, []int64{-1, 1})
	dropLN(m.LnFinal)
	m.Cfg.NormalizationType = "LNPre"
}

func dropLN(ln *LayerNorm) {
	if ln == nil {
		return
	}
	ln.W.Free()
	ln.B.Free()
	ln.W, ln.B = nil, nil
}

// centerWritingWeights makes every vector written to the residual stream
// mean-zero over d_model: LayerNorm removes that mean anyway.
func (m *HookedTransformer) centerWritingWeights(sd stateDict) {
	center := func(name string) {
		w := sd.w(name)
		w.MustSub_(w.MustMeanDims([]int64{-1}, true))
	}
	center("embed.W_E")
	center("pos_embed.W_pos")
	for l, b := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		center(pre + "attn.W_O")
		center(pre + "attn.b_O")
		if b.MLP != nil {
			center(pre + "mlp.W_out")
			center(pre + "mlp.b_out")
		}
	}
}

// centerUnembed makes the logits mean-zero over the vocabulary; softmax
// is unchanged by a shift.
func (m *HookedTransformer) centerUnembed(sd stateDict) {
	wu, bu := sd.w("unembed.W_U"), sd.w("unembed.b_U")
	wu.MustSub_(wu.MustMeanDims([]int64{-1}, true))
	bu.MustSub_(bu.MustMean())
}

// foldValueBiases moves b_V into b_O: the pattern sums to one over keys,
// so each head adds b_V·W_O whatever it attends to.
func (m *HookedTransformer) foldValueBiases(sd stateDict) {
	for l := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		bV, wO, bO := sd.w(pre+"attn.b_V"), sd.w(pre+"attn.W_O"), sd.w(pre+"attn.b_O")
		bO.MustAdd_(gotch.MustEinsum("hd,hdm->m", []*gotch.Tensor{bV, wO}))
		bV.MustZero_()
	}
}

// refactorFactoredAttn rewrites each head's W_Q/W_K (with their biases as
// an extra input row) and W_V/W_O as balanced factors of the same
// products: both factors get the square root of the singular values.
func (m *HookedTransformer) refactorFactoredAttn(sd stateDict) {
	for l := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		wQ, bQ, wK, bK := sd.w(pre+"attn.W_Q"), sd.w(pre+"attn.b_Q"), sd.w(pre+"attn.W_K"), sd.w(pre+"attn.b_K")
		dModel := wQ.Size(1)
		qEff := gotch.MustCat([]*gotch.Tensor{wQ, bQ.MustUnsqueeze(1)}, 1) // [head d_model+1 d_head]
		kEff := gotch.MustCat([]*gotch.Tensor{wK, bK.MustUnsqueeze(1)}, 1)
		a, bT := evenFactors(qEff, kEff.MustTranspose(-1, -2))
		k := bT.MustTranspose(-1, -2)
		wQ.MustCopy_(a.MustNarrow(1, 0, dModel))
		bQ.MustCopy_(a.MustSelect(1, dModel))
		wK.MustCopy_(k.MustNarrow(1, 0, dModel))
		bK.MustCopy_(k.MustSelect(1, dModel))

		wV, bV, wO, bO := sd.w(pre+"attn.W_V"), sd.w(pre+"attn.b_V"), sd.w(pre+"attn.W_O"), sd.w(pre+"attn.b_O")
		bO.MustAdd_(gotch.MustEinsum("hd,hdm->m", []*gotch.Tensor{bV, wO}))
		bV.MustZero_()
		v, o := evenFactors(wV, wO)
		wV.MustCopy_(v)
		wO.MustCopy_(o)
	}
}
