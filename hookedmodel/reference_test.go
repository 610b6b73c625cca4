package hookedmodel

import (
	"math"
	"strings"

	"github.com/golens/golens/gotch"
)

// A float64 forward pass written in plain Go, independent of libtorch: the
// reference every hook activation is checked against. It follows
// TransformerLens's definitions step by step; arrays are flat, row-major.

type refTensor struct {
	shape []int
	data  []float64
}

func newRef(shape ...int) refTensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return refTensor{shape, make([]float64, n)}
}

// refModel holds a model's weights as float64, in TransformerLens's shapes.
type refModel struct {
	cfg Config
	w   map[string]refTensor
	// edits, when set, change an activation in place at its hook point,
	// before it is recorded and used further: the reference of a hooked run.
	// (The LayerNorm hooks hook_scale and hook_normalized take no edits.)
	edits map[string]func(refTensor)
}

func newRefModel(cfg Config, sd map[string]*gotch.Tensor) refModel {
	r := refModel{cfg: cfg, w: map[string]refTensor{}}
	for k, t := range sd {
		shape := make([]int, t.Dim())
		for i := range shape {
			shape[i] = int(t.Size(i))
		}
		r.w[k] = refTensor{shape, gotch.MustToSlice[float64](t)}
	}
	return r
}

func (r refModel) get(name string) []float64 { return r.w[name].data }

