package hookedmodel

import (
	"fmt"

	"github.com/golens/golens/gotch"
)

// Block is one transformer block: attention, then (unless attn_only) the
// MLP, each reading the residual stream through its LayerNorm and adding
// its output back (through a post-norm with
// use_normalization_before_and_after).
type Block struct {
	Ln1     *LayerNorm // nil without normalization
	Ln1Post *LayerNorm // Gemma 2's norm of the attention's output, or nil
	Attn    *Attention
	Ln2     *LayerNorm // nil without normalization or in attention-only models
	Ln2Post *LayerNorm // Gemma 2's norm of the MLP's output, or nil
	MLP     *MLP       // nil in attention-only models

	nHeads   int64
	nKV      int64 // key and value heads
	parallel bool  // parallel_attn_mlp: attention and MLP both read resid_pre
	flags    blockFlags
	hooks    blockHooks
}

// blockFlags are the config switches the block reads, fixed when it is
// built.
type blockFlags struct{ attnIn, splitQKV, mlpIn bool }

type blockHooks struct{ residPre, attnIn, qIn, kIn, vIn, attnOut, residMid, mlpIn, mlpOut, residPost string }

func newBlock(cfg *Config, l int) *Block {
	prefix := "blocks." + itoa(l)
	h := func(n string) string { return prefix + ".hook_" + n }
	b := &Block{
		Attn:     newAttention(cfg, prefix+".attn", l),
		nHeads:   int64(cfg.NHeads),
		nKV:      int64(cfg.kvHeads()),
		parallel: cfg.ParallelAttnMLP,
		flags:    blockFlags{cfg.UseAttnIn, cfg.UseSplitQKVIn, cfg.UseHookMLPIn},
		hooks:    blockHooks{h("resid_pre"), h("attn_in"), h("q_input"), h("k_input"), h("v_input"), h("attn_out"), h("resid_mid"), h("mlp_in"), h("mlp_out"), h("resid_post")},
	}
	b.Ln1 = newNorm(cfg.NormalizationType, prefix+".ln1", cfg)
	b.Ln1Post = newNorm(postNorm(cfg), prefix+".ln1_post", cfg)
	if !cfg.AttnOnly {
		b.MLP = newMLP(cfg, prefix+".mlp")
		b.Ln2 = newNorm(cfg.NormalizationType, prefix+".ln2", cfg)
		b.Ln2Post = newNorm(postNorm(cfg), prefix+".ln2_post", cfg)
	}
	return b
}

// postNorm is the post-norms' normalization_type: an RMSNorm with weights
// even once fold_ln has made the others RMSPre (TransformerLens's
// TransformerBlock builds ln1_post and ln2_post as RMSNorm for either:
// nothing reads their output but the residual stream, so their weights
// cannot be folded); "" without use_normalization_before_and_after.
func postNorm(cfg *Config) string {
	if !cfg.UseNormalizationBeforeAndAfter {
		return ""
	}
	return "RMS"
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
	if b.Ln1Post != nil {
		names = append(names, b.Ln1Post.hookNames()...)
	}
	names = append(names, h.attnOut)
	if b.MLP == nil {
		return append(names, h.residPost)
	}
	if !b.parallel {
		names = append(names, h.residMid)
	}
	if b.flags.mlpIn {
		names = append(names, h.mlpIn)
	}
	if b.Ln2 != nil {
		names = append(names, b.Ln2.hookNames()...)
	}
	names = append(names, b.MLP.hookNames()...)
	if b.Ln2Post != nil {
		names = append(names, b.Ln2Post.hookNames()...)
	}
	return append(names, h.mlpOut, h.residPost)
}

// forward maps the residual stream resid [batch pos d_model] to the next
// layer's, as nanoGPT's Block does:
//
//	resid = resid + attn(ln1(resid))    hook_resid_mid (hook_resid_post in attention-only models)
//	resid = resid + mlp(ln2(resid))     hook_resid_post
//
// With use_normalization_before_and_after (Gemma 2) each sublayer's output
// goes through its post-norm before its hook: attn_out =
// ln1_post(attn(ln1(resid))), mlp_out = ln2_post(mlp(ln2(resid))).
//
// Each step takes its input over: it frees it, with everything else it
// made, when it ends. pos [batch pos d_model] is the shortformer
// positional embedding, added to the query and key inputs, or nil.
func (b *Block) forward(p *pass, resid, pos, padMask *gotch.Tensor, past *kvEntry) *gotch.Tensor {
	if b.parallel {
		return b.attendAndFeedForward(p, resid, pos, padMask, past)
	}
	resid = b.attend(p, resid, pos, padMask, past)
	if b.MLP == nil {
		return resid
	}
	return b.feedForward(p, resid)
}

// attend is the block's attention step.
func (b *Block) attend(p *pass, resid, pos, padMask *gotch.Tensor, past *kvEntry) *gotch.Tensor {
	s := p.scope()
	defer s.Close()
	h := &b.hooks
	resid = p.at(h.residPre, s.Attach(resid)) // [batch pos d_model]
	attnOut := b.attnOut(p, s, resid, pos, padMask, past)
	next := h.residMid
	if b.MLP == nil {
		next = h.residPost
	}
	return s.Keep(p.at(next, resid.MustAdd(attnOut)))
}

