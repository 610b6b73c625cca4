package hookedmodel

import (
	"math"

	"github.com/golens/golens/gotch"
)

// Attention is a multi-head attention layer. Its weights are stored the
// way the forward pass consumes them, as nn.Linear weights [out in], so a
// projection is one fused GEMM with its bias; W_Q, W_K, W_V and W_O give
// TransformerLens's [head ...] views of the same memory.
type Attention struct {
	WQKV *gotch.Tensor // [3·n_heads·d_head, d_model]: the rows of W_Q, then W_K, then W_V
	BQKV *gotch.Tensor // [3·n_heads·d_head]
	WO   *gotch.Tensor // [d_model, n_heads·d_head]
	BO   *gotch.Tensor // [d_model]

	nHeads, dHead int64
	attnScale     float64 // divides the scores: sqrt(d_head) (1 without use_attn_scale), times l+1 with scale_attn_by_inverse_layer_idx
	upcast        bool    // reorder_and_upcast_attn in a float16/bfloat16 model: scores only on the explicit float32 path
	causal        bool
	useResult     bool
	hooks         attnHooks
	views         attnViews
}

// attnViews are views of the weights that prepare makes once, so a pass
// never creates (and must free) views of parameters.
type attnViews struct {
	w, b   [3]*gotch.Tensor // W_Q, W_K, W_V as [n_heads·d_head, d_model] and their biases
	wHead  [3]*gotch.Tensor // W_Q, W_K, W_V as TransformerLens's [n_heads d_model d_head]
	bHead  [3]*gotch.Tensor // b_Q, b_K, b_V as [n_heads d_head]
	wOHead *gotch.Tensor    // W_O as [n_heads d_head d_model]
}

type attnHooks struct{ q, k, v, scores, pattern, z, result string }

func newAttention(cfg *Config, prefix string, layer int) *Attention {
	a := &Attention{
		nHeads:    int64(cfg.NHeads),
		dHead:     int64(cfg.DHead),
		attnScale: 1,
		causal:    cfg.AttentionDir == "causal",
		useResult: cfg.UseAttnResult,
	}
	if cfg.UseAttnScale {
		a.attnScale = math.Sqrt(float64(cfg.DHead))
	}
	if cfg.AttnScaleByIdx {
		// Hugging Face's GPT2Attention._attn divides the scores by
		// float(layer_idx + 1) (layer_idx counts from 0) after, and
		// independently of, scale_attn_weights' sqrt(d_head);
		// TransformerLens's AbstractAttention multiplies the same factor
		// into attn_scale (1 without use_attn_scale), so hook_attn_scores
		// is q·k / (sqrt(d_head)·(l+1)) in both, before the causal mask.
		// (Hugging Face's SDPA and FlashAttention paths ignored the flag
		// until transformers PR #44397; its eager path is the definition.)
		a.attnScale *= float64(layer + 1)
	}
	if d, err := cfg.dtype(); err == nil && (d == gotch.Half || d == gotch.BFloat16) {
		a.upcast = cfg.ReorderUpcastAttn
	}
	h := func(n string) string { return prefix + ".hook_" + n }
	a.hooks = attnHooks{h("q"), h("k"), h("v"), h("attn_scores"), h("pattern"), h("z"), h("result")}
	return a
}

func (a *Attention) hookNames() []string {
	n := []string{a.hooks.q, a.hooks.k, a.hooks.v, a.hooks.scores, a.hooks.pattern, a.hooks.z}
	if a.useResult {
		n = append(n, a.hooks.result)
	}
	return n
}

// prepare (re)makes the weight views after the weights change.
func (a *Attention) prepare() {
	a.free()
	s := gotch.NewScope()
	defer s.Close()
	wQKV, bQKV, wO := borrow(s, a.WQKV), borrow(s, a.BQKV), borrow(s, a.WO)
	hd, dModel := a.nHeads*a.dHead, a.WQKV.Size(1)
	v := &a.views
	for i := range int64(3) {
		w, b := wQKV.MustNarrow(0, i*hd, hd), bQKV.MustNarrow(0, i*hd, hd)
		wh := w.MustView([]int64{a.nHeads, a.dHead, dModel}).MustPermute([]int64{0, 2, 1})
		bh := b.MustView([]int64{a.nHeads, a.dHead})
		// Keep only after every view is made: a kept tensor leaves s, and
		// ops on it would too.
		v.w[i], v.b[i], v.wHead[i], v.bHead[i] = s.Keep(w), s.Keep(b), s.Keep(wh), s.Keep(bh)
	}
	v.wOHead = s.Keep(wO.MustView([]int64{dModel, a.nHeads, a.dHead}).MustPermute([]int64{1, 2, 0}))
}

