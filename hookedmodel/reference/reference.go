package reference

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/golens/golens/gotch"
)

// Tensor is a float64 array, flat and row-major.
type Tensor struct {
	Shape []int
	Data  []float64
}

func newTensor(shape ...int) Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return Tensor{shape, make([]float64, n)}
}

// Config holds the fields of a TransformerLens config that the reference
// reads, under TransformerLens's JSON names where TransformerLens has one,
// so that a hookedmodel.Config converts through JSON and this package needs
// nothing from hookedmodel. Zero values mean "absent": no rotary scaling,
// no soft-cap, grouped-query attention off (n_key_value_heads = n_heads).
type Config struct {
	NLayers                 int     `json:"n_layers"`
	DModel                  int     `json:"d_model"`
	DHead                   int     `json:"d_head"`
	NHeads                  int     `json:"n_heads"`
	ActFn                   string  `json:"act_fn"`
	Eps                     float64 `json:"eps"`
	UseAttnResult           bool    `json:"use_attn_result"`
	UseAttnScale            bool    `json:"use_attn_scale"`
	ScaleAttnByLayer        bool    `json:"scale_attn_by_inverse_layer_idx"`
	UseSplitQKVIn           bool    `json:"use_split_qkv_input"`
	UseHookMLPIn            bool    `json:"use_hook_mlp_in"`
	UseAttnIn               bool    `json:"use_attn_in"`
	AttnOnly                bool    `json:"attn_only"`
	NormalizationType       string  `json:"normalization_type"`        // "LN", "LNPre", "RMS", "RMSPre" or ""
	AttentionDir            string  `json:"attention_dir"`             // "causal" or "bidirectional"
	PositionalEmbeddingType string  `json:"positional_embedding_type"` // "standard", "shortformer" or "rotary"
	DType                   string  `json:"dtype"`                     // the weights' dtype: rounds Gemma's embedding scale

	// Attention: divide scores by AttnScale when set (Gemma's
	// sqrt(query_pre_attn_scalar)), else by sqrt(d_head).
	AttnScale      float64 `json:"attn_scale"`
	NKeyValueHeads int     `json:"n_key_value_heads"` // grouped-query attention; 0 means n_heads

	// Rotary embeddings (positional_embedding_type "rotary"), NeoX's
	// rotate-half layout on the first RotaryDim dims of each head (0: all).
	RotaryDim  int     `json:"rotary_dim"`
	RotaryBase float64 `json:"rotary_base"` // Hugging Face's rope_theta / rotary_emb_base; 0 means 10000
	// GPT-J's layout: dims 2i and 2i+1 pair instead of i and i + n.
	RotaryAdjacentPairs bool `json:"rotary_adjacent_pairs"`
	// Llama 3.1's rope_scaling {"rope_type": "llama3"}, under
	// TransformerLens's names for the same parameters.
	UseLlama3Rope     bool    `json:"use_NTK_by_parts_rope"`
	Llama3Factor      float64 `json:"NTK_by_parts_factor"`
	Llama3LowFreq     float64 `json:"NTK_by_parts_low_freq_factor"`
	Llama3HighFreq    float64 `json:"NTK_by_parts_high_freq_factor"`
	Llama3OriginalCtx float64 `json:"NTK_original_ctx_len"`

	// MLP and block layout.
	GatedMLP        bool `json:"gated_mlp"`         // act(x·W_gate) * (x·W_in) + b_in
	ParallelAttnMLP bool `json:"parallel_attn_mlp"` // NeoX's use_parallel_residual
	// Gemma 2's post-attention and post-feed-forward norms (ln1_post, ln2_post).
	NormBeforeAndAfter bool `json:"use_normalization_before_and_after"`

	// Gemma.
	NormWeightPlusOne bool    `json:"rms_norm_weight_plus_one"` // RMSNorm scales by (1 + w), weights as Hugging Face stores them
	ScaleEmbed        bool    `json:"scale_embed"`              // embeddings times sqrt(d_model), rounded to dtype
	AttnScoresSoftCap float64 `json:"attn_scores_soft_cap"`     // Gemma 2's attn_logit_softcapping; 0: none
	LogitsSoftCap     float64 `json:"output_logits_soft_cap"`   // Gemma 2's final_logit_softcapping; 0: none
	// Sliding-window attention: layer l attends to the last WindowSize keys
	// (itself included) where AttnTypes[l] is "local". Hugging Face's layer
	// choice for Gemma 2 is HFGemma2AttnTypes.
	WindowSize int      `json:"window_size"`
	AttnTypes  []string `json:"attn_types"`
}

