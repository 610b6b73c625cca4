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
		{"gemma-like norm", func(c *Config) {
			c.NormalizationType, c.NormWeightPlusOne, c.GatedMLP, c.ActFn = "RMS", true, true, "gelu_pytorch_tanh"
			c.PositionalEmbeddingType, c.NKeyValueHeads = "rotary", 1
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
