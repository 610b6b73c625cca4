package hookedmodel

import (
	"context"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// The residual-stream decompositions sum to the stream a layer reads in
// rotary models (no positional embedding in the stream) and in parallel
// blocks (whose MLP reads resid_pre, there being no resid_mid).
func TestArchitectureDecompositionsSum(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"rotary RMS gated", func(c *Config) {
			c.PositionalEmbeddingType, c.NormalizationType, c.GatedMLP, c.ActFn, c.NKeyValueHeads = "rotary", "RMS", true, "silu", 2
		}},
		{"parallel rotary", func(c *Config) { c.PositionalEmbeddingType, c.RotaryDim, c.ParallelAttnMLP = "rotary", 2, true }},
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
				full, _, err := cache.GetFullResidDecomposition(1, tc.opts...)
				if err != nil {
					t.Fatal(err)
				}
				resid := gotchtest.Values(t, cache.MustGet(want))
				for name, st := range map[string]*gotch.Tensor{"DecomposeResid": dec, "GetFullResidDecomposition": full} {
					sum := st.MustSumDims([]int64{0}, false)
					gotchtest.Close(t, name+" sums to "+want, gotchtest.Values(t, sum), resid, 1e-4)
					sum.Free()
					st.Free()
				}
			}
		})
	}
}