func (a *Attention) free() {
	v := &a.views
	for i := range 3 {
		v.w[i].Free()
		v.b[i].Free()
		v.wHead[i].Free()
		v.bHead[i].Free()
	}
	v.wOHead.Free()
	*v = attnViews{}
}

// project computes q, k or v [batch pos head d_head] from input [batch pos
// d_model], or from per-head inputs [batch pos head d_model] (split qkv
// input, attn_in).
func (a *Attention) project(p *pass, i int, in *gotch.Tensor) *gotch.Tensor {
	var out *gotch.Tensor
	if in.Dim() == 4 {
		prod := gotch.MustEinsum("bphm,hmd->bphd", []*gotch.Tensor{in, a.views.wHead[i]})
		out = prod.MustAdd(a.views.bHead[i])
		p.release(prod)
	} else {
		lin := in.MustLinear(a.views.w[i], a.views.b[i])
		out = lin.MustView([]int64{in.Size(0), in.Size(1), a.nHeads, a.dHead})
		p.release(lin)
	}
	return out
}

// forward attends from qIn to kIn/vIn. keep marks, per batch row, the key
// positions that are real tokens ([batch key_pos] bool), or is nil. past
// holds the keys and values of earlier positions when generating. It
// releases what it made but its result.
func (a *Attention) forward(p *pass, qIn, kIn, vIn, keep *gotch.Tensor, past *kvEntry) *gotch.Tensor {
	var q, k, v, qkv *gotch.Tensor
	if qIn == kIn && kIn == vIn && qIn.Dim() == 3 {
		b, pos := qIn.Size(0), qIn.Size(1)
		lin := qIn.MustLinear(a.WQKV, a.BQKV)
		qkv = lin.MustView([]int64{b, pos, 3, a.nHeads, a.dHead})
		p.release(lin)
		q, k, v = qkv.MustSelect(2, 0), qkv.MustSelect(2, 1), qkv.MustSelect(2, 2)
	} else {
		q, k, v = a.project(p, 0, qIn), a.project(p, 1, kIn), a.project(p, 2, vIn)
	}
	q, k, v = p.at(a.hooks.q, q), p.at(a.hooks.k, k), p.at(a.hooks.v, v)
	offset := int64(0)
	k0, v0 := k, v
	if past != nil {
		offset = past.len()
		k, v = past.append(p, k, v)
	}
	qh := q.MustPermute([]int64{0, 2, 1, 3}) // [batch head query d_head]
	kh := k.MustPermute([]int64{0, 2, 1, 3}) // [batch head key d_head]
	vh := v.MustPermute([]int64{0, 2, 1, 3})

	var zh *gotch.Tensor // [batch head query d_head]
	if a.fusable(p, keep, offset) {
		zh = gotch.MustScaledDotProductAttention(qh, kh, vh, nil, a.causal)
	} else {
		pattern := a.pattern(p, qh, kh, keep, offset)
		zh = pattern.MustMatmul(vh)
		p.release(pattern)
	}
	p.release(qkv, q, k, v, k0, v0, qh, kh, vh)
	z := p.at(a.hooks.z, zh.MustPermute([]int64{0, 2, 1, 3})) // [batch query head d_head]
	p.release(zh)
	out := a.output(p, z)
	p.release(z)
	return out
}

