package hookedmodel

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

// Config mirrors TransformerLens's HookedTransformerConfig field for field,
// with the same JSON names, so a config dumped from Python loads here. Call
// Init (Load and New do) to validate it and fill the derived fields.
//
// Start from DefaultConfig (or LoadConfig, or JSON) and set what you need.
// Three fields have TransformerLens defaults that are not Go's zero values
// — use_attn_scale (true), default_prepend_bos (true) and
// normalization_type ("LN") — and in a Config{...} literal an explicit
// false or "" cannot be told from a forgotten one. The JSON names must stay
// TransformerLens's, so inverting them ("DisableAttnScale") is out; instead
// DefaultConfig and UnmarshalJSON mark the Config (an unexported field, so
// copies keep the mark), and Init refuses an unmarked one that leaves any
// of the three at its zero value, naming them. A literal that sets all
// three (to true, true and a normalization) is unambiguous and accepted.
type Config struct {
	NLayers   int     `json:"n_layers"`
	DModel    int     `json:"d_model"`
	NCtx      int     `json:"n_ctx"`
	DHead     int     `json:"d_head"`
	ModelName string  `json:"model_name"`       // default "custom"
	NHeads    int     `json:"n_heads"`          // default d_model / d_head
	DMLP      int     `json:"d_mlp,omitempty"`  // default 4 d_model unless attn_only
	ActFn     string  `json:"act_fn,omitempty"` // relu, gelu, gelu_new, gelu_fast, silu, solu_ln
	DVocab    int     `json:"d_vocab"`
	Eps       float64 `json:"eps"` // default 1e-5

	UseAttnResult bool `json:"use_attn_result"`
	UseAttnScale  bool `json:"use_attn_scale"` // default true
	// AttnScale divides the attention scores when use_attn_scale is set:
	// -1 (the default) means sqrt(d_head); Gemma 2's is
	// sqrt(query_pre_attn_scalar).
	AttnScale       float64 `json:"attn_scale"`
	UseSplitQKVIn   bool    `json:"use_split_qkv_input"`
	UseHookMLPIn    bool    `json:"use_hook_mlp_in"`
	UseAttnIn       bool    `json:"use_attn_in"`
	UseHookTokens   bool    `json:"use_hook_tokens"`
	AttnScaleByIdx  bool    `json:"scale_attn_by_inverse_layer_idx"` // layer l's scores also divided by l+1
	ParallelAttnMLP bool    `json:"parallel_attn_mlp"`
	GatedMLP        bool    `json:"gated_mlp"`
	AttnOnly        bool    `json:"attn_only"`
	FinalRMS        bool    `json:"final_rms"`

	OriginalArchitecture    string `json:"original_architecture,omitempty"`
	TokenizerName           string `json:"tokenizer_name,omitempty"`
	NormalizationType       string `json:"normalization_type"`        // "LN" (default), "LNPre", "RMS", "RMSPre" or "" (none)
	AttentionDir            string `json:"attention_dir"`             // "causal" (default) or "bidirectional"
	PositionalEmbeddingType string `json:"positional_embedding_type"` // "standard" (default), "shortformer" or "rotary"
	// RotaryDim is how many of each head's d_head dimensions rotary
	// embeddings rotate (the first rotary_dim, NeoX's rotate-half layout
	// within them); 0 with rotary positions means all of d_head.
	RotaryDim int `json:"rotary_dim,omitempty"`
	// RotaryBase is the base of the rotary frequencies, base^(-2i/rotary_dim)
	// (Hugging Face's rope_theta, NeoX's rotary_emb_base); default 10000.
	RotaryBase float64 `json:"rotary_base"`
	// RotaryAdjacentPairs rotates adjacent pairs of dimensions (2i, 2i+1),
	// GPT-J's layout (modeling_gptj.py rotate_every_two), instead of
	// NeoX's halves (i, i + rotary_dim/2); pair i turns by θ_i either way.
	RotaryAdjacentPairs bool `json:"rotary_adjacent_pairs,omitempty"`
	// UseNTKByPartsRope is Llama 3.1's rope_scaling (rope_type "llama3"),
	// which TransformerLens calls NTK-by-parts: rotary wavelengths longer
	// than NTKOriginalCtxLen / NTKByPartsLowFreqFactor are stretched by
	// NTKByPartsFactor, those shorter than NTKOriginalCtxLen /
	// NTKByPartsHighFreqFactor are kept, and those between are
	// interpolated. Defaults are TransformerLens's (8, 1, 4, 8192).
	UseNTKByPartsRope        bool    `json:"use_NTK_by_parts_rope,omitempty"`
	NTKByPartsFactor         float64 `json:"NTK_by_parts_factor"`
	NTKByPartsLowFreqFactor  float64 `json:"NTK_by_parts_low_freq_factor"`
	NTKByPartsHighFreqFactor float64 `json:"NTK_by_parts_high_freq_factor"`
	NTKOriginalCtxLen        int     `json:"NTK_original_ctx_len"`
	// NKeyValueHeads is the number of key and value heads of grouped-query
	// attention (0: n_heads); it divides n_heads, and each key/value head
	// serves n_heads / n_key_value_heads consecutive query heads.
	NKeyValueHeads int `json:"n_key_value_heads,omitempty"`
	// NormWeightPlusOne makes every RMSNorm scale by (1 + w), Gemma's
	// GemmaRMSNorm, with w as Hugging Face stores it (initialised to zeros).
	// TransformerLens has no such field (its Gemma loader adds 1 to the
	// weights); the name is golens's.
	NormWeightPlusOne bool `json:"rms_norm_weight_plus_one,omitempty"`
	// AttnScoresSoftCap and OutputLogitsSoftCap are Gemma 2's soft caps,
	// cap·tanh(x/cap), on the attention scores (after the scale, before
	// the mask, inside hook_attn_scores) and on the logits; a value <= 0
	// (the default -1) is none, as TransformerLens's "> 0" test says.
	AttnScoresSoftCap   float64 `json:"attn_scores_soft_cap"`
	OutputLogitsSoftCap float64 `json:"output_logits_soft_cap"`
	// UseNormalizationBeforeAndAfter adds Gemma 2's norms on each
	// sublayer's output, ln1_post after the attention and ln2_post after
	// the MLP (before hook_attn_out and hook_mlp_out). They are RMSNorms
	// with weights whatever fold_ln does to the others, as
	// TransformerLens's TransformerBlock builds them, so it needs
	// normalization_type RMS or RMSPre.
	UseNormalizationBeforeAndAfter bool `json:"use_normalization_before_and_after,omitempty"`
	// UseLocalAttn makes the layers AttnTypes marks "local" attend to the
	// last WindowSize keys only, the query's own included (GPT-Neo's and
	// Gemma 2's sliding window). AttnTypes is JSON's attn_types list.
	UseLocalAttn      bool      `json:"use_local_attn"`
	AttnTypes         AttnTypes `json:"attn_types"`
	WindowSize        *int      `json:"window_size,omitempty"`
	DVocabOut         int       `json:"d_vocab_out"` // default d_vocab
	InitializerRange  float64   `json:"initializer_range"`
	Seed              *int64    `json:"seed,omitempty"`
	DefaultPrependBOS bool      `json:"default_prepend_bos"` // default true
	DType             string    `json:"dtype"`               // "float32" (default), "float16", "bfloat16", "float64"

	// ReorderUpcastAttn is Hugging Face GPT2Config's reorder_and_upcast_attn
	// (HookedTransformerConfig has no such field; TransformerLens drops it
	// when converting): attention scores and softmax in float32 whatever
	// the model's dtype, the scale applied inside the q·kᵀ product. golens
	// implements it rather than rejecting it because its explicit attention
	// path already does that upcast for float16 and bfloat16 (as
	// TransformerLens does), and in float32 multiplying by the scale inside
	// the product or dividing after it differ by rounding only; what the
	// flag changes is that a low-precision model never takes the fused
	// kernel, which would compute in the model's dtype.
	ReorderUpcastAttn bool `json:"reorder_and_upcast_attn,omitempty"`

	NParams int64 `json:"n_params"` // derived: attention and MLP weights, no biases or norms

	// defaulted marks a Config made by DefaultConfig or decoded from JSON,
	// whose zero values are deliberate (see Config).
	defaulted bool
}