// HFGemma2AttnTypes lists, per layer, the attention Hugging Face's Gemma 2
// computes: modeling_gemma2.py's Gemma2DecoderLayer sets
// is_sliding = not bool(layer_idx % 2) (configuration_gemma2.py's
// layer_types says the same: "sliding_attention" where (i + 1) % 2 is
// true), so the even layers 0, 2, 4, ... are local (sliding window) and the
// odd ones global. TransformerLens's Gemma 2 configs list ["global",
// "local"] * n, the other way round; Hugging Face is the truth here.
func HFGemma2AttnTypes(nLayers int) []string {
	types := make([]string, nLayers)
	for l := range types {
		types[l] = "global"
		if l%2 == 0 {
			types[l] = "local"
		}
	}
	return types
}

// ParseConfig reads a config from TransformerLens-style JSON, such as
// json.Marshal of a hookedmodel.Config (complete, with defaults applied).
func ParseConfig(js []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(js, &c); err != nil {
		return c, fmt.Errorf("reference: config: %w", err)
	}
	return c, nil
}

func (c Config) kvHeads() int {
	if c.NKeyValueHeads > 0 {
		return c.NKeyValueHeads
	}
	return c.NHeads
}

func (c Config) rms() bool { return strings.HasPrefix(c.NormalizationType, "RMS") }

// Model holds a model's weights as float64, under TransformerLens's
// state-dict names and in its shapes. A missing bias counts as zeros (Llama
// and Gemma have none). Grouped-query key and value weights may be named
// attn._W_K / attn._b_K (TransformerLens's GroupedQueryAttention) or
// attn.W_K / attn.b_K, with n_key_value_heads heads.
type Model struct {
	Cfg Config
	W   map[string]Tensor
	// borrowed are weights read as float64 on each use (see Borrow); W
	// takes precedence.
	borrowed map[string]*gotch.Tensor
	// Edits, when set, change an activation in place at its hook point,
	// before it is recorded and used further: the reference of a hooked run.
	// (The norms' hooks hook_scale and hook_normalized take no edits.)
	Edits map[string]func(Tensor)
}

// New copies a state dict (any float dtype, any device) to float64.
func New(cfg Config, sd map[string]*gotch.Tensor) (*Model, error) {
	r := &Model{Cfg: cfg, W: map[string]Tensor{}}
	for k, t := range sd {
		w, err := float64Weight(k, t)
		if err != nil {
			return nil, err
		}
		r.W[k] = w
	}
	return r, nil
}

func float64Weight(name string, t *gotch.Tensor) (Tensor, error) {
	data, err := gotch.ToSlice[float64](t)
	if err != nil {
		return Tensor{}, fmt.Errorf("reference: weight %s: %w", name, err)
	}
	shape := make([]int, t.Dim())
	for i := range shape {
		shape[i] = int(t.Size(i))
	}
	return Tensor{shape, data}, nil
}

// Borrow is New without the copy: each weight of sd is read as float64
// when a pass uses it and dropped after, so at most a few weights are held
// as float64 at a time (a 2.6B-parameter model's float64 copy is 21 GB).
// sd's tensors must stay alive and unchanged while r is used.
func Borrow(cfg Config, sd map[string]*gotch.Tensor) *Model {
	return &Model{Cfg: cfg, W: map[string]Tensor{}, borrowed: sd}
}

// lookup is the weight called name, if r has it. A borrowed weight that
// cannot be read panics: Forward has no error to return it in.
func (r *Model) lookup(name string) (Tensor, bool) {
	if w, ok := r.W[name]; ok {
		return w, true
	}
	t, ok := r.borrowed[name]
	if !ok {
		return Tensor{}, false
	}
	w, err := float64Weight(name, t)
	if err != nil {
		panic(err.Error())
	}
	return w, true
}

// row is row i of the matrix called name: of a borrowed one, only that row
// is read (the embedding's rows, not gemma2-2b's 4.7 GB of them).
func (r *Model) row(name string, i int) []float64 {
	if w, ok := r.W[name]; ok {
		n := w.Shape[1]
		return w.Data[i*n:][:n]
	}
	t, ok := r.borrowed[name]
	if !ok {
		panic(fmt.Sprintf("reference: no weight %s", name))
	}
	return readRows(name, t, i, 1)
}

// readRows reads rows start..start+n-1 of a borrowed weight as float64.
func readRows(name string, t *gotch.Tensor, start, n int) []float64 {
	rows, err := t.Narrow(0, int64(start), int64(n))
	if err != nil {
		panic(fmt.Sprintf("reference: weight %s rows %d..%d: %v", name, start, start+n-1, err))
	}
	defer rows.Free()
	w, err := float64Weight(name, rows)
	if err != nil {
		panic(err.Error())
	}
	return w.Data
}

func (r *Model) get(name string) []float64 {
	w, _ := r.lookup(name)
	return w.Data
}

