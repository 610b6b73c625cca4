package hookedmodel

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/golens/golens/hookedmodel/hftest"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/reference"
	"github.com/golens/golens/hookedmodel/weights"
)

// hfRefConfig is the float64 reference's config of a Llama, Mistral,
// Qwen2, Gemma or Gemma 2 config.json, read from the JSON here (not
// through golens's mapper), as Hugging Face's modeling code reads it; the
// test configs spell out every field the modeling code reads.
func hfRefConfig(t *testing.T, c map[string]any) reference.Config {
	t.Helper()
	M, H := hftest.Int(c, "hidden_size"), hftest.Int(c, "num_attention_heads")
	D := M / H
	if _, ok := c["head_dim"]; ok {
		D = hftest.Int(c, "head_dim")
	}
	theta := 10000.0
	if v, ok := c["rope_theta"].(float64); ok {
		theta = v
	}
	rc := reference.Config{
		NLayers: hftest.Int(c, "num_hidden_layers"), DModel: M, DHead: D, NHeads: H,
		NKeyValueHeads: hftest.Int(c, "num_key_value_heads"), ActFn: c["hidden_act"].(string),
		Eps: c["rms_norm_eps"].(float64), UseAttnScale: true, NormalizationType: "RMS",
		AttentionDir: "causal", PositionalEmbeddingType: "rotary", RotaryDim: D, RotaryBase: theta,
		GatedMLP: true, DType: "float32",
	}
	if rs, ok := c["rope_scaling"].(map[string]any); ok && rs["rope_type"] == "llama3" {
		num := func(k string) float64 { return float64(hftest.Int(rs, k)) }
		if f, ok := rs["factor"].(float64); ok {
			rc.Llama3Factor = f
		}
		rc.UseLlama3Rope, rc.Llama3OriginalCtx = true, num("original_max_position_embeddings")
		rc.Llama3LowFreq, rc.Llama3HighFreq = rs["low_freq_factor"].(float64), rs["high_freq_factor"].(float64)
	}
	mt := c["model_type"]
	if w, ok := c["sliding_window"]; ok && w != nil && mt == "mistral" { // MistralAttention: every layer
		rc.WindowSize, rc.AttnTypes = hftest.Int(c, "sliding_window"), slices.Repeat([]string{"local"}, rc.NLayers)
	}
	if c["use_sliding_window"] == true && mt == "qwen2" { // Qwen2Config: layers max_window_layers.. slide
		rc.WindowSize, rc.AttnTypes = hftest.Int(c, "sliding_window"), make([]string, rc.NLayers)
		for l := range rc.AttnTypes {
			rc.AttnTypes[l] = map[bool]string{true: "local", false: "global"}[l >= hftest.Int(c, "max_window_layers")]
		}
	}
	if mt != "gemma" && mt != "gemma2" {
		return rc
	}
	// GemmaMLP and Gemma2MLP: ACT2FN[hidden_activation]; GemmaRMSNorm's
	// (1 + w); GemmaModel's embeddings times sqrt(hidden_size).
	rc.ActFn, rc.NormWeightPlusOne, rc.ScaleEmbed = c["hidden_activation"].(string), true, true
	if mt == "gemma2" {
		toF := func(key string) float64 {
			switch v := c[key].(type) {
			case int:
				return float64(v)
			case float64:
				return v
			case nil: // a null soft cap: none ("is not None" in the modeling code)
				return 0
			}
			t.Fatalf("config field %s: %T", key, c[key])
			return 0
		}
		// Gemma2Attention: scaling = query_pre_attn_scalar**-0.5, the
		// soft caps, sliding_window on the even layers; the post-norms.
		rc.AttnScale = math.Sqrt(toF("query_pre_attn_scalar"))
		rc.AttnScoresSoftCap, rc.LogitsSoftCap = toF("attn_logit_softcapping"), toF("final_logit_softcapping")
		rc.WindowSize, rc.AttnTypes = hftest.Int(c, "sliding_window"), reference.HFGemma2AttnTypes(rc.NLayers)
		rc.NormBeforeAndAfter = true
	}
	return rc
}

