package hookedmodel

import (
	"context"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// logProbs runs m on tokens and returns log_softmax(logits) as float64s.
func logProbs(t *testing.T, m *HookedTransformer, tok *gotch.Tensor) []float64 {
	t.Helper()
	out, err := m.Forward(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	lp := out.Logits.MustLogSoftmax(-1)
	defer lp.Free()
	return gotchtest.Values(t, lp)
}

func TestProcessingKeepsLogProbs(t *testing.T) {
	all := DefaultProcessing
	all.RefactorFactoredAttn = true
	cases := []struct {
		name string
		edit func(*Config)
		pr   Processing
	}{
		{"default", nil, DefaultProcessing},
		{"default and refactor", nil, all},
		{"fold_ln only", nil, Processing{FoldLN: true}},
		{"attn-only", func(c *Config) { c.AttnOnly = true }, all},
		{"solu_ln", func(c *Config) { c.ActFn = "solu_ln" }, all},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, tc.edit, 3)
			defer m.Free()
			_, tok := randomTokens(t, 2, 9, m.Cfg.DVocab, 4)
			defer tok.Free()
			before := logProbs(t, m, tok)
			if err := m.Process(tc.pr); err != nil {
				t.Fatal(err)
			}
			if tc.pr.FoldLN && m.Cfg.NormalizationType != "LNPre" {
				t.Errorf("normalization_type %q after fold_ln, want LNPre", m.Cfg.NormalizationType)
			}
			gotchtest.Close(t, "log-probs after processing", logProbs(t, m, tok), before, 1e-4)
		})
	}
}

func TestProcessingCentersWeights(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 5)
	defer m.Free()
	if err := m.Process(DefaultProcessing); err != nil {
		t.Fatal(err)
	}
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_O", "blocks.1.mlp.W_out", "blocks.0.attn.b_O", "unembed.W_U"} {
		mean := sd[name].MustMeanDims([]int64{-1}, false).MustAbs().MustMax().MustItem()
		if mean > 1e-5 {
			t.Errorf("%s: largest mean over the last dim is %g, want 0", name, mean)
		}
	}
	if bV := sd["blocks.0.attn.b_V"].MustAbs().MustMax().MustItem(); bV != 0 {
		t.Errorf("b_V after fold_value_biases has %g, want all zeros", bV)
	}
	if _, ok := sd["blocks.0.ln1.w"]; ok {
		t.Errorf("ln1.w still present after fold_ln")
	}
}
