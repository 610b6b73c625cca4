package hookedmodel

import (
	"encoding/json"
	"fmt"
	"io/fs"
	pathpkg "path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/weights"
)

// Hugging Face checkpoints of architectures other than GPT-2 (issue #15).
// Each supported model_type has a config mapper (config.json to Config) and
// a weight table (transformers' tensor names to golens's weights); GPT-2
// keeps gpt2Config and gpt2Table in load.go.
//
// The config mappers follow TransformerLens's convert_hf_model_config but
// take Hugging Face's numbers where the two differ, since golens computes
// what the Hugging Face model computes:
//   - rotary_base is config.json's rope_theta (TransformerLens keeps 10000
//     for Llama-style configs, whatever rope_theta says; Llama 3 uses
//     500000, Qwen2 1000000).
//   - n_ctx is max_position_embeddings (TransformerLens caps several
//     models, e.g. Llama 3.1 and Mistral, at a smaller n_ctx to save
//     memory), except that Mistral's sliding_window, when smaller, bounds
//     n_ctx: within the window sliding-window attention equals full causal
//     attention, so golens computes Mistral's numbers exactly by refusing
//     longer inputs rather than ignoring the window as TransformerLens does.
//   - eps is rms_norm_eps with Hugging Face's default (1e-6) where
//     config.json omits it.
//
// Fields that change the maths and that golens does not implement are
// errors naming the field: rope_scaling (any type but "default"; Llama
// 3.1's "llama3" is not implemented by golens's rotary yet), mlp_bias,
// Qwen2's use_sliding_window.

// hfArch is one supported model_type.
type hfArch struct {
	arch   string                                  // original_architecture (the ...ForCausalLM class)
	config func(hf hfLlamaConfig, c *Config) error // fills the architecture's fields
	table  func(m *HookedTransformer, ck *weights.Checkpoint) hfTable
}

// hfArchOf is the architecture of a model loaded from a Hugging Face
// checkpoint, by the original_architecture its config mapper set; false for
// GPT-2.
func hfArchOf(c Config) (hfArch, bool) {
	for _, a := range hfArchs {
		if a.arch == c.OriginalArchitecture {
			return a, true
		}
	}
	return hfArch{}, false
}

var hfArchs = map[string]hfArch{
	"llama":    {"LlamaForCausalLM", llamaConfig, llamaTable},
	"mistral":  {"MistralForCausalLM", llamaConfig, llamaTable},
	"qwen2":    {"Qwen2ForCausalLM", llamaConfig, llamaTable},
	"gpt_neox": {"GPTNeoXForCausalLM", neoxConfig, neoxTable},
}

// hfModelTypes lists the model_types golens loads.
func hfModelTypes() []string {
	ts := []string{"gpt2"}
	for k := range hfArchs {
		ts = append(ts, k)
	}
	sort.Strings(ts)
	return ts
}

// hfLlamaConfig is the part of a Llama, Mistral, Qwen2 or GPT-NeoX
// config.json golens reads (configuration_llama.py, configuration_mistral.py,
// configuration_qwen2.py, configuration_gpt_neox.py).
type hfLlamaConfig struct {
	ModelType        string          `json:"model_type"`
	Architectures    []string        `json:"architectures"`
	VocabSize        int             `json:"vocab_size"`
	HiddenSize       int             `json:"hidden_size"`
	Layers           int             `json:"num_hidden_layers"`
	Heads            int             `json:"num_attention_heads"`
	KVHeads          *int            `json:"num_key_value_heads"` // absent: num_attention_heads
	HeadDim          *int            `json:"head_dim"`            // absent or null: hidden_size / num_attention_heads
	Intermediate     int             `json:"intermediate_size"`
	HiddenAct        string          `json:"hidden_act"`
	MaxPositions     int             `json:"max_position_embeddings"`
	RMSNormEps       *float64        `json:"rms_norm_eps"` // absent: 1e-6
	RopeTheta        *float64        `json:"rope_theta"`   // absent: 10000
	RopeScaling      json.RawMessage `json:"rope_scaling"`
	TieEmbeddings    *bool           `json:"tie_word_embeddings"` // absent: false
	AttentionBias    bool            `json:"attention_bias"`      // Llama: biases on q, k, v and o
	MLPBias          bool            `json:"mlp_bias"`
	SlidingWindow    *int            `json:"sliding_window"`
	UseSlidingWindow bool            `json:"use_sliding_window"` // Qwen2

	// GPT-NeoX (configuration_gpt_neox.py).
	RotaryPct        *float64 `json:"rotary_pct"`            // absent: 0.25
	PartialRotary    *float64 `json:"partial_rotary_factor"` // rotary_pct's newer name
	RotaryEmbBase    *float64 `json:"rotary_emb_base"`       // absent: 10000 (newer configs say rope_theta)
	LayerNormEps     *float64 `json:"layer_norm_eps"`        // absent: 1e-5
	ParallelResidual *bool    `json:"use_parallel_residual"` // absent: true
}

