package hookedmodel

import (
	"fmt"
	"math"
	"strings"

	"github.com/golens/golens/gotch"
)

// tlModule is one module of TransformerLens's module tree for a model
// (HookedTransformer, TransformerBlock, Attention, HookPoint, ...): what
// print(model) shows and what state_dict() walks. Children, parameters
// and buffers are in the order TransformerLens registers them, which is
// the order of its state_dict.
type tlModule struct {
	name     string // attribute name in the parent: "attn", "0" in a list
	class    string
	hook     string // a HookPoint's full name
	params   []tlParam
	buffers  []tlBuffer
	children []*tlModule
}

// tlParam is one parameter in TransformerLens's shape.
type tlParam struct {
	name  string
	shape []int64
	// view is the model's weight in that shape, sharing its memory; ops
	// land in s.
	view func(s *gotch.Scope) *gotch.Tensor
}

// tlBuffer is one persistent buffer: a constant TransformerLens keeps in
// its state dict, which golens computes instead of storing.
type tlBuffer struct {
	name  string
	value func(s *gotch.Scope) *gotch.Tensor // what TransformerLens holds, in s
	// check accepts t, a state dict's value for the buffer, or says why
	// the model would compute something else with it.
	check func(s *gotch.Scope, t *gotch.Tensor) error
}