// weight returns the first of names that r has.
func (r *Model) weight(names ...string) Tensor {
	for _, n := range names {
		if w, ok := r.lookup(n); ok {
			return w
		}
	}
	panic(fmt.Sprintf("reference: no weight %v", names))
}

// bias returns the first of names that r has, or n zeros (nil for n = 0).
func (r *Model) bias(n int, names ...string) []float64 {
	for _, name := range names {
		if w, ok := r.lookup(name); ok {
			return w.Data
		}
	}
	if n == 0 {
		return nil
	}
	return make([]float64, n)
}

// run is one forward pass: the activations recorded so far.
type run struct {
	r    *Model
	acts map[string]Tensor
}

// put records t at hook point name, after the point's edit if any.
func (u *run) put(name string, t Tensor) Tensor {
	if f := u.r.Edits[name]; f != nil {
		t = Tensor{t.Shape, append([]float64(nil), t.Data...)} // t may be another point's value too
		f(t)
	}
	u.acts[name] = t
	return t
}

// Forward returns every hook activation for tokens [batch][pos], under the
// names TransformerLens gives them, plus "logits".
func (r *Model) Forward(tokens [][]int64) map[string]Tensor {
	c := r.Cfg
	u := &run{r, map[string]Tensor{}}
	B, P, M := len(tokens), len(tokens[0]), c.DModel

	embed := newTensor(B, P, M)
	for b := range B {
		for p := range P {
			copy(embed.Data[(b*P+p)*M:][:M], r.row("embed.W_E", int(tokens[b][p])))
		}
	}
	if c.ScaleEmbed {
		embed = scale(embed, embedScale(M, c.DType))
	}
	embed = u.put("hook_embed", embed)
	resid := embed
	var pos Tensor // shortformer's positions, added to the queries' and keys' input
	if c.PositionalEmbeddingType != "rotary" {
		pos = newTensor(B, P, M)
		Wpos := r.get("pos_embed.W_pos")
		for bp := range B * P {
			copy(pos.Data[bp*M:][:M], Wpos[(bp%P)*M:][:M])
		}
		pos = u.put("hook_pos_embed", pos)
		if c.PositionalEmbeddingType != "shortformer" {
			resid = add(embed, pos)
		} else {
			resid = embed
		}
	}
	if c.PositionalEmbeddingType != "shortformer" {
		pos = Tensor{}
	}
	for l := range c.NLayers {
		resid = u.block(l, resid, pos)
	}
	x := u.norm("ln_final", resid)
	logits := r.unembed(x)
	if c.LogitsSoftCap > 0 {
		logits = softCap(logits, c.LogitsSoftCap)
	}
	u.put("logits", logits)
	return u.acts
}

// unembed is x · W_U + b_U. A borrowed W_U is read a block of rows at a
// time: as float64, gemma2-2b's is 4.7 GB.
func (r *Model) unembed(x Tensor) Tensor {
	const name = "unembed.W_U"
	t, ok := r.borrowed[name]
	if _, copied := r.W[name]; copied || !ok {
		WU := r.weight(name)
		return linear(x, WU, r.bias(WU.Shape[1], "unembed.b_U"))
	}
	in, V := int(t.Size(0)), int(t.Size(1))
	out := biasRows(x, V, r.bias(V, "unembed.b_U"))
	step := max(1, (16<<20)/V) // rows of at most 128 MB
	for k0 := 0; k0 < in; k0 += step {
		n := min(step, in-k0)
		accumulate(out, x, readRows(name, t, k0, n), k0, n)
	}
	return out
}

// block is one transformer block, as TransformerLens's TransformerBlock
// hooks it: sequential (GPT-2, Llama), parallel attention and MLP reading
// the same residual (NeoX's use_parallel_residual, modeling_gpt_neox.py
// GPTNeoXLayer.forward: x + attn(ln1(x)) + mlp(ln2(x))), or with Gemma 2's
// extra norms on each sublayer's output (modeling_gemma2.py
// Gemma2DecoderLayer.forward: post_attention_layernorm and
// post_feedforward_layernorm, TransformerLens's ln1_post and ln2_post,
// applied before hook_attn_out and hook_mlp_out).
func (u *run) block(l int, resid, pos Tensor) Tensor {
	c := u.r.Cfg
	pre := "blocks." + strconv.Itoa(l) + "."
	resid = u.put(pre+"hook_resid_pre", resid)
	attnOut := u.attention(l, pre, resid, pos)
	if c.NormBeforeAndAfter {
		attnOut = u.norm(pre+"ln1_post", attnOut)
	}
	attnOut = u.put(pre+"hook_attn_out", attnOut)
	if c.AttnOnly {
		return u.put(pre+"hook_resid_post", add(resid, attnOut))
	}
	mlpIn := resid
	if !c.ParallelAttnMLP {
		mlpIn = u.put(pre+"hook_resid_mid", add(resid, attnOut))
	}
	if c.UseHookMLPIn {
		mlpIn = u.put(pre+"hook_mlp_in", mlpIn)
	}
	mlpOut := u.mlp(pre, u.norm(pre+"ln2", mlpIn))
	if c.NormBeforeAndAfter {
		mlpOut = u.norm(pre+"ln2_post", mlpOut)
	}
	mlpOut = u.put(pre+"hook_mlp_out", mlpOut)
	if c.ParallelAttnMLP {
		return u.put(pre+"hook_resid_post", add(add(resid, attnOut), mlpOut))
	}
	return u.put(pre+"hook_resid_post", add(u.acts[pre+"hook_resid_mid"], mlpOut))
}