// hfModelConfig reads dir/config.json from fsys (nil: the operating
// system's files) and converts it by its model_type.
func hfModelConfig(fsys fs.FS, dir, name string) (Config, error) {
	var path string
	var b []byte
	var err error
	if fsys == nil {
		path = filepath.Join(dir, "config.json")
		b, err = safefile.Read(path, safefile.JSONLimit)
	} else {
		path = pathpkg.Join(dir, "config.json")
		b, err = fs.ReadFile(fsys, path)
	}
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	var mt struct {
		ModelType string `json:"model_type"`
	}
	if err := json.Unmarshal(b, &mt); err != nil {
		return Config{}, fmt.Errorf("parse %s: %w", path, err)
	}
	if mt.ModelType == "gpt2" {
		return gpt2Config(path, b, name)
	}
	a, ok := hfArchs[mt.ModelType]
	if !ok {
		return Config{}, fmt.Errorf("%s: model_type %q is not supported (golens loads %s)", path, mt.ModelType, strings.Join(hfModelTypes(), ", "))
	}
	var hf hfLlamaConfig
	if err := json.Unmarshal(b, &hf); err != nil {
		return Config{}, fmt.Errorf("parse %s: %w", path, err)
	}
	c := DefaultConfig()
	c.ModelName = name
	c.OriginalArchitecture = a.arch // what TransformerLens reads from architectures[0] for these models
	err = hf.checkSizes()
	if err == nil {
		err = a.config(hf, &c)
	}
	if err != nil {
		return Config{}, fmt.Errorf("%s: model_type %s: %w", path, mt.ModelType, err)
	}
	if err := c.Init(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// checkSizes checks the sizes every model_type of hfLlamaConfig has.
func (hf hfLlamaConfig) checkSizes() error {
	for _, f := range []struct {
		key string
		v   int
	}{{"hidden_size", hf.HiddenSize}, {"num_hidden_layers", hf.Layers}, {"num_attention_heads", hf.Heads},
		{"intermediate_size", hf.Intermediate}, {"max_position_embeddings", hf.MaxPositions}, {"vocab_size", hf.VocabSize}} {
		if f.v <= 0 {
			return fmt.Errorf("%s must be positive, got %d", f.key, f.v)
		}
	}
	return nil
}

// llamaConfig maps a Llama, Mistral or Qwen2 config as TransformerLens's
// convert_hf_model_config does, with Hugging Face's numbers (see above).
func llamaConfig(hf hfLlamaConfig, c *Config) error {
	if err := checkRopeScaling(hf.RopeScaling); err != nil {
		return err
	}
	if hf.PartialRotary != nil && *hf.PartialRotary != 1 {
		return fmt.Errorf("partial_rotary_factor %g is not supported for model_type %q (its rotary covers all of head_dim)", *hf.PartialRotary, hf.ModelType)
	}
	if hf.MLPBias {
		return fmt.Errorf("mlp_bias is not supported (golens's gated MLP has no biases on gate_proj and up_proj)")
	}
	if hf.UseSlidingWindow {
		return fmt.Errorf("use_sliding_window is not supported yet by golens (Qwen2's sliding-window layers)")
	}
	if hf.AttentionBias && hf.ModelType != "llama" {
		// Mistral and Qwen2 fix their biases in the modeling code
		// (Qwen2: q, k and v always); Llama reads attention_bias.
		return fmt.Errorf("attention_bias is not supported for model_type %q", hf.ModelType)
	}
	kv := hf.Heads
	if hf.KVHeads != nil {
		kv = *hf.KVHeads
	}
	dHead := 0
	if hf.HeadDim != nil {
		dHead = *hf.HeadDim
	} else if hf.HiddenSize%hf.Heads == 0 {
		dHead = hf.HiddenSize / hf.Heads
	} else {
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d (and head_dim is absent)", hf.HiddenSize, hf.Heads)
	}
	eps := 1e-6
	if hf.RMSNormEps != nil {
		eps = *hf.RMSNormEps
	}
	theta := 10000.0
	if hf.RopeTheta != nil {
		theta = *hf.RopeTheta
	}
	nCtx := hf.MaxPositions
	if hf.ModelType == "mistral" && hf.SlidingWindow != nil && *hf.SlidingWindow > 0 && *hf.SlidingWindow < nCtx {
		nCtx = *hf.SlidingWindow // see the package comment above
	}
	c.NLayers, c.DModel, c.NHeads, c.DHead, c.NKeyValueHeads = hf.Layers, hf.HiddenSize, hf.Heads, dHead, kv
	c.DMLP, c.DVocab, c.DVocabOut, c.NCtx, c.Eps = hf.Intermediate, hf.VocabSize, hf.VocabSize, nCtx, eps
	c.ActFn, c.GatedMLP = hf.HiddenAct, true
	c.NormalizationType, c.FinalRMS = "RMS", true
	c.PositionalEmbeddingType, c.RotaryDim, c.RotaryBase = "rotary", dHead, theta
	return nil
}

// neoxConfig maps a GPT-NeoX (Pythia) config as TransformerLens's
// convert_hf_model_config does, with Hugging Face's numbers: rotary_base is
// rotary_emb_base (or rope_theta, as newer configs spell it), where
// TransformerLens keeps 10000; rotary_dim is int(d_head · rotary_pct), as
// GPTNeoXAttention's rotary_ndims.
func neoxConfig(hf hfLlamaConfig, c *Config) error {
	if err := checkRopeScaling(hf.RopeScaling); err != nil {
		return err
	}
	if hf.HiddenSize%hf.Heads != 0 {
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", hf.HiddenSize, hf.Heads)
	}
	dHead := hf.HiddenSize / hf.Heads
	pct := 0.25
	if hf.RotaryPct != nil {
		pct = *hf.RotaryPct
	} else if hf.PartialRotary != nil {
		pct = *hf.PartialRotary
	}
	if !(pct > 0 && pct <= 1) {
		return fmt.Errorf("rotary_pct must be in (0, 1], got %g", pct)
	}
	if int(float64(dHead)*pct) == 0 { // Hugging Face rotates nothing; rotary_dim 0 would mean all of d_head
		return fmt.Errorf("rotary_pct %g rotates no dimension of d_head %d; golens needs rotary_dim >= 2", pct, dHead)
	}
	base := 10000.0
	if hf.RotaryEmbBase != nil {
		base = *hf.RotaryEmbBase
	} else if hf.RopeTheta != nil {
		base = *hf.RopeTheta
	}
	eps := 1e-5
	if hf.LayerNormEps != nil {
		eps = *hf.LayerNormEps
	}
	c.NLayers, c.DModel, c.NHeads, c.DHead = hf.Layers, hf.HiddenSize, hf.Heads, dHead
	c.DMLP, c.DVocab, c.DVocabOut, c.NCtx, c.Eps = hf.Intermediate, hf.VocabSize, hf.VocabSize, hf.MaxPositions, eps
	c.ActFn, c.NormalizationType = hf.HiddenAct, "LN"
	c.PositionalEmbeddingType, c.RotaryDim, c.RotaryBase = "rotary", int(float64(dHead)*pct), base
	c.ParallelAttnMLP = hf.ParallelResidual == nil || *hf.ParallelResidual
	return nil
}

// checkRopeScaling refuses a rope_scaling other than none or "default".
func checkRopeScaling(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var rs struct {
		RopeType string `json:"rope_type"`
		Type     string `json:"type"` // the older spelling
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
	}
	typ := rs.RopeType
	if typ == "" {
		typ = rs.Type
	}
	if typ != "default" {
		return fmt.Errorf("rope_scaling of type %q is not supported yet by golens (it computes unscaled rotary frequencies)", typ)
	}
	return nil
}

// neoxTable maps transformers' GPTNeoXForCausalLM onto the model's
// weights. query_key_value's rows are, per head, that head's q, k and v
// rows ([head 3 d_head] along the rows: GPTNeoXAttention views its output
// as [..., heads, 3·head_size]); W_QKV wants all q rows, then k, then v,
// so the rows are regrouped to [3 head d_head]. Biases are read when the
// checkpoint has them (attention_bias, default true), else zeros.
func neoxTable(m *HookedTransformer, ck *weights.Checkpoint) hfTable {
	c := m.Cfg
	dm, f, v := int64(c.DModel), int64(c.DMLP), int64(c.DVocab)
	H, D := int64(c.NHeads), int64(c.DHead)
	keys := ck.Keys()
	bias := slices.Contains(keys, "gpt_neox.layers.0.attention.query_key_value.bias")
	opt := func(key string) string {
		if bias {
			return key
		}
		return ""
	}
	regroup := func(ts []*gotch.Tensor) *gotch.Tensor { // [H·3·D, ...] -> [3·H·D, ...]
		t := ts[0]
		rest := t.Shape()[1:]
		return t.MustView(append([]int64{H, 3, D}, rest...)).MustTranspose(0, 1).MustContiguous().MustView(append([]int64{3 * H * D}, rest...))
	}
	t := hfTable{sources: []source{{&m.WE, "gpt_neox.embed_in.weight", []int64{v, dm}, false}}}
	t.cats = make([]hfCat, 0, 2*len(m.Blocks))
	ln := func(l *LayerNorm, key string) {
		t.sources = append(t.sources, source{&l.W, key + ".weight", []int64{dm}, false}, source{&l.B, key + ".bias", []int64{dm}, false})
	}
	for l, b := range m.Blocks {
		p := fmt.Sprintf("gpt_neox.layers.%d.", l)
		ln(b.Ln1, p+"input_layernorm")
		ln(b.Ln2, p+"post_attention_layernorm")
		t.cats = append(t.cats, hfCat{dst: &b.Attn.WQKV, parts: make([]*gotch.Tensor, 0, 1), join: regroup})
		t.part(&t.cats[len(t.cats)-1], p+"attention.query_key_value.weight", []int64{3 * H * D, dm})
		t.cats = append(t.cats, hfCat{dst: &b.Attn.BQKV, parts: make([]*gotch.Tensor, 0, 1), join: regroup})
		t.part(&t.cats[len(t.cats)-1], opt(p+"attention.query_key_value.bias"), []int64{3 * H * D})
		t.sources = append(t.sources,
			source{&b.Attn.WO, p + "attention.dense.weight", []int64{dm, H * D}, false},
			source{&b.Attn.BO, opt(p + "attention.dense.bias"), []int64{dm}, false},
			source{&b.MLP.WIn, p + "mlp.dense_h_to_4h.weight", []int64{f, dm}, false},
			source{&b.MLP.BIn, p + "mlp.dense_h_to_4h.bias", []int64{f}, false},
			source{&b.MLP.WOut, p + "mlp.dense_4h_to_h.weight", []int64{dm, f}, false},
			source{&b.MLP.BOut, p + "mlp.dense_4h_to_h.bias", []int64{dm}, false})
	}
	ln(m.LnFinal, "gpt_neox.final_layer_norm")
	unembed := "embed_out.weight"
	if !slices.Contains(keys, unembed) {
		unembed = "gpt_neox.embed_in.weight" // tie_word_embeddings
	}
	return append2(t, source{&m.WU, unembed, []int64{v, dm}, false}, source{&m.BU, "", []int64{v}, false})
}

// hfTable is a weight table with the parts fill cannot place directly:
// q, k and v (and their biases) read into temporaries and concatenated
// into W_QKV and b_QKV.
type hfTable struct {
	sources []source
	cats    []hfCat
}

// hfCat joins parts into dst: join, or concatenation along dim 0 when
// join is nil.
type hfCat struct {
	dst   **gotch.Tensor
	parts []*gotch.Tensor
	join  func([]*gotch.Tensor) *gotch.Tensor
	last  int // the index in sources of the last part: join once it is read
}

// part is a temporary that fill writes.
func (t *hfTable) part(c *hfCat, key string, shape []int64) {
	c.parts = append(c.parts, nil)
	t.sources = append(t.sources, source{&c.parts[len(c.parts)-1], key, shape, false})
	c.last = len(t.sources) - 1
}

// llamaTable maps transformers' LlamaForCausalLM (and Mistral's and
// Qwen2's, which name their weights the same) onto the model's weights.
// nn.Linear stores [out in], as golens does: nothing is transposed. The
// q, k and v projections' rows are head-major (head h's rows h·d_head to
// (h+1)·d_head), as W_QKV's are.
//
// Biases: Qwen2's q, k and v always have them (Qwen2Attention); Llama's
// q, k, v and o have them when attention_bias is set, which its checkpoint
// shows by holding them; Mistral has none. The unembedding is lm_head, or
// embed_tokens when the checkpoint has no lm_head (tie_word_embeddings:
// save_pretrained writes the tied weight once).
func llamaTable(m *HookedTransformer, ck *weights.Checkpoint) hfTable {
	c := m.Cfg
	dm, f, v := int64(c.DModel), int64(c.DMLP), int64(c.DVocab)
	hd, kvd := int64(c.NHeads*c.DHead), int64(c.kvHeads()*c.DHead)
	keys := ck.Keys()
	llamaBias := c.OriginalArchitecture == "LlamaForCausalLM" && slices.Contains(keys, "model.layers.0.self_attn.o_proj.bias")
	qkvBias := c.OriginalArchitecture == "Qwen2ForCausalLM" || llamaBias
	oBias := llamaBias
	t := hfTable{sources: []source{{&m.WE, "model.embed_tokens.weight", []int64{v, dm}, false}}}
	t.cats = make([]hfCat, 0, 2*len(m.Blocks)) // parts' addresses must not move
	opt := func(key string, on bool) string {
		if on {
			return key
		}
		return "" // zeros
	}
	for l, b := range m.Blocks {
		p := fmt.Sprintf("model.layers.%d.", l)
		t.sources = append(t.sources,
			source{&b.Ln1.W, p + "input_layernorm.weight", []int64{dm}, false},
			source{&b.Ln2.W, p + "post_attention_layernorm.weight", []int64{dm}, false})
		t.cats = append(t.cats, hfCat{dst: &b.Attn.WQKV, parts: make([]*gotch.Tensor, 0, 3)})
		w := &t.cats[len(t.cats)-1]
		t.part(w, p+"self_attn.q_proj.weight", []int64{hd, dm})
		t.part(w, p+"self_attn.k_proj.weight", []int64{kvd, dm})
		t.part(w, p+"self_attn.v_proj.weight", []int64{kvd, dm})
		t.cats = append(t.cats, hfCat{dst: &b.Attn.BQKV, parts: make([]*gotch.Tensor, 0, 3)})
		bc := &t.cats[len(t.cats)-1]
		t.part(bc, opt(p+"self_attn.q_proj.bias", qkvBias), []int64{hd})
		t.part(bc, opt(p+"self_attn.k_proj.bias", qkvBias), []int64{kvd})
		t.part(bc, opt(p+"self_attn.v_proj.bias", qkvBias), []int64{kvd})
		t.sources = append(t.sources,
			source{&b.Attn.WO, p + "self_attn.o_proj.weight", []int64{dm, hd}, false},
			source{&b.Attn.BO, opt(p+"self_attn.o_proj.bias", oBias), []int64{dm}, false},
			source{&b.MLP.WGate, p + "mlp.gate_proj.weight", []int64{f, dm}, false},
			source{&b.MLP.WIn, p + "mlp.up_proj.weight", []int64{f, dm}, false},
			source{&b.MLP.BIn, "", []int64{f}, false},
			source{&b.MLP.WOut, p + "mlp.down_proj.weight", []int64{dm, f}, false},
			source{&b.MLP.BOut, "", []int64{dm}, false})
	}
	t.sources = append(t.sources, source{&m.LnFinal.W, "model.norm.weight", []int64{dm}, false})
	unembed := "lm_head.weight"
	if !slices.Contains(keys, unembed) {
		unembed = "model.embed_tokens.weight"
	}
	return append2(t, source{&m.WU, unembed, []int64{v, dm}, false}, source{&m.BU, "", []int64{v}, false})
}

func append2(t hfTable, s ...source) hfTable {
	t.sources = append(t.sources, s...)
	return t
}

// joinParts joins c's parts into c.dst and frees them.
func (c *hfCat) joinParts() error {
	var out *gotch.Tensor
	err := gotch.Try(func() {
		s := gotch.NewScope()
		defer s.Close()
		parts := slices.Clone(c.parts)
		for i, p := range parts {
			s.Attach(p) // the scope frees the parts and what join makes of them
			c.parts[i] = nil
		}
		if c.join == nil {
			out = s.Keep(gotch.MustCat(parts, 0))
			return
		}
		out = s.Keep(c.join(parts))
	})
	if err != nil {
		return err
	}
	*c.dst = out
	return nil
}

// fillHF fills the model from a checkpoint of a model_type in hfArchs.
func (m *HookedTransformer) fillHF(ck *weights.Checkpoint, a hfArch, o options) error {
	t := a.table(m, ck)
	defer func() {
		for _, c := range t.cats {
			for _, p := range c.parts {
				if p != nil {
					p.Free()
				}
			}
		}
	}()
	// fill's checks, then its reads, joining each layer's parts as soon
	// as they are read, so that at most one layer's q, k and v are held
	// twice while loading.
	if err := m.checkTable(ck, t.sources); err != nil {
		return err
	}
	joinAt := map[int]*hfCat{}
	for i := range t.cats {
		joinAt[t.cats[i].last] = &t.cats[i]
	}
	for i, src := range t.sources {
		w, err := m.readWeight(ck, src, o.allowNonFinite)
		if err != nil {
			return err
		}
		*src.dst = w
		if c := joinAt[i]; c != nil {
			if err := c.joinParts(); err != nil {
				return err
			}
		}
	}
	return nil
}
