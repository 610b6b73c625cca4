package hookedmodel

import (
	"math"
	"slices"
	"sync"

	"github.com/golens/golens/gotch"
)

// Attention is a multi-head attention layer. Its weights are stored the
// way the forward pass consumes them, as nn.Linear weights [out in], so a
// projection is one fused GEMM with its bias; W_Q, W_K, W_V and W_O give
// TransformerLens's [head ...] views of the same memory.
type Attention struct {
	WQKV *gotch.Tensor // [(n_heads+2·n_kv_heads)·d_head, d_model]: the rows of W_Q, then W_K, then W_V
	BQKV *gotch.Tensor // [(n_heads+2·n_kv_heads)·d_head]
	WO   *gotch.Tensor // [d_model, n_heads·d_head]
	BO   *gotch.Tensor // [d_model]

	nHeads, dHead int64
	nKV           int64   // key and value heads: n_key_value_heads, or n_heads
	grouped       bool    // n_key_value_heads is set: TransformerLens's GroupedQueryAttention (_W_K, _W_V)
	attnScale     float64 // divides the scores: attn_scale (1 without use_attn_scale), times l+1 with scale_attn_by_inverse_layer_idx
	softCap       float64 // attn_scores_soft_cap, or 0 for none
	window        int64   // a local layer's window_size, or 0 for global attention
	upcast        bool    // reorder_and_upcast_attn in a float16/bfloat16 model: scores only on the explicit float32 path
	causal        bool
	useResult     bool
	rotary        *rotary // rotary positions on q and k, or nil
	hooks         attnHooks
	views         attnViews
	expMu         sync.Mutex // guards views.wExp, views.bExp and views.expVersion
}

// attnViews are views of the weights that prepare makes once, so a pass
// never creates (and must free) views of parameters.
type attnViews struct {
	w, b   [3]*gotch.Tensor // W_Q, W_K, W_V as [n_heads·d_head, d_model] and their biases
	wHead  [3]*gotch.Tensor // W_Q, W_K, W_V as TransformerLens's [n_heads d_model d_head]
	bHead  [3]*gotch.Tensor // b_Q, b_K, b_V as [n_heads d_head]
	wOHead *gotch.Tensor    // W_O as [n_heads d_head d_model]
	// wExp, bExp are W_K, W_V [n_heads d_model d_head] and b_K, b_V
	// [n_heads d_head] repeated per query head (copies), as
	// TransformerLens's GroupedQueryAttention gives W_K and W_V; index 0
	// unused; nil without grouped-query attention, and until first asked
	// for (see expanded).
	wExp, bExp [3]*gotch.Tensor
	expVersion int64 // WQKV's and BQKV's version when wExp, bExp were made
}

type attnHooks struct{ q, k, v, rotQ, rotK, scores, pattern, z, result string }