// DefaultConfig returns a Config with TransformerLens's defaults for the
// fields a caller usually leaves out.
func DefaultConfig() Config {
	return Config{
		ModelName:                "custom",
		NHeads:                   -1,
		DVocab:                   -1,
		DVocabOut:                -1,
		Eps:                      1e-5,
		UseAttnScale:             true,
		AttnScale:                -1,
		NormalizationType:        "LN",
		AttentionDir:             "causal",
		PositionalEmbeddingType:  "standard",
		InitializerRange:         -1,
		RotaryBase:               10000,
		NTKByPartsFactor:         8,
		NTKByPartsLowFreqFactor:  1,
		NTKByPartsHighFreqFactor: 4,
		NTKOriginalCtxLen:        8192,
		AttnScoresSoftCap:        -1,
		OutputLogitsSoftCap:      -1,
		DefaultPrependBOS:        true,
		DType:                    "float32",
		defaulted:                true,
	}
}

// UnmarshalJSON starts from DefaultConfig, so absent fields keep
// TransformerLens's defaults rather than Go's zero values. A JSON null for
// normalization_type means no normalization, as None does in Python.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	p := plain(DefaultConfig())
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err == nil {
		if v, ok := raw["normalization_type"]; ok && string(v) == "null" {
			p.NormalizationType = ""
		}
	}
	*c = Config(p)
	c.defaulted = true
	return nil
}

