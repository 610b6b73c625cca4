package hookedmodel

import (
	"fmt"
	"strconv"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

// HookedTransformer is TransformerLens's HookedTransformer: a decoder-only
// transformer whose every notable activation passes a named hook point.
//
//	resid = W_E[tokens] + W_pos[positions]       hook_embed, hook_pos_embed
//	resid = block(resid) for each block           blocks.{l}.*
//	logits = ln_final(resid) W_U + b_U
//
// A model owns its weights: Free it when done. Passes may run
// concurrently; each sees only its own per-call hooks and the hooks
// registered on the model.
//
// W_E, W_Q, W_O, W_in, ... give TransformerLens's weight properties,
// stacked over layers (W_Q is [n_layers n_heads d_model d_head]), and QK
// and OV the circuits as FactoredMatrix. The stacked tensors are made on
// first use and lent, as the weights themselves (WE, WU, ...) are: they
// belong to the model (do not free them), are in no scope, and ops on them
// make tensors that are yours. They are detached copies, valid until the
// weights change (Process, SetRequiresGrad) or the model is freed; the
// next call makes them afresh. Writing into
// StateDict's views in place does not reach copies made before.
type HookedTransformer struct {
	// Cfg is the model's config, to read. It is read-only: the model is
	// built from it, so a change would not reach the model, and a pass on
	// a model whose Cfg was changed fails naming the field. Switch the
	// optional hook points on or off with SetUseAttnResult,
	// SetUseSplitQKVInput, SetUseHookMLPIn and SetUseAttnIn; for anything
	// else build a new model. Config returns a copy.
	Cfg       Config
	Tokenizer *tokenizer.Tokenizer // nil when the model has none

	WE      *gotch.Tensor // [d_vocab d_model]
	WPos    *gotch.Tensor // [n_ctx d_model]
	Blocks  []*Block
	LnFinal *LayerNorm // nil without normalization
	// WU is W_U transposed, [d_vocab_out d_model]: nn.Linear-shaped, as
	// the unembedding's GEMM reads it. W_U() is TransformerLens's [d_model
	// d_vocab_out], a view of it.
	WU *gotch.Tensor
	BU *gotch.Tensor // [d_vocab_out]

	cfg       Config // what the model was built from (see checkConfig)
	device    gotch.Device
	dtype     gotch.DType
	hookNames []string // every hook point, in the order a pass reaches them
	hooks     hookRegistry
	hooksTop  topHooks

	weightViews weightViews // W_Q(), W_in(), ...: stacked on first use

	processed ProcessingRecord // what Process (and Load) did to the weights
}

type topHooks struct{ tokens, embed, posEmbed string }

func itoa(i int) string { return strconv.Itoa(i) }

// build makes the components of cfg with no weights yet.
func build(cfg Config, dev gotch.Device) (*HookedTransformer, error) {
	if err := cfg.Init(); err != nil {
		return nil, err
	}
	if err := cfg.unbuilt(); err != nil {
		return nil, err
	}
	dtype, err := cfg.dtype()
	if err != nil {
		return nil, err
	}
	m := &HookedTransformer{Cfg: cfg, cfg: cfg, device: dev, dtype: dtype, hooksTop: topHooks{"hook_tokens", "hook_embed", "hook_pos_embed"}}
	for l := range cfg.NLayers {
		m.Blocks = append(m.Blocks, newBlock(&m.Cfg, l))
	}
	m.LnFinal = newNorm(finalNorm(&cfg), "ln_final", &cfg)
	m.listHookNames()
	return m, nil
}

// listHookNames (re)makes m.hookNames from the components and their
// switches.
func (m *HookedTransformer) listHookNames() {
	m.hookNames = nil
	if m.cfg.UseHookTokens {
		m.hookNames = append(m.hookNames, m.hooksTop.tokens)
	}
	m.hookNames = append(m.hookNames, m.hooksTop.embed)
	if m.cfg.PositionalEmbeddingType != "rotary" {
		m.hookNames = append(m.hookNames, m.hooksTop.posEmbed)
	}
	for _, b := range m.Blocks {
		m.hookNames = append(m.hookNames, b.hookNames()...)
	}
	if m.LnFinal != nil {
		m.hookNames = append(m.hookNames, m.LnFinal.hookNames()...)
	}
}

func (c *Config) dtype() (gotch.DType, error) {
	s := c.DType
	if len(s) > 6 && s[:6] == "torch." {
		s = s[6:]
	}
	d, err := gotch.ParseDType(s)
	if err != nil || !d.IsFloat() {
		return 0, fmt.Errorf("dtype %q is not a floating-point type golens runs models in (want float32, float64, float16 or bfloat16)", c.DType)
	}
	return d, nil
}

// HookNames lists every hook point of the model, in forward order.
func (m *HookedTransformer) HookNames() []string { return append([]string(nil), m.hookNames...) }

// Device is where the weights live and passes run.
func (m *HookedTransformer) Device() gotch.Device { return m.device }

// DType is the weights' element type.
func (m *HookedTransformer) DType() gotch.DType { return m.dtype }

// param is one stored weight: its name, where the model keeps it, its
// shape as the config says, and how New initialises it.
type param struct {
	name  string
	ptr   **gotch.Tensor
	shape []int64
	init  initKind
}

type initKind int

const (
	initNormal initKind = iota // W_*: normal with std initializer_range
	initZeros                  // biases
	initOnes                   // LayerNorm weights
)

// params lists the stored weights in a fixed order, under golens's names:
// TransformerLens's, except that W_Q/W_K/W_V live fused in
// blocks.{l}.attn.W_QKV and matrices are stored nn.Linear-shaped [out in]
// (StateDict gives TransformerLens's names and shapes).
func (m *HookedTransformer) params() []param {
	c := &m.Cfg
	dm, hd, dv := int64(c.DModel), int64(c.NHeads*c.DHead), int64(c.DVocab)
	qkv := hd + 2*int64(c.kvHeads()*c.DHead) // W_Q's rows, then W_K's and W_V's
	ps := []param{{"embed.W_E", &m.WE, []int64{dv, dm}, initNormal}}
	if c.PositionalEmbeddingType != "rotary" {
		ps = append(ps, param{"pos_embed.W_pos", &m.WPos, []int64{int64(c.NCtx), dm}, initNormal})
	}
	ln := func(prefix string, l *LayerNorm, n int64) {
		if l != nil && l.affine {
			init := initOnes
			if l.plusOne {
				init = initZeros // (1 + w) scales by 1, as Hugging Face's Gemma initialises
			}
			ps = append(ps, param{prefix + ".w", &l.W, []int64{n}, init})
			if !l.rms {
				ps = append(ps, param{prefix + ".b", &l.B, []int64{n}, initZeros})
			}
		}
	}
	for l, b := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		ln(pre+"ln1", b.Ln1, dm)
		ln(pre+"ln1_post", b.Ln1Post, dm)
		a := b.Attn
		ps = append(ps,
			param{pre + "attn.W_QKV", &a.WQKV, []int64{qkv, dm}, initNormal}, param{pre + "attn.b_QKV", &a.BQKV, []int64{qkv}, initZeros},
			param{pre + "attn.W_O", &a.WO, []int64{dm, hd}, initNormal}, param{pre + "attn.b_O", &a.BO, []int64{dm}, initZeros})
		if mlp := b.MLP; mlp != nil {
			f := int64(c.DMLP)
			ln(pre+"ln2", b.Ln2, dm)
			ln(pre+"ln2_post", b.Ln2Post, dm)
			ps = append(ps,
				param{pre + "mlp.W_in", &mlp.WIn, []int64{f, dm}, initNormal}, param{pre + "mlp.b_in", &mlp.BIn, []int64{f}, initZeros})
			if mlp.gated {
				ps = append(ps, param{pre + "mlp.W_gate", &mlp.WGate, []int64{f, dm}, initNormal})
			}
			ps = append(ps,
				param{pre + "mlp.W_out", &mlp.WOut, []int64{dm, f}, initNormal}, param{pre + "mlp.b_out", &mlp.BOut, []int64{dm}, initZeros})
			ln(pre+"mlp.ln", mlp.ln, f)
		}
	}
	ln("ln_final", m.LnFinal, dm)
	dvo := int64(c.DVocabOut)
	return append(ps, param{"unembed.W_U", &m.WU, []int64{dvo, dm}, initNormal}, param{"unembed.b_U", &m.BU, []int64{dvo}, initZeros})
}