// attention is layer l's attention up to its output projection (before
// hook_attn_out).
func (u *run) attention(l int, pre string, resid, pos Tensor) Tensor {
	r, c := u.r, u.r.Cfg
	H, KV := c.NHeads, c.kvHeads()
	// TransformerLens's TransformerBlock: hook_attn_in and the split inputs
	// each repeat resid_pre along a head dimension; the split inputs, when
	// on, feed the attention, else attn_in does.
	qIn, kIn, vIn := resid, resid, resid
	if c.UseAttnIn {
		// hook_attn_in has n_heads heads; with grouped-query attention the
		// keys and values read its first n_key_value_heads heads.
		qIn = u.put(pre+"hook_attn_in", repeatHeads(resid, H))
		kIn, vIn = firstHeads(qIn, KV), firstHeads(qIn, KV)
	}
	if c.UseSplitQKVIn {
		qIn = u.put(pre+"hook_q_input", repeatHeads(resid, H))
		kIn = u.put(pre+"hook_k_input", repeatHeads(resid, KV))
		vIn = u.put(pre+"hook_v_input", repeatHeads(resid, KV))
	}
	qx, kx, vx := u.norm(pre+"ln1", qIn), u.norm(pre+"ln1", kIn), u.norm(pre+"ln1", vIn)
	if pos.Data != nil { // shortformer
		qx, kx = add(qx, pos), add(kx, pos)
	}
	q := u.put(pre+"attn.hook_q", r.project(qx, r.weight(pre+"attn.W_Q"), r.bias(0, pre+"attn.b_Q")))
	k := u.put(pre+"attn.hook_k", r.project(kx, r.weight(pre+"attn._W_K", pre+"attn.W_K"), r.bias(0, pre+"attn._b_K", pre+"attn.b_K")))
	v := u.put(pre+"attn.hook_v", r.project(vx, r.weight(pre+"attn._W_V", pre+"attn.W_V"), r.bias(0, pre+"attn._b_V", pre+"attn.b_V")))
	if c.PositionalEmbeddingType == "rotary" {
		inv := c.invFreq()
		q = u.put(pre+"attn.hook_rot_q", rotary(q, inv, c.RotaryAdjacentPairs))
		k = u.put(pre+"attn.hook_rot_k", rotary(k, inv, c.RotaryAdjacentPairs))
	}
	scores := u.put(pre+"attn.hook_attn_scores", c.scores(l, q, k))
	pattern := u.put(pre+"attn.hook_pattern", softmaxRows(scores, scores.Shape[3]))
	z := u.put(pre+"attn.hook_z", mix(pattern, v))
	WO := r.weight(pre + "attn.W_O")
	M := WO.Shape[2]
	result := headResults(z, WO)
	if c.UseAttnResult {
		result = u.put(pre+"attn.hook_result", result)
	}
	out := newTensor(z.Shape[0], z.Shape[1], M)
	bO := r.bias(M, pre+"attn.b_O")
	for bp := range z.Shape[0] * z.Shape[1] {
		for m := range M {
			s := bO[m]
			for h := range H {
				s += result.Data[(bp*H+h)*M+m]
			}
			out.Data[bp*M+m] = s
		}
	}
	return out
}

// scores are layer l's attention scores [batch head query key]: q·k over
// the score scale, soft-capped, then masked with -inf, as TransformerLens
// hooks hook_attn_scores. Query head h reads key head h / (n_heads /
// n_key_value_heads): Hugging Face's repeat_kv (modeling_llama.py) repeats
// each key/value head n_rep times in a row, i.e. repeat_interleave.
func (c Config) scores(l int, q, k Tensor) Tensor {
	B, P, H, D := q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
	KV := k.Shape[2]
	s := c.attnScale(l, D)
	out := newTensor(B, H, P, P)
	for b := range B {
		for h := range H {
			g := h / (H / KV)
			for i := range P {
				for j := range P {
					v := math.Inf(-1)
					if c.attends(l, i, j) {
						v = 0.0
						for d := range D {
							v += q.Data[((b*P+i)*H+h)*D+d] * k.Data[((b*P+j)*KV+g)*D+d]
						}
						v /= s
						if c.AttnScoresSoftCap > 0 {
							v = softCapValue(v, c.AttnScoresSoftCap)
						}
					}
					out.Data[((b*H+h)*P+i)*P+j] = v
				}
			}
		}
	}
	return out
}

