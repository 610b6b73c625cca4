package hookedmodel

import (
	"context"
	"encoding/json"
	"github.com/golens/golens/hookedmodel/hftest"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/reference"
	"github.com/golens/golens/hookedmodel/weights"
)

// TestLoadHFGemmaDetailsMatter: each Gemma detail changes the logits of
// the test checkpoints, so TestLoadHFLlamaFamilyMatchesReference, which
// compares golens with the float64 reference of Hugging Face's semantics,
// fails when golens gets that detail wrong. For each, the reference with
// the detail done wrong (or not at all) is computed here, and golens's
// logits must match the right reference and differ from the wrong one.
func TestLoadHFGemmaDetailsMatter(t *testing.T) {
	swap := func(a, b string) func(*reference.Model) {
		return func(r *reference.Model) {
			for l := range r.Cfg.NLayers {
				p := "blocks." + itoa(l) + "."
				r.W[p+a], r.W[p+b] = r.W[p+b], r.W[p+a]
			}
		}
	}
	for _, tc := range []struct {
		name, modelType string
		edit            func(map[string]any)
		wrongCfg        func(*reference.Config)
		wrongW          func(*reference.Model)
	}{
		{"(1 + w) taken as w", "gemma", nil, func(c *reference.Config) { c.NormWeightPlusOne = false }, nil},
		{"no embedding scale", "gemma", nil, func(c *reference.Config) { c.ScaleEmbed = false }, nil},
		// (silu: the hub's hidden_act "gelu" is too close to the tanh
		// approximation for logits to tell them apart reliably)
		{"hidden_act read instead of hidden_activation", "gemma", func(c map[string]any) { c["hidden_act"] = "silu" },
			func(c *reference.Config) { c.ActFn = "silu" }, nil},
		{"no attention soft cap", "gemma2", nil, func(c *reference.Config) { c.AttnScoresSoftCap = 0 }, nil},
		{"no logit soft cap", "gemma2", nil, func(c *reference.Config) { c.LogitsSoftCap = 0 }, nil},
		{"TransformerLens's layer order (odd layers local)", "gemma2", nil,
			func(c *reference.Config) { c.AttnTypes = []string{"global", "local"} }, nil},
		{"no sliding window", "gemma2", nil, func(c *reference.Config) { c.WindowSize = 0 }, nil},
		{"sqrt(head_dim) instead of sqrt(query_pre_attn_scalar)", "gemma2", nil, func(c *reference.Config) { c.AttnScale = 0 }, nil},
		{"Llama's norm mapping (no post-norms, ln2 = post_attention_layernorm)", "gemma2", nil,
			func(c *reference.Config) { c.NormBeforeAndAfter = false }, nil},
		{"post-norms swapped", "gemma2", nil, nil, swap("ln1_post.w", "ln2_post.w")},
		{"pre_feedforward_layernorm as ln1_post", "gemma2", nil, nil, swap("ln1_post.w", "ln2.w")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			ck := hftest.Write(t, tc.modelType, hftest.Opts{Seed: 23, Edit: tc.edit})
			rows, tok := randomTokens(t, 2, 7, hftest.Int(ck.Config, "vocab_size"), 5)
			defer tok.Free()
			rc := hfRefConfig(t, ck.Config)
			right := hfRefWeights(t, ck, rc).Forward(rows)["logits"]
			if tc.wrongCfg != nil {
				tc.wrongCfg(&rc)
			}
			ref := hfRefWeights(t, ck, rc)
			if tc.wrongW != nil {
				tc.wrongW(ref)
			}
			wrong := ref.Forward(rows)["logits"]
			m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			out, err := m.Forward(context.Background(), Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			compare(t, "logits", out.Logits, right)
			// compare's measure, ||got - want|| / ||want||, fails above 1e-4;
			// the wrong reference must be well beyond that
			got := gotchtest.Values(t, out.Logits)
			num, den := 0.0, 0.0
			for i := range got {
				num += (got[i] - wrong.Data[i]) * (got[i] - wrong.Data[i])
				den += wrong.Data[i] * wrong.Data[i]
			}
			if rel := math.Sqrt(num / den); rel < 1e-3 {
				t.Errorf("golens's logits are within %g (relative) of the reference with this detail wrong: the checkpoint does not test it", rel)
			}
		})
	}
}

