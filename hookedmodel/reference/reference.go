package reference

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

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
// reads, under TransformerLens's JSON names, so that a hookedmodel.Config
// converts through JSON and this package needs nothing from hookedmodel.
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
	NormalizationType       string  `json:"normalization_type"`
	AttentionDir            string  `json:"attention_dir"`
	PositionalEmbeddingType string  `json:"positional_embedding_type"`
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

// Model holds a model's weights as float64, under TransformerLens's
// state-dict names and in its shapes.
type Model struct {
	Cfg Config
	W   map[string]Tensor
	// Edits, when set, change an activation in place at its hook point,
	// before it is recorded and used further: the reference of a hooked run.
	// (The LayerNorm hooks hook_scale and hook_normalized take no edits.)
	Edits map[string]func(Tensor)
}

// New copies a state dict (any float dtype, any device) to float64.
func New(cfg Config, sd map[string]*gotch.Tensor) (*Model, error) {
	r := &Model{Cfg: cfg, W: map[string]Tensor{}}
	for k, t := range sd {
		data, err := gotch.ToSlice[float64](t)
		if err != nil {
			return nil, fmt.Errorf("reference: weight %s: %w", k, err)
		}
		shape := make([]int, t.Dim())
		for i := range shape {
			shape[i] = int(t.Size(i))
		}
		r.W[k] = Tensor{shape, data}
	}
	return r, nil
}

func (r *Model) get(name string) []float64 { return r.W[name].Data }