// attnScale is what layer l divides q·k by. TransformerLens's
// AbstractAttention: attn_scale (Gemma: sqrt(query_pre_attn_scalar), as
// modeling_gemma2.py Gemma2Attention's scaling = query_pre_attn_scalar^-0.5)
// or sqrt(d_head); 1 without use_attn_scale; times layer l+1 with
// scale_attn_by_inverse_layer_idx.
func (c Config) attnScale(l, dHead int) float64 {
	s := 1.0
	if c.UseAttnScale {
		s = math.Sqrt(float64(dHead))
		if c.AttnScale > 0 {
			s = c.AttnScale
		}
	}
	if c.ScaleAttnByLayer {
		s *= float64(l + 1)
	}
	return s
}

// attends reports whether query position i of layer l sees key position j:
// causal masking, and on local layers a sliding window of WindowSize keys
// counting the query's own. Hugging Face's sliding-window mask
// (modeling_gemma2.py; masking_utils.py sliding_window_overlay:
// kv_idx > q_idx - sliding_window) keeps i - j < window.
func (c Config) attends(l, i, j int) bool {
	if c.AttentionDir == "causal" && j > i {
		return false
	}
	local := l < len(c.AttnTypes) && c.AttnTypes[l] == "local"
	return !local || c.WindowSize <= 0 || i-j < c.WindowSize
}

// softCapValue is Gemma 2's soft-capping, tanh(x / cap) · cap
// (modeling_gemma2.py: eager_attention_forward for the scores,
// Gemma2ForCausalLM.forward for the logits).
func softCapValue(x, cap float64) float64 { return math.Tanh(x/cap) * cap }

func softCap(x Tensor, cap float64) Tensor {
	return apply(x, func(v float64) float64 { return softCapValue(v, cap) })
}

// invFreq is the rotary inverse frequency of each rotated pair, base^(-2i /
// rotary_dim) for i < rotary_dim/2 (modeling_rope_utils.py
// _compute_default_rope_parameters; modeling_gpt_neox.py
// GPTNeoXRotaryEmbedding), with Llama 3.1's scaling when configured. The
// base is Hugging Face's (rope_theta, rotary_emb_base); TransformerLens
// keeps 10000 for these models, which golens does not follow.
func (c Config) invFreq() []float64 {
	dim := c.rotaryDim()
	base := c.RotaryBase
	if base == 0 {
		base = 10000
	}
	inv := make([]float64, dim/2)
	for i := range inv {
		inv[i] = math.Pow(base, -float64(2*i)/float64(dim))
	}
	if c.UseLlama3Rope {
		inv = llama3Scale(inv, c.Llama3Factor, c.Llama3LowFreq, c.Llama3HighFreq, c.Llama3OriginalCtx)
	}
	return inv
}

// rotaryDim is how many leading dims of each head rotate: NeoX's
// int(head_size * rotary_pct) (modeling_gpt_neox.py GPTNeoXAttention's
// rotary_ndims), TransformerLens's rotary_dim; all of d_head by default.
func (c Config) rotaryDim() int {
	if c.RotaryDim > 0 {
		return c.RotaryDim
	}
	return c.DHead
}

// llama3Scale is Llama 3.1's rope_scaling (rope_type "llama3";
// modeling_rope_utils.py _compute_llama3_parameters): wavelengths shorter
// than original_max_position_embeddings / high_freq_factor keep their
// frequency, those longer than original / low_freq_factor are divided by
// factor, and those between interpolate with smooth = (original / wavelen -
// low) / (high - low): (1 - smooth) · inv / factor + smooth · inv.
func llama3Scale(inv []float64, factor, low, high, original float64) []float64 {
	lowWavelen, highWavelen := original/low, original/high
	out := make([]float64, len(inv))
	for i, f := range inv {
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < highWavelen:
			out[i] = f
		case wavelen > lowWavelen:
			out[i] = f / factor
		default:
			smooth := (original/wavelen - low) / (high - low)
			out[i] = (1-smooth)*f/factor + smooth*f
		}
	}
	return out
}