// tlTree is the model's TransformerLens module tree, as built by
// HookedTransformer.__init__ in TransformerLens v3.5.1
// (HookedTransformer.py, components/transformer_block.py,
// components/abstract_attention.py and attention.py, mlps/mlp.py,
// layer_norm.py, layer_norm_pre.py, embed.py, pos_embed.py, unembed.py),
// holding golens's hook points. TransformerLens also makes hook points
// that are switched off (hook_attn_in, hook_q_input, ..., hook_result
// without use_attn_result) and unembed.hook_in/hook_out, which golens does
// not have; the tree leaves them out, so every hook point in it can be
// hooked.
func (m *HookedTransformer) tlTree() *tlModule {
	c := &m.Cfg
	dm, nh, dh := int64(c.DModel), int64(c.NHeads), int64(c.DHead)
	weight := func(t **gotch.Tensor) func(*gotch.Scope) *gotch.Tensor {
		return func(s *gotch.Scope) *gotch.Tensor { return borrow(s, *t) }
	}
	// linear is an nn.Linear-shaped [out in] weight seen as TL's [in out].
	linear := func(t **gotch.Tensor) func(*gotch.Scope) *gotch.Tensor {
		return func(s *gotch.Scope) *gotch.Tensor { return borrow(s, *t).MustTranspose(0, 1) }
	}
	hook := func(name string) *tlModule {
		return &tlModule{name: name[strings.LastIndexByte(name, '.')+1:], class: "HookPoint", hook: name}
	}
	hooks := func(names ...string) []*tlModule {
		out := make([]*tlModule, len(names))
		for i, n := range names {
			out[i] = hook(n)
		}
		return out
	}
	norm := func(name string, ln *LayerNorm, length int64) *tlModule {
		switch {
		case ln == nil:
			return &tlModule{name: name, class: "Identity"}
		case !ln.affine:
			return &tlModule{name: name, class: ln.tlClass(), children: hooks(ln.hookNames()...)}
		case ln.rms:
			return &tlModule{name: name, class: ln.tlClass(), children: hooks(ln.hookNames()...), params: []tlParam{
				{"w", []int64{length}, weight(&ln.W)},
			}}
		}
		return &tlModule{name: name, class: ln.tlClass(), children: hooks(ln.hookNames()...), params: []tlParam{
			{"w", []int64{length}, weight(&ln.W)}, {"b", []int64{length}, weight(&ln.B)},
		}}
	}

	root := &tlModule{class: "HookedTransformer", children: []*tlModule{
		{name: "embed", class: "Embed", params: []tlParam{{"W_E", []int64{int64(c.DVocab), dm}, weight(&m.WE)}}},
		hook(m.hooksTop.embed),
	}}
	if c.PositionalEmbeddingType != "rotary" {
		root.children = append(root.children,
			&tlModule{name: "pos_embed", class: "PosEmbed", params: []tlParam{{"W_pos", []int64{int64(c.NCtx), dm}, weight(&m.WPos)}}},
			hook(m.hooksTop.posEmbed))
	}
	if c.UseHookTokens {
		root.children = append(root.children, hook(m.hooksTop.tokens))
	}
	blocks := &tlModule{name: "blocks", class: "TypedModuleList"}
	for l, b := range m.Blocks {
		a, h := b.Attn, &b.hooks
		headW := func(i int) func(*gotch.Scope) *gotch.Tensor {
			return func(s *gotch.Scope) *gotch.Tensor { return borrow(s, a.views.wHead[i]) }
		}
		headB := func(i int) func(*gotch.Scope) *gotch.Tensor {
			return func(s *gotch.Scope) *gotch.Tensor { return borrow(s, a.views.bHead[i]) }
		}
		attn := &tlModule{name: "attn", class: "Attention", children: hooks(a.hooks.k, a.hooks.q, a.hooks.v, a.hooks.z, a.hooks.scores, a.hooks.pattern)}
		if a.rotary != nil {
			attn.children = append(attn.children, hooks(a.hooks.rotK, a.hooks.rotQ)...)
		}
		if a.useResult {
			attn.children = append(attn.children, hook(a.hooks.result))
		}
		// AbstractAttention registers W_Q, W_O, b_Q, b_O; Attention then W_K,
		// W_V, b_K, b_V.
		wQKV, wO := []int64{nh, dm, dh}, []int64{nh, dh, dm}
		attn.params = []tlParam{
			{"W_Q", wQKV, headW(0)},
			{"W_O", wO, func(s *gotch.Scope) *gotch.Tensor { return borrow(s, a.views.wOHead) }},
			{"b_Q", []int64{nh, dh}, headB(0)},
			{"b_O", []int64{dm}, weight(&a.BO)},
		}
		kv, kvp := nh, ""
		if a.grouped {
			// GroupedQueryAttention stores n_key_value_heads heads as _W_K,
			// _W_V, _b_K, _b_V (W_K and friends are properties repeating them).
			attn.class, kv, kvp = "GroupedQueryAttention", a.nKV, "_"
		}
		attn.params = append(attn.params,
			tlParam{kvp + "W_K", []int64{kv, dm, dh}, headW(1)}, tlParam{kvp + "W_V", []int64{kv, dm, dh}, headW(2)},
			tlParam{kvp + "b_K", []int64{kv, dh}, headB(1)}, tlParam{kvp + "b_V", []int64{kv, dh}, headB(2)})
		attn.buffers = m.attnBuffers()
		if a.rotary != nil {
			attn.buffers = append(attn.buffers, m.rotaryBuffers(a.rotary)...)
		}

		// TransformerBlock's modules in its order: ln1, ln1_post, ln2, ln2_post
		block := &tlModule{name: itoa(l), class: "TransformerBlock", children: []*tlModule{norm("ln1", b.Ln1, dm)}}
		if b.Ln1Post != nil {
			block.children = append(block.children, norm("ln1_post", b.Ln1Post, dm))
		}
		if b.MLP != nil {
			block.children = append(block.children, norm("ln2", b.Ln2, dm))
		}
		if b.Ln2Post != nil {
			block.children = append(block.children, norm("ln2_post", b.Ln2Post, dm))
		}
		block.children = append(block.children, attn)
		if p := b.MLP; p != nil {
			f := int64(c.DMLP)
			mlp := &tlModule{name: "mlp", class: "MLP", params: []tlParam{
				{"W_in", []int64{dm, f}, linear(&p.WIn)}, {"b_in", []int64{f}, weight(&p.BIn)},
				{"W_out", []int64{f, dm}, linear(&p.WOut)}, {"b_out", []int64{dm}, weight(&p.BOut)},
			}}
			if p.gated {
				mlp.class = "GatedMLP"
				mlp.params = append(mlp.params, tlParam{"W_gate", []int64{dm, f}, linear(&p.WGate)})
			}
			if p.ln != nil { // solu_ln: hook_mid and ln come first
				mlp.children = []*tlModule{hook(p.hookMid), norm("ln", p.ln, f)}
			}
			mlp.children = append(mlp.children, hooks(p.hookPre, p.hookPost)...)
			if p.gated {
				mlp.children = append(mlp.children, hook(p.hookPreLin))
			}
			block.children = append(block.children, mlp)
		}
		if b.flags.attnIn {
			block.children = append(block.children, hook(h.attnIn))
		}
		if b.flags.splitQKV {
			block.children = append(block.children, hooks(h.qIn, h.kIn, h.vIn)...)
		}
		if b.flags.mlpIn {
			block.children = append(block.children, hook(h.mlpIn))
		}
		block.children = append(block.children, hook(h.attnOut))
		if b.MLP != nil {
			block.children = append(block.children, hook(h.mlpOut))
		}
		block.children = append(block.children, hook(h.residPre))
		if b.MLP != nil && !b.parallel {
			block.children = append(block.children, hook(h.residMid))
		}
		block.children = append(block.children, hook(h.residPost))
		blocks.children = append(blocks.children, block)
	}
	root.children = append(root.children, blocks)
	if m.LnFinal != nil {
		root.children = append(root.children, norm("ln_final", m.LnFinal, dm))
	}
	root.children = append(root.children, &tlModule{name: "unembed", class: "Unembed", params: []tlParam{
		{"W_U", []int64{dm, int64(c.DVocabOut)}, linear(&m.WU)}, {"b_U", []int64{int64(c.DVocabOut)}, weight(&m.BU)},
	}})
	return root
}