// Parameter is one stored weight under the name Save writes it with.
type Parameter struct {
	Name   string
	Tensor *gotch.Tensor // the model's own tensor: never free it
}

// Parameters lists the stored weights in a fixed order under golens's
// names (those Save writes): what an optimiser updates. The tensors are
// the model's own, so an in-place change (under gotch.NoGrad while they
// record gradients) changes the model. The stacked views (W_Q() and the
// like) made before such a change keep the old values until
// SetRequiresGrad or Process makes them afresh.
func (m *HookedTransformer) Parameters() []Parameter {
	ps := m.params()
	out := make([]Parameter, len(ps))
	for i, p := range ps {
		out[i] = Parameter{p.name, *p.ptr}
	}
	return out
}

// Free releases the weights and the views of them (W_Q() and the like);
// the model is unusable afterwards.
func (m *HookedTransformer) Free() {
	m.weightViews.drop()
	for _, p := range m.params() {
		(*p.ptr).Free()
	}
	for _, b := range m.Blocks {
		b.Attn.free()
		if b.MLP != nil {
			b.MLP.free()
		}
	}
	gotch.TrimHeap() // the weights' memory back to the system
}

// prepare puts the weights in their memory order (layout.go) and makes
// the derived views after the weights are set or changed, and drops the
// stacked views (W_Q() and the like) of the old weights: every change to
// the weights ends here. Under gotch.Try.
func (m *HookedTransformer) prepare() {
	// fold_ln rewrites normalization_type (LN to LNPre), as
	// TransformerLens's does: the model's own change, not a user's.
	m.cfg.NormalizationType = m.Cfg.NormalizationType
	m.weightViews.drop()
	m.arrange()
	for _, b := range m.Blocks {
		b.Attn.prepare()
		if b.MLP != nil {
			b.MLP.prepare()
		}
	}
}

// SetRequiresGrad turns gradient recording for every weight on or off
// (off after loading; training turns it on).
func (m *HookedTransformer) SetRequiresGrad(on bool) error {
	return gotch.Try(func() {
		for _, p := range m.params() {
			(*p.ptr).MustSetRequiresGrad_(on)
		}
		m.prepare() // views made before the change do not record gradients
	})
}

// unbuilt refuses the config fields Init accepts whose components are not
// built yet.
func (c *Config) unbuilt() error {
	for _, f := range []struct {
		on   bool
		name string
	}{} {
		if f.on {
			return fmt.Errorf("%s: not built yet by golens", f.name)
		}
	}
	return nil
}

// finalNorm is ln_final's normalization_type: the blocks', or with
// final_rms an RMSNorm (RMSPre where the blocks' norms have no weights).
func finalNorm(c *Config) string {
	switch {
	case !c.FinalRMS || c.NormalizationType == "":
		return c.NormalizationType
	case c.NormalizationType == "LN" || c.NormalizationType == "RMS":
		return "RMS"
	}
	return "RMSPre"
}