// rotary rotates x [batch pos head d_head] by position in NeoX's
// rotate-half layout (modeling_gpt_neox.py and modeling_llama.py
// apply_rotary_pos_emb / rotate_half, cos and sin being cat(freqs, freqs)):
// with n = len(inv) pairs, dim i pairs with dim i + n, rotated by the angle
// pos · inv[i]; dims from 2n on pass through (partial rotary). adjacent is
// GPT-J's layout (modeling_gptj.py apply_rotary_pos_emb / rotate_every_two,
// sin and cos repeat_interleave'd by 2): dim 2i pairs with dim 2i + 1.
func rotary(x Tensor, inv []float64, adjacent bool) Tensor {
	B, P, H, D := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	n := len(inv)
	out := Tensor{x.Shape, append([]float64(nil), x.Data...)}
	for b := range B {
		for p := range P {
			for h := range H {
				row := x.Data[((b*P+p)*H+h)*D:][:D]
				o := out.Data[((b*P+p)*H+h)*D:][:D]
				for i := range n {
					a, c := i, i+n // the pair's two dims
					if adjacent {
						a, c = 2*i, 2*i+1
					}
					sin, cos := math.Sincos(float64(p) * inv[i])
					o[a] = row[a]*cos - row[c]*sin
					o[c] = row[c]*cos + row[a]*sin
				}
			}
		}
	}
	return out
}

// mix is the attention's weighted values z [batch pos head d_head] =
// pattern [batch head q k] · v [batch k kv_head d_head], query head h
// reading value head h / (n_heads / n_key_value_heads).
func mix(pattern, v Tensor) Tensor {
	B, H, P := pattern.Shape[0], pattern.Shape[1], pattern.Shape[2]
	KV, D := v.Shape[2], v.Shape[3]
	z := newTensor(B, P, H, D)
	for b := range B {
		for h := range H {
			g := h / (H / KV)
			for i := range P {
				for d := range D {
					s := 0.0
					for j := range P {
						s += pattern.Data[((b*H+h)*P+i)*P+j] * v.Data[((b*P+j)*KV+g)*D+d]
					}
					z.Data[((b*P+i)*H+h)*D+d] = s
				}
			}
		}
	}
	return z
}

// headResults is each head's output [batch pos head d_model] = z · W_O.
func headResults(z, WO Tensor) Tensor {
	B, P, H, D, M := z.Shape[0], z.Shape[1], z.Shape[2], z.Shape[3], WO.Shape[2]
	result := newTensor(B, P, H, M)
	for bp := range B * P {
		for h := range H {
			for m := range M {
				s := 0.0
				for d := range D {
					s += z.Data[(bp*H+h)*D+d] * WO.Data[(h*D+d)*M+m]
				}
				result.Data[(bp*H+h)*M+m] = s
			}
		}
	}
	return result
}

// mlp is the MLP from its normalized input to its output (before
// hook_mlp_out). A gated MLP (modeling_llama.py LlamaMLP.forward:
// down(act(gate(x)) * up(x)); Gemma's GemmaMLP with gelu_pytorch_tanh) is
// hooked as TransformerLens's GatedMLP: hook_pre = x·W_gate (the gate's
// pre-activation), hook_pre_linear = x·W_in (up_proj), hook_post =
// act(pre) * pre_linear + b_in.
func (u *run) mlp(pre string, x Tensor) Tensor {
	r, c := u.r, u.r.Cfg
	WIn := r.weight(pre + "mlp.W_in")
	dMLP := WIn.Shape[1]
	bIn := r.bias(dMLP, pre+"mlp.b_in")
	var post Tensor
	switch {
	case c.GatedMLP:
		gate := u.put(pre+"mlp.hook_pre", linear(x, r.weight(pre+"mlp.W_gate"), make([]float64, dMLP)))
		up := u.put(pre+"mlp.hook_pre_linear", linear(x, WIn, make([]float64, dMLP)))
		act := activation(c.ActFn)
		post = newTensor(gate.Shape...)
		for i, g := range gate.Data {
			post.Data[i] = act(g)*up.Data[i] + bIn[i%dMLP]
		}
	case c.ActFn == "solu_ln":
		preAct := u.put(pre+"mlp.hook_pre", linear(x, WIn, bIn))
		post = u.norm(pre+"mlp.ln", u.put(pre+"mlp.hook_mid", solu(preAct)))
	default:
		preAct := u.put(pre+"mlp.hook_pre", linear(x, WIn, bIn))
		post = apply(preAct, activation(c.ActFn))
	}
	post = u.put(pre+"mlp.hook_post", post)
	WOut := r.weight(pre + "mlp.W_out")
	return linear(post, WOut, r.bias(WOut.Shape[1], pre+"mlp.b_out"))
}

// embedScale is Gemma's embedding normalizer sqrt(d_model), rounded to the
// embedding's dtype as Hugging Face rounds it (modeling_gemma.py
// GemmaModel.forward: torch.tensor(hidden_size**0.5,
// dtype=hidden_states.dtype)).
func embedScale(dModel int, dtype string) float64 {
	return roundTo(math.Sqrt(float64(dModel)), dtype)
}