// forward returns every hook activation for tokens [batch][pos], under the
// names TransformerLens gives them, plus "logits".
func (r refModel) forward(tokens [][]int64) map[string]refTensor {
	c := r.cfg
	B, P, M, H, D := len(tokens), len(tokens[0]), c.DModel, c.NHeads, c.DHead
	acts := map[string]refTensor{}
	put := func(name string, t refTensor) refTensor {
		if f := r.edits[name]; f != nil {
			t = refTensor{t.shape, append([]float64(nil), t.data...)} // t may be another point's value too
			f(t)
		}
		acts[name] = t
		return t
	}

	embed, pos := newRef(B, P, M), newRef(B, P, M)
	WE, Wpos := r.get("embed.W_E"), r.get("pos_embed.W_pos")
	for b := range B {
		for p := range P {
			copy(embed.data[(b*P+p)*M:][:M], WE[int(tokens[b][p])*M:][:M])
			copy(pos.data[(b*P+p)*M:][:M], Wpos[p*M:][:M])
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
		pre := "blocks." + itoa(l) + "."
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
		scores := newRef(B, H, P, P)
		scale := 1.0
		if c.UseAttnScale {
			scale = math.Sqrt(float64(D))
		}
		for b := range B {
			for h := range H {
				for i := range P {
					for j := range P {
						s := 0.0
						for d := range D {
							s += q.data[((b*P+i)*H+h)*D+d] * k.data[((b*P+j)*H+h)*D+d]
						}
						if c.AttentionDir == "causal" && j > i {
							s = math.Inf(-1)
						} else {
							s /= scale
						}
						scores.data[((b*H+h)*P+i)*P+j] = s
					}
				}
			}
		}
		scores = put(pre+"attn.hook_attn_scores", scores)
		pattern := put(pre+"attn.hook_pattern", softmaxRows(scores, P))
		z := newRef(B, P, H, D)
		for b := range B {
			for h := range H {
				for i := range P {
					for d := range D {
						s := 0.0
						for j := range P {
							s += pattern.data[((b*H+h)*P+i)*P+j] * v.data[((b*P+j)*H+h)*D+d]
						}
						z.data[((b*P+i)*H+h)*D+d] = s
					}
				}
			}
		}
		z = put(pre+"attn.hook_z", z)
		result := newRef(B, P, H, M)
		WO := r.get(pre + "attn.W_O")
		for bp := range B * P {
			for h := range H {
				for m := range M {
					s := 0.0
					for d := range D {
						s += z.data[(bp*H+h)*D+d] * WO[(h*D+d)*M+m]
					}
					result.data[(bp*H+h)*M+m] = s
				}
			}
		}
		if c.UseAttnResult {
			result = put(pre+"attn.hook_result", result)
		}
		attnOut := newRef(B, P, M)
		bO := r.get(pre + "attn.b_O")
		for bp := range B * P {
			for m := range M {
				s := bO[m]
				for h := range H {
					s += result.data[(bp*H+h)*M+m]
				}
				attnOut.data[bp*M+m] = s
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
		preAct := put(pre+"mlp.hook_pre", linear(r.norm(acts, pre+"ln2", mid), r.w[pre+"mlp.W_in"], r.get(pre+"mlp.b_in")))
		var post refTensor
		if c.ActFn == "solu_ln" {
			midAct := put(pre+"mlp.hook_mid", solu(preAct))
			post = r.norm(acts, pre+"mlp.ln", midAct)
		} else {
			post = apply(preAct, activation(c.ActFn))
		}
		post = put(pre+"mlp.hook_post", post)
		mlpOut := put(pre+"hook_mlp_out", linear(post, r.w[pre+"mlp.W_out"], r.get(pre+"mlp.b_out")))
		resid = put(pre+"hook_resid_post", add(mid, mlpOut))
	}
	x := r.norm(acts, "ln_final", resid)
	put("logits", linear(x, r.w["unembed.W_U"], r.get("unembed.b_U")))
	return acts
}

// norm is TransformerLens's LayerNorm (or LayerNormPre without weights, or
// nothing without normalization), recording its hooks under prefix.
func (r refModel) norm(acts map[string]refTensor, prefix string, x refTensor) refTensor {
	if r.cfg.NormalizationType == "" {
		return x
	}
	n := x.shape[len(x.shape)-1]
	rows := len(x.data) / n
	scale := newRef(append(append([]int{}, x.shape[:len(x.shape)-1]...), 1)...)
	out := newRef(x.shape...)
	for i := range rows {
		row := x.data[i*n:][:n]
		mean := 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(n)
		ss := 0.0
		for _, v := range row {
			ss += (v - mean) * (v - mean)
		}
		s := math.Sqrt(ss/float64(n) + r.cfg.Eps)
		scale.data[i] = s
		for j, v := range row {
			out.data[i*n+j] = (v - mean) / s
		}
	}
	acts[prefix+".hook_scale"] = scale
	acts[prefix+".hook_normalized"] = out
	w, ok := r.w[prefix+".w"]
	if !ok {
		return out
	}
	res := newRef(x.shape...)
	b := r.get(prefix + ".b")
	for i := range res.data {
		res.data[i] = out.data[i]*w.data[i%n] + b[i%n]
	}
	return res
}

// project computes [batch pos head d_head] = x · W [head d_model d_head] +
// b [head d_head], for x [batch pos d_model] or per-head [batch pos head
// d_model].
func (r refModel) project(x refTensor, wName, bName string) refTensor {
	W, bias := r.w[wName], r.get(bName)
	H, M, D := W.shape[0], W.shape[1], W.shape[2]
	BP := x.shape[0] * x.shape[1]
	perHead := len(x.shape) == 4
	out := newRef(x.shape[0], x.shape[1], H, D)
	for bp := range BP {
		for h := range H {
			row := x.data[bp*M:][:M]
			if perHead {
				row = x.data[(bp*H+h)*M:][:M]
			}
			for d := range D {
				s := bias[h*D+d]
				for m := range M {
					s += row[m] * W.data[(h*M+m)*D+d]
				}
				out.data[(bp*H+h)*D+d] = s
			}
		}
	}
	return out
}

// linear computes x [... in] · W [in out] + b [out].
func linear(x, W refTensor, b []float64) refTensor {
	in, outN := W.shape[0], W.shape[1]
	rows := len(x.data) / in
	out := newRef(append(append([]int{}, x.shape[:len(x.shape)-1]...), outN)...)
	for i := range rows {
		for o := range outN {
			s := b[o]
			for k := range in {
				s += x.data[i*in+k] * W.data[k*outN+o]
			}
			out.data[i*outN+o] = s
		}
	}
	return out
}

// add adds b to a, broadcasting b [batch pos d] over a's head dimension
// when a is [batch pos head d].
func add(a, b refTensor) refTensor {
	out := newRef(a.shape...)
	n, heads := a.shape[len(a.shape)-1], len(a.data)/len(b.data)
	for i := range out.data {
		row, j := i/n, i%n
		out.data[i] = a.data[i] + b.data[(row/heads)*n+j]
	}
	return out
}

func repeatHeads(x refTensor, H int) refTensor {
	B, P, M := x.shape[0], x.shape[1], x.shape[2]
	out := newRef(B, P, H, M)
	for bp := range B * P {
		for h := range H {
			copy(out.data[(bp*H+h)*M:][:M], x.data[bp*M:][:M])
		}
	}
	return out
}

func apply(x refTensor, f func(float64) float64) refTensor {
	out := newRef(x.shape...)
	for i, v := range x.data {
		out.data[i] = f(v)
	}
	return out
}

func softmaxRows(x refTensor, n int) refTensor {
	out := newRef(x.shape...)
	for i := 0; i < len(x.data); i += n {
		mx := math.Inf(-1)
		for _, v := range x.data[i : i+n] {
			mx = math.Max(mx, v)
		}
		sum := 0.0
		for j, v := range x.data[i : i+n] {
			e := math.Exp(v - mx)
			out.data[i+j] = e
			sum += e
		}
		for j := range n {
			out.data[i+j] /= sum
		}
	}
	return out
}

func solu(x refTensor) refTensor {
	n := x.shape[len(x.shape)-1]
	sm := softmaxRows(x, n)
	out := newRef(x.shape...)
	for i, v := range x.data {
		out.data[i] = v * sm.data[i]
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

// finite replaces -inf (masked attention scores) by 0 so that relative
// errors stay finite; the caller checks the masks agree first.
func finite(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, v := range xs {
		if !math.IsInf(v, -1) {
			out[i] = v
		}
	}
	return out
}

func isScores(name string) bool { return strings.HasSuffix(name, "hook_attn_scores") }
