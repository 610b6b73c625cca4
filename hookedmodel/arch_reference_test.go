package hookedmodel

import (
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
)

// The components of issue #15 against the float64 reference (package
// reference, written from Hugging Face's modeling code), every hook point
// and the logits, with and without processing.
func TestArchitecturesMatchFloat64Reference(t *testing.T) {
	llama := func(c *Config) {
		c.NormalizationType, c.GatedMLP, c.ActFn = "RMS", true, "silu"
		c.PositionalEmbeddingType, c.RotaryBase, c.NKeyValueHeads = "rotary", 500000, 2
	}
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"llama-like", llama},
		{"llama-like split qkv input, attn result, mlp in", func(c *Config) {
			llama(c)
			c.UseSplitQKVIn, c.UseAttnResult, c.UseHookMLPIn = true, true, true
		}},
		{"neox-like", func(c *Config) {
			c.PositionalEmbeddingType, c.RotaryDim, c.RotaryBase, c.ParallelAttnMLP, c.ActFn = "rotary", 2, 10000, true, "gelu"
		}},
		{"gptj-like (adjacent pairs, partial rotary)", gptjLike},
		{"gemma-like norm", gemmaLike},
		{"gemma2-like", gemma2Like},
		{"gemma2-like split qkv input, attn result, mlp in", func(c *Config) {
			gemma2Like(c)
			c.UseSplitQKVIn, c.UseAttnResult, c.UseHookMLPIn = true, true, true
		}},
	}
	for _, tc := range cases {
		for _, process := range []bool{false, true} {
			name := tc.name
			if process {
				name += " processed"
			}
			t.Run(name, func(t *testing.T) {
				gotchtest.CheckLeaks(t)
				m := editedModel(t, tc.edit, 1)
				defer m.Free()
				if process {
					if err := m.Process(DefaultProcessing); err != nil {
						t.Fatal(err)
					}
				}
				out, cache, ref := cachedWithReference(t, m, 2)
				compare(t, "logits", out.Logits, ref["logits"])
				for _, name := range cache.Keys() {
					want, ok := ref[name]
					if !ok {
						t.Errorf("cached %s has no reference value", name)
						continue
					}
					compare(t, name, cache.MustGet(name), want)
				}
				for name := range ref {
					if _, err := cache.Get(name); err != nil && name != "logits" {
						t.Errorf("reference activation %s is missing from the cache", name)
					}
				}
			})
		}
	}
}

// gptjLike edits a test config into a GPT-J: rotary_adjacent_pairs on the
// first 4 of 6 head dimensions, parallel attention and MLP.
func gptjLike(c *Config) {
	c.PositionalEmbeddingType, c.RotaryAdjacentPairs, c.DHead, c.RotaryDim = "rotary", true, 6, 4
	c.ParallelAttnMLP, c.ActFn = true, "gelu_new"
}

// gemmaLike edits a test config into a Gemma: (1 + w) RMSNorm, a gated
// gelu_pytorch_tanh MLP, rotary, one key/value head, d_head 6 where d_model
// / n_heads is 4.
func gemmaLike(c *Config) {
	c.NormalizationType, c.NormWeightPlusOne, c.GatedMLP, c.ActFn = "RMS", true, true, "gelu_pytorch_tanh"
	c.PositionalEmbeddingType, c.NKeyValueHeads, c.DHead, c.RotaryDim = "rotary", 1, 6, 0
}

// gemma2Like edits a test config into a Gemma 2 (as TransformerLens's
// configs spell it, with Hugging Face's layer order): post-norms, soft caps
// that bite, a sliding window of 3 on layer 0, an attention scale that is
// not sqrt(d_head), two key/value heads.
func gemma2Like(c *Config) {
	gemmaLike(c)
	c.NKeyValueHeads, c.FinalRMS = 2, true
	c.UseNormalizationBeforeAndAfter, c.AttnScoresSoftCap, c.OutputLogitsSoftCap, c.AttnScale = true, 0.5, 0.5, 3
	types := make([]string, c.NLayers)
	for l := range types {
		types[l] = map[bool]string{true: "local", false: "global"}[l%2 == 0]
	}
	c.UseLocalAttn, c.AttnTypes, c.WindowSize = true, AttnTypes(must(NewAttnTypes(types...))), ptr(3)
}
