package hookedmodel

import (
	"encoding/json"
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
			t.Fatal(err)
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
		{`, "positional_embedding_type": "rotary", "rotary_adjacent_pairs": true`, "rotary_adjacent_pairs is not supported yet"},
		{`, "rotary_dim": 2`, "rotary_dim 2 needs positional_embedding_type rotary"},
		{`, "n_key_value_heads": 3`, "n_key_value_heads 3 must divide n_heads 4"},
		{`, "n_key_value_heads": -2`, "n_key_value_heads must not be negative"},
		{`, "parallel_attn_mlp": true, "attn_only": true`, "parallel_attn_mlp needs an MLP"},
		{`, "final_rms": true, "normalization_type": null`, "final_rms needs a normalization_type"},
		{`, "gated_mlp": true, "act_fn": "solu_ln"`, "gated_mlp with act_fn solu_ln"},
		{`, "rms_norm_weight_plus_one": true`, `rms_norm_weight_plus_one needs normalization_type RMS (got "LN")`},
		{`, "attn_scores_soft_cap": 50`, "attn_scores_soft_cap is not supported yet"},
		{`, "output_logits_soft_cap": 30`, "output_logits_soft_cap is not supported yet"},
		{`, "use_normalization_before_and_after": true`, "use_normalization_before_and_after is not supported yet"},
		{`, "window_size": 4`, "window_size is not supported yet"},
		{`, "attn_types": ["global", "local"]`, "attn_types is not supported yet"},
	} {
		if _, err := parse(tc.json); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.json, err, tc.want)
		}
	}
	if _, err := parse(`, "attn_types": null`); err != nil {
		t.Errorf("attn_types null: %v", err)
	}
}