// roundTo rounds x to the nearest value of dtype (ties to even), for
// normal finite x: float32 keeps 24 significant bits, float16 11,
// bfloat16 8; float64 (or an unknown name) keeps x.
func roundTo(x float64, dtype string) float64 {
	bits := map[string]int{"float32": 24, "float16": 11, "bfloat16": 8}[dtype]
	if bits == 0 || x == 0 {
		return x
	}
	m, e := math.Frexp(x)
	return math.Ldexp(math.RoundToEven(math.Ldexp(m, bits)), e-bits)
}

func scale(x Tensor, s float64) Tensor {
	return apply(x, func(v float64) float64 { return v * s })
}

// norm applies the configured normalization (or none) to x, recording its
// hooks under prefix.
func (u *run) norm(prefix string, x Tensor) Tensor {
	switch {
	case u.r.Cfg.NormalizationType == "":
		return x
	case u.r.Cfg.rms():
		return u.r.rmsNorm(u.acts, prefix, x)
	}
	return u.r.layerNorm(u.acts, prefix, x)
}

// rmsNorm is RMSNorm: x / sqrt(mean(x²) + eps) · w (modeling_llama.py
// LlamaRMSNorm.forward), or · (1 + w) for Gemma (modeling_gemma.py
// GemmaRMSNorm.forward), RMSPre without the weight. The hooks sit where
// TransformerLens's components/rms_norm.py (2.x) puts them: hook_scale is
// sqrt(mean(x²) + eps) [... 1], hook_normalized is x / scale, before the
// weight (unlike LayerNorm's, after it).
func (r *Model) rmsNorm(acts map[string]Tensor, prefix string, x Tensor) Tensor {
	n := x.Shape[len(x.Shape)-1]
	scaleT := newTensor(append(append([]int{}, x.Shape[:len(x.Shape)-1]...), 1)...)
	normalized := newTensor(x.Shape...)
	for i := range len(x.Data) / n {
		row := x.Data[i*n:][:n]
		ss := 0.0
		for _, v := range row {
			ss += v * v
		}
		s := math.Sqrt(ss/float64(n) + r.Cfg.Eps)
		scaleT.Data[i] = s
		for j, v := range row {
			normalized.Data[i*n+j] = v / s
		}
	}
	acts[prefix+".hook_scale"] = scaleT
	acts[prefix+".hook_normalized"] = normalized
	w, ok := r.lookup(prefix + ".w")
	if !ok {
		return normalized
	}
	out := newTensor(x.Shape...)
	for i, v := range normalized.Data {
		wi := w.Data[i%n]
		if r.Cfg.NormWeightPlusOne {
			wi += 1
		}
		out.Data[i] = v * wi
	}
	return out
}

// layerNorm is TransformerLens's LayerNorm (or LayerNormPre without
// weights), recording its hooks under prefix. Where
// the hooks sit is read from TransformerLens's components/layer_norm.py
// (the 2.x HookedTransformer): hook_scale is sqrt(mean((x-mean)²) + eps)
// and hook_normalized the norm's output, (x - mean) / scale · w + b, so
// after the weight and bias; layer_norm_pre.py hooks (x - mean) / scale.
func (r *Model) layerNorm(acts map[string]Tensor, prefix string, x Tensor) Tensor {
	n := x.Shape[len(x.Shape)-1]
	rows := len(x.Data) / n
	scale := newTensor(append(append([]int{}, x.Shape[:len(x.Shape)-1]...), 1)...)
	out := newTensor(x.Shape...)
	for i := range rows {
		row := x.Data[i*n:][:n]
		mean := 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(n)
		ss := 0.0
		for _, v := range row {
			ss += (v - mean) * (v - mean)
		}
		s := math.Sqrt(ss/float64(n) + r.Cfg.Eps)
		scale.Data[i] = s
		for j, v := range row {
			out.Data[i*n+j] = (v - mean) / s
		}
	}
	acts[prefix+".hook_scale"] = scale
	if w, ok := r.lookup(prefix + ".w"); ok {
		b := r.get(prefix + ".b")
		for i := range out.Data {
			out.Data[i] = out.Data[i]*w.Data[i%n] + b[i%n]
		}
	}
	acts[prefix+".hook_normalized"] = out
	return out
}