// attnBuffers are every attention layer's persistent buffers: mask, the
// causal mask [n_ctx n_ctx] (lower triangle true), and IGNORE, the score
// masked positions get (-inf). TransformerLens up to v3.4 holds the whole
// mask and needs that shape on load; v3.5 holds an empty [0 0] one and
// accepts any shape. golens writes the whole mask, which every version
// loads, and accepts either on load. Only causal attention reads the mask.
func (m *HookedTransformer) attnBuffers() []tlBuffer {
	n, causal := int64(m.Cfg.NCtx), m.Cfg.AttentionDir == "causal"
	tril := func(s *gotch.Scope) *gotch.Tensor {
		return s.Attach(gotch.MustOnes([]int64{n, n}, gotch.Bool, m.device)).MustTril(0)
	}
	return []tlBuffer{
		{
			name:  "mask",
			value: tril,
			check: func(s *gotch.Scope, t *gotch.Tensor) error {
				switch sh := t.Shape(); {
				case len(sh) == 2 && sh[0] == 0 && sh[1] == 0:
					return nil
				case len(sh) != 2 || sh[0] != n || sh[1] != n:
					return fmt.Errorf("shape %v; want [%d %d] (n_ctx) or TransformerLens 3.5's empty [0 0]", sh, n, n)
				case causal && borrow(s, t).MustToDevice(m.device, false).MustTo(gotch.Bool).MustEq(tril(s)).MustAll().MustItem() != 1:
					return fmt.Errorf("not the causal mask (true on and below the diagonal), which golens always applies")
				}
				return nil
			},
		},
		{
			name: "IGNORE",
			value: func(s *gotch.Scope) *gotch.Tensor {
				return s.Attach(gotch.MustFull(nil, math.Inf(-1), m.dtype, m.device))
			},
			check: func(s *gotch.Scope, t *gotch.Tensor) error {
				if len(t.Shape()) != 0 {
					return fmt.Errorf("shape %v; want a scalar []", t.Shape())
				}
				if v := borrow(s, t).MustItem(); !math.IsInf(v, -1) {
					return fmt.Errorf("%v; golens gives masked scores -inf", v)
				}
				return nil
			},
		},
	}
}

// walk calls fn for every module below mod (mod included), with its
// state-dict prefix ("blocks.0.attn.").
func (mod *tlModule) walk(prefix string, fn func(prefix string, mod *tlModule)) {
	fn(prefix, mod)
	for _, c := range mod.children {
		c.walk(prefix+c.name+".", fn)
	}
}