// hfRefWeights converts a written checkpoint's values to the reference's
// TransformerLens state dict, independently of the loader's table:
// W_Q[h, m, d] = q_proj[h·D + d, m], W_O[h, d, m] = o_proj[m, h·D + d],
// W_in = up_projᵀ, W_gate = gate_projᵀ, W_out = down_projᵀ, W_U =
// lm_headᵀ (embed_tokensᵀ when tied).
func hfRefWeights(t *testing.T, ck *hftest.Model, rc reference.Config) *reference.Model {
	t.Helper()
	M, H, KV, D := rc.DModel, rc.NHeads, rc.NKeyValueHeads, rc.DHead
	V := hftest.Int(ck.Config, "vocab_size")
	F := hftest.Int(ck.Config, "intermediate_size")
	r := &reference.Model{Cfg: rc, W: map[string]reference.Tensor{}}
	get := func(name string) []float64 {
		v, ok := ck.Values[name]
		if !ok {
			t.Fatalf("checkpoint has no %s", name)
		}
		return v
	}
	put := func(name string, data []float64, shape ...int) {
		r.W[name] = reference.Tensor{Shape: shape, Data: data}
	}
	transpose := func(x []float64, rows, cols int) []float64 { // [rows cols] -> [cols rows]
		out := make([]float64, len(x))
		for i := range rows {
			for j := range cols {
				out[j*rows+i] = x[i*cols+j]
			}
		}
		return out
	}
	heads := func(w []float64, n int) []float64 { // [n·D, M] -> [n, M, D]
		out := make([]float64, n*M*D)
		for h := range n {
			for d := range D {
				for m := range M {
					out[(h*M+m)*D+d] = w[(h*D+d)*M+m]
				}
			}
		}
		return out
	}
	put("embed.W_E", get("model.embed_tokens.weight"), V, M)
	for l := range rc.NLayers {
		p := "model.layers." + itoa(l) + "."
		b := "blocks." + itoa(l) + "."
		put(b+"ln1.w", get(p+"input_layernorm.weight"), M)
		if rc.NormBeforeAndAfter { // Gemma2DecoderLayer's four norms
			put(b+"ln1_post.w", get(p+"post_attention_layernorm.weight"), M)
			put(b+"ln2.w", get(p+"pre_feedforward_layernorm.weight"), M)
			put(b+"ln2_post.w", get(p+"post_feedforward_layernorm.weight"), M)
		} else {
			put(b+"ln2.w", get(p+"post_attention_layernorm.weight"), M)
		}
		put(b+"attn.W_Q", heads(get(p+"self_attn.q_proj.weight"), H), H, M, D)
		put(b+"attn.W_K", heads(get(p+"self_attn.k_proj.weight"), KV), KV, M, D)
		put(b+"attn.W_V", heads(get(p+"self_attn.v_proj.weight"), KV), KV, M, D)
		if v, ok := ck.Values[p+"self_attn.q_proj.bias"]; ok {
			put(b+"attn.b_Q", v, H, D)
			put(b+"attn.b_K", get(p+"self_attn.k_proj.bias"), KV, D)
			put(b+"attn.b_V", get(p+"self_attn.v_proj.bias"), KV, D)
		}
		if v, ok := ck.Values[p+"self_attn.o_proj.bias"]; ok {
			put(b+"attn.b_O", v, M)
		}
		// W_O [H, D, M]: o_proj is [M, H·D]; its transpose [H·D, M] is W_O flat.
		put(b+"attn.W_O", transpose(get(p+"self_attn.o_proj.weight"), M, H*D), H, D, M)
		put(b+"mlp.W_in", transpose(get(p+"mlp.up_proj.weight"), F, M), M, F)
		put(b+"mlp.W_gate", transpose(get(p+"mlp.gate_proj.weight"), F, M), M, F)
		put(b+"mlp.W_out", transpose(get(p+"mlp.down_proj.weight"), M, F), F, M)
	}
	put("ln_final.w", get("model.norm.weight"), M)
	head, ok := ck.Values["lm_head.weight"]
	if !ok {
		head = get("model.embed_tokens.weight")
	}
	put("unembed.W_U", transpose(head, V, M), M, V)
	return r
}

// logSoftmaxRows is log_softmax over the last dimension n.
func logSoftmaxRows(x []float64, n int) []float64 {
	out := make([]float64, len(x))
	for i := 0; i < len(x); i += n {
		mx := math.Inf(-1)
		for _, v := range x[i : i+n] {
			mx = max(mx, v)
		}
		s := 0.0
		for _, v := range x[i : i+n] {
			s += math.Exp(v - mx)
		}
		for j, v := range x[i : i+n] {
			out[i+j] = v - mx - math.Log(s)
		}
	}
	return out
}