// TestLoadHFGemmaEmbedScaleRounding: a bfloat16 Gemma's W_E is each stored
// embedding times sqrt(d_model) rounded to bfloat16, the product rounded to
// bfloat16, as GemmaModel.forward computes hidden_states * normalizer in
// the model's dtype (d_model 18: sqrt(18) = 4.2426... is 4.25 in
// bfloat16); its tied unembedding is the unscaled embed_tokens.
func TestLoadHFGemmaEmbedScaleRounding(t *testing.T) {
	gotchtest.CheckLeaks(t)
	d := hftest.Dims{Layers: 1, DModel: 18, Heads: 3, KVHeads: 1, HeadDim: 6, DMLP: 8, Vocab: 11, Ctx: 16}
	ck := hftest.Write(t, "gemma", hftest.Opts{Dims: &d, Seed: 24, DType: weights.BF16})
	m, err := Load(context.Background(), ck.Dir, NoProcessing(), WithDType(gotch.BFloat16), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	_, normalizer := hftest.Encode([]float64{math.Sqrt(18)}, weights.BF16)
	if normalizer[0] != 4.25 {
		t.Fatalf("bf16(sqrt(18)) = %v, want 4.25", normalizer[0])
	}
	embed := ck.Values["model.embed_tokens.weight"]
	want := make([]float64, len(embed))
	for i, v := range embed {
		_, r := hftest.Encode([]float64{v * normalizer[0]}, weights.BF16) // exact in float64, then rounded
		want[i] = r[0]
	}
	if got := gotchtest.Values(t, m.WE); !slices.Equal(got, want) {
		t.Errorf("W_E is not bf16(embed_tokens · bf16(sqrt(18))) element for element")
	}
	if got := gotchtest.Values(t, m.WU); !slices.Equal(got, embed) {
		t.Errorf("the tied unembedding is not the unscaled embed_tokens")
	}
}

// TestGemma2CachedLogitsMatchFull: Gemma 2's sliding window in the
// key-value cache path. The logits of a prompt followed by one token at a
// time through the cache equal, position by position, those of one pass
// over the whole sequence, for windows shorter than the prompt (3 < 4),
// longer than the prompt but shorter than the sequence (6), and longer
// than the sequence (20).
func TestGemma2CachedLogitsMatchFull(t *testing.T) {
	for _, window := range []int{3, 6, 20} {
		t.Run(itoa(window), func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			ck := hftest.Write(t, "gemma2", hftest.Opts{Seed: 25, Edit: func(c map[string]any) { c["sliding_window"] = window }})
			m, err := Load(context.Background(), ck.Dir, OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			const prompt, n = 4, 9
			_, tok := randomTokens(t, 2, n, m.Cfg.DVocab, 6)
			defer tok.Free()
			full, err := m.Forward(context.Background(), Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer full.Free()
			cache := m.NewKVCache()
			defer cache.Free()
			for start, size := int64(0), int64(prompt); start < n; start, size = start+size, 1 {
				part := tok.MustNarrow(1, start, size)
				out, err := m.Forward(context.Background(), Tokens(part), WithKVCache(cache))
				part.Free()
				if err != nil {
					t.Fatal(err)
				}
				want := full.Logits.MustNarrow(1, start, size)
				gotchtest.Close(t, "cached logits at "+itoa(int(start)), gotchtest.Values(t, out.Logits), gotchtest.Values(t, want), 1e-5)
				want.Free()
				out.Free()
			}
		})
	}
}

// TestGemmaProcessingRecord: from_pretrained's default processing on Gemma
// 2 folds the pre-norms only, and skips centring (RMSNorm) and
// center_unembed (the logit soft cap), saying why; Gemma runs
// center_unembed.
func TestGemmaProcessingRecord(t *testing.T) {
	gotchtest.CheckLeaks(t)
	for _, tc := range []struct {
		modelType string
		want      []string
	}{
		{"gemma2", []string{"fold_ln (RMSNorm weights folded", "ln1_post and ln2_post keep their weights", "center_writing_weights skipped (RMSNorm",
			"center_unembed skipped (output_logits_soft_cap", "fold_value_biases"}},
		{"gemma", []string{"fold_ln (RMSNorm weights folded", "center_writing_weights skipped (RMSNorm", ", center_unembed, fold_value_biases"}},
	} {
		ck := hftest.Write(t, tc.modelType, hftest.Opts{Seed: 26})
		m, err := Load(context.Background(), ck.Dir, OnDevice(gotchtest.Device(t)))
		if err != nil {
			t.Fatal(err)
		}
		rec := m.Processing().String()
		for _, w := range tc.want {
			if !strings.Contains(rec, w) {
				t.Errorf("%s: processing record %q does not say %q", tc.modelType, rec, w)
			}
		}
		if tc.modelType == "gemma2" && (m.Blocks[0].Ln1Post.W == nil || m.Blocks[0].Ln2Post.W == nil || m.Blocks[0].Ln1.W != nil) {
			t.Errorf("gemma2 after fold_ln: ln1_post and ln2_post must keep their weights, ln1 lose its")
		}
		m.Free()
	}
}

// TestGemma2FusedPathKeepsCapAndWindow: with query_pre_attn_scalar =
// head_dim the scores' scale is the fused kernel's own, so only the soft
// cap and the sliding window keep a pass that observes nothing off the
// fused kernel, which knows neither. Such a pass must still match the
// float64 reference, with the cap alone and with the window alone.
func TestGemma2FusedPathKeepsCapAndWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"soft cap", func(c map[string]any) { c["sliding_window"] = 64 }},
		{"window", func(c map[string]any) { c["attn_logit_softcapping"] = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			ck := hftest.Write(t, "gemma2", hftest.Opts{Seed: 27, Edit: func(c map[string]any) {
				c["query_pre_attn_scalar"] = c["head_dim"]
				tc.edit(c)
			}})
			rows, tok := randomTokens(t, 2, 7, hftest.Int(ck.Config, "vocab_size"), 8)
			defer tok.Free()
			rc := hfRefConfig(t, ck.Config)
			want := hfRefWeights(t, ck, rc).Forward(rows)["logits"]
			m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if m.Blocks[0].Attn.attnScale != math.Sqrt(float64(m.Cfg.DHead)) {
				t.Fatalf("attention scale %g is not the fused kernel's sqrt(d_head)", m.Blocks[0].Attn.attnScale)
			}
			out, err := m.Forward(context.Background(), Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			compare(t, "logits", out.Logits, want)
		})
	}
}