// attendAndFeedForward is a parallel_attn_mlp block (GPT-NeoX's
// use_parallel_residual, GPT-J): attention and MLP both read resid_pre,
// through ln1 and ln2, and there is no hook_resid_mid:
//
//	resid = resid + attn(ln1(resid)) + mlp(ln2(resid))    hook_resid_post
func (b *Block) attendAndFeedForward(p *pass, resid, pos, padMask *gotch.Tensor, past *kvEntry) *gotch.Tensor {
	s := p.scope()
	defer s.Close()
	h := &b.hooks
	resid = p.at(h.residPre, s.Attach(resid)) // [batch pos d_model]
	attnOut := b.attnOut(p, s, resid, pos, padMask, past)
	mlpOut := b.mlpOut(p, resid)
	return s.Keep(p.at(h.residPost, resid.MustAdd(attnOut).MustAdd(mlpOut)))
}

// feedForward is the block's MLP step.
func (b *Block) feedForward(p *pass, resid *gotch.Tensor) *gotch.Tensor {
	s := p.scope()
	defer s.Close()
	h := &b.hooks
	resid = s.Attach(resid) // [batch pos d_model]
	return s.Keep(p.at(h.residPost, resid.MustAdd(b.mlpOut(p, resid))))
}

// attnOut is what the attention adds to the residual stream, at
// hook_attn_out [batch pos d_model]: ln1_post(attn(ln1(resid))), without
// ln1_post when the block has none.
func (b *Block) attnOut(p *pass, s *callScope, resid, pos, padMask *gotch.Tensor, past *kvEntry) *gotch.Tensor {
	out := b.Attn.forward(p, b.attnInput(p, s, resid, pos), padMask, past) // [batch pos d_model]
	return p.at(b.hooks.attnOut, norm(p, b.Ln1Post, out))
}

// mlpOut is what the MLP adds to the residual stream, at hook_mlp_out
// [batch pos d_model]: ln2_post(mlp(ln2(resid))), through hook_mlp_in when
// asked for, without ln2_post when the block has none.
func (b *Block) mlpOut(p *pass, resid *gotch.Tensor) *gotch.Tensor {
	mlpIn := resid
	if b.flags.mlpIn {
		mlpIn = p.at(b.hooks.mlpIn, resid.MustClone())
	}
	out := b.MLP.forward(p, norm(p, b.Ln2, mlpIn)) // [batch pos d_model]
	return p.at(b.hooks.mlpOut, norm(p, b.Ln2Post, out))
}

// attnInput is what the attention reads: ln1(resid), one tensor for
// queries, keys and values. With attn_in, ln1 of a per-head copy of resid
// [batch pos head d_model] for all three (normalised once: the values
// TransformerLens gets normalising it three times); with split q/k/v input,
// which wins over attn_in as in TransformerLens, three per-head copies,
// each through its hook and ln1. Shortformer positions are added to the
// query and key inputs.
func (b *Block) attnInput(p *pass, s *callScope, resid, pos *gotch.Tensor) attnIn {
	h := &b.hooks
	x := resid
	if b.flags.attnIn {
		if b.nKV != b.nHeads {
			// TransformerLens's GroupedQueryAttention cannot read one
			// per-query-head input for keys and values either.
			panic(fmt.Errorf("%s: use_attn_in is not supported with grouped-query attention (n_key_value_heads %d < n_heads %d); use use_split_qkv_input", h.attnIn, b.nKV, b.nHeads))
		}
		x = p.at(h.attnIn, b.perHead(resid, b.nHeads))
	}
	var in attnIn
	if b.flags.splitQKV {
		// k and v inputs have n_key_value_heads heads, as TransformerLens's
		q, k, v := p.at(h.qIn, b.perHead(resid, b.nHeads)), p.at(h.kIn, b.perHead(resid, b.nKV)), p.at(h.vIn, b.perHead(resid, b.nKV))
		in = attnIn{q: norm(p, b.Ln1, q), k: norm(p, b.Ln1, k), v: norm(p, b.Ln1, v)}
	} else {
		x = norm(p, b.Ln1, x)
		in = attnIn{q: x, k: x, v: x, one: !b.flags.attnIn}
	}
	if pos != nil {
		pos = s.in(pos)
		if in.q.Dim() == 4 {
			pos = pos.MustUnsqueeze(2) // [batch pos 1 d_model]: the same for every head
		}
		in = attnIn{q: in.q.MustAdd(pos), k: in.k.MustAdd(pos), v: in.v}
	}
	return in
}

// perHead repeats x [batch pos d_model] along a new head dimension [batch
// pos head d_model], as TransformerLens's repeat_along_head_dimension; a
// copy, so a hook can edit one head's input alone.
func (b *Block) perHead(x *gotch.Tensor, heads int64) *gotch.Tensor {
	// Clone, not Contiguous, which returns x itself when n_heads is 1.
	return x.MustUnsqueeze(2).MustExpand([]int64{x.Size(0), x.Size(1), heads, x.Size(2)}).MustClone()
}

// norm applies ln, or passes x through when the model has no normalization.
func norm(p *pass, ln *LayerNorm, x *gotch.Tensor) *gotch.Tensor {
	if ln == nil {
		return x
	}
	return ln.forward(p, x)
}
