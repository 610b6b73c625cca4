package hftest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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

// Dims are a small model's sizes.
type Dims struct {
	Layers, DModel, Heads, KVHeads, HeadDim, DMLP, Vocab, Ctx int
}

// Small are the sizes the helpers use unless told otherwise: head_dim 6
// is not d_model / heads (Gemma), 2 key/value heads for 4 query heads.
var Small = Dims{Layers: 2, DModel: 16, Heads: 4, KVHeads: 2, HeadDim: 6, DMLP: 24, Vocab: 20, Ctx: 32}

// Opts choose a checkpoint's dtype, sharding, seed and config edits.
type Opts struct {
	Dims   *Dims                // default Small (gpt_neox: HeadDim and KVHeads follow from DModel and Heads)
	DType  weights.DType        // F32 (default), BF16 or F16
	Shards int                  // > 1: that many shards and model.safetensors.index.json
	Seed   uint64               // random values
	Edit   func(map[string]any) // changes config.json's fields before the tensors are chosen from it
}

// Model is a written checkpoint: its directory, config and
// tensors, Values holding each tensor's elements as stored (rounded to the
// dtype), as float64, row-major.
type Model struct {
	Dir    string
	Config map[string]any
	Shapes map[string][]int64
	Values map[string][]float64
}

// Tensor is one tensor of a checkpoint and how to fill it.
type Tensor struct {
	Name  string
	Shape []int64
	Kind  byte // 'w' weight, 'b' bias, 'n' norm weight
}

// Configs are config.json's of each model_type, as the hub's checkpoints
// spell them (Pythia, Llama 3.1/3.2, Mistral 7B v0.1, Qwen2.5, Gemma,
// Gemma 2 2B), at dims d.
var Configs = map[string]func(d Dims) map[string]any{
	"gpt_neox": func(d Dims) map[string]any {
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
	"llama": func(d Dims) map[string]any {
		c := llamaLike(d, "llama", "LlamaForCausalLM")
		c["rope_theta"] = 500000.0
		c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
			"high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
		c["head_dim"] = d.HeadDim
		return c
	},
	"mistral": func(d Dims) map[string]any {
		c := llamaLike(d, "mistral", "MistralForCausalLM")
		c["sliding_window"] = nil
		c["head_dim"] = d.HeadDim
		return c
	},
	"qwen2": func(d Dims) map[string]any {
		c := llamaLike(d, "qwen2", "Qwen2ForCausalLM")
		c["rope_theta"] = 1000000.0
		c["tie_word_embeddings"] = true
		c["use_sliding_window"] = false
		c["sliding_window"] = d.Ctx
		c["max_window_layers"] = d.Layers
		return c
	},
	"gemma": func(d Dims) map[string]any {
		c := llamaLike(d, "gemma", "GemmaForCausalLM")
		c["head_dim"] = d.HeadDim
		c["hidden_act"] = "gelu_pytorch_tanh"
		c["hidden_activation"] = "gelu_pytorch_tanh"
		c["tie_word_embeddings"] = true
		c["rms_norm_eps"] = 1e-6
		return c
	},
	"gemma2": func(d Dims) map[string]any {
		c := llamaLike(d, "gemma2", "Gemma2ForCausalLM")
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

func llamaLike(d Dims, modelType, arch string) map[string]any {
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

// Int reads an integer field of a config built here or read back.
func Int(c map[string]any, key string) int {
	switch v := c[key].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	panic(fmt.Sprintf("config field %q: %T", key, c[key]))
}

// Tensors lists the tensors of a checkpoint with config c, as
// transformers' modeling code names and shapes them (nn.Linear weights
// [out, in]).
func Tensors(c map[string]any) []Tensor {
	M, V, F, L := int64(Int(c, "hidden_size")), int64(Int(c, "vocab_size")), int64(Int(c, "intermediate_size")), Int(c, "num_hidden_layers")
	tied, _ := c["tie_word_embeddings"].(bool)
	var ts []Tensor
	add := func(name string, kind byte, shape ...int64) { ts = append(ts, Tensor{name, shape, kind}) }
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
	H, KV := int64(Int(c, "num_attention_heads")), int64(Int(c, "num_key_value_heads"))
	D := M / H
	if _, ok := c["head_dim"]; ok {
		D = int64(Int(c, "head_dim"))
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

// Write writes a random checkpoint of modelType into a new
// temporary directory.
func Write(t testing.TB, modelType string, o Opts) *Model {
	t.Helper()
	mk, ok := Configs[modelType]
	if !ok {
		t.Fatalf("no Hugging Face test checkpoint for model_type %q", modelType)
	}
	d := Small
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
	ck := &Model{Dir: t.TempDir(), Config: cfg, Shapes: map[string][]int64{}, Values: map[string][]float64{}}
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
	for _, spec := range Tensors(cfg) {
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
					if _, st := Encode(vals[i:i+1], o.DType); st[0] != neutral {
						break
					}
				}
			}
		}
		data, stored := Encode(vals, o.DType)
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

// Encode encodes vals little-endian in dtype (F32, BF16 or F16,
// rounding to nearest even) and returns the values the bytes hold.
func Encode(vals []float64, dtype weights.DType) ([]byte, []float64) {
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
			binary.LittleEndian.PutUint16(out[2*i:], float16Bits(v))
		default:
			panic("Encode: dtype " + string(dtype))
		}
		stored[i] = Decode(out[i*dtype.Size():], dtype)
	}
	return out, stored
}

// float16Bits is v as IEEE half precision, rounded to nearest even; |v|
// must be below 65504.
func float16Bits(v float64) uint16 {
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

func Decode(b []byte, dtype weights.DType) float64 {
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
	panic("Decode: dtype " + string(dtype))
}
