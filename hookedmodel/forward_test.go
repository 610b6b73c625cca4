package hookedmodel

import (
	"math"
	"slices"
	"sort"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/reference"
)

func smallConfig() Config {
	c := DefaultConfig()
	c.NLayers, c.DModel, c.DHead, c.NHeads, c.DMLP = 2, 16, 4, 4, 24
	c.NCtx, c.DVocab, c.ActFn = 12, 23, "gelu_new"
	return c
}

// editedModel is newTestModel of smallConfig with edit applied (nil: none).
func editedModel(t *testing.T, edit func(*Config), seed uint64) *HookedTransformer {
	t.Helper()
	cfg := smallConfig()
	if edit != nil {
		edit(&cfg)
	}
	return newTestModel(t, cfg, seed)
}

// newTestModel builds a small model on the test device whose biases and
// LayerNorm weights are random too, so every term of the forward pass
// matters.
func newTestModel(t *testing.T, cfg Config, seed uint64) *HookedTransformer {
	t.Helper()
	m, err := New(cfg, OnDevice(gotchtest.Device(t)), WithSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gen := gotch.MustNewGenerator(seed + 100)
	defer gen.Free()
	names := make([]string, 0, len(sd))
	for k := range sd {
		names = append(names, k)
	}
	sort.Strings(names) // a fixed order, so the noise is reproducible
	for _, k := range names {
		w := sd[k]
		noise := s.Attach(gotch.MustRandn(w.Shape(), gen, w.DType(), w.Device())).MustMulScalar(0.2)
		w.MustAdd_(noise)
	}
	return m
}

func randomTokens(t *testing.T, batch, pos, vocab int, seed uint64) ([][]int64, *gotch.Tensor) {
	gen := gotch.MustNewGenerator(seed)
	defer gen.Free()
	tok := gotch.MustRandint(0, int64(vocab), []int64{int64(batch), int64(pos)}, gen, gotchtest.Device(t))
	flat := gotch.MustToSlice[int64](tok)
	rows := make([][]int64, batch)
	for b := range rows {
		rows[b] = flat[b*pos : (b+1)*pos]
	}
	return rows, tok
}

func TestForwardMatchesFloat64Reference(t *testing.T) {
	all := DefaultProcessing
	all.RefactorFactoredAttn = true
	cases := []struct {
		name    string
		edit    func(*Config)
		process *Processing // applied before the comparison, when set
	}{
		{"gpt2-like", nil, nil},
		{"gpt2-like processed", nil, &all},
		{"every optional hook processed", func(c *Config) { c.UseAttnResult, c.UseSplitQKVIn, c.UseHookMLPIn = true, true, true }, &DefaultProcessing},
		{"every optional hook", func(c *Config) { c.UseAttnResult, c.UseSplitQKVIn, c.UseHookMLPIn = true, true, true }, nil},
		{"attn_in", func(c *Config) { c.UseAttnIn = true }, nil},
		{"attn-only shortformer LNPre", func(c *Config) {
			c.AttnOnly, c.PositionalEmbeddingType, c.NormalizationType = true, "shortformer", "LNPre"
		}, nil},
		{"solu_ln", func(c *Config) { c.ActFn = "solu_ln" }, nil},
		{"solu_ln processed", func(c *Config) { c.ActFn = "solu_ln" }, &all},
		{"relu no normalization", func(c *Config) { c.ActFn, c.NormalizationType = "relu", "" }, nil},
		{"gelu silu bidirectional", func(c *Config) { c.ActFn, c.AttentionDir = "gelu", "bidirectional" }, nil},
		{"silu", func(c *Config) { c.ActFn = "silu" }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, tc.edit, 1)
			defer m.Free()
			if tc.process != nil {
				if err := m.Process(*tc.process); err != nil {
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
			if got, want := cache.Len(), len(m.HookNames()); got != want {
				t.Errorf("cache holds %d activations, the model has %d hook points", got, want)
			}
		})
	}
}

// compare checks a cached activation against the reference: same shape,
// masked scores in the same places, values within 1e-4 relative.
func compare(t *testing.T, name string, got *gotch.Tensor, want reference.Tensor) {
	t.Helper()
	shape := make([]int64, len(want.Shape))
	for i, s := range want.Shape {
		shape[i] = int64(s)
	}
	if !slices.Equal(got.Shape(), shape) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape(), shape)
		return
	}
	g := gotchtest.Values(t, got)
	w := want.Data
	if isScores(name) {
		for i := range g {
			if math.IsInf(g[i], -1) != math.IsInf(w[i], -1) {
				t.Errorf("%s: masking differs at flat index %d: got %g, want %g", name, i, g[i], w[i])
				return
			}
		}
		g, w = reference.Finite(g), reference.Finite(w)
	}
	gotchtest.Close(t, name, g, w, 1e-4)
}
