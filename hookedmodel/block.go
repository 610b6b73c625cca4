package hookedmodel

import "github.com/golens/golens/gotch"

// Block is one transformer block: attention, then (unless attn_only) the
// MLP, each reading the residual stream through its LayerNorm and adding
// its output back.
type Block struct {
	Ln1  *LayerNorm // nil without normalization
	Attn *Attention
	Ln2  *LayerNorm // nil without normalization or in attention-only models
	MLP  *MLP       // nil in attention-only models

	nHeads int64
	flags  blockFlags
	hooks  blockHooks
}

// blockFlags are the config switches the block reads, fixed when it is
// built.
type blockFlags struct{ attnIn, splitQKV, mlpIn, shortformer bool }

type blockHooks struct{ residPre, attnIn, qIn, kIn, vIn, attnOut, residMid, mlpIn, mlpOut, residPost string }

func newBlock(cfg *Config, l int) *Block {
	prefix := "blocks." + itoa(l)
	h := func(n string) string { return prefix + ".hook_" + n }
	b := &Block{
		Attn:   newAttention(cfg, prefix+".attn", l),
		nHeads: int64(cfg.NHeads),
		flags:  blockFlags{cfg.UseAttnIn, cfg.UseSplitQKVIn, cfg.UseHookMLPIn, cfg.PositionalEmbeddingType == "shortformer"},
		hooks:  blockHooks{h("resid_pre"), h("attn_in"), h("q_input"), h("k_input"), h("v_input"), h("attn_out"), h("resid_mid"), h("mlp_in"), h("mlp_out"), h("resid_post")},
	}
	if cfg.NormalizationType != "" {
		b.Ln1 = newLayerNorm(prefix+".ln1", cfg.Eps)
	}
	if !cfg.AttnOnly {
		b.MLP = newMLP(cfg, prefix+".mlp")
		if cfg.NormalizationType != "" {
			b.Ln2 = newLayerNorm(prefix+".ln2", cfg.Eps)
		}
	}
	return b
}

// hookNames lists the block's hook points in the order a pass reaches them.
func (b *Block) hookNames() []string {
	h := &b.hooks
	names := []string{h.residPre}
	if b.flags.attnIn {
		names = append(names, h.attnIn)
	}
	if b.flags.splitQKV {
		names = append(names, h.qIn, h.kIn, h.vIn)
	}
	if b.Ln1 != nil {
		names = append(names, b.Ln1.hookNames()...)
	}
	names = append(names, b.Attn.hookNames()...)
	names = append(names, h.attnOut)
	if b.MLP == nil {
		return append(names, h.residPost)
	}
	names = append(names, h.residMid)
	if b.flags.mlpIn {
		names = append(names, h.mlpIn)
	}
	if b.Ln2 != nil {
		names = append(names, b.Ln2.hookNames()...)
	}
	return append(names, append(b.MLP.hookNames(), h.mlpOut, h.residPost)...)
}

// forward maps resid [batch pos d_model] to the next layer's residual
// stream. pos [batch pos d_model] is the shortformer positional embedding
// added to the query and key inputs, or nil. It releases what it made and
// its input resid once done with them (pos stays the caller's).
func (b *Block) forward(p *pass, resid, pos, keep *gotch.Tensor, past *kvEntry) *gotch.Tensor {
	h := &b.hooks
	in := resid
	resid = p.at(h.residPre, resid)

	qIn, kIn, vIn := resid, resid, resid
	if b.flags.attnIn {
		attnIn := p.at(h.attnIn, b.perHead(resid))
		qIn, kIn, vIn = attnIn, attnIn, attnIn
	}
	if b.flags.splitQKV {
		qIn, kIn, vIn = p.at(h.qIn, b.perHead(resid)), p.at(h.kIn, b.perHead(resid)), p.at(h.vIn, b.perHead(resid))
	}
	// The attention's inputs at each step, resid aside, to release after it.
	var made [9]*gotch.Tensor
	made[0], made[1], made[2] = qIn, kIn, vIn
	// LayerNorm once when the three inputs are one tensor: the same values
	// TransformerLens gets by normalising it three times.
	qIn = norm(p, b.Ln1, qIn)
	if kIn != vIn {
		kIn, vIn = norm(p, b.Ln1, kIn), norm(p, b.Ln1, vIn)
	} else {
		kIn, vIn = qIn, qIn
	}
	made[3], made[4], made[5] = qIn, kIn, vIn
	if pos != nil {
		if qIn.Dim() == 4 {
			pos = pos.MustUnsqueeze(2)
			made[8] = pos
		}
		qIn, kIn = qIn.MustAdd(pos), kIn.MustAdd(pos)
		made[6], made[7] = qIn, kIn
	}
	attnOut := p.at(h.attnOut, b.Attn.forward(p, qIn, kIn, vIn, keep, past))
	releaseBut(p, resid, made[:]...)
	if b.MLP == nil {
		out := p.at(h.residPost, resid.MustAdd(attnOut))
		p.release(attnOut, resid, in)
		return out
	}

	mid := p.at(h.residMid, resid.MustAdd(attnOut))
	p.release(attnOut, resid, in)
	mlpIn := mid
	if b.flags.mlpIn {
		mlpIn = p.at(h.mlpIn, mid.MustClone())
	}
	normed := norm(p, b.Ln2, mlpIn)
	mlpOut := p.at(h.mlpOut, b.MLP.forward(p, normed))
	releaseBut(p, mid, mlpIn, normed)
	out := p.at(h.residPost, mid.MustAdd(mlpOut))
	p.release(mlpOut, mid)
	return out
}

// releaseBut releases xs except but (which they may include).
func releaseBut(p *pass, but *gotch.Tensor, xs ...*gotch.Tensor) {
	for _, x := range xs {
		if x != but {
			p.release(x)
		}
	}
}

// perHead repeats x [batch pos d_model] along a new head dimension [batch
// pos head d_model], as TransformerLens's repeat_along_head_dimension; a
// copy, so a hook can edit one head's input alone.
func (b *Block) perHead(x *gotch.Tensor) *gotch.Tensor {
	// Clone, not Contiguous, which returns x itself when n_heads is 1.
	return x.MustUnsqueeze(2).MustExpand([]int64{x.Size(0), x.Size(1), b.nHeads, x.Size(2)}).MustClone()
}

// norm applies ln, or passes x through when the model has no normalization.
func norm(p *pass, ln *LayerNorm, x *gotch.Tensor) *gotch.Tensor {
	if ln == nil {
		return x
	}
	return ln.forward(p, x)
}
