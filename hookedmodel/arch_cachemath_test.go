package hookedmodel

import (
	"context"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// The residual-stream decompositions sum to the stream a layer reads in
// rotary models (no positional embedding in the stream), in parallel
// blocks (whose MLP reads resid_pre, there being no resid_mid) and, by
// sublayer, with Gemma 2's post-norms, where the per-head and per-neuron
// decomposition is refused.
func TestArchitectureDecompositionsSum(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"rotary RMS gated", func(c *Config) {
			c.PositionalEmbeddingType, c.NormalizationType, c.GatedMLP, c.ActFn, c.NKeyValueHeads = "rotary", "RMS", true, "silu", 2
		}},
		{"parallel rotary", func(c *Config) { c.PositionalEmbeddingType, c.RotaryDim, c.ParallelAttnMLP = "rotary", 2, true }},
		{"gemma-like (d_head 6, d_model / n_heads 4)", gemmaLike},
		{"gemma2-like", gemma2Like},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, tc.edit, 4)
			defer m.Free()
			_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 6)
			defer tok.Free()
			out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			defer cache.Free()
			for _, tc := range []struct {
				opts []CacheMathOption
				want string
			}{
				{nil, "blocks.1.hook_resid_pre"},
				{[]CacheMathOption{MLPInput()}, "blocks.1.hook_resid_pre"}, // parallel: the MLP reads resid_pre
			} {
				want := tc.want
				if len(tc.opts) > 0 && !m.Cfg.ParallelAttnMLP {
					want = "blocks.1.hook_resid_mid"
				}
				dec, _, err := cache.DecomposeResid(1, tc.opts...)
				if err != nil {
					t.Fatal(err)
				}
				stacks := map[string]*gotch.Tensor{"DecomposeResid": dec}
				full, _, err := cache.GetFullResidDecomposition(1, tc.opts...)
				switch {
				case m.Cfg.UseNormalizationBeforeAndAfter:
					// post-norms: heads and neurons do not sum to what a layer writes
					if err == nil || !strings.Contains(err.Error(), "blocks.0.ln1_post") {
						t.Errorf("GetFullResidDecomposition with post-norms: error %v, want one naming blocks.0.ln1_post", err)
						full.Free()
					}
				case err != nil:
					t.Fatal(err)
				default:
					stacks["GetFullResidDecomposition"] = full
				}
				resid := gotchtest.Values(t, cache.MustGet(want))
				for name, st := range stacks {
					sum := st.MustSumDims([]int64{0}, false)
					gotchtest.Close(t, name+" sums to "+want, gotchtest.Values(t, sum), resid, 1e-4)
					sum.Free()
					st.Free()
				}
			}
		})
	}
}