// fusable reports whether the fused kernel (scaled_dot_product_attention)
// may stand in for the explicit path: nobody observes scores or pattern,
// the scale is the kernel's own, and the mask is plain causal (or none).
// The kernel divides by sqrt(d_head) and libtorch 1.13's takes no other
// scale, so a layer whose divisor differs (no use_attn_scale; a layer past
// the first with scale_attn_by_inverse_layer_idx) stays on the explicit
// path; so does a float16/bfloat16 model with reorder_and_upcast_attn,
// whose scores must be float32.
// The kernel computes the same function, not always the same bits: on
// libtorch 1.13 it is the explicit math (equal bit for bit); on 2.x the
// CPU kernel works in blocks with an online softmax and differs by float32
// rounding (2.4e-7 at most on the test models). "Agree" means within 1e-5
// relative on logits and on metrics computed from them
// (TestFusedAttentionMatchesExplicit, the patching tests): observing a
// pattern, which forces the explicit path, may move results by that much.
func (a *Attention) fusable(p *pass, keep *gotch.Tensor, offset int64) bool {
	return !p.wants(a.hooks.scores) && !p.wants(a.hooks.pattern) &&
		keep == nil && offset == 0 && a.attnScale == math.Sqrt(float64(a.dHead)) && !a.upcast
}

// pattern computes the attention pattern [batch head query key]; it
// releases what it made but its result.
func (a *Attention) pattern(p *pass, qh, kh, keep *gotch.Tensor, offset int64) *gotch.Tensor {
	dtype := qh.DType()
	var made [6]*gotch.Tensor
	if dtype == gotch.Half || dtype == gotch.BFloat16 {
		// scores in float32, as TransformerLens does (and as Hugging Face's
		// reorder_and_upcast_attn asks)
		qh, kh = qh.MustTo(gotch.Float), kh.MustTo(gotch.Float)
		made[0], made[1] = qh, kh
	}
	kt := kh.MustTranspose(-2, -1)
	prod := qh.MustMatmul(kt)
	scores := prod.MustDivScalar(a.attnScale)
	made[2], made[3] = kt, prod
	if mask := a.blocked(p, scores, keep, offset); mask != nil {
		scaled := scores
		scores = scores.MustMaskedFill(mask, math.Inf(-1))
		made[4], made[5] = scaled, mask
	}
	p.release(made[:]...)
	scores = p.at(a.hooks.scores, scores)
	pattern := scores.MustSoftmax(-1)
	p.release(scores)
	if keep != nil {
		// A padding query sees no key at all; its NaN row becomes zeros.
		nan := pattern.MustIsNan()
		filled := pattern.MustMaskedFill(nan, 0)
		p.release(nan, pattern)
		pattern = filled
	}
	pattern = p.at(a.hooks.pattern, pattern)
	out := pattern.MustTo(dtype)
	p.release(pattern)
	return out
}

// blocked is the mask of the scores to ignore: later keys under causal
// attention, and padding keys; nil when nothing is masked.
func (a *Attention) blocked(p *pass, scores, keep *gotch.Tensor, offset int64) *gotch.Tensor {
	nq, nk := scores.Size(-2), scores.Size(-1)
	var mask *gotch.Tensor
	if a.causal {
		// key j is later than query i when j > i + offset
		ones := p.s.Attach(gotch.MustOnes([]int64{nq, nk}, gotch.Bool, scores.Device()))
		mask = ones.MustTriu(offset + 1)
		p.release(ones)
	}
	if keep != nil {
		not := keep.MustLogicalNot()
		pad := not.MustView([]int64{keep.Size(0), 1, 1, nk})
		p.release(not)
		if mask == nil {
			return pad
		}
		both := mask.MustLogicalOr(pad)
		p.release(mask, pad)
		return both
	}
	return mask
}

// output maps z [batch pos head d_head] to the residual stream, through
// the per-head results when use_attn_result asks for them.
func (a *Attention) output(p *pass, z *gotch.Tensor) *gotch.Tensor {
	b, pos := z.Size(0), z.Size(1)
	if !a.useResult {
		flat := z.MustReshape([]int64{b, pos, a.nHeads * a.dHead})
		out := flat.MustLinear(a.WO, a.BO)
		p.release(flat)
		return out
	}
	result := p.at(a.hooks.result, gotch.MustEinsum("bphd,hdm->bphm", []*gotch.Tensor{z, a.views.wOHead}))
	sum := result.MustSumDims([]int64{2}, false)
	out := sum.MustAdd(a.BO)
	p.release(result, sum)
	return out
}
