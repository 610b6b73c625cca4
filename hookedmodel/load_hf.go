package hookedmodel

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
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
//     memory), and Mistral's sliding_window is sliding-window attention on
//     every layer, which TransformerLens ignores (its Mistral attends to
//     all earlier tokens, as Hugging Face's does only within the window).
//   - eps is rms_norm_eps with Hugging Face's default (1e-6) where
//     config.json omits it.
//   - Gemma: the activation is hidden_activation (TransformerLens's Gemma 1
//     configs say exact gelu); Gemma 2's sliding-window layers are the
//     even ones (TransformerLens's are the odd ones); see gemmaConfig.
//   - Qwen2's use_sliding_window gives the layers from max_window_layers on
//     (or those layer_types marks) a sliding window; TransformerLens
//     ignores it. (The hub's Qwen2 and Qwen2.5 configs leave it false.)
//
// Fields that change the maths and that golens does not implement are
// errors naming the field: rope_scaling of a type other than "default" and
// Llama 3.1's "llama3", mlp_bias, Gemma's attention_bias and
// use_bidirectional_attention. rope_parameters
// (transformers 5) is read as rope_theta and rope_scaling.

// hfArch is one supported model_type.
type hfArch struct {
	arch   string                                  // original_architecture (the ...ForCausalLM class)
	config func(hf hfLlamaConfig, c *Config) error // fills the architecture's fields
	table  func(m *HookedTransformer, ck *weights.Checkpoint) hfTable
	// scaleEmbed: the model multiplies its embeddings by sqrt(d_model)
	// (Gemma), which the loader folds into W_E (see scaleEmbed).
	scaleEmbed bool
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
	"llama":    {"LlamaForCausalLM", llamaConfig, llamaTable, false},
	"mistral":  {"MistralForCausalLM", llamaConfig, llamaTable, false},
	"qwen2":    {"Qwen2ForCausalLM", llamaConfig, llamaTable, false},
	"gpt_neox": {"GPTNeoXForCausalLM", neoxConfig, neoxTable, false},
	"gemma":    {"GemmaForCausalLM", gemmaConfig, llamaTable, true},
	"gemma2":   {"Gemma2ForCausalLM", gemmaConfig, llamaTable, true},
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

// hfLlamaConfig is the part of a Llama, Mistral, Qwen2, Gemma, Gemma 2 or
// GPT-NeoX config.json golens reads (configuration_llama.py,
// configuration_mistral.py, configuration_qwen2.py, configuration_gemma.py,
// configuration_gemma2.py, configuration_gpt_neox.py).
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
	MaxWindowLayers  *int            `json:"max_window_layers"`  // Qwen2: absent: 28

	// GPT-NeoX (configuration_gpt_neox.py).
	RotaryPct        *float64 `json:"rotary_pct"`            // absent: 0.25
	PartialRotary    *float64 `json:"partial_rotary_factor"` // rotary_pct's newer name
	RotaryEmbBase    *float64 `json:"rotary_emb_base"`       // absent: 10000 (newer configs say rope_theta)
	LayerNormEps     *float64 `json:"layer_norm_eps"`        // absent: 1e-5
	ParallelResidual *bool    `json:"use_parallel_residual"` // absent: true

	// Gemma and Gemma 2 (configuration_gemma.py, configuration_gemma2.py).
	HiddenActivation   *string  `json:"hidden_activation"`
	QueryPreAttnScalar *float64 `json:"query_pre_attn_scalar"`
	AttnSoftCap        *float64 `json:"attn_logit_softcapping"`
	FinalSoftCap       *float64 `json:"final_logit_softcapping"`
	LayerTypes         []string `json:"layer_types"`
	Bidirectional      bool     `json:"use_bidirectional_attention"`

	// fields is every key of config.json, to tell an absent field (the
	// configuration class's default) from a null one.
	fields map[string]json.RawMessage
}

