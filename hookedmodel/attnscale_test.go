package hookedmodel

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/weights"
)

// scoresFromQK recomputes layer scores [batch head query key] from cached
// q and k [batch pos head d_head] as q·k / div, with TransformerLens's
// causal mask (-inf above the diagonal).
func scoresFromQK(q, k []float64, B, P, H, D int, div float64) []float64 {
	out := make([]float64, B*H*P*P)
	for b := range B {
		for h := range H {
			for i := range P {
				for j := range P {
					s := math.Inf(-1)
					if j <= i {
						s = 0
						for d := range D {
							s += q[((b*P+i)*H+h)*D+d] * k[((b*P+j)*H+h)*D+d]
						}
						s /= div
					}
					out[((b*H+h)*P+i)*P+j] = s
				}
			}
		}
	}
	return out
}

// TestScaleAttnByInverseLayerIdx checks scale_attn_by_inverse_layer_idx
// against its definition. Hugging Face's GPT2Attention._attn (the truth,
// DESIGN §10) computes q·kᵀ, divides by sqrt(d_head) when
// scale_attn_weights, then by float(layer_idx + 1), layer_idx counting
// from 0, and masks after; TransformerLens's AbstractAttention multiplies
// layer_id + 1 into attn_scale (sqrt(d_head), or 1 without
// use_attn_scale) and hooks q·k / attn_scale as hook_attn_scores, so the
// two agree. Two models with the same weights, one with the flag, must
// then have equal layer-0 scores and layer-1 scores in the ratio 1:2 (the
// layer-1 inputs are still equal); every layer l's scores must be its own
// q·k / (sqrt(d_head)·(l+1)); every hook must match the float64 reference;
// and the pass with nothing observed (the fused kernel where fusable)
// must give the logits of the observed one.
func TestScaleAttnByInverseLayerIdx(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"gpt2-like", nil},
		{"without use_attn_scale", func(c *Config) { c.UseAttnScale = false }},
		{"attn-only shortformer LNPre", func(c *Config) {
			c.AttnOnly, c.PositionalEmbeddingType, c.NormalizationType = true, "shortformer", "LNPre"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			cfg := smallConfig()
			cfg.NLayers = 3
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			plain := newTestModel(t, cfg, 61)
			defer plain.Free()
			cfg.AttnScaleByIdx = true
			scaled := newTestModel(t, cfg, 61)
			defer scaled.Free()
			rows, tok := randomTokens(t, 2, 7, cfg.DVocab, 62)
			defer tok.Free()

			outP, cacheP, err := plain.RunWithCache(ctx, Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer outP.Free()
			defer cacheP.Free()
			outS, cacheS, err := scaled.RunWithCache(ctx, Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer outS.Free()
			defer cacheS.Free()

			scores := func(c *ActivationCache, l int) []float64 {
				return reference0(gotchtest.Values(t, c.MustGet("blocks."+strconv.Itoa(l)+".attn.hook_attn_scores")))
			}
			gotchtest.Close(t, "layer 0 scores, flag on vs off", scores(cacheS, 0), scores(cacheP, 0), 1e-6)
			half := scores(cacheP, 1)
			for i := range half {
				half[i] /= 2
			}
			gotchtest.Close(t, "layer 1 scores with the flag vs half of those without", scores(cacheS, 1), half, 1e-6)

			B, P, H, D := 2, 7, cfg.NHeads, cfg.DHead
			base := 1.0
			if cfg.UseAttnScale {
				base = math.Sqrt(float64(D))
			}
			for l := range cfg.NLayers {
				p := "blocks." + strconv.Itoa(l) + ".attn."
				q := gotchtest.Values(t, cacheS.MustGet(p+"hook_q"))
				k := gotchtest.Values(t, cacheS.MustGet(p+"hook_k"))
				want := scoresFromQK(q, k, B, P, H, D, base*float64(l+1))
				compareScores(t, p+"hook_attn_scores = q·k / (scale·(l+1))", gotchtest.Values(t, cacheS.MustGet(p+"hook_attn_scores")), want)
			}

			sd, s, err := scaled.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			ref := newRefModel(t, scaled.Cfg, sd).Forward(rows)
			s.Close()
			compare(t, "logits", outS.Logits, ref["logits"])
			for _, name := range cacheS.Keys() {
				compare(t, name, cacheS.MustGet(name), ref[name])
			}

			// Nothing observed: a layer takes the fused kernel only where its
			// divisor is the kernel's own sqrt(d_head) (layer 0 with
			// use_attn_scale; layer 1 without it, as 1·2 = sqrt(4)).
			for l, b := range scaled.Blocks {
				want := base*float64(l+1) == math.Sqrt(float64(D))
				if got := b.Attn.fusable(&pass{}, nil, 0, 4); got != want { // a pass that observes nothing
					t.Errorf("layer %d fusable = %v, want %v", l, got, want)
				}
			}
			fast := run(t, scaled, Tokens(tok))
			gotchtest.Close(t, "logits with nothing observed vs cached", gotchtest.Values(t, fast.Logits), gotchtest.Values(t, outS.Logits), 1e-5)
			if e := gotchtest.RelErr(gotchtest.Values(t, outS.Logits), gotchtest.Values(t, outP.Logits)); e < 1e-3 {
				t.Errorf("logits with and without the flag differ by %.3g only", e)
			}
		})
	}
}

