package hookedmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/golens/golens/hookedmodel/weights"
)

// Small random checkpoints in Hugging Face's on-disk layout (config.json
// beside model.safetensors, or shards with model.safetensors.index.json),
// under the tensor names and in the shapes of transformers' modeling code,
// for the loader tests of issue #15:
//
//   - gpt_neox: modeling_gpt_neox.py (GPTNeoXForCausalLM: gpt_neox.embed_in,
//     layers.N.{input,post_attention}_layernorm, attention.query_key_value,
//     attention.dense, mlp.dense_h_to_4h, mlp.dense_4h_to_h,
//     final_layer_norm, embed_out). query_key_value's rows are, per head,
//     that head's q, k and v rows (GPTNeoXAttention views the output as
//     [..., heads, 3 * head_size] and splits the last dimension).
//   - llama, mistral, qwen2, gemma, gemma2: modeling_llama.py and kin
//     (model.embed_tokens, layers.N.self_attn.{q,k,v,o}_proj,
//     mlp.{gate,up,down}_proj, input_layernorm, post_attention_layernorm,
//     model.norm, lm_head unless tie_word_embeddings). Qwen2 adds biases on
//     q, k and v (Qwen2Attention); Gemma 2 adds pre_feedforward_layernorm and
//     post_feedforward_layernorm (Gemma2DecoderLayer), its
//     post_attention_layernorm normalizing the attention's output.
//
// The random values are what the loader tests need to catch mistakes:
// norm weights away from their neutral value (1, or 0 for Gemma's (1 + w)),
// biases away from 0, a Gemma 2 sliding window shorter than a 6-token
// prompt, soft-caps small enough to bite, a rotary base that is not 10000
// and partial rotary for NeoX, Llama 3.1's rope_scaling with all three
// frequency bands present, and grouped-query attention.

// hfcDims are a small model's sizes.
type hfcDims struct {
	Layers, DModel, Heads, KVHeads, HeadDim, DMLP, Vocab, Ctx int
}

// hfcSmall are the sizes the helpers use unless told otherwise: head_dim 6
// is not d_model / heads (Gemma), 2 key/value heads for 4 query heads.
var hfcSmall = hfcDims{Layers: 2, DModel: 16, Heads: 4, KVHeads: 2, HeadDim: 6, DMLP: 24, Vocab: 20, Ctx: 32}

// hfcOpts choose a checkpoint's dtype, sharding, seed and config edits.
type hfcOpts struct {
	Dims   *hfcDims             // default hfcSmall (gpt_neox: HeadDim and KVHeads follow from DModel and Heads)
	DType  weights.DType        // F32 (default), BF16 or F16
	Shards int                  // > 1: that many shards and model.safetensors.index.json
	Seed   uint64               // random values
	Edit   func(map[string]any) // changes config.json's fields before the tensors are chosen from it
}

// hfcModel is a written checkpoint: its directory, config and
// tensors, Values holding each tensor's elements as stored (rounded to the
// dtype), as float64, row-major.
type hfcModel struct {
	Dir    string
	Config map[string]any
	Shapes map[string][]int64
	Values map[string][]float64
}

// hfcTensor is one tensor of a checkpoint and how to fill it.
type hfcTensor struct {
	Name  string
	Shape []int64
	Kind  byte // 'w' weight, 'b' bias, 'n' norm weight
}