// TestLoadHFGemmaConfigMapping: absent Gemma fields take the configuration
// classes' defaults (configuration_gemma.py, configuration_gemma2.py:
// head_dim 256, query_pre_attn_scalar 256, soft caps 50 and 30,
// sliding_window 4096, hidden_activation gelu_pytorch_tanh); null soft caps
// and a null window are none; layer_types, when present, says which layers
// slide.
func TestLoadHFGemmaConfigMapping(t *testing.T) {
	read := func(modelType string, edit func(map[string]any)) Config {
		t.Helper()
		d := hftest.Small
		d.DModel, d.Heads, d.KVHeads = 512, 2, 1 // head_dim 256 when absent
		c := hftest.Configs[modelType](d)
		for _, k := range []string{"head_dim", "query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping", "sliding_window", "hidden_activation"} {
			delete(c, k)
		}
		if edit != nil {
			edit(c)
		}
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := hfModelConfig(fstest.MapFS{"m/config.json": {Data: js}}, "m", "test")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	c := read("gemma2", nil)
	if c.DHead != 256 || c.AttnScale != 16 || c.AttnScoresSoftCap != 50 || c.OutputLogitsSoftCap != 30 || c.WindowSize == nil || *c.WindowSize != 4096 ||
		!c.UseLocalAttn || c.AttnTypes != "lg" || c.ActFn != "gelu_pytorch_tanh" || !c.NormWeightPlusOne || !c.UseNormalizationBeforeAndAfter {
		t.Errorf("gemma2 defaults mapped to %+v", c)
	}
	c = read("gemma2", func(m map[string]any) {
		m["attn_logit_softcapping"], m["final_logit_softcapping"], m["sliding_window"] = nil, nil, nil
	})
	if c.AttnScoresSoftCap > 0 || c.OutputLogitsSoftCap > 0 || c.UseLocalAttn || c.WindowSize != nil {
		t.Errorf("gemma2 with null caps and window: %+v", c)
	}
	c = read("gemma2", func(m map[string]any) { m["layer_types"] = []string{"full_attention", "sliding_attention"} })
	if c.AttnTypes != "gl" {
		t.Errorf("layer_types full, sliding: attn_types %q", c.AttnTypes)
	}
	// transformers 5 writes rope_theta (and rope_scaling's fields) into
	// rope_parameters.
	c = read("gemma2", func(m map[string]any) {
		delete(m, "rope_theta")
		m["rope_parameters"] = map[string]any{"rope_type": "default", "rope_theta": 20000.0}
	})
	if c.RotaryBase != 20000 {
		t.Errorf("rope_parameters.rope_theta 20000: rotary_base %g", c.RotaryBase)
	}
	// Refused before any checkpoint is read: contradicting rope fields, and
	// more layers than any model (their list of attention types is made
	// from the config alone).
	for _, tc := range []struct {
		key  string
		val  any
		want string
	}{
		{"rope_parameters", map[string]any{"rope_type": "default", "rope_theta": 20000.0}, "rope_parameters.rope_theta 20000 contradicts rope_theta 10000"},
		{"rope_parameters", map[string]any{"rope_type": "yarn", "factor": 2.0}, `rope_scaling of type "yarn"`},
		{"num_hidden_layers", 1 << 40, "num_hidden_layers 1099511627776: more than the 1048576 layers"},
	} {
		c := hftest.Configs["gemma2"](hftest.Small)
		c[tc.key] = tc.val
		js, _ := json.Marshal(c)
		if _, err := hfModelConfig(fstest.MapFS{"m/config.json": {Data: js}}, "m", "test"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want one saying %s", tc.key, tc.val, err, tc.want)
		}
	}
	c = read("gemma", func(m map[string]any) { m["hidden_act"] = "gelu" })
	if c.DHead != 256 || c.AttnScale != 16 || c.ActFn != "gelu_pytorch_tanh" || c.UseNormalizationBeforeAndAfter || c.UseLocalAttn || c.OutputLogitsSoftCap > 0 {
		t.Errorf("gemma defaults mapped to %+v", c)
	}
}

// TestGemma2LeftPadding: a left-padded row of a model with a sliding
// window (3, on layer 0) computes at its real tokens what the row computes
// alone. Hugging Face's window counts positions padding included, so the
// window of a real query reaches as many real keys padded or not; its
// rotary positions count real tokens only.
func TestGemma2LeftPadding(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, gemma2Like, 9)
	defer m.Free()
	checkLeftPadding(t, m, []int64{5, 7, 2, 9, 4}, 3)
}