// hfLlamaCases are the checkpoints the loader tests load: Llama 3.1 with
// its rope_scaling, at a rope_theta and original context that put one
// rotary frequency in each of its three bands (see llama31Bands); Llama
// without scaling and with attention_bias; Mistral; Qwen2 with tied
// embeddings and q/k/v biases; a bf16 and a sharded one; Gemma (hidden_act
// "gelu" as the hub's Gemma 1 configs say it, which the modeling code
// ignores for hidden_activation) and Gemma 2 (window 3 shorter than the
// 7-token prompts, soft caps 2 and 3 that bite, query_pre_attn_scalar 9,
// head_dim 6 against 16 / 4 heads, 2 key/value heads), f32 and bf16
// sharded.
var hfLlamaCases = []struct {
	name, modelType string
	opts            hftest.Opts
}{
	{"llama 3.1 rope_scaling", "llama", hftest.Opts{Seed: 1, Edit: llama31Bands}},
	{"llama attention_bias", "llama", hftest.Opts{Seed: 2, Edit: func(c map[string]any) { c["rope_scaling"], c["attention_bias"] = nil, true }}},
	{"mistral", "mistral", hftest.Opts{Seed: 3}},
	{"mistral sliding window 3", "mistral", hftest.Opts{Seed: 6, Edit: func(c map[string]any) { c["sliding_window"] = 3 }}},
	{"qwen2", "qwen2", hftest.Opts{Seed: 4}},
	{"qwen2 bf16 sharded", "qwen2", hftest.Opts{Seed: 5, DType: weights.BF16, Shards: 3}},
	{"qwen2 sliding window 3 from layer 1", "qwen2", hftest.Opts{Seed: 23, Edit: qwen2Slide(3, 1)}},
	{"gemma", "gemma", hftest.Opts{Seed: 19, Edit: func(c map[string]any) { c["hidden_act"] = "gelu" }}},
	{"gemma bf16 sharded", "gemma", hftest.Opts{Seed: 20, DType: weights.BF16, Shards: 2}},
	{"gemma2", "gemma2", hftest.Opts{Seed: 21}},
	{"gemma2 bf16 sharded untied", "gemma2", hftest.Opts{Seed: 22, DType: weights.BF16, Shards: 3, Edit: func(c map[string]any) { c["tie_word_embeddings"] = false }}},
}

func TestLoadHFLlamaFamilyMatchesReference(t *testing.T) {
	for _, tc := range hfLlamaCases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			ck := hftest.Write(t, tc.modelType, tc.opts)
			rc := hfRefConfig(t, ck.Config)
			rows, tok := randomTokens(t, 2, 7, hftest.Int(ck.Config, "vocab_size"), 9)
			defer tok.Free()
			want := hfRefWeights(t, ck, rc).Forward(rows)

			// Unprocessed: every hook and the logits equal the reference
			// of Hugging Face's weights.
			m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			defer cache.Free()
			compare(t, "logits", out.Logits, want["logits"])
			for _, name := range cache.Keys() {
				w, ok := want[name]
				if !ok {
					t.Errorf("cached %s has no reference value", name)
					continue
				}
				compare(t, name, cache.MustGet(name), w)
			}
			for name := range want {
				if _, err := cache.Get(name); err != nil && name != "logits" {
					t.Errorf("reference activation %s is missing from the cache", name)
				}
			}

			// Default processing: every hook equals the reference of the
			// processed weights, and the log-probabilities equal Hugging
			// Face's.
			p, err := Load(context.Background(), ck.Dir, OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Free()
			pout, pcache, pref := cachedWithReference(t, p, 9)
			compare(t, "processed logits", pout.Logits, pref["logits"])
			for _, name := range pcache.Keys() {
				if w, ok := pref[name]; ok {
					compare(t, "processed "+name, pcache.MustGet(name), w)
				} else {
					t.Errorf("processed: cached %s has no reference value", name)
				}
			}
			V := hftest.Int(ck.Config, "vocab_size")
			gotchtest.Close(t, "processed log-probs", logSoftmaxRows(gotchtest.Values(t, pout.Logits), V), logSoftmaxRows(want["logits"].Data, V), 1e-4)
		})
	}
}