// hfcConfigs are config.json's of each model_type, as the hub's checkpoints
// spell them (Pythia, Llama 3.1/3.2, Mistral 7B v0.1, Qwen2.5, Gemma,
// Gemma 2 2B), at dims d.
var hfcConfigs = map[string]func(d hfcDims) map[string]any{
	"gpt_neox": func(d hfcDims) map[string]any {
		return map[string]any{
			"architectures": []string{"GPTNeoXForCausalLM"}, "model_type": "gpt_neox",
			"vocab_size": d.Vocab, "hidden_size": d.DModel, "num_hidden_layers": d.Layers,
			"num_attention_heads": d.Heads, "intermediate_size": d.DMLP, "hidden_act": "gelu",
			"rotary_pct": 0.5, "rotary_emb_base": 5000, "max_position_embeddings": d.Ctx,
			"layer_norm_eps": 1e-5, "use_parallel_residual": true, "tie_word_embeddings": false,
			"attention_bias": true, "bos_token_id": 0, "eos_token_id": 0, "initializer_range": 0.02,
			"torch_dtype": "float32", "use_cache": true,
		}
	},
	"llama": func(d hfcDims) map[string]any {
		c := hfcLlamaLike(d, "llama", "LlamaForCausalLM")
		c["rope_theta"] = 500000.0
		c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
			"high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
		c["head_dim"] = d.HeadDim
		return c
	},
	"mistral": func(d hfcDims) map[string]any {
		c := hfcLlamaLike(d, "mistral", "MistralForCausalLM")
		c["sliding_window"] = nil
		c["head_dim"] = d.HeadDim
		return c
	},
	"qwen2": func(d hfcDims) map[string]any {
		c := hfcLlamaLike(d, "qwen2", "Qwen2ForCausalLM")
		c["rope_theta"] = 1000000.0
		c["tie_word_embeddings"] = true
		c["use_sliding_window"] = false
		c["sliding_window"] = d.Ctx
		c["max_window_layers"] = d.Layers
		return c
	},
	"gemma": func(d hfcDims) map[string]any {
		c := hfcLlamaLike(d, "gemma", "GemmaForCausalLM")
		c["head_dim"] = d.HeadDim
		c["hidden_act"] = "gelu_pytorch_tanh"
		c["hidden_activation"] = "gelu_pytorch_tanh"
		c["tie_word_embeddings"] = true
		c["rms_norm_eps"] = 1e-6
		return c
	},
	"gemma2": func(d hfcDims) map[string]any {
		c := hfcLlamaLike(d, "gemma2", "Gemma2ForCausalLM")
		c["head_dim"] = d.HeadDim
		c["hidden_act"] = "gelu_pytorch_tanh"
		c["hidden_activation"] = "gelu_pytorch_tanh"
		c["tie_word_embeddings"] = true
		c["rms_norm_eps"] = 1e-6
		c["query_pre_attn_scalar"] = 9 // not head_dim: a scale from head_dim shows
		c["sliding_window"] = 3
		c["attn_logit_softcapping"] = 2.0
		c["final_logit_softcapping"] = 3.0
		c["cache_implementation"] = "hybrid"
		return c
	},
}

func hfcLlamaLike(d hfcDims, modelType, arch string) map[string]any {
	return map[string]any{
		"architectures": []string{arch}, "model_type": modelType,
		"vocab_size": d.Vocab, "hidden_size": d.DModel, "num_hidden_layers": d.Layers,
		"num_attention_heads": d.Heads, "num_key_value_heads": d.KVHeads,
		"intermediate_size": d.DMLP, "hidden_act": "silu", "max_position_embeddings": d.Ctx,
		"rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
		"attention_bias": false, "mlp_bias": false, "bos_token_id": 1, "eos_token_id": 2,
		"initializer_range": 0.02, "torch_dtype": "float32", "use_cache": true,
	}
}

// hfcInt reads an integer field of a config built here or read back.
func hfcInt(c map[string]any, key string) int {
	switch v := c[key].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	panic(fmt.Sprintf("config field %q: %T", key, c[key]))
}

// hfcTensors lists the tensors of a checkpoint with config c, as
// transformers' modeling code names and shapes them (nn.Linear weights
// [out, in]).
func hfcTensors(c map[string]any) []hfcTensor {
	M, V, F, L := int64(hfcInt(c, "hidden_size")), int64(hfcInt(c, "vocab_size")), int64(hfcInt(c, "intermediate_size")), hfcInt(c, "num_hidden_layers")
	tied, _ := c["tie_word_embeddings"].(bool)
	var ts []hfcTensor
	add := func(name string, kind byte, shape ...int64) { ts = append(ts, hfcTensor{name, shape, kind}) }
	if c["model_type"] == "gpt_neox" {
		add("gpt_neox.embed_in.weight", 'w', V, M)
		for l := range L {
			p := "gpt_neox.layers." + strconv.Itoa(l) + "."
			for _, n := range []string{"input_layernorm", "post_attention_layernorm"} {
				add(p+n+".weight", 'n', M)
				add(p+n+".bias", 'b', M)
			}
			add(p+"attention.query_key_value.weight", 'w', 3*M, M)
			add(p+"attention.query_key_value.bias", 'b', 3*M)
			add(p+"attention.dense.weight", 'w', M, M)
			add(p+"attention.dense.bias", 'b', M)
			add(p+"mlp.dense_h_to_4h.weight", 'w', F, M)
			add(p+"mlp.dense_h_to_4h.bias", 'b', F)
			add(p+"mlp.dense_4h_to_h.weight", 'w', M, F)
			add(p+"mlp.dense_4h_to_h.bias", 'b', M)
		}
		add("gpt_neox.final_layer_norm.weight", 'n', M)
		add("gpt_neox.final_layer_norm.bias", 'b', M)
		if !tied {
			add("embed_out.weight", 'w', V, M)
		}
		return ts
	}
	H, KV := int64(hfcInt(c, "num_attention_heads")), int64(hfcInt(c, "num_key_value_heads"))
	D := M / H
	if _, ok := c["head_dim"]; ok {
		D = int64(hfcInt(c, "head_dim"))
	}
	qkvBias := c["model_type"] == "qwen2" || c["attention_bias"] == true
	add("model.embed_tokens.weight", 'w', V, M)
	for l := range L {
		p := "model.layers." + strconv.Itoa(l) + "."
		add(p+"input_layernorm.weight", 'n', M)
		add(p+"post_attention_layernorm.weight", 'n', M)
		if c["model_type"] == "gemma2" {
			add(p+"pre_feedforward_layernorm.weight", 'n', M)
			add(p+"post_feedforward_layernorm.weight", 'n', M)
		}
		add(p+"self_attn.q_proj.weight", 'w', H*D, M)
		add(p+"self_attn.k_proj.weight", 'w', KV*D, M)
		add(p+"self_attn.v_proj.weight", 'w', KV*D, M)
		if qkvBias {
			add(p+"self_attn.q_proj.bias", 'b', H*D)
			add(p+"self_attn.k_proj.bias", 'b', KV*D)
			add(p+"self_attn.v_proj.bias", 'b', KV*D)
		}
		add(p+"self_attn.o_proj.weight", 'w', M, H*D)
		if c["attention_bias"] == true {
			add(p+"self_attn.o_proj.bias", 'b', M)
		}
		add(p+"mlp.gate_proj.weight", 'w', F, M)
		add(p+"mlp.up_proj.weight", 'w', F, M)
		add(p+"mlp.down_proj.weight", 'w', M, F)
	}
	add("model.norm.weight", 'n', M)
	if !tied {
		add("lm_head.weight", 'w', V, M)
	}
	return ts
}