// LoadConfig reads a HookedTransformerConfig JSON file.
func LoadConfig(path string) (Config, error) {
	b, err := safefile.Read(path, safefile.JSONLimit)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("parse config %q: %w", path, err)
	}
	if err := c.Init(); err != nil {
		return Config{}, fmt.Errorf("config %q: %w", path, err)
	}
	return c, nil
}

var supportedActs = map[string]bool{"relu": true, "gelu": true, "gelu_new": true, "gelu_fast": true, "gelu_pytorch_tanh": true, "silu": true, "solu_ln": true}

const actList = "relu, gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, silu or solu_ln"

// gpt2Tokenizers are the tokenizer_name values that name GPT-2's byte-level
// BPE, the one tokenizer golens has (TransformerLens sets tokenizer_name to
// the model's official name; the stanford-crfm GPT-2 models use GPT-2's).
var gpt2Tokenizers = map[string]bool{
	"gpt2": true, "gpt2-medium": true, "gpt2-large": true, "gpt2-xl": true, "distilgpt2": true,
	"openai-community/gpt2": true, "openai-community/gpt2-medium": true, "openai-community/gpt2-large": true,
	"openai-community/gpt2-xl": true, "distilbert/distilgpt2": true,
}

// isGPT2Tokenizer reports whether tokenizer_name names GPT-2's tokenizer.
func isGPT2Tokenizer(name string) bool {
	return gpt2Tokenizers[name] || strings.HasPrefix(name, "stanford-crfm/")
}

func gpt2VocabSize() int { return tokenizer.GPT2().VocabSize() }

// tokenizer is the tokenizer a model of c has: GPT-2's, the one golens
// has, when tokenizer_name names it or d_vocab is its size; else nil.
func (c *Config) tokenizer() *tokenizer.Tokenizer {
	if t := tokenizer.GPT2(); isGPT2Tokenizer(c.TokenizerName) || c.DVocab == t.VocabSize() {
		return t
	}
	return nil
}

// fieldChange is one exported field of Config that differs between two
// configs: its index, JSON name and both values.
type fieldChange struct {
	index    int
	name     string
	now, was reflect.Value
}