// reference0 replaces -inf by 0, as reference.Finite does, so that ratios
// of masked score tensors stay finite.
func reference0(xs []float64) []float64 {
	for i, v := range xs {
		if math.IsInf(v, -1) {
			xs[i] = 0
		}
	}
	return xs
}

// compareScores checks scores with masking: the same -inf places, the
// rest within 1e-4 relative.
func compareScores(t *testing.T, name string, got, want []float64) {
	t.Helper()
	for i := range got {
		if math.IsInf(got[i], -1) != math.IsInf(want[i], -1) {
			t.Errorf("%s: masking differs at flat index %d: got %g, want %g", name, i, got[i], want[i])
			return
		}
	}
	gotchtest.Close(t, name, reference0(got), reference0(want), 1e-4)
}

// TestLoadHFScaleAttnByInverseLayerIdx loads a Hugging Face GPT-2
// checkpoint whose config.json sets scale_attn_by_inverse_layer_idx (and
// reorder_and_upcast_attn): the model must carry the flags and give the
// logits of the model it was written from; without the key in config.json
// the same weights must give other logits.
func TestLoadHFScaleAttnByInverseLayerIdx(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		keys    map[string]any
		same    bool // logits equal to the source's
		byIdx   bool
		reorder bool
		dtype   weights.DType
		tol     float64
	}{
		{"scale_attn_by_inverse_layer_idx", map[string]any{"scale_attn_by_inverse_layer_idx": true}, true, true, false, weights.F32, 1e-6},
		{"both flags", map[string]any{"scale_attn_by_inverse_layer_idx": true, "reorder_and_upcast_attn": true}, true, true, true, weights.F32, 1e-6},
		{"both flags float16 checkpoint", map[string]any{"scale_attn_by_inverse_layer_idx": true, "reorder_and_upcast_attn": true}, true, true, true, weights.F16, 2e-3},
		{"flags false", map[string]any{"scale_attn_by_inverse_layer_idx": false, "reorder_and_upcast_attn": false}, false, false, false, weights.F32, 1e-6},
		{"key absent", nil, false, false, false, weights.F32, 1e-6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			cfg := smallConfig()
			cfg.NLayers = 3
			cfg.AttnScaleByIdx = true
			src := newTestModel(t, cfg, 71)
			defer src.Free()
			dir := writeHFGPT2(t, src, hfCheckpoint{prefix: "transformer.", dtype: tc.dtype, edit: func(_ map[string]*weights.Tensor, c map[string]any) {
				for k, v := range tc.keys {
					c[k] = v
				}
			}})
			_, tok := randomTokens(t, 2, 6, cfg.DVocab, 72)
			defer tok.Free()
			want := logits(t, src, tok)

			m, err := Load(ctx, dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if m.Cfg.AttnScaleByIdx != tc.byIdx || m.Cfg.ReorderUpcastAttn != tc.reorder {
				t.Errorf("loaded scale_attn_by_inverse_layer_idx=%v reorder_and_upcast_attn=%v, want %v %v",
					m.Cfg.AttnScaleByIdx, m.Cfg.ReorderUpcastAttn, tc.byIdx, tc.reorder)
			}
			got := logits(t, m, tok)
			if tc.same {
				gotchtest.Close(t, "logits of the loaded model", got, want, tc.tol)
			} else if e := gotchtest.RelErr(got, want); e < 1e-3 {
				t.Errorf("without the flag the logits differ from the flagged source's by %.3g only", e)
			}
		})
	}
}