// project computes [batch pos head d_head] = x · W [head d_model d_head] +
// b [head d_head], for x [batch pos d_model] or per-head [batch pos head
// d_model].
func (r *Model) project(x Tensor, W Tensor, bias []float64) Tensor {
	H, M, D := W.Shape[0], W.Shape[1], W.Shape[2]
	BP := x.Shape[0] * x.Shape[1]
	perHead := len(x.Shape) == 4
	out := newTensor(x.Shape[0], x.Shape[1], H, D)
	for bp := range BP {
		for h := range H {
			row := x.Data[bp*M:][:M]
			if perHead {
				row = x.Data[(bp*H+h)*M:][:M]
			}
			for d := range D {
				s := 0.0
				if bias != nil {
					s = bias[h*D+d]
				}
				for m := range M {
					s += row[m] * W.Data[(h*M+m)*D+d]
				}
				out.Data[(bp*H+h)*D+d] = s
			}
		}
	}
	return out
}

// linear computes x [... in] · W [in out] + b [out].
func linear(x, W Tensor, b []float64) Tensor {
	out := biasRows(x, W.Shape[1], b)
	accumulate(out, x, W.Data, 0, W.Shape[0])
	return out
}

// biasRows is b [out] repeated for each row of x [... in]: [... out].
func biasRows(x Tensor, outN int, b []float64) Tensor {
	out := newTensor(append(append([]int{}, x.Shape[:len(x.Shape)-1]...), outN)...)
	for i := 0; i < len(out.Data); i += outN {
		copy(out.Data[i:][:outN], b)
	}
	return out
}

// accumulate adds x [... in] · W to out [... out], for W rows k0..k0+n-1
// of a matrix [in out] (w holds those rows). Each output sums its terms in
// the order of k, whatever the blocks.
func accumulate(out, x Tensor, w []float64, k0, n int) {
	outN := out.Shape[len(out.Shape)-1]
	in := x.Shape[len(x.Shape)-1]
	for i := range len(x.Data) / in {
		o := out.Data[i*outN:][:outN]
		for k := k0; k < k0+n; k++ {
			xk, row := x.Data[i*in+k], w[(k-k0)*outN:][:outN]
			for j, wj := range row {
				o[j] += xk * wj
			}
		}
	}
}

// add adds b to a, broadcasting b [batch pos d] over a's head dimension
// when a is [batch pos head d].
func add(a, b Tensor) Tensor {
	out := newTensor(a.Shape...)
	n, heads := a.Shape[len(a.Shape)-1], len(a.Data)/len(b.Data)
	for i := range out.Data {
		row, j := i/n, i%n
		out.Data[i] = a.Data[i] + b.Data[(row/heads)*n+j]
	}
	return out
}

func repeatHeads(x Tensor, H int) Tensor {
	B, P, M := x.Shape[0], x.Shape[1], x.Shape[2]
	out := newTensor(B, P, H, M)
	for bp := range B * P {
		for h := range H {
			copy(out.Data[(bp*H+h)*M:][:M], x.Data[bp*M:][:M])
		}
	}
	return out
}

// firstHeads is x [batch pos head d] cut to its first n heads.
func firstHeads(x Tensor, n int) Tensor {
	B, P, H, M := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := newTensor(B, P, n, M)
	for bp := range B * P {
		copy(out.Data[bp*n*M:][:n*M], x.Data[bp*H*M:][:n*M])
	}
	return out
}

func apply(x Tensor, f func(float64) float64) Tensor {
	out := newTensor(x.Shape...)
	for i, v := range x.Data {
		out.Data[i] = f(v)
	}
	return out
}

func softmaxRows(x Tensor, n int) Tensor {
	out := newTensor(x.Shape...)
	for i := 0; i < len(x.Data); i += n {
		mx := math.Inf(-1)
		for _, v := range x.Data[i : i+n] {
			mx = math.Max(mx, v)
		}
		sum := 0.0
		for j, v := range x.Data[i : i+n] {
			e := math.Exp(v - mx)
			out.Data[i+j] = e
			sum += e
		}
		for j := range n {
			out.Data[i+j] /= sum
		}
	}
	return out
}

func solu(x Tensor) Tensor {
	n := x.Shape[len(x.Shape)-1]
	sm := softmaxRows(x, n)
	out := newTensor(x.Shape...)
	for i, v := range x.Data {
		out.Data[i] = v * sm.Data[i]
	}
	return out
}

func activation(name string) func(float64) float64 {
	switch name {
	case "relu":
		return func(x float64) float64 { return math.Max(x, 0) }
	case "gelu":
		return func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
	case "silu", "swish":
		return func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	}
	// gelu_new, gelu_fast and gelu_pytorch_tanh (Gemma): the tanh
	// approximation
	return func(x float64) float64 {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	}
}

// Finite replaces -inf (masked attention scores) by 0, so that RelErr of
// two score tensors stays finite; a score masked on one side only still
// shows as a difference.
func Finite(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, v := range xs {
		if !math.IsInf(v, -1) {
			out[i] = v
		}
	}
	return out
}