// changedFields lists the exported fields of now that differ from was.
func changedFields(now, was Config) []fieldChange {
	var out []fieldChange
	a, b := reflect.ValueOf(now), reflect.ValueOf(was)
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, fieldChange{i, name, a.Field(i), b.Field(i)})
	}
	return out
}

// unsetDefaults lists the fields of a Config not made by DefaultConfig or
// JSON that sit at a zero value TransformerLens's default differs from.
func (c *Config) unsetDefaults() []string {
	if c.defaulted {
		return nil
	}
	var f []string
	if !c.UseAttnScale {
		f = append(f, "use_attn_scale (TransformerLens's default true)")
	}
	if !c.DefaultPrependBOS {
		f = append(f, "default_prepend_bos (default true)")
	}
	if c.NormalizationType == "" {
		f = append(f, `normalization_type (default "LN"; "" means none)`)
	}
	return f
}

// Init validates c and fills its derived fields as HookedTransformerConfig's
// __post_init__ does. It is idempotent.
func (c *Config) Init() error {
	if f := c.unsetDefaults(); len(f) > 0 {
		return fmt.Errorf("config: %s not set: a Config{...} literal leaves them at Go's zero value, which may not be what you meant; "+
			"start from hookedmodel.DefaultConfig() (or LoadConfig) and set the fields you need", strings.Join(f, ", "))
	}
	pos := func(name string, v int) error {
		if v <= 0 {
			return fmt.Errorf("%s must be positive, got %d", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"n_layers", c.NLayers}, {"d_model", c.DModel}, {"n_ctx", c.NCtx}, {"d_head", c.DHead}} {
		if err := pos(f.name, f.v); err != nil {
			return err
		}
	}
	// -1 (TransformerLens's default) asks for d_model / d_head; so does Go's
	// zero in a Config{...} literal, which cannot say -1 by omission.
	if c.NHeads == -1 || c.NHeads == 0 && !c.defaulted {
		if c.NHeads = c.DModel / c.DHead; c.NHeads == 0 {
			return fmt.Errorf("n_heads: d_model %d / d_head %d makes no head; set n_heads", c.DModel, c.DHead)
		}
	}
	if c.NHeads <= 0 {
		return fmt.Errorf("n_heads must be positive (or -1 for d_model / d_head), got %d", c.NHeads)
	}
	if c.ModelName == "" {
		c.ModelName = "custom"
	}
	if c.Eps == 0 && !c.defaulted {
		c.Eps = 1e-5
	}
	if !(c.Eps > 0) || math.IsInf(c.Eps, 1) {
		return fmt.Errorf("eps must be a positive number (the LayerNorm epsilon, default 1e-5), got %g", c.Eps)
	}
	if c.DType == "" {
		c.DType = "float32"
	}
	if c.AttentionDir == "" {
		c.AttentionDir = "causal"
	}
	if c.PositionalEmbeddingType == "" {
		c.PositionalEmbeddingType = "standard"
	}
	if !c.AttnOnly {
		if c.DMLP < 0 {
			return fmt.Errorf("d_mlp must be positive (or 0 for 4 d_model), got %d", c.DMLP)
		}
		if c.DMLP == 0 && c.DModel <= math.MaxInt/4 {
			c.DMLP = 4 * c.DModel
		}
		if c.DMLP == 0 {
			return fmt.Errorf("d_mlp: 4 d_model overflows (d_model %d)", c.DModel)
		}
		if c.ActFn == "" {
			return fmt.Errorf("act_fn must be set unless attn_only (%s)", actList)
		}
		if !supportedActs[c.ActFn] {
			return fmt.Errorf("act_fn %q is not supported (want %s)", c.ActFn, actList)
		}
		if c.GatedMLP && c.ActFn == "solu_ln" {
			return fmt.Errorf("gated_mlp with act_fn solu_ln is not supported (TransformerLens's GatedMLP has no solu_ln LayerNorm)")
		}
	}
	if c.TokenizerName != "" {
		// TransformerLens loads tokenizer_name's tokenizer and takes
		// d_vocab from it when d_vocab is unset; golens does the same for
		// GPT-2's tokenizer, the one it has, and refuses other names
		// rather than ignore them.
		if !isGPT2Tokenizer(c.TokenizerName) {
			return fmt.Errorf("tokenizer_name %q: golens has only GPT-2's tokenizer (tokenizer_name \"gpt2\"); leave tokenizer_name empty and pass token ids", c.TokenizerName)
		}
		n := gpt2VocabSize()
		if c.DVocab <= 0 {
			c.DVocab = n
		} else if c.DVocab < n {
			return fmt.Errorf("tokenizer_name %q has %d tokens but d_vocab is %d", c.TokenizerName, n, c.DVocab)
		}
	}
	if c.DVocab <= 0 {
		return fmt.Errorf("d_vocab must be set (got %d), or tokenizer_name to a tokenizer whose size it takes", c.DVocab)
	}
	if c.DVocabOut == -1 || c.DVocabOut == 0 {
		c.DVocabOut = c.DVocab
	}
	if c.DVocabOut <= 0 {
		return fmt.Errorf("d_vocab_out must be positive (or -1 for d_vocab), got %d", c.DVocabOut)
	}
	if math.IsNaN(c.InitializerRange) || math.IsInf(c.InitializerRange, 0) {
		return fmt.Errorf("initializer_range must be a number (or -1 for 0.8/sqrt(d_model)), got %g", c.InitializerRange)
	}
	if c.InitializerRange <= 0 {
		c.InitializerRange = 0.8 / math.Sqrt(float64(c.DModel))
	}
	if err := c.initArchitecture(); err != nil {
		return err
	}
	if _, err := c.dtype(); err != nil {
		return err
	}
	attn, ok := product(c.NLayers, c.DModel, c.DHead, c.NHeads, 4)
	mlp, okMLP := int64(0), true
	if !c.AttnOnly {
		mats := 2
		if c.GatedMLP {
			mats = 3
		}
		mlp, okMLP = product(c.NLayers, c.DModel, c.DMLP, mats)
	}
	if !ok || !okMLP || attn > math.MaxInt64-mlp {
		return fmt.Errorf("the sizes make more than 2^63 weights (n_layers %d, d_model %d, n_heads %d, d_head %d, d_mlp %d)", c.NLayers, c.DModel, c.NHeads, c.DHead, c.DMLP)
	}
	c.NParams = attn + mlp
	return nil
}

// product multiplies positive sizes; false when it overflows int64.
func product(sizes ...int) (int64, bool) {
	p := int64(1)
	for _, v := range sizes {
		if int64(v) > math.MaxInt64/p {
			return 0, false
		}
		p *= int64(v)
	}
	return p, true
}

// initArchitecture validates the fields that choose the components
// (normalization, positions, attention and MLP variants), naming the
// field in each error, and fills their defaults.
func (c *Config) initArchitecture() error {
	switch c.NormalizationType {
	case "LN", "LNPre", "RMS", "RMSPre", "":
	default:
		return fmt.Errorf("normalization_type %q is not supported (want LN, LNPre, RMS, RMSPre or null)", c.NormalizationType)
	}
	if c.NormWeightPlusOne && c.NormalizationType != "RMS" && c.NormalizationType != "RMSPre" {
		return fmt.Errorf("rms_norm_weight_plus_one needs normalization_type RMS (got %q)", c.NormalizationType)
	}
	if c.FinalRMS && c.NormalizationType == "" {
		return fmt.Errorf("final_rms needs a normalization_type (the final norm is RMSNorm in a model that has norms)")
	}
	switch c.PositionalEmbeddingType {
	case "standard", "shortformer", "rotary":
	default:
		return fmt.Errorf("positional_embedding_type %q is not supported yet (want standard, shortformer or rotary)", c.PositionalEmbeddingType)
	}
	if c.AttentionDir != "causal" && c.AttentionDir != "bidirectional" {
		return fmt.Errorf("attention_dir %q is not supported (want causal or bidirectional)", c.AttentionDir)
	}
	if c.RotaryDim < 0 {
		return fmt.Errorf("rotary_dim must not be negative, got %d", c.RotaryDim)
	}
	if c.PositionalEmbeddingType == "rotary" {
		if c.RotaryDim == 0 {
			c.RotaryDim = c.DHead
		}
		if c.RotaryDim > c.DHead || c.RotaryDim%2 != 0 {
			return fmt.Errorf("rotary_dim %d must be even and at most d_head %d", c.RotaryDim, c.DHead)
		}
		if c.RotaryBase == 0 && !c.defaulted {
			c.RotaryBase = 10000
		}
		if !(c.RotaryBase > 0) || math.IsInf(c.RotaryBase, 1) {
			return fmt.Errorf("rotary_base must be a positive number (default 10000), got %g", c.RotaryBase)
		}
		if err := c.checkNTKByParts(); err != nil {
			return err
		}
	} else if c.RotaryDim > 0 {
		// TransformerLens reads it only for rotary positional embeddings.
		return fmt.Errorf("rotary_dim %d needs positional_embedding_type rotary (got %s)", c.RotaryDim, c.PositionalEmbeddingType)
	} else if c.UseNTKByPartsRope {
		return fmt.Errorf("use_NTK_by_parts_rope needs positional_embedding_type rotary (got %s)", c.PositionalEmbeddingType)
	}
	switch {
	case c.NKeyValueHeads < 0:
		return fmt.Errorf("n_key_value_heads must not be negative, got %d", c.NKeyValueHeads)
	case c.NKeyValueHeads > 0 && c.NHeads%c.NKeyValueHeads != 0:
		return fmt.Errorf("n_key_value_heads %d must divide n_heads %d", c.NKeyValueHeads, c.NHeads)
	}
	if c.UseAttnIn && c.kvHeads() != c.NHeads {
		return fmt.Errorf("use_attn_in is not supported with n_key_value_heads %d < n_heads %d (keys and values have fewer heads than its per-head input); use use_split_qkv_input", c.kvHeads(), c.NHeads)
	}
	if c.ParallelAttnMLP && c.AttnOnly {
		return fmt.Errorf("parallel_attn_mlp needs an MLP (attn_only is set)")
	}
	return c.initAttention()
}

// initAttention validates the attention variants' fields (scale, soft
// caps, sliding windows, post-norms) and fills attn_scale's default.
func (c *Config) initAttention() error {
	if c.AttnScale == -1 || c.AttnScale == 0 && !c.defaulted {
		if !c.UseAttnScale {
			c.AttnScale = -1 // unused, as TransformerLens leaves it
		} else {
			c.AttnScale = math.Sqrt(float64(c.DHead))
		}
	}
	if c.UseAttnScale && (!(c.AttnScale > 0) || math.IsInf(c.AttnScale, 1)) {
		return fmt.Errorf("attn_scale must be a positive number (or -1 for sqrt(d_head)), got %g", c.AttnScale)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"attn_scores_soft_cap", c.AttnScoresSoftCap}, {"output_logits_soft_cap", c.OutputLogitsSoftCap}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%s must be a finite number (a cap > 0, or -1 for none), got %g", f.name, f.v)
		}
	}
	if c.UseNormalizationBeforeAndAfter && c.NormalizationType != "RMS" && c.NormalizationType != "RMSPre" {
		return fmt.Errorf("use_normalization_before_and_after needs normalization_type RMS or RMSPre (got %q): its post-norms are RMSNorms", c.NormalizationType)
	}
	if c.WindowSize != nil && *c.WindowSize <= 0 {
		return fmt.Errorf("window_size must be positive, got %d", *c.WindowSize)
	}
	if strings.Trim(string(c.AttnTypes), "gl") != "" {
		return fmt.Errorf("attn_types %q is not one 'g' (global) or 'l' (local) a layer: make it with NewAttnTypes", string(c.AttnTypes))
	}
	if n := c.AttnTypes.Len(); n > 0 && n != c.NLayers {
		return fmt.Errorf("attn_types has %d entries for %d layers", n, c.NLayers)
	}
	local := c.AttnTypes.anyLocal()
	switch {
	case c.UseLocalAttn && c.AttnTypes.Len() == 0:
		return fmt.Errorf("use_local_attn needs attn_types (each layer's \"global\" or \"local\")")
	case local && !c.UseLocalAttn:
		return fmt.Errorf("attn_types has local layers but use_local_attn is false")
	case local && c.WindowSize == nil:
		return fmt.Errorf("attn_types has local layers but window_size is not set")
	}
	return nil
}