// writeHFModel writes a random checkpoint of modelType into a new
// temporary directory.
func writeHFModel(t testing.TB, modelType string, o hfcOpts) *hfcModel {
	t.Helper()
	mk, ok := hfcConfigs[modelType]
	if !ok {
		t.Fatalf("no Hugging Face test checkpoint for model_type %q", modelType)
	}
	d := hfcSmall
	if o.Dims != nil {
		d = *o.Dims
	}
	if o.DType == "" {
		o.DType = weights.F32
	}
	cfg := mk(d)
	cfg["torch_dtype"] = map[weights.DType]string{weights.F32: "float32", weights.BF16: "bfloat16", weights.F16: "float16"}[o.DType]
	if o.Edit != nil {
		o.Edit(cfg)
	}
	ck := &hfcModel{Dir: t.TempDir(), Config: cfg, Shapes: map[string][]int64{}, Values: map[string][]float64{}}
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ck.Dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	gemma := modelType == "gemma" || modelType == "gemma2"
	rng := rand.New(rand.NewPCG(o.Seed, 15))
	var tensors []*weights.Tensor
	for _, spec := range hfcTensors(cfg) {
		n := int64(1)
		for _, s := range spec.Shape {
			n *= s
		}
		vals := make([]float64, n)
		for i := range vals {
			switch spec.Kind {
			case 'w':
				vals[i] = rng.NormFloat64() * 0.3
			case 'b':
				vals[i] = rng.NormFloat64() * 0.2
			case 'n': // Gemma stores w of (1 + w), the others w: never the neutral value once rounded
				neutral := 1.0
				if gemma {
					neutral = 0
				}
				for {
					vals[i] = neutral + rng.NormFloat64()*0.2
					if _, st := hfcEncode(vals[i:i+1], o.DType); st[0] != neutral {
						break
					}
				}
			}
		}
		data, stored := hfcEncode(vals, o.DType)
		ck.Shapes[spec.Name], ck.Values[spec.Name] = spec.Shape, stored
		tensors = append(tensors, &weights.Tensor{Name: spec.Name, DType: o.DType, Shape: spec.Shape, Data: data})
	}
	meta := map[string]string{"format": "pt"}
	if o.Shards <= 1 {
		if err := weights.WriteSafetensors(filepath.Join(ck.Dir, "model.safetensors"), tensors, meta); err != nil {
			t.Fatal(err)
		}
		return ck
	}
	index := map[string]any{}
	weightMap := map[string]string{}
	total := 0
	for s := range o.Shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, o.Shards)
		var shard []*weights.Tensor
		for i := s; i < len(tensors); i += o.Shards {
			shard = append(shard, tensors[i])
			weightMap[tensors[i].Name] = name
			total += len(tensors[i].Data)
		}
		if err := weights.WriteSafetensors(filepath.Join(ck.Dir, name), shard, meta); err != nil {
			t.Fatal(err)
		}
	}
	index["metadata"] = map[string]any{"total_size": total}
	index["weight_map"] = weightMap
	if js, err = json.MarshalIndent(index, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ck.Dir, "model.safetensors.index.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	return ck
}

