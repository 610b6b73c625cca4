package hookedmodel

import "github.com/golens/golens/gotch"

// MLP is the feed-forward layer: post = act(x W_in + b_in), out = post W_out
// + b_out. Weights are nn.Linear-shaped [out in]; W_in and W_out give
// TransformerLens's [d_model d_mlp] and [d_mlp d_model] views.
//
// With gated_mlp it is TransformerLens's GatedMLP (Hugging Face's
// LlamaMLP, Gemma's with gelu_pytorch_tanh):
//
//	pre = x W_gate                      hook_pre
//	pre_linear = x W_in                 hook_pre_linear
//	post = act(pre) · pre_linear + b_in hook_post
//	out = post W_out + b_out
//
// b_in is added after the product, where TransformerLens's GatedMLP adds
// it (Hugging Face's gated MLPs have no biases; loaded models have zeros).
type MLP struct {
	WIn  *gotch.Tensor // [d_mlp d_model]
	BIn  *gotch.Tensor // [d_mlp]
	WOut *gotch.Tensor // [d_model d_mlp]
	BOut *gotch.Tensor // [d_model]
	// WGate is a gated MLP's gate weights [d_mlp d_model], nil otherwise.
	WGate *gotch.Tensor

	act        func(*gotch.Tensor) *gotch.Tensor
	ln         *LayerNorm // solu_ln's LayerNorm after the activation, else nil
	hookPre    string
	hookMid    string
	hookPost   string
	hookPreLin string // gated: hook_pre_linear
	gated      bool
	views      mlpViews // W_in(), W_out()
}

func newMLP(cfg *Config, prefix string) *MLP {
	m := &MLP{hookPre: prefix + ".hook_pre", hookMid: prefix + ".hook_mid", hookPost: prefix + ".hook_post", hookPreLin: prefix + ".hook_pre_linear", gated: cfg.GatedMLP}
	switch cfg.ActFn {
	case "relu":
		m.act = func(x *gotch.Tensor) *gotch.Tensor { return x.MustRelu() }
	case "gelu":
		m.act = func(x *gotch.Tensor) *gotch.Tensor { return x.MustGelu("none") }
	case "gelu_new", "gelu_fast", "gelu_pytorch_tanh": // the same tanh approximation, written three ways in Python
		m.act = func(x *gotch.Tensor) *gotch.Tensor { return x.MustGelu("tanh") }
	case "silu":
		m.act = func(x *gotch.Tensor) *gotch.Tensor { return x.MustSilu() }
	case "solu_ln":
		m.act = func(x *gotch.Tensor) *gotch.Tensor { return x.MustMul(x.MustSoftmax(-1)) }
		m.ln = newLayerNorm(prefix+".ln", cfg.Eps, cfg.NormalizationType == "LN")
	}
	return m
}

func (m *MLP) hookNames() []string {
	if m.gated {
		return []string{m.hookPre, m.hookPreLin, m.hookPost}
	}
	if m.ln != nil {
		return append([]string{m.hookPre, m.hookMid}, append(m.ln.hookNames(), m.hookPost)...)
	}
	return []string{m.hookPre, m.hookPost}
}

// forward maps x [batch pos d_model] to the MLP's output [batch pos
// d_model].
func (m *MLP) forward(p *pass, x *gotch.Tensor) *gotch.Tensor {
	s := p.scope()
	defer s.Close()
	if m.gated {
		x = s.in(x)
		pre := p.at(m.hookPre, x.MustLinear(m.WGate, nil))               // [batch pos d_mlp]
		lin := p.at(m.hookPreLin, x.MustLinear(m.WIn, nil))              // [batch pos d_mlp]
		post := p.at(m.hookPost, m.act(pre).MustMul(lin).MustAdd(m.BIn)) // [batch pos d_mlp]
		return s.Keep(post.MustLinear(m.WOut, m.BOut))                   // [batch pos d_model]
	}
	pre := p.at(m.hookPre, s.in(x).MustLinear(m.WIn, m.BIn)) // [batch pos d_mlp]
	post := m.act(pre)
	if m.ln != nil { // solu_ln: the activation, then a LayerNorm
		post = m.ln.forward(p, p.at(m.hookMid, post))
	}
	post = p.at(m.hookPost, post)                  // [batch pos d_mlp]
	return s.Keep(post.MustLinear(m.WOut, m.BOut)) // [batch pos d_model]
}
