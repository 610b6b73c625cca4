package hookedmodel

import "github.com/golens/golens/gotch"

// StateDict returns every weight under its TransformerLens name and in its
// TransformerLens shape (embed.W_E, blocks.0.attn.W_Q [n_heads d_model
// d_head], blocks.0.mlp.W_in [d_model d_mlp], unembed.W_U [d_model
// d_vocab_out], ...). The tensors are views of the model's weights, in a
// new scope that the caller closes; writing into them changes the model.
func (m *HookedTransformer) StateDict() (map[string]*gotch.Tensor, *gotch.Scope, error) {
	s := gotch.NewScope()
	sd := map[string]*gotch.Tensor{}
	err := gotch.Try(func() {
		view := func(name string, t *gotch.Tensor) { sd[name] = borrow(s, t) }
		view("embed.W_E", m.WE)
		view("pos_embed.W_pos", m.WPos)
		for l, b := range m.Blocks {
			pre := "blocks." + itoa(l) + "."
			lnState(view, pre+"ln1", b.Ln1)
			for i, n := range []string{"Q", "K", "V"} {
				view(pre+"attn.W_"+n, b.Attn.views.wHead[i])
				view(pre+"attn.b_"+n, b.Attn.views.bHead[i])
			}
			view(pre+"attn.W_O", b.Attn.views.wOHead)
			view(pre+"attn.b_O", b.Attn.BO)
			if b.MLP != nil {
				lnState(view, pre+"ln2", b.Ln2)
				sd[pre+"mlp.W_in"] = borrow(s, b.MLP.WIn).MustTranspose(0, 1)
				view(pre+"mlp.b_in", b.MLP.BIn)
				sd[pre+"mlp.W_out"] = borrow(s, b.MLP.WOut).MustTranspose(0, 1)
				view(pre+"mlp.b_out", b.MLP.BOut)
				if b.MLP.ln != nil {
					lnState(view, pre+"mlp.ln", b.MLP.ln)
				}
			}
		}
		lnState(view, "ln_final", m.LnFinal)
		sd["unembed.W_U"] = borrow(s, m.WU).MustTranspose(0, 1)
		view("unembed.b_U", m.BU)
	})
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return sd, s, nil
}

func lnState(view func(string, *gotch.Tensor), prefix string, ln *LayerNorm) {
	if ln != nil && ln.W != nil {
		view(prefix+".w", ln.W)
		view(prefix+".b", ln.B)
	}
}