func newAttention(cfg *Config, prefix string, layer int) *Attention {
	a := &Attention{
		nHeads:    int64(cfg.NHeads),
		dHead:     int64(cfg.DHead),
		nKV:       int64(cfg.kvHeads()),
		grouped:   cfg.NKeyValueHeads > 0,
		attnScale: 1,
		causal:    cfg.AttentionDir == "causal",
		useResult: cfg.UseAttnResult,
		rotary:    newRotary(cfg),
		softCap:   max(cfg.AttnScoresSoftCap, 0),
	}
	if cfg.UseLocalAttn && cfg.AttnTypes.Local(layer) {
		a.window = int64(*cfg.WindowSize)
	}
	if cfg.UseAttnScale {
		// Hugging Face's Gemma 2 multiplies by query_pre_attn_scalar^-0.5
		// where golens divides by its square root: equal up to rounding.
		a.attnScale = cfg.AttnScale
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
	a.hooks = attnHooks{h("q"), h("k"), h("v"), h("rot_q"), h("rot_k"), h("attn_scores"), h("pattern"), h("z"), h("result")}
	return a
}

func (a *Attention) hookNames() []string {
	n := []string{a.hooks.q, a.hooks.k, a.hooks.v}
	if a.rotary != nil {
		n = append(n, a.hooks.rotQ, a.hooks.rotK)
	}
	n = append(n, a.hooks.scores, a.hooks.pattern, a.hooks.z)
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
	dModel := a.WQKV.Size(1)
	v := &a.views
	start := int64(0)
	for i := range 3 {
		heads := a.heads(i)
		w, b := wQKV.MustNarrow(0, start, heads*a.dHead), bQKV.MustNarrow(0, start, heads*a.dHead)
		start += heads * a.dHead
		wh := w.MustView([]int64{heads, a.dHead, dModel}).MustPermute([]int64{0, 2, 1})
		bh := b.MustView([]int64{heads, a.dHead})
		// Keep only after every view is made: a kept tensor leaves s, and
		// ops on it would too.
		v.w[i], v.b[i], v.wHead[i], v.bHead[i] = s.Keep(w), s.Keep(b), s.Keep(wh), s.Keep(bh)
	}
	v.wOHead = s.Keep(wO.MustView([]int64{dModel, a.nHeads, a.dHead}).MustPermute([]int64{1, 2, 0}))
}

func (a *Attention) free() {
	a.expMu.Lock()
	defer a.expMu.Unlock()
	v := &a.views
	for i := range 3 {
		v.w[i].Free()
		v.b[i].Free()
		v.wHead[i].Free()
		v.bHead[i].Free()
		v.wExp[i].Free()
		v.bExp[i].Free()
	}
	v.wOHead.Free()
	*v = attnViews{}
}

// heads is the number of heads of q (i = 0), k (1) or v (2).
func (a *Attention) heads(i int) int64 {
	if i == 0 {
		return a.nHeads
	}
	return a.nKV
}

// qkvVersion moves with every in-place write to WQKV or BQKV (or a view
// of them); an error means a freed weight.
func (a *Attention) qkvVersion() (int64, error) {
	w, err := a.WQKV.Version()
	if err != nil {
		return 0, err
	}
	b, err := a.BQKV.Version()
	return w + b, err
}

// expanded is the key or value weight (i = 1, 2; its bias when bias is
// set) repeated per query head; nil without grouped-query attention or
// once the model is freed. The copies are made on first use — n_heads /
// n_kv_heads times W_K and W_V is 25% more than a Llama 3 8B's weights,
// which neither a pass nor a load needs — and made again, in place, when
// WQKV or BQKV were written since, so a handle lent before stays valid and
// shows the new weights. It panics with a *gotch.Error if a copy fails;
// its callers run under gotch.Try.
func (a *Attention) expanded(i int, bias bool) *gotch.Tensor {
	a.expMu.Lock()
	defer a.expMu.Unlock()
	v := &a.views
	if a.nKV == a.nHeads || i == 0 || v.wHead[i] == nil {
		return nil
	}
	version, err := a.qkvVersion()
	if err != nil {
		return nil // a freed weight: the caller's view says so
	}
	if v.wExp[1] == nil || version != v.expVersion {
		err := gotch.NoGrad(func() error {
			return gotch.Try(func() {
				s := gotch.NewScope()
				defer s.Close()
				for j := 1; j <= 2; j++ {
					for _, e := range []struct {
						dst **gotch.Tensor
						src *gotch.Tensor
					}{{&v.wExp[j], v.wHead[j]}, {&v.bExp[j], v.bHead[j]}} {
						// Contiguous: with one key/value head (multi-query,
						// Gemma 2B) the repeat is a stride-0 view of the
						// weights, which a refresh could not write into.
						fresh := a.repeatKV(borrow(s, e.src), 0).MustContiguous()
						if *e.dst == nil {
							*e.dst = s.Keep(fresh)
						} else {
							(*e.dst).MustCopy_(fresh)
						}
					}
				}
			})
		})
		if err != nil {
			for j := 1; j <= 2; j++ { // none half made: the next call starts afresh
				v.wExp[j].Free()
				v.bExp[j].Free()
				v.wExp[j], v.bExp[j] = nil, nil
			}
			panic(err)
		}
		v.expVersion = version
	}
	if bias {
		return v.bExp[i]
	}
	return v.wExp[i]
}

// repeatKV repeats each of x's n_kv_heads key/value heads (dimension dim)
// for the n_heads / n_kv_heads query heads that share it, as Hugging Face's
// repeat_kv: query head h reads key/value head h / (n_heads / n_kv_heads).
func (a *Attention) repeatKV(x *gotch.Tensor, dim int64) *gotch.Tensor {
	if a.nKV == a.nHeads {
		return x
	}
	shape := x.Shape()
	expanded := slices.Insert(slices.Clone(shape), int(dim)+1, a.nHeads/a.nKV)
	flat := slices.Clone(shape)
	flat[dim] = a.nHeads
	return x.MustUnsqueeze(dim + 1).MustExpand(expanded).MustReshape(flat)
}

// attnIn is the attention's input: what queries, keys and values read,
// [batch pos d_model] or per head [batch pos head d_model] (split q/k/v
// input, attn_in). one says that the three are one tensor [batch pos
// d_model], which one fused GEMM projects.
type attnIn struct {
	q, k, v *gotch.Tensor
	one     bool
}

// forward attends from in.q to in.k and in.v. padMask marks, per batch
// row, the key positions that are real tokens ([batch key_pos] bool), or
// is nil. past holds the keys and values of earlier positions when
// generating.
func (a *Attention) forward(p *pass, in attnIn, padMask *gotch.Tensor, past *kvEntry) *gotch.Tensor {
	s := p.scope()
	defer s.Close()
	q, k, v := a.project(s, in) // [batch pos head d_head]
	q, k, v = p.at(a.hooks.q, q), p.at(a.hooks.k, k), p.at(a.hooks.v, v)
	offset := past.len()
	if past != nil {
		k, v = past.append(k, v) // [batch key head d_head]: the cached positions, then these
	}
	if a.rotary != nil {
		// As TransformerLens does, the cache holds keys before rotation and
		// the pass rotates them all: hook_rot_k covers the cached positions.
		qIDs, kIDs := a.rotary.positions(s, padMask, offset, q.Size(1), k.Size(1), q.Device())
		q = p.at(a.hooks.rotQ, a.rotary.apply(s, q, qIDs)) // [batch pos head d_head]
		k = p.at(a.hooks.rotK, a.rotary.apply(s, k, kIDs)) // [batch key head d_head]
	}
	qh, kh, vh := byHead(q), a.repeatKV(byHead(k), 1), a.repeatKV(byHead(v), 1) // [batch head pos d_head], k and v per query head
	var zh *gotch.Tensor                                                        // [batch head query d_head]
	if a.fusable(p, padMask, offset, kh.Size(2)) {
		zh = gotch.MustScaledDotProductAttention(qh, kh, vh, nil, a.causal)
	} else {
		zh = a.pattern(p, qh, kh, padMask, offset).MustMatmul(vh)
	}
	z := p.at(a.hooks.z, zh.MustPermute([]int64{0, 2, 1, 3})) // [batch query head d_head]
	return s.Keep(a.output(p, z))                             // [batch query d_model]
}

// project computes q, k and v [batch pos head d_head]: with one fused GEMM
// when they read one tensor, else each from its own input.
func (a *Attention) project(s *callScope, in attnIn) (q, k, v *gotch.Tensor) {
	if in.one {
		x := s.in(in.q)
		if a.nKV == a.nHeads {
			qkv := x.MustLinear(a.WQKV, a.BQKV).MustView([]int64{x.Size(0), x.Size(1), 3, a.nHeads, a.dHead}) // [batch pos 3 head d_head]
			return qkv.MustSelect(2, 0), qkv.MustSelect(2, 1), qkv.MustSelect(2, 2)
		}
		qkv := x.MustLinear(a.WQKV, a.BQKV) // [batch pos (n_heads+2·n_kv_heads)·d_head]
		split := func(start, heads int64) *gotch.Tensor {
			return qkv.MustNarrow(-1, start*a.dHead, heads*a.dHead).MustView([]int64{x.Size(0), x.Size(1), heads, a.dHead})
		}
		return split(0, a.nHeads), split(a.nHeads, a.nKV), split(a.nHeads+a.nKV, a.nKV) // [batch pos head d_head], k and v with n_kv_heads
	}
	return a.projectOne(0, s.in(in.q)), a.projectOne(1, s.in(in.k)), a.projectOne(2, s.in(in.v))
}

// projectOne computes q, k or v (i = 0, 1, 2) [batch pos head d_head] from x
// [batch pos d_model], or from per-head x [batch pos head d_model].
func (a *Attention) projectOne(i int, x *gotch.Tensor) *gotch.Tensor {
	if x.Dim() == 4 {
		return gotch.MustEinsum("bphm,hmd->bphd", []*gotch.Tensor{x, a.views.wHead[i]}).MustAdd(a.views.bHead[i])
	}
	return x.MustLinear(a.views.w[i], a.views.b[i]).MustView([]int64{x.Size(0), x.Size(1), a.heads(i), a.dHead})
}

// byHead is x [batch pos head d_head] as [batch head pos d_head].
func byHead(x *gotch.Tensor) *gotch.Tensor { return x.MustPermute([]int64{0, 2, 1, 3}) }

// fusable reports whether the fused kernel (scaled_dot_product_attention)
// may stand in for the explicit path: nobody observes scores or pattern,
// the scale is the kernel's own, the scores are not soft-capped, and the
// mask is plain causal (or none): no padding, no cached keys, and no
// sliding window that reaches back less far than the nKeys keys.
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
func (a *Attention) fusable(p *pass, padMask *gotch.Tensor, offset, nKeys int64) bool {
	return !p.wants(a.hooks.scores) && !p.wants(a.hooks.pattern) &&
		padMask == nil && offset == 0 && a.attnScale == math.Sqrt(float64(a.dHead)) && !a.upcast &&
		a.softCap == 0 && (a.window == 0 || a.window >= nKeys)
}

// pattern is the attention pattern [batch head query key]: the softmax of
// the scaled scores q·k, soft-capped (Gemma 2: cap·tanh(scores/cap)), with
// later keys (causal), keys outside a local layer's window and padding
// masked out. hook_attn_scores sees the capped and masked scores, as
// TransformerLens's AbstractAttention hooks them; Hugging Face caps before
// adding its mask too (modeling_gemma2.py eager_attention_forward).
func (a *Attention) pattern(p *pass, qh, kh, padMask *gotch.Tensor, offset int64) *gotch.Tensor {
	s := p.scope()
	defer s.Close()
	qh, kh = s.in(qh), s.in(kh)
	dtype := qh.DType()
	if dtype == gotch.Half || dtype == gotch.BFloat16 {
		// scores in float32, as TransformerLens does (and as Hugging Face's
		// reorder_and_upcast_attn asks)
		qh, kh = qh.MustTo(gotch.Float), kh.MustTo(gotch.Float)
	}
	scores := qh.MustMatmul(kh.MustTranspose(-2, -1)).MustDivScalar(a.attnScale) // [batch head query key]
	if a.softCap > 0 {
		scores = scores.MustDivScalar(a.softCap).MustTanh().MustMulScalar(a.softCap)
	}
	if mask := a.blocked(s, scores, padMask, offset); mask != nil {
		scores.MustMaskedFill_(mask, math.Inf(-1)) // in place: a pattern-sized copy fewer
	}
	scores = p.at(a.hooks.scores, scores)
	pattern := scores.MustSoftmax(-1)
	if padMask != nil {
		pattern = pattern.MustMaskedFill(pattern.MustIsNan(), 0) // a padding query sees no key: its NaN row becomes zeros
	}
	pattern = p.at(a.hooks.pattern, pattern)
	if pattern.DType() != dtype {
		pattern = pattern.MustTo(dtype)
	}
	return s.Keep(pattern)
}

// blocked is the mask of the scores to ignore: later keys under causal
// attention and, in a local layer, keys window or more positions before
// the query [query key]; padding keys [batch 1 1 key]; nil when nothing
// is masked. Query i sits at position i + offset among the keys. Window
// distances count positions as Hugging Face's sliding-window mask does
// (masking_utils.py sliding_window_overlay: kv_idx > q_idx -
// sliding_window, on cache positions), padding included.
func (a *Attention) blocked(s *callScope, scores, padMask *gotch.Tensor, offset int64) *gotch.Tensor {
	nq, nk := scores.Size(-2), scores.Size(-1)
	var later, pad *gotch.Tensor
	if a.causal || a.window > 0 {
		ones := s.Attach(gotch.MustOnes([]int64{nq, nk}, gotch.Bool, scores.Device()))
		if a.causal {
			later = ones.MustTriu(offset + 1) // key j > i + offset
		}
		if a.window > 0 {
			old := ones.MustTril(offset - a.window) // key j <= i + offset - window
			if later == nil {
				later = old
			} else {
				later = later.MustLogicalOr(old)
			}
		}
	}
	if padMask != nil {
		pad = s.in(padMask).MustLogicalNot().MustView([]int64{padMask.Size(0), 1, 1, nk})
	}
	switch {
	case later == nil:
		return pad
	case pad == nil:
		return later
	}
	return later.MustLogicalOr(pad)
}

// output maps z [batch pos head d_head] to the residual stream, through
// the per-head results [batch pos head d_model] when use_attn_result asks
// for them.
func (a *Attention) output(p *pass, z *gotch.Tensor) *gotch.Tensor {
	if !a.useResult {
		return z.MustReshape([]int64{z.Size(0), z.Size(1), a.nHeads * a.dHead}).MustLinear(a.WO, a.BO)
	}
	result := p.at(a.hooks.result, gotch.MustEinsum("bphd,hdm->bphm", []*gotch.Tensor{z, a.views.wOHead}))
	return result.MustSumDims([]int64{2}, false).MustAdd(a.BO)
}
