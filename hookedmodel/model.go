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
type HookedTransformer struct {
	Cfg       Config
	Tokenizer *tokenizer.Tokenizer // nil when the model has none

	WE      *gotch.Tensor // [d_vocab d_model]
	WPos    *gotch.Tensor // [n_ctx d_model]
	Blocks  []*Block
	LnFinal *LayerNorm    // nil without normalization
	WU      *gotch.Tensor // [d_vocab_out d_model], nn.Linear-shaped; W_U() is its [d_model d_vocab_out] view
	BU      *gotch.Tensor // [d_vocab_out]

	device    gotch.Device
	dtype     gotch.DType
	hookNames []string // every hook point, in the order a pass reaches them
	hooks     hookRegistry
	hooksTop  topHooks
}

type topHooks struct{ tokens, embed, posEmbed string }

func itoa(i int) string { return strconv.Itoa(i) }

// build makes the components of cfg with no weights yet.
func build(cfg Config, dev gotch.Device) (*HookedTransformer, error) {
	if err := cfg.Init(); err != nil {
		return nil, err
	}
	dtype, err := cfg.dtype()
	if err != nil {
		return nil, err
	}
	m := &HookedTransformer{Cfg: cfg, device: dev, dtype: dtype, hooksTop: topHooks{"hook_tokens", "hook_embed", "hook_pos_embed"}}
	for l := range cfg.NLayers {
		m.Blocks = append(m.Blocks, newBlock(&m.Cfg, l))
	}
	if cfg.NormalizationType != "" {
		m.LnFinal = newLayerNorm("ln_final", cfg.Eps)
	}
	if cfg.UseHookTokens {
		m.hookNames = append(m.hookNames, m.hooksTop.tokens)
	}
	m.hookNames = append(m.hookNames, m.hooksTop.embed, m.hooksTop.posEmbed)
	for _, b := range m.Blocks {
		m.hookNames = append(m.hookNames, b.hookNames()...)
	}
	if m.LnFinal != nil {
		m.hookNames = append(m.hookNames, m.LnFinal.hookNames()...)
	}
	return m, nil
}

func (c *Config) dtype() (gotch.DType, error) {
	s := c.DType
	if len(s) > 6 && s[:6] == "torch." {
		s = s[6:]
	}
	d, err := gotch.ParseDType(s)
	if err != nil || !d.IsFloat() {
		return 0, fmt.Errorf("dtype %q is not a floating-point type golens runs models in", c.DType)
	}
	return d, nil
}

// HookNames lists every hook point of the model, in forward order.
func (m *HookedTransformer) HookNames() []string { return append([]string(nil), m.hookNames...) }

// Device is where the weights live and passes run.
func (m *HookedTransformer) Device() gotch.Device { return m.device }

// DType is the weights' element type.
func (m *HookedTransformer) DType() gotch.DType { return m.dtype }

// Param is a named weight, named as in TransformerLens's state_dict.
type Param struct {
	Name string
	T    *gotch.Tensor
	// TL says how the stored tensor maps to TransformerLens's layout.
	TL layout
}

// layout describes how a stored weight relates to TransformerLens's shape.
type layout int

const (
	asIs       layout = iota
	transposed        // stored [out in]; TransformerLens's is [in out]
)

// params lists the stored weights with their names. W_Q/W_K/W_V live
// fused in blocks.{l}.attn.W_QKV and W_O in nn.Linear form; StateDict
// gives TransformerLens's names and shapes.
func (m *HookedTransformer) params() []Param {
	ps := []Param{{"embed.W_E", m.WE, asIs}}
	if m.WPos != nil {
		ps = append(ps, Param{"pos_embed.W_pos", m.WPos, asIs})
	}
	for l, b := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		ps = append(ps, lnParams(pre+"ln1", b.Ln1)...)
		ps = append(ps,
			Param{pre + "attn.W_QKV", b.Attn.WQKV, asIs}, Param{pre + "attn.b_QKV", b.Attn.BQKV, asIs},
			Param{pre + "attn.W_O", b.Attn.WO, transposed}, Param{pre + "attn.b_O", b.Attn.BO, asIs})
		if b.MLP != nil {
			ps = append(ps, lnParams(pre+"ln2", b.Ln2)...)
			ps = append(ps,
				Param{pre + "mlp.W_in", b.MLP.WIn, transposed}, Param{pre + "mlp.b_in", b.MLP.BIn, asIs},
				Param{pre + "mlp.W_out", b.MLP.WOut, transposed}, Param{pre + "mlp.b_out", b.MLP.BOut, asIs})
			if b.MLP.ln != nil {
				ps = append(ps, lnParams(pre+"mlp.ln", b.MLP.ln)...)
			}
		}
	}
	ps = append(ps, lnParams("ln_final", m.LnFinal)...)
	return append(ps, Param{"unembed.W_U", m.WU, transposed}, Param{"unembed.b_U", m.BU, asIs})
}

func lnParams(prefix string, ln *LayerNorm) []Param {
	if ln == nil || ln.W == nil {
		return nil
	}
	return []Param{{prefix + ".w", ln.W, asIs}, {prefix + ".b", ln.B, asIs}}
}

// Free releases the weights; the model is unusable afterwards.
func (m *HookedTransformer) Free() {
	for _, p := range m.params() {
		p.T.Free()
	}
	for _, b := range m.Blocks {
		b.Attn.free()
	}
}

// prepare makes the derived views after the weights are set or changed.
func (m *HookedTransformer) prepare() {
	for _, b := range m.Blocks {
		b.Attn.prepare()
	}
}

// SetRequiresGrad turns gradient recording for every weight on or off
// (off after loading; training turns it on).
func (m *HookedTransformer) SetRequiresGrad(on bool) error {
	return gotch.Try(func() {
		for _, p := range m.params() {
			p.T.MustSetRequiresGrad_(on)
		}
		m.prepare() // views made before the change do not record gradients
	})
}