// hfcEncode encodes vals little-endian in dtype (F32, BF16 or F16,
// rounding to nearest even) and returns the values the bytes hold.
func hfcEncode(vals []float64, dtype weights.DType) ([]byte, []float64) {
	stored := make([]float64, len(vals))
	out := make([]byte, len(vals)*dtype.Size())
	for i, v := range vals {
		switch dtype {
		case weights.F32:
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(float32(v)))
		case weights.BF16:
			b := math.Float32bits(float32(v))
			b += 0x7fff + (b>>16)&1 // round to nearest even (finite values)
			binary.LittleEndian.PutUint16(out[2*i:], uint16(b>>16))
		case weights.F16:
			binary.LittleEndian.PutUint16(out[2*i:], hfcFloat16Bits(v))
		default:
			panic("hfcEncode: dtype " + string(dtype))
		}
		stored[i] = hfcDecode(out[i*dtype.Size():], dtype)
	}
	return out, stored
}

// hfcFloat16Bits is v as IEEE half precision, rounded to nearest even; |v|
// must be below 65504.
func hfcFloat16Bits(v float64) uint16 {
	var sign uint16
	if math.Signbit(v) {
		sign, v = 0x8000, -v
	}
	if v < 0x1p-14 { // subnormal (a round-up to 0x400 is the smallest normal, correctly)
		return sign | uint16(math.RoundToEven(v/0x1p-24))
	}
	fr, e := math.Frexp(v) // v = fr · 2^e, fr in [0.5, 1)
	m := math.RoundToEven(math.Ldexp(fr, 11))
	if m == 2048 {
		m, e = 1024, e+1
	}
	return sign | uint16(e-1+15)<<10 | uint16(m-1024)
}

func hfcDecode(b []byte, dtype weights.DType) float64 {
	switch dtype {
	case weights.F32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case weights.BF16:
		return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16))
	case weights.F16:
		h := binary.LittleEndian.Uint16(b)
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		exp, man := int(h>>10&0x1f), float64(h&0x3ff)
		if exp == 0 {
			return sign * man * 0x1p-24
		}
		return sign * math.Ldexp(1+man/1024, exp-15)
	}
	panic("hfcDecode: dtype " + string(dtype))
}

// TestHFCheckpointsWellFormed: each test checkpoint opens with
// weights.Open, holds exactly the tensors transformers' modeling code
// names, in its shapes (written out by hand here for one layer, apart from
// hfcTensors), with the values recorded, and config.json reads back.
func TestHFCheckpointsWellFormed(t *testing.T) {
	// hfcSmall: d_model 16, 4 heads, 2 kv heads, head_dim 6, d_mlp 24,
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
		opts      hfcOpts
		perLayer  int // tensors per layer
		want      map[string][]int64
		absent    []string
	}{
		{"gpt_neox", hfcOpts{Seed: 1}, 12, map[string][]int64{
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
		{"llama", hfcOpts{Seed: 2}, 9, common(map[string][]int64{"lm_head.weight": {20, 16}}), nil},
		{"llama", hfcOpts{Seed: 3, DType: weights.BF16, Shards: 3, Edit: func(c map[string]any) { c["tie_word_embeddings"] = true }},
			9, common(nil), []string{"lm_head.weight"}},
		{"mistral", hfcOpts{Seed: 4, DType: weights.F16}, 9, common(map[string][]int64{"lm_head.weight": {20, 16}}), nil},
		// Qwen2's config has no head_dim: 16 / 4 heads = 4.
		{"qwen2", hfcOpts{Seed: 5}, 12, common(map[string][]int64{
			"model.layers.1.self_attn.q_proj.weight": {16, 16},
			"model.layers.1.self_attn.k_proj.weight": {8, 16},
			"model.layers.1.self_attn.v_proj.weight": {8, 16},
			"model.layers.1.self_attn.o_proj.weight": {16, 16},
			"model.layers.1.self_attn.q_proj.bias":   {16},
			"model.layers.1.self_attn.k_proj.bias":   {8},
			"model.layers.1.self_attn.v_proj.bias":   {8},
		}), []string{"lm_head.weight", "model.layers.1.self_attn.o_proj.bias"}},
		{"gemma", hfcOpts{Seed: 6}, 9, common(nil), []string{"lm_head.weight"}},
		{"gemma2", hfcOpts{Seed: 7, DType: weights.BF16}, 11, common(map[string][]int64{
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
			ck := writeHFModel(t, tc.modelType, tc.opts)
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
					if v := hfcDecode(got.Data[i*got.DType.Size():], got.DType); v != vals[i] {
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
		if got := hfcFloat16Bits(tc.v); got != tc.want {
			t.Errorf("hfcFloat16Bits(%v) = %#04x, want %#04x", tc.v, got, tc.want)
		}
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], tc.want)
		if got := hfcDecode(b[:], weights.F16); tc.exact && got != tc.v {
			t.Errorf("decode(%#04x) = %v, want %v", tc.want, got, tc.v)
		}
	}
}
