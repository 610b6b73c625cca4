package analysis

import (
	"context"
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// LogitLensResult is what the model would predict if it stopped after
// each layer.
type LogitLensResult struct {
	// Labels names the layers: "0_pre" (the embeddings), "1_pre", ...,
	// "final_post" (the model's own output).
	Labels []string
	// LogProbs [layer batch pos-1] is the log-probability each layer gives
	// the next token of tokens.
	LogProbs *Table
	// Top [layer][batch][pos] lists each layer's TopK tokens, most likely
	// first, and TopLogProbs their log-probabilities.
	Top         [][][][]int64
	TopLogProbs [][][][]float64
}

// LogitLens reads the residual stream entering every layer, and the final
// one, through the final LayerNorm (normalising each on its own, as
// ln_final would if the model ended there) and the unembedding, on tokens
// [batch pos]. It uses hookedmodel's AccumulatedResid. Options: TopK.
func LogitLens(ctx context.Context, m *hookedmodel.HookedTransformer, tokens *gotch.Tensor, opts ...Option) (*LogitLensResult, error) {
	o, err := collect("LogitLens", opts, optTopK)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("logit lens: nil model")
	}
	if tokens == nil || tokens.Dim() != 2 || tokens.Size(1) < 2 {
		return nil, fmt.Errorf("logit lens: tokens must be [batch pos] with at least two positions, got %v", tokens.Spec())
	}
	if o.topK < 1 || o.topK > m.Cfg.DVocabOut {
		return nil, fmt.Errorf("logit lens: top-k %d is not within [1, %d]", o.topK, m.Cfg.DVocabOut)
	}
	nl := len(m.Blocks)
	names := map[string]bool{fmt.Sprintf("blocks.%d.hook_resid_post", nl-1): true, "ln_final.hook_scale": true}
	for l := range nl {
		names[fmt.Sprintf("blocks.%d.hook_resid_pre", l)] = true
	}
	out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(tokens), hookedmodel.NamesFilter(func(s string) bool { return names[s] }),
		hookedmodel.Return(hookedmodel.ReturnNone))
	if err != nil {
		return nil, fmt.Errorf("logit lens: %w", err)
	}
	defer out.Free()
	defer cache.Free()
	sd, s, err := m.StateDict()
	if err != nil {
		return nil, err
	}
	defer s.Close()

	b, n, k := int(tokens.Size(0)), int(tokens.Size(1)), o.topK
	res := &LogitLensResult{}
	err = gotch.Try(func() {
		stack, labels, err := cache.AccumulatedResid(-1, hookedmodel.ApplyLN())
		if err != nil {
			panic(err)
		}
		res.Labels = labels
		stack = s.Attach(stack) // [layer batch pos d_model], normalised
		wU := sd["unembed.W_U"].MustToDevice(stack.Device(), false).MustTo(stack.DType())
		bU := sd["unembed.b_U"].MustToDevice(stack.Device(), false).MustTo(stack.DType())
		logProbs := stack.MustMatmul(wU).MustAdd(bU).MustTo(gotch.Double).MustLogSoftmax(-1) // [layer batch pos d_vocab]

		tok := must(s.Borrow(out.Tokens)).MustToDevice(stack.Device(), false)
		nlab := int64(len(labels))
		next := tok.MustNarrow(1, 1, int64(n-1)).MustUnsqueeze(0).MustUnsqueeze(-1).MustExpand([]int64{nlab, int64(b), int64(n - 1), 1})
		lp := logProbs.MustNarrow(2, 0, int64(n-1)).MustGather(-1, next).MustSqueeze(-1)
		res.LogProbs = &Table{Axes: []string{"layer", "batch", "pos"}, Shape: []int{len(labels), b, n - 1}, Data: must(gotch.ToSlice[float64](lp))}

		vals, idx := logProbs.MustTopk(int64(k), -1, true, true)
		topV, topI := must(gotch.ToSlice[float64](vals)), must(gotch.ToSlice[int64](idx))
		res.Top, res.TopLogProbs = make([][][][]int64, len(labels)), make([][][][]float64, len(labels))
		for l := range labels {
			res.Top[l], res.TopLogProbs[l] = make([][][]int64, b), make([][][]float64, b)
			for r := range b {
				res.Top[l][r], res.TopLogProbs[l][r] = make([][]int64, n), make([][]float64, n)
				for p := range n {
					off := ((l*b+r)*n + p) * k
					res.Top[l][r][p], res.TopLogProbs[l][r][p] = topI[off:off+k], topV[off:off+k]
				}
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("logit lens: %w", err)
	}
	return res, nil
}