// AttnTypes is attn_types, each layer's attention, "global" or "local"
// (a sliding window of window_size keys), kept as one byte a layer ('g',
// 'l') so that Config stays comparable with ==; in JSON it is
// TransformerLens's list, or null for none.
type AttnTypes string

// NewAttnTypes makes AttnTypes from per-layer "global" and "local".
func NewAttnTypes(types ...string) (AttnTypes, error) {
	b := make([]byte, len(types))
	for i, t := range types {
		switch t {
		case "global":
			b[i] = 'g'
		case "local":
			b[i] = 'l'
		default:
			return "", fmt.Errorf("attn_types[%d] is %q; want \"global\" or \"local\"", i, t)
		}
	}
	return AttnTypes(b), nil
}

// Len is the number of layers a has a type for (0: attn_types unset).
func (a AttnTypes) Len() int { return len(a) }

// Local reports whether layer l's attention is local.
func (a AttnTypes) Local(l int) bool { return l >= 0 && l < len(a) && a[l] == 'l' }

func (a AttnTypes) anyLocal() bool { return strings.IndexByte(string(a), 'l') >= 0 }

// List is a as TransformerLens's list of "global" and "local", nil when
// unset.
func (a AttnTypes) List() []string {
	if a == "" {
		return nil
	}
	out := make([]string, len(a))
	for i := range out {
		out[i] = "global"
		if a.Local(i) {
			out[i] = "local"
		}
	}
	return out
}

