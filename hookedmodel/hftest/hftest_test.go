package hftest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/hookedmodel/weights"
)

// TestHFCheckpointsWellFormed: each test checkpoint opens with
// weights.Open, holds exactly the tensors transformers' modeling code
// names, in its shapes (written out by hand here for one layer, apart from
// Tensors), with the values recorded, and config.json reads back.
func TestHFCheckpointsWellFormed(t *testing.T) {
	// Small: d_model 16, 4 heads, 2 kv heads, head_dim 6, d_mlp 24,
	// vocabulary 20. NeoX: head size 16 / 4.
	common := func(extra map[string][]int64) map[string][]int64 {
		m := map[string][]int64{
			"model.embed_tokens.weight":                      {20, 16},
			"model.layers.1.input_layernorm.weight":          {16},
			"model.layers.1.post_attention_layernorm.weight": {16},
			"model.layers.1.self_attn.q_proj.weight":         {24, 16},
			"model.layers.1.self_attn.k_proj.weight":         {12, 16},
			"model.layers.1.self_attn.v_proj.weight":         {12, 16},
			"model.layers.1.self_attn.o_proj.weight":         {16, 24},
			"model.layers.1.mlp.gate_proj.weight":            {24, 16},
			"model.layers.1.mlp.up_proj.weight":              {24, 16},
			"model.layers.1.mlp.down_proj.weight":            {16, 24},
			"model.norm.weight":                              {16},
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		modelType string
		opts      Opts
		perLayer  int // tensors per layer
		want      map[string][]int64
		absent    []string
	}{
		{"gpt_neox", Opts{Seed: 1}, 12, map[string][]int64{
			"gpt_neox.embed_in.weight":                           {20, 16},
			"gpt_neox.layers.1.input_layernorm.weight":           {16},
			"gpt_neox.layers.1.input_layernorm.bias":             {16},
			"gpt_neox.layers.1.post_attention_layernorm.weight":  {16},
			"gpt_neox.layers.1.post_attention_layernorm.bias":    {16},
			"gpt_neox.layers.1.attention.query_key_value.weight": {48, 16},
			"gpt_neox.layers.1.attention.query_key_value.bias":   {48},
			"gpt_neox.layers.1.attention.dense.weight":           {16, 16},
			"gpt_neox.layers.1.attention.dense.bias":             {16},
			"gpt_neox.layers.1.mlp.dense_h_to_4h.weight":         {24, 16},
			"gpt_neox.layers.1.mlp.dense_h_to_4h.bias":           {24},
			"gpt_neox.layers.1.mlp.dense_4h_to_h.weight":         {16, 24},
			"gpt_neox.layers.1.mlp.dense_4h_to_h.bias":           {16},
			"gpt_neox.final_layer_norm.weight":                   {16},
			"gpt_neox.final_layer_norm.bias":                     {16},
			"embed_out.weight":                                   {20, 16},
		}, nil},
		{"llama", Opts{Seed: 2}, 9, common(map[string][]int64{"lm_head.weight": {20, 16}}), nil},
		{"llama", Opts{Seed: 3, DType: weights.BF16, Shards: 3, Edit: func(c map[string]any) { c["tie_word_embeddings"] = true }},
			9, common(nil), []string{"lm_head.weight"}},
		{"mistral", Opts{Seed: 4, DType: weights.F16}, 9, common(map[string][]int64{"lm_head.weight": {20, 16}}), nil},
		// Qwen2's config has no head_dim: 16 / 4 heads = 4.
		{"qwen2", Opts{Seed: 5}, 12, common(map[string][]int64{
			"model.layers.1.self_attn.q_proj.weight": {16, 16},
			"model.layers.1.self_attn.k_proj.weight": {8, 16},
			"model.layers.1.self_attn.v_proj.weight": {8, 16},
			"model.layers.1.self_attn.o_proj.weight": {16, 16},
			"model.layers.1.self_attn.q_proj.bias":   {16},
			"model.layers.1.self_attn.k_proj.bias":   {8},
			"model.layers.1.self_attn.v_proj.bias":   {8},
		}), []string{"lm_head.weight", "model.layers.1.self_attn.o_proj.bias"}},
		{"gemma", Opts{Seed: 6}, 9, common(nil), []string{"lm_head.weight"}},
		{"gemma2", Opts{Seed: 7, DType: weights.BF16}, 11, common(map[string][]int64{
			"model.layers.1.pre_feedforward_layernorm.weight":  {16},
			"model.layers.1.post_feedforward_layernorm.weight": {16},
		}), []string{"lm_head.weight"}},
	} {
		dt := tc.opts.DType
		if dt == "" {
			dt = weights.F32
		}
		name := fmt.Sprintf("%s/%s/shards%d", tc.modelType, dt, tc.opts.Shards)
		t.Run(name, func(t *testing.T) {
			ck := Write(t, tc.modelType, tc.opts)
			js, err := os.ReadFile(filepath.Join(ck.Dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			if err := json.Unmarshal(js, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg["model_type"] != tc.modelType {
				t.Errorf("config.json model_type %v", cfg["model_type"])
			}
			c, err := weights.Open(ck.Dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			keys := c.Keys()
			global := 0
			for k := range tc.want {
				if !slices.Contains(keys, k) {
					t.Errorf("missing %s", k)
				} else if err := c.Expect(k, tc.want[k]...); err != nil {
					t.Error(err)
				}
				if !strings.Contains(k, ".layers.") {
					global++
				}
			}
			if want := global + 2*tc.perLayer; len(keys) != want {
				t.Errorf("%d tensors, want %d: %v", len(keys), want, keys)
			}
			for _, k := range tc.absent {
				if slices.Contains(keys, k) {
					t.Errorf("%s present", k)
				}
			}
			for _, k := range keys {
				got, err := c.Get(k)
				if err != nil {
					t.Fatal(err)
				}
				if got.DType != tc.opts.DType && !(tc.opts.DType == "" && got.DType == weights.F32) {
					t.Errorf("%s: dtype %s", k, got.DType)
				}
				vals := ck.Values[k]
				for i := range vals {
					if v := Decode(got.Data[i*got.DType.Size():], got.DType); v != vals[i] {
						t.Fatalf("%s[%d] = %v, recorded %v", k, i, v, vals[i])
					}
				}
				if !slices.Equal(ck.Shapes[k], got.Shape) {
					t.Errorf("%s: shape %v, recorded %v", k, got.Shape, ck.Shapes[k])
				}
			}
			// Norm weights away from neutral, biases away from 0.
			for k, vals := range ck.Values {
				if strings.Contains(k, "norm") && strings.Contains(k, "weight") {
					neutral := 1.0
					if tc.modelType == "gemma" || tc.modelType == "gemma2" {
						neutral = 0
					}
					if slices.ContainsFunc(vals, func(v float64) bool { return v == neutral }) {
						t.Errorf("%s holds the neutral value %v", k, neutral)
					}
				}
			}
		})
	}
}

// TestHFCheckpointFloat16 checks the half-precision encoder on exact cases.
func TestHFCheckpointFloat16(t *testing.T) {
	for _, tc := range []struct {
		v     float64
		want  uint16
		exact bool
	}{
		{1, 0x3c00, true}, {-2, 0xc000, true}, {0.5, 0x3800, true}, {65504, 0x7bff, true},
		{0x1p-14, 0x0400, true}, {0x1p-24, 0x0001, true}, {0, 0, true},
		{1 + 0x1p-11, 0x3c00, false}, {1 + 3*0x1p-11, 0x3c02, false}, // ties to even
		{3 * 0x1p-25, 0x0002, false}, // a subnormal tie to even
	} {
		if got := float16Bits(tc.v); got != tc.want {
			t.Errorf("float16Bits(%v) = %#04x, want %#04x", tc.v, got, tc.want)
		}
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], tc.want)
		if got := Decode(b[:], weights.F16); tc.exact && got != tc.v {
			t.Errorf("decode(%#04x) = %v, want %v", tc.want, got, tc.v)
		}
	}
}