// ropeParameters reads rope_parameters, the newer transformers releases'
// spelling of rope_theta and rope_scaling in one object ({"rope_type":
// "default", "rope_theta": 10000.0, ...}), as those two fields, which it
// must not contradict.
func (hf *hfLlamaConfig) ropeParameters() error {
	raw, ok := hf.fields["rope_parameters"]
	if !ok || string(raw) == "null" {
		return nil
	}
	var rp struct {
		RopeTheta *float64 `json:"rope_theta"`
	}
	if err := json.Unmarshal(raw, &rp); err != nil {
		return fmt.Errorf("rope_parameters: %w", err)
	}
	switch {
	case rp.RopeTheta != nil && hf.RopeTheta != nil && *rp.RopeTheta != *hf.RopeTheta:
		return fmt.Errorf("rope_parameters.rope_theta %g contradicts rope_theta %g", *rp.RopeTheta, *hf.RopeTheta)
	case len(hf.RopeScaling) > 0 && string(hf.RopeScaling) != "null":
		return fmt.Errorf("config.json has both rope_parameters and rope_scaling; golens reads one")
	}
	if rp.RopeTheta != nil {
		hf.RopeTheta = rp.RopeTheta
	}
	hf.RopeScaling = raw // its rope_type and scaling parameters, as rope_scaling spells them
	return nil
}