// TestLoadHFConfigMapping checks the fields golens takes from Hugging
// Face's numbers where TransformerLens differs.
func TestLoadHFConfigMapping(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ck := hftest.Write(t, "qwen2", hftest.Opts{Seed: 6})
	m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	c := m.Cfg
	if c.RotaryBase != 1e6 || c.NKeyValueHeads != 2 || c.DHead != 4 || c.NCtx != 32 || c.Eps != 1e-5 ||
		c.NormalizationType != "RMS" || !c.GatedMLP || c.ActFn != "silu" || c.OriginalArchitecture != "Qwen2ForCausalLM" {
		t.Errorf("qwen2 config mapped to %+v", c)
	}
	// Mistral's sliding window: every layer slides, n_ctx stays.
	mk := hftest.Write(t, "mistral", hftest.Opts{Seed: 7, Edit: func(c map[string]any) { c["sliding_window"] = 20 }})
	cfg, err := hfConfig(nil, mk.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NCtx != 32 || cfg.DHead != 6 || cfg.WindowSize == nil || *cfg.WindowSize != 20 || !cfg.AttnTypes.Local(0) || !cfg.AttnTypes.Local(1) {
		t.Errorf("mistral with sliding_window 20: n_ctx %d d_head %d window %v types %q, want 32, 6, 20 on every layer", cfg.NCtx, cfg.DHead, cfg.WindowSize, cfg.AttnTypes)
	}
	// Qwen2's sliding window, as Qwen2Config sets each layer's attention.
	for _, tc := range []struct {
		name  string
		edit  func(map[string]any)
		types string // attn_types, "" for no sliding window
	}{
		{"off, whatever layer_types says", func(c map[string]any) {
			c["use_sliding_window"], c["layer_types"] = false, []string{"sliding_attention", "sliding_attention"}
		}, ""},
		{"max_window_layers by default 28", func(c map[string]any) { c["use_sliding_window"] = true; delete(c, "max_window_layers") }, ""},
		{"from max_window_layers 1", qwen2Slide(5, 1), "gl"},
		{"from max_window_layers 0", qwen2Slide(5, 0), "ll"},
		{"layer_types first", func(c map[string]any) {
			qwen2Slide(5, 1)(c)
			c["layer_types"] = []string{"sliding_attention", "full_attention"}
		}, "lg"},
		{"sliding_window null", func(c map[string]any) { qwen2Slide(5, 0)(c); c["sliding_window"] = nil }, ""},
	} {
		qk := hftest.Write(t, "qwen2", hftest.Opts{Seed: 7, Edit: tc.edit})
		cfg, err := hfConfig(nil, qk.Dir)
		if err != nil {
			t.Errorf("qwen2 sliding window %s: %v", tc.name, err)
			continue
		}
		window := 0
		if cfg.WindowSize != nil {
			window = *cfg.WindowSize
		}
		if string(cfg.AttnTypes) != tc.types || cfg.UseLocalAttn != (tc.types != "") || (tc.types != "") != (window == 5) {
			t.Errorf("qwen2 sliding window %s: use_local_attn %v attn_types %q window %d, want types %q", tc.name, cfg.UseLocalAttn, cfg.AttnTypes, window, tc.types)
		}
	}
}

// qwen2Slide turns Qwen2's use_sliding_window on: a window of window keys
// on the layers from first on.
func qwen2Slide(window, first int) func(map[string]any) {
	return func(c map[string]any) {
		c["use_sliding_window"], c["sliding_window"], c["max_window_layers"] = true, window, first
	}
}

// llama31Bands sets rope_theta 100 and original_max_position_embeddings 64
// on a head_dim-6 Llama: the wavelengths 2π/θ of its three frequencies
// (6.3, 29, 135) fall below 64/high (16, kept), between (interpolated) and
// above 64/low (64, divided by the factor), so every branch of Hugging
// Face's llama3 scaling counts within a 7-token prompt.
func llama31Bands(c map[string]any) {
	c["rope_theta"] = 100.0
	c["rope_scaling"].(map[string]any)["original_max_position_embeddings"] = 64
}

// TestLoadHFLlama31ScalingMatters fails if rope_scaling were ignored, or
// applied to the wrong band: the reference without it, or with each band's
// rule swapped in turn (a factor of 1 keeps all, a huge low_freq_factor
// scales none), gives other logits.
func TestLoadHFLlama31ScalingMatters(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ck := hftest.Write(t, "llama", hftest.Opts{Seed: 8, Edit: llama31Bands})
	rows, tok := randomTokens(t, 1, 7, hftest.Int(ck.Config, "vocab_size"), 3)
	defer tok.Free()
	m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if !m.Cfg.UseNTKByPartsRope || m.Cfg.NTKByPartsFactor != 8 || m.Cfg.NTKOriginalCtxLen != 64 {
		t.Fatalf("rope_scaling mapped to use %v factor %g ctx %d", m.Cfg.UseNTKByPartsRope, m.Cfg.NTKByPartsFactor, m.Cfg.NTKOriginalCtxLen)
	}
	out, err := m.Forward(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	got := gotchtest.Values(t, out.Logits)
	for name, edit := range map[string]func(*reference.Config){
		"no scaling":             func(rc *reference.Config) { rc.UseLlama3Rope = false },
		"factor 1":               func(rc *reference.Config) { rc.Llama3Factor = 1 },
		"no band above ctx/low":  func(rc *reference.Config) { rc.Llama3LowFreq = 0.01 },
		"no band below ctx/high": func(rc *reference.Config) { rc.Llama3HighFreq = 1000 },
	} {
		rc := hfRefConfig(t, ck.Config)
		edit(&rc)
		wrong := hfRefWeights(t, ck, rc).Forward(rows)["logits"].Data
		diff := 0.0
		for i := range got {
			diff = max(diff, math.Abs(got[i]-wrong[i]))
		}
		if diff < 1e-3 {
			t.Errorf("logits equal those of the reference with %s (max diff %g)", name, diff)
		}
	}
}

// TestLoadHFRotaryBaseMatters fails if rope_theta were ignored: the same
// weights with rope_theta 10000 give other logits.
func TestLoadHFRotaryBaseMatters(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ck := hftest.Write(t, "qwen2", hftest.Opts{Seed: 8})
	rc := hfRefConfig(t, ck.Config)
	rc.RotaryBase = 10000
	rows, tok := randomTokens(t, 1, 7, hftest.Int(ck.Config, "vocab_size"), 3)
	defer tok.Free()
	wrong := hfRefWeights(t, ck, rc).Forward(rows)["logits"].Data
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
	got := gotchtest.Values(t, out.Logits)
	diff := 0.0
	for i := range got {
		diff = max(diff, math.Abs(got[i]-wrong[i]))
	}
	if diff < 1e-3 {
		t.Errorf("logits with rope_theta 1e6 equal those with 10000 (max diff %g)", diff)
	}
}

func TestLoadHFBadConfigs(t *testing.T) {
	cases := []struct {
		name, modelType string
		edit            func(map[string]any)
		remove          string // a tensor to drop from the checkpoint
		want            string
	}{
		{"unknown model_type", "llama", func(c map[string]any) { c["model_type"], c["rope_scaling"] = "bert", nil }, "", `model_type "bert"`},
		{"llama3 rope_scaling without factor", "llama", func(c map[string]any) { delete(c["rope_scaling"].(map[string]any), "factor") }, "", "rope_scaling of type llama3 needs factor"},
		{"llama3 rope_scaling low above high", "llama", func(c map[string]any) { c["rope_scaling"].(map[string]any)["low_freq_factor"] = 5.0 }, "", "NTK_by_parts_low_freq_factor 5"},
		{"llama3 rope_scaling zero context", "llama", func(c map[string]any) { c["rope_scaling"].(map[string]any)["original_max_position_embeddings"] = 0 }, "", "NTK_original_ctx_len must be positive"},
		{"linear rope_scaling", "mistral", func(c map[string]any) { c["rope_scaling"] = map[string]any{"type": "linear", "factor": 2.0} }, "", `rope_scaling of type "linear"`},
		{"mlp_bias", "llama", func(c map[string]any) { c["rope_scaling"], c["mlp_bias"] = nil, true }, "", "mlp_bias"},
		{"qwen2 max_window_layers", "qwen2", func(c map[string]any) { c["use_sliding_window"], c["max_window_layers"] = true, -1 }, "", "max_window_layers"},
		{"qwen2 sliding_window", "qwen2", func(c map[string]any) { c["use_sliding_window"], c["sliding_window"] = true, 0 }, "", "sliding_window"},
		{"missing tensor", "mistral", nil, "model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.k_proj.weight"},
		{"missing qwen2 bias", "qwen2", nil, "model.layers.0.self_attn.v_proj.bias", "model.layers.0.self_attn.v_proj.bias"},
		{"llama partial_rotary_factor", "llama", func(c map[string]any) { c["rope_scaling"], c["partial_rotary_factor"] = nil, 0.5 }, "", "partial_rotary_factor"},
		{"neox rope_scaling", "gpt_neox", func(c map[string]any) { c["rope_scaling"] = map[string]any{"rope_type": "dynamic", "factor": 2.0} }, "", `rope_scaling of type "dynamic"`},
		{"neox missing tensor", "gpt_neox", nil, "gpt_neox.layers.0.mlp.dense_h_to_4h.bias", "gpt_neox.layers.0.mlp.dense_h_to_4h.bias"},
		{"gemma2 attn softcap 0", "gemma2", func(c map[string]any) { c["attn_logit_softcapping"] = 0 }, "", "attn_logit_softcapping must be a positive number or null, got 0"},
		{"gemma2 final softcap negative", "gemma2", func(c map[string]any) { c["final_logit_softcapping"] = -30.0 }, "", "final_logit_softcapping must be a positive number or null, got -30"},
		{"gemma2 sliding_window 0", "gemma2", func(c map[string]any) { c["sliding_window"] = 0 }, "", "sliding_window must be positive, got 0"},
		{"gemma2 sliding_window negative", "gemma2", func(c map[string]any) { c["sliding_window"] = -4 }, "", "sliding_window must be positive, got -4"},
		{"gemma2 query_pre_attn_scalar 0", "gemma2", func(c map[string]any) { c["query_pre_attn_scalar"] = 0 }, "", "query_pre_attn_scalar must be a positive number, got 0"},
		{"gemma unknown hidden_activation", "gemma", func(c map[string]any) { c["hidden_activation"] = "swiglu" }, "", `hidden_activation "swiglu" is not supported`},
		{"gemma2 layer_types length", "gemma2", func(c map[string]any) { c["layer_types"] = []string{"sliding_attention"} }, "", "layer_types has 1 entries for num_hidden_layers 2"},
		{"gemma2 layer_types value", "gemma2", func(c map[string]any) { c["layer_types"] = []string{"sliding_attention", "chunked_attention"} }, "", `layer_types[1] is "chunked_attention"`},
		{"gemma attention_bias", "gemma", func(c map[string]any) { c["attention_bias"] = true }, "", `attention_bias is not supported for model_type "gemma"`},
		{"gemma2 bidirectional", "gemma2", func(c map[string]any) { c["use_bidirectional_attention"] = true }, "", "use_bidirectional_attention"},
		{"gemma rope_scaling", "gemma", func(c map[string]any) { c["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": 2.0} }, "", `rope_scaling of type "linear"`},
		{"gemma2 missing post norm", "gemma2", nil, "model.layers.1.post_feedforward_layernorm.weight", "model.layers.1.post_feedforward_layernorm.weight"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			ck := hftest.Write(t, tc.modelType, hftest.Opts{Seed: 10, Edit: tc.edit})
			if tc.remove != "" {
				rewriteCheckpoint(t, ck, tc.remove, nil)
			}
			m, err := Load(context.Background(), ck.Dir, OnDevice(gotchtest.Device(t)))
			if err == nil {
				m.Free()
				t.Fatalf("loaded; want an error naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

// rewriteCheckpoint rewrites ck's model.safetensors without tensor name,
// with the tensors add.
func rewriteCheckpoint(t *testing.T, ck *hftest.Model, name string, add []*weights.Tensor) {
	t.Helper()
	path := filepath.Join(ck.Dir, "model.safetensors")
	src, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var keep []*weights.Tensor
	for _, k := range src.Keys() {
		if k == name {
			continue
		}
		w, err := src.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, &weights.Tensor{Name: k, DType: w.DType, Shape: w.Shape, Data: append([]byte(nil), w.Data...)})
	}
	src.Close()
	keep = append(keep, add...)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := weights.WriteSafetensors(path, keep, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// neoxRefModel is the float64 reference of a written GPT-NeoX checkpoint,
// its config read from config.json here and its weights regrouped here:
// query_key_value's row (h·3 + j)·D + d is head h's q (j 0), k (1) or v (2)
// row d.
func neoxRefModel(t *testing.T, ck *hftest.Model) *reference.Model {
	t.Helper()
	c := ck.Config
	M, H, L := hftest.Int(c, "hidden_size"), hftest.Int(c, "num_attention_heads"), hftest.Int(c, "num_hidden_layers")
	V, F := hftest.Int(c, "vocab_size"), hftest.Int(c, "intermediate_size")
	D := M / H
	toF := func(v any) float64 {
		switch x := v.(type) {
		case int:
			return float64(x)
		case float64:
			return x
		}
		t.Fatalf("not a number: %v", v)
		return 0
	}
	parallel, _ := c["use_parallel_residual"].(bool)
	pct, ok := c["rotary_pct"]
	if !ok {
		pct = c["partial_rotary_factor"]
	}
	rc := reference.Config{
		NLayers: L, DModel: M, DHead: D, NHeads: H, ActFn: c["hidden_act"].(string),
		Eps: toF(c["layer_norm_eps"]), UseAttnScale: true, NormalizationType: "LN", AttentionDir: "causal",
		PositionalEmbeddingType: "rotary", RotaryDim: int(float64(D) * toF(pct)),
		RotaryBase: toF(c["rotary_emb_base"]), ParallelAttnMLP: parallel, DType: "float32",
	}
	r := &reference.Model{Cfg: rc, W: map[string]reference.Tensor{}}
	get := func(name string) []float64 {
		v, ok := ck.Values[name]
		if !ok {
			t.Fatalf("checkpoint has no %s", name)
		}
		return v
	}
	put := func(name string, data []float64, shape ...int) {
		r.W[name] = reference.Tensor{Shape: shape, Data: data}
	}
	transpose := func(x []float64, rows, cols int) []float64 {
		out := make([]float64, len(x))
		for i := range rows {
			for j := range cols {
				out[j*rows+i] = x[i*cols+j]
			}
		}
		return out
	}
	put("embed.W_E", get("gpt_neox.embed_in.weight"), V, M)
	for l := range L {
		p := "gpt_neox.layers." + itoa(l) + "."
		b := "blocks." + itoa(l) + "."
		put(b+"ln1.w", get(p+"input_layernorm.weight"), M)
		put(b+"ln1.b", get(p+"input_layernorm.bias"), M)
		put(b+"ln2.w", get(p+"post_attention_layernorm.weight"), M)
		put(b+"ln2.b", get(p+"post_attention_layernorm.bias"), M)
		w, bias := get(p+"attention.query_key_value.weight"), get(p+"attention.query_key_value.bias")
		for j, n := range []string{"Q", "K", "V"} {
			W := make([]float64, H*M*D)
			B := make([]float64, H*D)
			for h := range H {
				for d := range D {
					row := (h*3+j)*D + d
					B[h*D+d] = bias[row]
					for m := range M {
						W[(h*M+m)*D+d] = w[row*M+m]
					}
				}
			}
			put(b+"attn.W_"+n, W, H, M, D)
			put(b+"attn.b_"+n, B, H, D)
		}
		put(b+"attn.W_O", transpose(get(p+"attention.dense.weight"), M, M), H, D, M)
		put(b+"attn.b_O", get(p+"attention.dense.bias"), M)
		put(b+"mlp.W_in", transpose(get(p+"mlp.dense_h_to_4h.weight"), F, M), M, F)
		put(b+"mlp.b_in", get(p+"mlp.dense_h_to_4h.bias"), F)
		put(b+"mlp.W_out", transpose(get(p+"mlp.dense_4h_to_h.weight"), M, F), F, M)
		put(b+"mlp.b_out", get(p+"mlp.dense_4h_to_h.bias"), M)
	}
	put("ln_final.w", get("gpt_neox.final_layer_norm.weight"), M)
	put("ln_final.b", get("gpt_neox.final_layer_norm.bias"), M)
	head, ok := ck.Values["embed_out.weight"]
	if !ok {
		head = get("gpt_neox.embed_in.weight")
	}
	put("unembed.W_U", transpose(head, V, M), M, V)
	return r
}

func TestLoadHFGPTNeoXMatchesReference(t *testing.T) {
	cases := []struct {
		name string
		opts hftest.Opts
	}{
		{"parallel", hftest.Opts{Seed: 11}},
		{"sequential", hftest.Opts{Seed: 12, Edit: func(c map[string]any) { c["use_parallel_residual"] = false }}},
		{"partial_rotary_factor", hftest.Opts{Seed: 18, Edit: func(c map[string]any) { delete(c, "rotary_pct"); c["partial_rotary_factor"] = 0.5 }}},
		{"tied f16 sharded", hftest.Opts{Seed: 13, DType: weights.F16, Shards: 2, Edit: func(c map[string]any) { c["tie_word_embeddings"] = true }}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			ck := hftest.Write(t, "gpt_neox", tc.opts)
			rows, tok := randomTokens(t, 2, 7, hftest.Int(ck.Config, "vocab_size"), 9)
			defer tok.Free()
			want := neoxRefModel(t, ck).Forward(rows)
			m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if m.Cfg.RotaryBase != 5000 || m.Cfg.RotaryDim != 2 || m.Cfg.ParallelAttnMLP != (tc.name != "sequential") {
				t.Errorf("config: rotary_base %g rotary_dim %d parallel %v", m.Cfg.RotaryBase, m.Cfg.RotaryDim, m.Cfg.ParallelAttnMLP)
			}
			out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			defer cache.Free()
			compare(t, "logits", out.Logits, want["logits"])
			for _, name := range cache.Keys() {
				if w, ok := want[name]; ok {
					compare(t, name, cache.MustGet(name), w)
				} else {
					t.Errorf("cached %s has no reference value", name)
				}
			}
			for name := range want {
				if _, err := cache.Get(name); err != nil && name != "logits" {
					t.Errorf("reference activation %s is missing from the cache", name)
				}
			}
			p, err := Load(context.Background(), ck.Dir, OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Free()
			pout, pcache, pref := cachedWithReference(t, p, 9)
			compare(t, "processed logits", pout.Logits, pref["logits"])
			for _, name := range pcache.Keys() {
				if w, ok := pref[name]; ok {
					compare(t, "processed "+name, pcache.MustGet(name), w)
				} else {
					t.Errorf("processed: cached %s has no reference value", name)
				}
			}
			V := hftest.Int(ck.Config, "vocab_size")
			gotchtest.Close(t, "processed log-probs", logSoftmaxRows(gotchtest.Values(t, pout.Logits), V), logSoftmaxRows(want["logits"].Data, V), 1e-4)
		})
	}
}

// TestLoadHFIgnoresBuffers loads checkpoints holding the non-weight
// entries older Pythia and Llama checkpoints have (NeoX's causal-mask
// buffers, rotary inv_freq), and refuses an unknown extra tensor.
func TestLoadHFIgnoresBuffers(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f32 := func(name string, n int) *weights.Tensor {
		return &weights.Tensor{Name: name, DType: weights.F32, Shape: []int64{int64(n)}, Data: make([]byte, 4*n)}
	}
	for _, tc := range []struct {
		modelType string
		extra     []*weights.Tensor
		edit      func(map[string]any)
	}{
		{"gpt_neox", []*weights.Tensor{f32("gpt_neox.layers.0.attention.bias", 4), f32("gpt_neox.layers.0.attention.masked_bias", 1), f32("gpt_neox.layers.1.attention.rotary_emb.inv_freq", 1)}, nil},
		{"llama", []*weights.Tensor{f32("model.layers.0.self_attn.rotary_emb.inv_freq", 3)}, func(c map[string]any) { c["rope_scaling"] = nil }},
	} {
		ck := hftest.Write(t, tc.modelType, hftest.Opts{Seed: 14, Edit: tc.edit})
		rewriteCheckpoint(t, ck, "", tc.extra)
		m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
		if err != nil {
			t.Fatalf("%s: %v", tc.modelType, err)
		}
		m.Free()
	}
	ck := hftest.Write(t, "mistral", hftest.Opts{Seed: 15})
	rewriteCheckpoint(t, ck, "", []*weights.Tensor{f32("model.layers.0.mlp.up_proj.bias", 24)})
	if m, err := Load(context.Background(), ck.Dir, OnDevice(gotchtest.Device(t))); err == nil {
		m.Free()
		t.Error("loaded a checkpoint with mlp.up_proj.bias, which the config cannot place")
	} else if !strings.Contains(err.Error(), "model.layers.0.mlp.up_proj.bias") {
		t.Errorf("error %q does not name the extra tensor", err)
	}
}

// FuzzHFArchConfig feeds config.json's of every model_type to the mapper:
// an error is one line, an accepted config is valid.
func FuzzHFArchConfig(f *testing.F) {
	for _, mt := range []string{"llama", "mistral", "qwen2", "gpt_neox", "gemma", "gemma2"} {
		b, err := json.Marshal(hftest.Configs[mt](hftest.Small))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"model_type":"gpt_neox","hidden_size":8,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":4,"max_position_embeddings":4,"vocab_size":3,"hidden_act":"gelu","rotary_pct":0.1}`))
	f.Add([]byte(`{"model_type":"llama","hidden_size":8,"num_attention_heads":3,"num_hidden_layers":1,"intermediate_size":4,"max_position_embeddings":4,"vocab_size":3,"hidden_act":"silu","num_key_value_heads":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := fstest.MapFS{"m/config.json": {Data: b}}
		c, err := hfModelConfig(fsys, "m", "fuzz")
		if err != nil {
			checkOneLine(t, err)
			return
		}
		checkAccepted(t, c)
	})
}

// TestLoadHFNonFiniteFreesParts refuses a NaN in a layer's k_proj, read
// while that layer's q and k are held apart, and leaks nothing.
func TestLoadHFNonFiniteFreesParts(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ck := hftest.Write(t, "qwen2", hftest.Opts{Seed: 16})
	name := "model.layers.1.self_attn.k_proj.weight"
	shape := ck.Shapes[name]
	data := make([]byte, 4*shape[0]*shape[1])
	binary.LittleEndian.PutUint32(data[4:], math.Float32bits(float32(math.NaN())))
	rewriteCheckpoint(t, ck, name, []*weights.Tensor{{Name: name, DType: weights.F32, Shape: shape, Data: data}})
	m, err := Load(context.Background(), ck.Dir, OnDevice(gotchtest.Device(t)))
	if err == nil {
		m.Free()
		t.Fatal("loaded a NaN weight")
	}
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), name) {
		t.Errorf("error %q: want ErrNonFinite naming %s", err, name)
	}
}

// TestLoadHFGenerateWithAndWithoutCache: loaded Llama-family, NeoX and
// Gemma models generate the same greedy tokens with the key-value cache as
// without it (rotary offsets, grouped-query caches, Gemma 2's sliding
// window shorter than the 5-token prompt, longer than the prompt but
// shorter than prompt and generation, and longer than both).
func TestLoadHFGenerateWithAndWithoutCache(t *testing.T) {
	window := func(w int) func(map[string]any) { return func(c map[string]any) { c["sliding_window"] = w } }
	for _, tc := range []struct {
		name, modelType string
		edit            func(map[string]any)
	}{
		{"llama", "llama", func(c map[string]any) { c["rope_scaling"] = nil }},
		{"qwen2", "qwen2", nil},
		{"gpt_neox", "gpt_neox", nil},
		{"gemma", "gemma", nil},
		{"gemma2 window 3", "gemma2", window(3)},
		{"gemma2 window 8", "gemma2", window(8)},
		{"gemma2 window 20", "gemma2", window(20)},
		{"qwen2 window 3 from layer 1", "qwen2", qwen2Slide(3, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			ck := hftest.Write(t, tc.modelType, hftest.Opts{Seed: 17, Edit: tc.edit})
			m, err := Load(context.Background(), ck.Dir, OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 4)
			defer tok.Free()
			cached, err := m.Generate(context.Background(), Tokens(tok), MaxNewTokens(8), Greedy(), StopAtEOS(false))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := m.Generate(context.Background(), Tokens(tok), MaxNewTokens(8), Greedy(), StopAtEOS(false), NoKVCache())
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(cached) != fmt.Sprint(plain) {
				t.Errorf("with the cache %v, without %v", cached, plain)
			}
		})
	}
}
