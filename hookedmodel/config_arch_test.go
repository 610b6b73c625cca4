package hookedmodel

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// The architecture fields of issue #15 are accepted with their defaults
// filled in, and a bad value is refused naming its field.
func TestConfigArchitectureFields(t *testing.T) {
	base := `"n_layers": 1, "d_model": 16, "d_head": 4, "n_heads": 4, "n_ctx": 8, "d_vocab": 5, "act_fn": "silu"`
	parse := func(extra string) (Config, error) {
		var c Config
		if err := json.Unmarshal([]byte("{"+base+extra+"}"), &c); err != nil {
			return c, err // attn_types is checked as it is read
		}
		return c, c.Init()
	}
	c, err := parse(`, "positional_embedding_type": "rotary", "normalization_type": "RMS", "n_key_value_heads": 2, "gated_mlp": true, "parallel_attn_mlp": true, "final_rms": true`)
	if err != nil {
		t.Fatal(err)
	}
	if c.RotaryDim != 4 || c.RotaryBase != 10000 || c.kvHeads() != 2 || c.AttnScoresSoftCap != -1 || c.OutputLogitsSoftCap != -1 {
		t.Errorf("defaults: rotary_dim %d (want d_head 4), rotary_base %g (want 10000), kv heads %d (want 2), soft caps %g %g (want -1)",
			c.RotaryDim, c.RotaryBase, c.kvHeads(), c.AttnScoresSoftCap, c.OutputLogitsSoftCap)
	}
	if c.NParams != 4*16*16+3*16*64 {
		t.Errorf("n_params %d, want %d (a gated MLP has three matrices)", c.NParams, 4*16*16+3*16*64)
	}
	c, err = parse(`, "positional_embedding_type": "rotary", "rotary_dim": 2, "rotary_base": 500000, "n_key_value_heads": 4, "act_fn": "gelu_pytorch_tanh"`)
	if err != nil || c.RotaryDim != 2 || c.RotaryBase != 500000 || c.kvHeads() != 4 {
		t.Errorf("explicit rotary fields: %+v, %v", c, err)
	}
	for _, tc := range []struct{ json, want string }{
		{`, "normalization_type": "RMSNorm"`, `normalization_type "RMSNorm" is not supported (want LN, LNPre, RMS, RMSPre or null)`},
		{`, "positional_embedding_type": "alibi"`, `positional_embedding_type "alibi"`},
		{`, "positional_embedding_type": "rotary", "rotary_dim": 6`, "rotary_dim 6 must be even and at most d_head 4"},
		{`, "positional_embedding_type": "rotary", "rotary_dim": 3`, "rotary_dim 3 must be even"},
		{`, "positional_embedding_type": "rotary", "rotary_base": -1`, "rotary_base must be a positive number"},
		{`, "rotary_dim": 2`, "rotary_dim 2 needs positional_embedding_type rotary"},
		{`, "n_key_value_heads": 3`, "n_key_value_heads 3 must divide n_heads 4"},
		{`, "n_key_value_heads": -2`, "n_key_value_heads must not be negative"},
		{`, "parallel_attn_mlp": true, "attn_only": true`, "parallel_attn_mlp needs an MLP"},
		{`, "final_rms": true, "normalization_type": null`, "final_rms needs a normalization_type"},
		{`, "gated_mlp": true, "act_fn": "solu_ln"`, "gated_mlp with act_fn solu_ln"},
		{`, "rms_norm_weight_plus_one": true`, `rms_norm_weight_plus_one needs normalization_type RMS (got "LN")`},
		{`, "use_normalization_before_and_after": true`, `use_normalization_before_and_after needs normalization_type RMS or RMSPre (got "LN")`},
		{`, "window_size": 0`, "window_size must be positive, got 0"},
		{`, "window_size": -3`, "window_size must be positive, got -3"},
		{`, "attn_types": ["global", "sliding"]`, `attn_types[1] is "sliding"; want "global" or "local"`},
		{`, "attn_types": "local"`, "attn_types: json"},
		{`, "attn_types": ["global", "local"], "use_local_attn": true, "window_size": 2`, "attn_types has 2 entries for 1 layers"},
		{`, "use_local_attn": true`, "use_local_attn needs attn_types"},
		{`, "attn_types": ["local"], "window_size": 2`, "attn_types has local layers but use_local_attn is false"},
		{`, "attn_types": ["local"], "use_local_attn": true`, "attn_types has local layers but window_size is not set"},
		{`, "attn_scale": 0`, "attn_scale must be a positive number (or -1 for sqrt(d_head)), got 0"},
		{`, "attn_scale": -4`, "attn_scale must be a positive number"},
	} {
		if _, err := parse(tc.json); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.json, err, tc.want)
		}
	}
	if _, err := parse(`, "attn_types": null`); err != nil {
		t.Errorf("attn_types null: %v", err)
	}
	// Gemma 2's fields, as TransformerLens's gemma-2 configs spell them
	// (with Hugging Face's layer order), are accepted and read back.
	c, err = parse(`, "normalization_type": "RMS", "use_normalization_before_and_after": true, "attn_scale": 3, "attn_scores_soft_cap": 50, "output_logits_soft_cap": 30, "use_local_attn": true, "window_size": 4, "attn_types": ["local"]`)
	if err != nil {
		t.Fatal(err)
	}
	if c.AttnScale != 3 || c.AttnScoresSoftCap != 50 || c.OutputLogitsSoftCap != 30 || *c.WindowSize != 4 || !c.AttnTypes.Local(0) || c.AttnTypes.Local(1) {
		t.Errorf("gemma 2 fields read as %+v", c)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"attn_types":["local"]`) || !strings.Contains(string(js), `"attn_scale":3`) {
		t.Errorf("marshalled as %s", js)
	}
	// attn_scale defaults to sqrt(d_head), and stays -1 without use_attn_scale.
	if c, err = parse(``); err != nil || c.AttnScale != 2 {
		t.Errorf("default attn_scale %g (want sqrt(4) = 2), %v", c.AttnScale, err)
	}
	if c, err = parse(`, "use_attn_scale": false`); err != nil || c.AttnScale != -1 {
		t.Errorf("attn_scale without use_attn_scale %g (want -1), %v", c.AttnScale, err)
	}
	// Soft caps: <= 0 is none; NaN and infinities are refused (Go only:
	// JSON has neither).
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		c := DefaultConfig()
		c.NLayers, c.DModel, c.DHead, c.NCtx, c.DVocab, c.ActFn = 1, 16, 4, 8, 5, "relu"
		c.OutputLogitsSoftCap = v
		if err := c.Init(); err == nil || !strings.Contains(err.Error(), "output_logits_soft_cap must be a finite number") {
			t.Errorf("output_logits_soft_cap %g: error %v", v, err)
		}
		c.OutputLogitsSoftCap, c.AttnScoresSoftCap = -1, v
		if err := c.Init(); err == nil || !strings.Contains(err.Error(), "attn_scores_soft_cap must be a finite number") {
			t.Errorf("attn_scores_soft_cap %g: error %v", v, err)
		}
	}
}