// String prints the model's module tree as print(model) does for
// TransformerLens's HookedTransformer (v3.5.1, whose hook points show
// their names), in PyTorch's layout, with two additions: each module's
// parameters as "name: [shape]" lines, in TransformerLens's shapes, where
// PyTorch's own repr shows none; and only the hook points golens has (see
// HookNames), where TransformerLens also lists switched-off ones and
// unembed.hook_in/hook_out. As in TransformerLens, a hook point with
// hooks registered on the model (AddHook) says how many.
func (m *HookedTransformer) String() string {
	if m == nil || len(m.Blocks) == 0 {
		return "HookedTransformer()"
	}
	counts := map[string][2]int{}
	for _, h := range m.ListHooks() {
		c := counts[h.Point]
		c[h.Dir]++
		counts[h.Point] = c
	}
	return m.tlTree().repr(counts)
}

// repr is PyTorch's nn.Module.__repr__: the extra lines (here the
// parameters), then each child as "(name): repr", indented two spaces;
// a single extra line and no children stay on one line.
func (mod *tlModule) repr(counts map[string][2]int) string {
	if mod.hook != "" {
		// TransformerLens's HookPoint.__repr__
		bits := []string{"name='" + mod.hook + "'"}
		for d, n := range counts[mod.hook] {
			if n > 0 {
				bits = append(bits, fmt.Sprintf("%d %s", n, Direction(d)))
			}
		}
		return "HookPoint(" + strings.Join(bits, ", ") + ")"
	}
	var extra, lines []string
	for _, p := range mod.params {
		extra = append(extra, p.name+": "+shapeString(p.shape))
	}
	lines = append(lines, extra...)
	for _, c := range mod.children {
		lines = append(lines, "("+c.name+"): "+strings.ReplaceAll(c.repr(counts), "\n", "\n  "))
	}
	switch {
	case len(lines) == 0:
		return mod.class + "()"
	case len(extra) == 1 && len(mod.children) == 0:
		return mod.class + "(" + extra[0] + ")"
	}
	return mod.class + "(\n  " + strings.Join(lines, "\n  ") + "\n)"
}

// shapeString writes a shape as Python prints a list: [4, 16, 4].
func shapeString(shape []int64) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// rotaryBuffers are a rotary attention layer's buffers rotary_sin and
// rotary_cos [n_ctx rotary_dim]: sin and cos of position · θ_i, laid out
// as the rotation reads them (each frequency for both halves, or twice in
// a row with rotary_adjacent_pairs, as TransformerLens's). golens computes them from rotary_base
// (Hugging Face's rope_theta) on every pass; a state dict may hold them or
// not, and their values are not checked, since TransformerLens's are made
// with base 10000 whatever rope_theta says.
func (m *HookedTransformer) rotaryBuffers(r *rotary) []tlBuffer {
	n := int64(m.Cfg.NCtx)
	table := func(f func(*gotch.Tensor) *gotch.Tensor) func(*gotch.Scope) *gotch.Tensor {
		return func(s *gotch.Scope) *gotch.Tensor {
			pos := s.Attach(gotch.MustArange(0, float64(n), 1, gotch.Double, m.device)).MustUnsqueeze(1) // [n_ctx 1]
			freq := s.Attach(gotch.MustFromSlice(r.invFreq, []int64{r.dim / 2}, m.device))               // [dim/2]
			return f(r.spread(pos.MustMul(freq))).MustTo(m.dtype)                                        // [n_ctx dim], laid out as apply's
		}
	}
	check := func(s *gotch.Scope, t *gotch.Tensor) error {
		if sh := t.Shape(); len(sh) != 2 || sh[1] != r.dim {
			return fmt.Errorf("shape %v; want [n_ctx %d] (rotary_dim)", sh, r.dim)
		}
		return nil
	}
	sin := func(t *gotch.Tensor) *gotch.Tensor { return t.MustSin() }
	cos := func(t *gotch.Tensor) *gotch.Tensor { return t.MustCos() }
	return []tlBuffer{{name: "rotary_sin", value: table(sin), check: check}, {name: "rotary_cos", value: table(cos), check: check}}
}