// Forward returns every hook activation for tokens [batch][pos], under the
// names TransformerLens gives them, plus "logits".
func (r *Model) Forward(tokens [][]int64) map[string]Tensor {
	c := r.Cfg
	B, P, M, H, D := len(tokens), len(tokens[0]), c.DModel, c.NHeads, c.DHead
	acts := map[string]Tensor{}
	put := func(name string, t Tensor) Tensor {
		if f := r.Edits[name]; f != nil {
			t = Tensor{t.Shape, append([]float64(nil), t.Data...)} // t may be another point's value too
			f(t)
		}
		acts[name] = t
		return t
	}

	embed, pos := newTensor(B, P, M), newTensor(B, P, M)
	WE, Wpos := r.get("embed.W_E"), r.get("pos_embed.W_pos")
	for b := range B {
		for p := range P {
			copy(embed.Data[(b*P+p)*M:][:M], WE[int(tokens[b][p])*M:][:M])
			copy(pos.Data[(b*P+p)*M:][:M], Wpos[p*M:][:M])
		}
	}
	embed = put("hook_embed", embed)
	pos = put("hook_pos_embed", pos)
	shortformer := c.PositionalEmbeddingType == "shortformer"
	resid := embed
	if !shortformer {
		resid = add(embed, pos)
	}
	for l := range c.NLayers {
		pre := "blocks." + strconv.Itoa(l) + "."
		resid = put(pre+"hook_resid_pre", resid)
		in := resid
		if c.UseAttnIn || c.UseSplitQKVIn {
			in = repeatHeads(resid, H)
			if c.UseAttnIn {
				put(pre+"hook_attn_in", in)
			}
			if c.UseSplitQKVIn {
				for _, n := range []string{"q", "k", "v"} {
					put(pre+"hook_"+n+"_input", in)
				}
			}
		}
		x := r.norm(acts, pre+"ln1", in)
		qkIn := x
		if shortformer {
			qkIn = add(x, pos)
		}
		q := put(pre+"attn.hook_q", r.project(qkIn, pre+"attn.W_Q", pre+"attn.b_Q"))
		k := put(pre+"attn.hook_k", r.project(qkIn, pre+"attn.W_K", pre+"attn.b_K"))
		v := put(pre+"attn.hook_v", r.project(x, pre+"attn.W_V", pre+"attn.b_V"))
		scores := newTensor(B, H, P, P)
		// TransformerLens's AbstractAttention: attn_scale = sqrt(d_head)
		// (1 without use_attn_scale), times layer_id+1 with
		// scale_attn_by_inverse_layer_idx; scores = q·k / attn_scale.
		scale := 1.0
		if c.UseAttnScale {
			scale = math.Sqrt(float64(D))
		}
		if c.ScaleAttnByLayer {
			scale *= float64(l + 1)
		}
		for b := range B {
			for h := range H {
				for i := range P {
					for j := range P {
						s := 0.0
						for d := range D {
							s += q.Data[((b*P+i)*H+h)*D+d] * k.Data[((b*P+j)*H+h)*D+d]
						}
						if c.AttentionDir == "causal" && j > i {
							s = math.Inf(-1)
						} else {
							s /= scale
						}
						scores.Data[((b*H+h)*P+i)*P+j] = s
					}
				}
			}
		}
		scores = put(pre+"attn.hook_attn_scores", scores)
		pattern := put(pre+"attn.hook_pattern", softmaxRows(scores, P))
		z := newTensor(B, P, H, D)
		for b := range B {
			for h := range H {
				for i := range P {
					for d := range D {
						s := 0.0
						for j := range P {
							s += pattern.Data[((b*H+h)*P+i)*P+j] * v.Data[((b*P+j)*H+h)*D+d]
						}
						z.Data[((b*P+i)*H+h)*D+d] = s
					}
				}
			}
		}
		z = put(pre+"attn.hook_z", z)
		result := newTensor(B, P, H, M)
		WO := r.get(pre + "attn.W_O")
		for bp := range B * P {
			for h := range H {
				for m := range M {
					s := 0.0
					for d := range D {
						s += z.Data[(bp*H+h)*D+d] * WO[(h*D+d)*M+m]
					}
					result.Data[(bp*H+h)*M+m] = s
				}
			}
		}
		if c.UseAttnResult {
			result = put(pre+"attn.hook_result", result)
		}
		attnOut := newTensor(B, P, M)
		bO := r.get(pre + "attn.b_O")
		for bp := range B * P {
			for m := range M {
				s := bO[m]
				for h := range H {
					s += result.Data[(bp*H+h)*M+m]
				}
				attnOut.Data[bp*M+m] = s
			}
		}
		attnOut = put(pre+"hook_attn_out", attnOut)
		if c.AttnOnly {
			resid = put(pre+"hook_resid_post", add(resid, attnOut))
			continue
		}
		mid := put(pre+"hook_resid_mid", add(resid, attnOut))
		if c.UseHookMLPIn {
			put(pre+"hook_mlp_in", mid)
		}
		preAct := put(pre+"mlp.hook_pre", linear(r.norm(acts, pre+"ln2", mid), r.W[pre+"mlp.W_in"], r.get(pre+"mlp.b_in")))
		var post Tensor
		if c.ActFn == "solu_ln" {
			midAct := put(pre+"mlp.hook_mid", solu(preAct))
			post = r.norm(acts, pre+"mlp.ln", midAct)
		} else {
			post = apply(preAct, activation(c.ActFn))
		}
		post = put(pre+"mlp.hook_post", post)
		mlpOut := put(pre+"hook_mlp_out", linear(post, r.W[pre+"mlp.W_out"], r.get(pre+"mlp.b_out")))
		resid = put(pre+"hook_resid_post", add(mid, mlpOut))
	}
	x := r.norm(acts, "ln_final", resid)
	put("logits", linear(x, r.W["unembed.W_U"], r.get("unembed.b_U")))
	return acts
}

// norm is TransformerLens's LayerNorm (or LayerNormPre without weights, or
// nothing without normalization), recording its hooks under prefix. Where
// the hooks sit is read from TransformerLens's components/layer_norm.py
// (the 2.x HookedTransformer): hook_scale is sqrt(mean((x-mean)²) + eps)
// and hook_normalized the norm's output, (x - mean) / scale · w + b, so
// after the weight and bias; layer_norm_pre.py hooks (x - mean) / scale.
func (r *Model) norm(acts map[string]Tensor, prefix string, x Tensor) Tensor {
	if r.Cfg.NormalizationType == "" {
		return x
	}
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
	if w, ok := r.W[prefix+".w"]; ok {
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
func (r *Model) project(x Tensor, wName, bName string) Tensor {
	W, bias := r.W[wName], r.get(bName)
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
				s := bias[h*D+d]
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
	in, outN := W.Shape[0], W.Shape[1]
	rows := len(x.Data) / in
	out := newTensor(append(append([]int{}, x.Shape[:len(x.Shape)-1]...), outN)...)
	for i := range rows {
		for o := range outN {
			s := b[o]
			for k := range in {
				s += x.Data[i*in+k] * W.Data[k*outN+o]
			}
			out.Data[i*outN+o] = s
		}
	}
	return out
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
	case "silu":
		return func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	}
	// gelu_new and gelu_fast: GPT-2's tanh approximation
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