// absent reports whether config.json lacks key (null counts as present).
func (hf hfLlamaConfig) absent(key string) bool {
	_, ok := hf.fields[key]
	return !ok
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
	if err := json.Unmarshal(b, &hf.fields); err != nil {
		return Config{}, fmt.Errorf("parse %s: %w", path, err)
	}
	if err := hf.ropeParameters(); err != nil {
		return Config{}, fmt.Errorf("%s: model_type %s: %w", path, mt.ModelType, err)
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
	if err := ropeScaling(hf.RopeScaling, c); err != nil {
		return err
	}
	if hf.AttentionBias && hf.ModelType != "llama" {
		// Mistral and Qwen2 fix their biases in the modeling code
		// (Qwen2: q, k and v always); Llama reads attention_bias.
		return fmt.Errorf("attention_bias is not supported for model_type %q", hf.ModelType)
	}
	if err := llamaSizes(hf, c); err != nil {
		return err
	}
	c.NCtx, c.ActFn = hf.MaxPositions, hf.HiddenAct
	switch {
	case hf.ModelType == "mistral" && hf.SlidingWindow != nil:
		return slideEveryLayer(c, *hf.SlidingWindow)
	case hf.ModelType == "qwen2" && hf.UseSlidingWindow:
		// Qwen2Config: without use_sliding_window no layer slides, whatever
		// sliding_window and layer_types say; with it, by default the
		// layers from max_window_layers (default 28) on.
		first := 28
		if hf.MaxWindowLayers != nil {
			first = *hf.MaxWindowLayers
		}
		if first < 0 {
			return fmt.Errorf("max_window_layers must not be negative, got %d", first)
		}
		return hf.slideLayers(c, func(l int) bool { return l >= first })
	}
	return nil
}

// slideEveryLayer gives every layer sliding-window attention of window
// keys, as MistralAttention's sliding_window does (null: none).
func slideEveryLayer(c *Config, window int) error {
	if window <= 0 {
		return fmt.Errorf("sliding_window must be positive or null, got %d", window)
	}
	if c.NLayers > maxLayers {
		return fmt.Errorf("num_hidden_layers %d: more than the %d layers golens lists attention types for", c.NLayers, maxLayers)
	}
	types, err := NewAttnTypes(slices.Repeat([]string{"local"}, c.NLayers)...)
	if err != nil {
		return err
	}
	c.UseLocalAttn, c.AttnTypes, c.WindowSize = true, types, &window
	return nil
}

// llamaSizes fills the fields the Llama-style model_types (Llama, Mistral,
// Qwen2, Gemma, Gemma 2) share: sizes, grouped-query heads, head_dim
// (hidden_size / num_attention_heads when absent), rms_norm_eps (default
// 1e-6), rope_theta (default 10000), n_ctx from max_position_embeddings,
// RMSNorm, a gated MLP with no biases, rotary on all of head_dim.
func llamaSizes(hf hfLlamaConfig, c *Config) error {
	if hf.PartialRotary != nil && *hf.PartialRotary != 1 {
		return fmt.Errorf("partial_rotary_factor %g is not supported for model_type %q (its rotary covers all of head_dim)", *hf.PartialRotary, hf.ModelType)
	}
	if hf.MLPBias {
		return fmt.Errorf("mlp_bias is not supported (golens's gated MLP has no biases on gate_proj and up_proj)")
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
	c.NLayers, c.DModel, c.NHeads, c.DHead, c.NKeyValueHeads = hf.Layers, hf.HiddenSize, hf.Heads, dHead, kv
	c.DMLP, c.DVocab, c.DVocabOut, c.NCtx, c.Eps = hf.Intermediate, hf.VocabSize, hf.VocabSize, hf.MaxPositions, eps
	c.GatedMLP, c.NormalizationType, c.FinalRMS = true, "RMS", true
	c.PositionalEmbeddingType, c.RotaryDim, c.RotaryBase = "rotary", dHead, theta
	return nil
}

// gemmaConfig maps a Gemma or Gemma 2 config with Hugging Face's numbers
// (modeling_gemma.py, modeling_gemma2.py; absent fields take the
// configuration classes' defaults):
//   - head_dim is read, default 256 (not hidden_size / heads).
//   - RMSNorms scale by (1 + w) (rms_norm_weight_plus_one).
//   - The MLP's activation is hidden_activation, gelu_pytorch_tanh when
//     absent or null; hidden_act is ignored, as transformers 4.x's GemmaMLP
//     ignores it (Gemma 1's hub configs say hidden_act "gelu", which
//     TransformerLens's Gemma 1 configs copy as exact GELU).
//   - Gemma 2: scores divided by sqrt(query_pre_attn_scalar) (default 256);
//     attn_logit_softcapping and final_logit_softcapping (defaults 50 and
//     30; null is none); the post-attention and post-feed-forward norms;
//     sliding_window (default 4096; null is none) on the layers
//     layer_types marks sliding_attention, by default the even ones
//     (Gemma2Config: "sliding_attention" where (i + 1) % 2 is true;
//     TransformerLens's Gemma 2 configs make the odd ones local).
//
// The embedding scale sqrt(d_model) is folded into W_E when the weights
// are read (see scaleEmbed), as TransformerLens's weight conversion does.
func gemmaConfig(hf hfLlamaConfig, c *Config) error {
	if err := ropeScaling(hf.RopeScaling, c); err != nil {
		return err
	}
	switch {
	case hf.AttentionBias:
		return fmt.Errorf("attention_bias is not supported for model_type %q", hf.ModelType)
	case hf.Bidirectional:
		return fmt.Errorf("use_bidirectional_attention is not supported (golens's Gemma attention is causal)")
	}
	if hf.HeadDim == nil {
		hf.HeadDim = ptr(256)
	}
	if err := llamaSizes(hf, c); err != nil {
		return err
	}
	c.NormWeightPlusOne = true
	c.ActFn = "gelu_pytorch_tanh"
	if hf.HiddenActivation != nil {
		if !supportedActs[*hf.HiddenActivation] {
			return fmt.Errorf("hidden_activation %q is not supported (want %s)", *hf.HiddenActivation, actList)
		}
		c.ActFn = *hf.HiddenActivation
	}
	if hf.ModelType == "gemma2" {
		return gemma2Config(hf, c)
	}
	return nil
}

// gemma2Config fills what Gemma 2 adds to Gemma (see gemmaConfig).
func gemma2Config(hf hfLlamaConfig, c *Config) error {
	c.UseNormalizationBeforeAndAfter = true
	scalar := 256.0
	if hf.QueryPreAttnScalar != nil {
		scalar = *hf.QueryPreAttnScalar
	}
	if !(scalar > 0) || math.IsInf(scalar, 1) {
		return fmt.Errorf("query_pre_attn_scalar must be a positive number, got %g", scalar)
	}
	c.AttnScale = math.Sqrt(scalar)
	var err error
	if c.AttnScoresSoftCap, err = hf.softCap("attn_logit_softcapping", hf.AttnSoftCap, 50); err != nil {
		return err
	}
	if c.OutputLogitsSoftCap, err = hf.softCap("final_logit_softcapping", hf.FinalSoftCap, 30); err != nil {
		return err
	}
	// Gemma2Config: by default the even layers slide.
	return hf.slideLayers(c, func(l int) bool { return l%2 == 0 })
}

// slideLayers gives sliding-window attention of sliding_window keys
// (default 4096; null: no layer slides) to the layers layer_types marks
// "sliding_attention", or where it is absent to those def marks, as the
// configuration classes of Gemma 2 and Qwen2 do.
func (hf hfLlamaConfig) slideLayers(c *Config, def func(l int) bool) error {
	window := 4096
	switch {
	case hf.SlidingWindow != nil:
		window = *hf.SlidingWindow
	case !hf.absent("sliding_window"):
		return nil
	}
	if window <= 0 {
		return fmt.Errorf("sliding_window must be positive, got %d", window)
	}
	types, err := hf.attnTypes(def)
	if err != nil || !types.anyLocal() {
		return err
	}
	c.UseLocalAttn, c.AttnTypes, c.WindowSize = true, types, &window
	return nil
}

// softCap is a Gemma 2 soft-cap field: def when absent, none (-1) when
// null, else a positive number.
func (hf hfLlamaConfig) softCap(key string, v *float64, def float64) (float64, error) {
	switch {
	case v != nil && (!(*v > 0) || math.IsInf(*v, 1)):
		return 0, fmt.Errorf("%s must be a positive number or null, got %g", key, *v)
	case v != nil:
		return *v, nil
	case hf.absent(key):
		return def, nil
	}
	return -1, nil
}

// attnTypes is each layer's attention, from layer_types
// ("sliding_attention" or "full_attention") when config.json has it, else
// local where def says so.
func (hf hfLlamaConfig) attnTypes(def func(l int) bool) (AttnTypes, error) {
	if hf.Layers > maxLayers {
		return "", fmt.Errorf("num_hidden_layers %d: more than the %d layers golens lists attention types for", hf.Layers, maxLayers)
	}
	types := make([]string, hf.Layers)
	if hf.LayerTypes == nil {
		for l := range types {
			types[l] = map[bool]string{true: "local", false: "global"}[def(l)]
		}
		return NewAttnTypes(types...)
	}
	if len(hf.LayerTypes) != hf.Layers {
		return "", fmt.Errorf("layer_types has %d entries for num_hidden_layers %d", len(hf.LayerTypes), hf.Layers)
	}
	for l, t := range hf.LayerTypes {
		switch t {
		case "sliding_attention":
			types[l] = "local"
		case "full_attention":
			types[l] = "global"
		default:
			return "", fmt.Errorf("layer_types[%d] is %q; want sliding_attention or full_attention", l, t)
		}
	}
	return NewAttnTypes(types...)
}

// maxLayers bounds the per-layer lists made from a config before its
// checkpoint is seen (no model comes near it).
const maxLayers = 1 << 20

func ptr[T any](v T) *T { return &v }

// neoxConfig maps a GPT-NeoX (Pythia) config as TransformerLens's
// convert_hf_model_config does, with Hugging Face's numbers: rotary_base is
// rotary_emb_base (or rope_theta, as newer configs spell it), where
// TransformerLens keeps 10000; rotary_dim is int(d_head · rotary_pct), as
// GPTNeoXAttention's rotary_ndims.
func neoxConfig(hf hfLlamaConfig, c *Config) error {
	if err := ropeScaling(hf.RopeScaling, c); err != nil {
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

// ropeScaling maps config.json's rope_scaling onto c: none or "default"
// leaves the frequencies alone, "llama3" (Llama 3.1 and 3.2) is
// TransformerLens's NTK-by-parts with Hugging Face's four parameters, all
// required as _compute_llama3_parameters reads them; any other type is an
// error naming it.
func ropeScaling(raw json.RawMessage, c *Config) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var rs struct {
		RopeType string   `json:"rope_type"`
		Type     string   `json:"type"` // the older spelling
		Factor   *float64 `json:"factor"`
		Low      *float64 `json:"low_freq_factor"`
		High     *float64 `json:"high_freq_factor"`
		Original *int     `json:"original_max_position_embeddings"`
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
	}
	typ := rs.RopeType
	if typ == "" {
		typ = rs.Type
	}
	switch typ {
	case "default":
		return nil
	case "llama3":
	default:
		return fmt.Errorf("rope_scaling of type %q is not supported by golens (want default or llama3)", typ)
	}
	for _, f := range []struct {
		name    string
		missing bool
	}{{"factor", rs.Factor == nil}, {"low_freq_factor", rs.Low == nil}, {"high_freq_factor", rs.High == nil},
		{"original_max_position_embeddings", rs.Original == nil}} {
		if f.missing {
			return fmt.Errorf("rope_scaling of type llama3 needs %s", f.name)
		}
	}
	c.UseNTKByPartsRope = true
	c.NTKByPartsFactor, c.NTKByPartsLowFreqFactor, c.NTKByPartsHighFreqFactor = *rs.Factor, *rs.Low, *rs.High
	c.NTKOriginalCtxLen = *rs.Original
	if err := c.checkNTKByParts(); err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
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

// llamaTable maps transformers' LlamaForCausalLM (and Mistral's, Qwen2's
// and Gemma's, which name their weights the same; Gemma 2 adds
// pre_feedforward_layernorm and post_feedforward_layernorm, and its
// post_attention_layernorm is ln1_post, not ln2) onto the model's weights.
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
		t.sources = append(t.sources, source{&b.Ln1.W, p + "input_layernorm.weight", []int64{dm}, false})
		if b.Ln1Post == nil {
			t.sources = append(t.sources, source{&b.Ln2.W, p + "post_attention_layernorm.weight", []int64{dm}, false})
		} else {
			// Gemma2DecoderLayer: post_attention_layernorm normalises the
			// attention's output; the MLP reads pre_feedforward_layernorm.
			t.sources = append(t.sources,
				source{&b.Ln1Post.W, p + "post_attention_layernorm.weight", []int64{dm}, false},
				source{&b.Ln2.W, p + "pre_feedforward_layernorm.weight", []int64{dm}, false},
				source{&b.Ln2Post.W, p + "post_feedforward_layernorm.weight", []int64{dm}, false})
		}
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
	r := m.newWeightReader(ck, t.sources, o)
	for i, src := range t.sources {
		w, err := r.read(src)
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
	if a.scaleEmbed {
		return m.scaleEmbed()
	}
	return nil
}

// scaleEmbed folds Gemma's embedding scale into W_E, as TransformerLens's
// Gemma weight conversion does, so hook_embed holds the scaled embeddings
// TransformerLens's does: GemmaModel.forward multiplies them by
// sqrt(hidden_size) rounded to the model's dtype (torch.tensor(hidden_size
// ** 0.5, dtype=hidden_states.dtype)), elementwise in that dtype, which
// is the same product element for element. A tied unembedding reads
// embed_tokens again, unscaled.
func (m *HookedTransformer) scaleEmbed() error {
	return gotch.Try(func() {
		s := gotch.NewScope()
		defer s.Close()
		normalizer := s.Attach(gotch.MustFull([]int64{}, math.Sqrt(float64(m.Cfg.DModel)), m.dtype, m.device)) // 0-d, rounded to the dtype
		m.WE.MustMul_(normalizer)
	})
}