// TestReorderAndUpcastAttn checks reorder_and_upcast_attn (Hugging Face's
// GPT2Config; implemented, see Config.ReorderUpcastAttn) at every entry
// point: New, LoadConfig, golens checkpoints (the Hugging Face loader is in
// TestLoadHFScaleAttnByInverseLayerIdx). In float32 it changes nothing;
// in a float16 or bfloat16 model it keeps attention off the fused kernel,
// so scores and softmax are float32 (Hugging Face's
// _upcast_and_reordered_attn) whether or not anyone observes them.
func TestReorderAndUpcastAttn(t *testing.T) {
	ctx := context.Background()
	dev := gotchtest.Device(t)
	t.Run("New float32", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		plain := editedModel(t, nil, 81)
		defer plain.Free()
		up := editedModel(t, func(c *Config) { c.ReorderUpcastAttn = true }, 81)
		defer up.Free()
		if !up.Cfg.ReorderUpcastAttn {
			t.Fatal("New dropped reorder_and_upcast_attn")
		}
		_, tok := randomTokens(t, 2, 7, up.Cfg.DVocab, 82)
		defer tok.Free()
		gotchtest.Close(t, "float32 logits with the flag vs without", logits(t, up, tok), logits(t, plain, tok), 0)
	})
	t.Run("LoadConfig", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.json")
		js := map[string]any{"n_layers": 2, "d_model": 16, "d_head": 4, "n_ctx": 12, "d_vocab": 23, "act_fn": "gelu_new",
			"scale_attn_by_inverse_layer_idx": true, "reorder_and_upcast_attn": true}
		b, _ := json.Marshal(js)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if !c.AttnScaleByIdx || !c.ReorderUpcastAttn {
			t.Errorf("LoadConfig gave scale_attn_by_inverse_layer_idx=%v reorder_and_upcast_attn=%v, want both true", c.AttnScaleByIdx, c.ReorderUpcastAttn)
		}
	})
	t.Run("golens checkpoint", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		m := editedModel(t, func(c *Config) { c.ReorderUpcastAttn, c.AttnScaleByIdx = true, true }, 83)
		defer m.Free()
		path := filepath.Join(t.TempDir(), "model.safetensors")
		if err := m.Save(path); err != nil {
			t.Fatal(err)
		}
		back, err := Load(ctx, path, OnDevice(dev))
		if err != nil {
			t.Fatal(err)
		}
		defer back.Free()
		if !back.Cfg.ReorderUpcastAttn || !back.Cfg.AttnScaleByIdx {
			t.Errorf("after save and load: scale_attn_by_inverse_layer_idx=%v reorder_and_upcast_attn=%v, want both true", back.Cfg.AttnScaleByIdx, back.Cfg.ReorderUpcastAttn)
		}
		_, tok := randomTokens(t, 1, 5, m.Cfg.DVocab, 84)
		defer tok.Free()
		gotchtest.Close(t, "logits after save and load", logits(t, back, tok), logits(t, m, tok), 0)
	})
	for _, dt := range []string{"float16", "bfloat16"} {
		t.Run("New "+dt, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			for _, on := range []bool{false, true} {
				cfg := smallConfig()
				cfg.DType, cfg.ReorderUpcastAttn = dt, on
				m, err := New(cfg, OnDevice(dev), WithSeed(85))
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Blocks[0].Attn.fusable(&pass{}, nil, 0, 4); got == on { // a pass that observes nothing
					t.Errorf("%s reorder_and_upcast_attn=%v: fusable = %v, want %v", dt, on, got, !on)
				}
				m.Free()
			}
		})
	}
}