// MarshalJSON writes the list, or null when unset.
func (a AttnTypes) MarshalJSON() ([]byte, error) { return json.Marshal(a.List()) }

// UnmarshalJSON reads a list of "global" and "local", or null.
func (a *AttnTypes) UnmarshalJSON(b []byte) error {
	var types []string
	if err := json.Unmarshal(b, &types); err != nil {
		return fmt.Errorf("attn_types: %w", err)
	}
	t, err := NewAttnTypes(types...)
	if err != nil {
		return err
	}
	*a = t
	return nil
}

// checkNTKByParts checks Llama 3.1's rope scaling parameters when it is on:
// a positive factor and context and 0 < low < high, so that the
// interpolation between the two wavelength bounds is defined.
func (c *Config) checkNTKByParts() error {
	if !c.UseNTKByPartsRope {
		return nil
	}
	finite := func(v float64) bool { return v > 0 && !math.IsInf(v, 1) }
	switch {
	case !finite(c.NTKByPartsFactor):
		return fmt.Errorf("NTK_by_parts_factor must be a positive number, got %g", c.NTKByPartsFactor)
	case c.NTKOriginalCtxLen <= 0:
		return fmt.Errorf("NTK_original_ctx_len must be positive, got %d", c.NTKOriginalCtxLen)
	case !finite(c.NTKByPartsLowFreqFactor) || !finite(c.NTKByPartsHighFreqFactor) || !(c.NTKByPartsLowFreqFactor < c.NTKByPartsHighFreqFactor):
		return fmt.Errorf("NTK_by_parts_low_freq_factor %g and NTK_by_parts_high_freq_factor %g must be positive, low below high",
			c.NTKByPartsLowFreqFactor, c.NTKByPartsHighFreqFactor)
	}
	return nil
}

// kvHeads is the number of key and value heads.
func (c *Config) kvHeads() int {
	if c.NKeyValueHeads > 0 {
		return c.NKeyValueHeads
	}
	return c.NHeads
}
