package hookedmodel

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/golens/golens/gotch"
)

// ReturnType selects what a forward pass returns, as TransformerLens's
// return_type does.
type ReturnType int

const (
	ReturnLogits ReturnType = iota // the default
	ReturnLoss
	ReturnBoth
	ReturnNone
)

// RunOption configures one pass; a nil one is ignored.
type RunOption func(*runOptions)

type runOptions struct {
	ret         ReturnType
	perToken    bool
	startAt     int
	stopAt      int // a block index; -1 runs them all
	padMask     *gotch.Tensor
	lossTokens  *gotch.Tensor
	names       Filter
	cache       cacheOptions
	pastKV      *KVCache
	prependBOS  *bool
	paddingSide string
}

// Return sets the return type (default ReturnLogits).
func Return(r ReturnType) RunOption { return func(o *runOptions) { o.ret = r } }

// LossPerToken makes the loss [batch pos-1] instead of its mean.
func LossPerToken() RunOption { return func(o *runOptions) { o.perToken = true } }

// StartAtLayer starts the pass at block l: the input is then the residual
// stream [batch pos d_model] entering block l, not tokens. Pass the tokens
// with LossTokens to get a loss.
func StartAtLayer(l int) RunOption { return func(o *runOptions) { o.startAt = l } }

// StopAtLayer stops before block l and returns the residual stream
// entering it (Output.Residual); RunWithCache then computes only what it
// needs. Negative l counts from the end, as in Python.
func StopAtLayer(l int) RunOption { return func(o *runOptions) { o.stopAt = l } }

// AttentionMask gives, per batch row, which positions are real tokens
// ([batch pos], 1 or true for a token, 0 for padding). Text inputs get one
// when they are padded on the left.
func AttentionMask(mask *gotch.Tensor) RunOption { return func(o *runOptions) { o.padMask = mask } }

// LossTokens gives the tokens the loss compares with when the input is a
// residual stream (StartAtLayer).
func LossTokens(t *gotch.Tensor) RunOption { return func(o *runOptions) { o.lossTokens = t } }

// Output is what a pass returns. It owns its tensors and lends them: they
// are in no scope, so ops on them (out.Logits.MustArgmax(-1, false)) make
// tensors that are yours and outlive Free. Free it when done; to keep a
// field beyond that, take an alias (out.Logits.MustAlias(), yours to free).
type Output struct {
	Logits   *gotch.Tensor // [batch pos d_vocab_out]; nil unless asked for
	Loss     *gotch.Tensor // a scalar, or [batch pos-1] with LossPerToken
	Residual *gotch.Tensor // [batch pos d_model] with StopAtLayer
	Tokens   *gotch.Tensor // [batch pos] int64, the tokens the pass ran on

	padMask *gotch.Tensor // the padding mask the pass used, or nil
	p       *pass         // kept when gradients were asked for, for Backward
}

// Free releases the output's tensors (and the pass kept for Backward). It
// is idempotent; nil and zero outputs hold nothing to free.
func (o *Output) Free() {
	if o == nil {
		return
	}
	for _, t := range []*gotch.Tensor{o.Logits, o.Loss, o.Residual, o.Tokens, o.padMask} {
		t.Free()
	}
	if o.p != nil {
		o.p.s.Close()
	}
}

// Forward runs the model on in and returns what Return asks for. It runs
// the hooks registered on the model.
func (m *HookedTransformer) Forward(ctx context.Context, in Input, opts ...RunOption) (*Output, error) {
	return m.run(ctx, in, nil, nil, opts)
}

// RunWithHooks runs a pass with hooks that apply to this call only, on top
// of those registered on the model.
func (m *HookedTransformer) RunWithHooks(ctx context.Context, in Input, hooks []Hook, opts ...RunOption) (*Output, error) {
	return m.run(ctx, in, hooks, nil, opts)
}

// RunWithCache runs a pass and caches the activations that NamesFilter
// selects (all by default). The caller frees both results.
func (m *HookedTransformer) RunWithCache(ctx context.Context, in Input, opts ...RunOption) (*Output, *ActivationCache, error) {
	o := runOpts(opts)
	cache := m.newCache(o.names, o.cache)
	out, err := m.run(ctx, in, nil, cache, opts)
	if err == nil {
		err = cache.settle()
	}
	if err != nil {
		out.Free()
		cache.Free()
		return nil, nil, err
	}
	return out, cache, nil
}

func runOpts(opts []RunOption) runOptions {
	o := runOptions{stopAt: -1 << 31}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

func (m *HookedTransformer) run(ctx context.Context, in Input, hooks []Hook, cache *ActivationCache, opts []RunOption) (out *Output, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := runOpts(opts)
	p, err := m.newPass(ctx, hooks, cache)
	if err != nil {
		return nil, err
	}
	// res, not the named result, which an error return has already set to
	// nil when the deferred cleanup runs.
	res := &Output{}
	defer func() {
		if err != nil {
			res.Free()
			out = nil
		}
		if err != nil || res.p == nil {
			p.s.Close()
		}
	}()
	defer recoverPass(&err)

	tokens, padMask, resid, err := m.inputs(p, in, &o)
	if err != nil {
		return nil, err
	}
	if cache != nil && cache.opts.removeBatchDim {
		if x := cmp.Or(tokens, resid); x.Size(0) != 1 {
			return nil, fmt.Errorf("RemoveBatchDim needs a batch of 1, got %d", x.Size(0))
		}
	}
	n := len(m.Blocks)
	stop := n
	if o.stopAt != -1<<31 {
		stop = o.stopAt
		if stop < 0 {
			stop += n
		}
		if stop < 0 || stop > n {
			return nil, fmt.Errorf("stop_at_layer %d is out of range for %d layers", o.stopAt, n)
		}
	}
	if o.startAt < 0 || o.startAt > stop {
		return nil, fmt.Errorf("start_at_layer %d is out of range (stop at %d of %d layers)", o.startAt, stop, n)
	}
	var pos *gotch.Tensor // shortformer positions, added to queries and keys only
	if resid == nil {
		resid, pos = m.embed(p, tokens, padMask, o.pastKV)
	}
	if p.grad {
		// Gradients flow from the loss back to every hook point, whatever the
		// weights' own requires_grad says: the embeddings are roots already,
		// a residual input becomes one.
		resid = p.gradRoot(resid)
		res.p = p
	}
	for l := o.startAt; l < stop; l++ {
		p.check()
		resid = m.Blocks[l].forward(p, resid, pos, padMask, o.pastKV.layer(l))
	}
	if tokens != nil {
		res.Tokens = unscoped(tokens.MustAlias())
	}
	if padMask != nil {
		res.padMask = unscoped(padMask.MustAlias())
	}
	if stop < n {
		res.Residual = unscoped(resid.MustAlias())
		return res, nil
	}
	if o.ret == ReturnNone {
		return res, nil
	}
	logits := m.unembed(p, resid)
	if o.ret == ReturnLogits || o.ret == ReturnBoth {
		res.Logits = unscoped(logits.MustAlias())
	}
	if o.ret == ReturnLoss || o.ret == ReturnBoth {
		lt := tokens
		if o.lossTokens != nil {
			if lt, err = m.checkTokens(p, o.lossTokens); err != nil {
				return nil, fmt.Errorf("loss tokens: %w", err)
			}
			if !slices.Equal(lt.Shape(), logits.Shape()[:2]) {
				return nil, fmt.Errorf("loss tokens %v do not match the pass's [batch pos] = %v", lt.Shape(), logits.Shape()[:2])
			}
		}
		if lt == nil {
			return nil, fmt.Errorf("a loss needs tokens: pass LossTokens when starting from a residual stream")
		}
		res.Loss = unscoped(lmLoss(p, logits, lt, padMask, o.perToken))
	}
	return res, nil
}

// embed is the residual stream entering block 0 [batch pos d_model],
// W_E[tokens] + W_pos[positions]; for shortformer models W_E[tokens], with
// the positional embedding apart (pos, added to queries and keys only).
func (m *HookedTransformer) embed(p *pass, tokens, padMask *gotch.Tensor, past *KVCache) (resid, pos *gotch.Tensor) {
	s := p.scope()
	defer s.Close()
	tokens = s.in(tokens)
	if m.Cfg.UseHookTokens {
		tokens = p.at(m.hooksTop.tokens, tokens)
	}
	embed := p.at(m.hooksTop.embed, p.gradRoot(gotch.MustEmbedding(m.WE, tokens))) // [batch pos d_model]
	if m.Cfg.PositionalEmbeddingType == "rotary" {
		return s.Keep(embed), nil // positions enter in each attention layer
	}
	pos = p.at(m.hooksTop.posEmbed, p.gradRoot(m.posEmbed(s, tokens, padMask, past.Len()))) // [batch pos d_model]
	if m.Cfg.PositionalEmbeddingType == "shortformer" {
		return s.Keep(embed), s.Keep(pos)
	}
	return s.Keep(embed.MustAdd(pos)), nil
}

// posEmbed is W_pos at each token's position [batch pos d_model]. With a
// padding mask, positions count real tokens only and padding gets zeros,
// as TransformerLens does.
func (m *HookedTransformer) posEmbed(s *callScope, tokens, padMask *gotch.Tensor, offset int64) *gotch.Tensor {
	b, n := tokens.Size(0), tokens.Size(1)
	if padMask == nil {
		if offset+n > int64(m.Cfg.NCtx) {
			panic(fmt.Errorf("%d positions exceed the model's context of n_ctx=%d", offset+n, m.Cfg.NCtx))
		}
		// A copy, never a view of W_pos (which Contiguous gives for a batch
		// of one): a hook may edit hook_pos_embed in place.
		return s.in(m.WPos).MustNarrow(0, offset, n).MustUnsqueeze(0).MustExpand([]int64{b, n, -1}).MustClone()
	}
	padMask = s.in(padMask)
	// each token's position among the real ones [batch pos]
	ids := padMask.MustTo(gotch.Int64).MustCumsum(1).MustSubScalar(1).MustClamp(0, float64(m.Cfg.NCtx-1)).MustNarrow(1, offset, n)
	pad := padMask.MustNarrow(1, offset, n).MustLogicalNot().MustUnsqueeze(-1) // [batch pos 1]
	return gotch.MustEmbedding(m.WPos, ids).MustMaskedFill(pad, 0)
}

// unembed maps the final residual stream to logits [batch pos d_vocab_out],
// soft-capped with output_logits_soft_cap (Gemma 2: cap·tanh(logits/cap),
// as TransformerLens's HookedTransformer.forward and Hugging Face's
// Gemma2ForCausalLM do; no hook point sits between the two).
func (m *HookedTransformer) unembed(p *pass, resid *gotch.Tensor) *gotch.Tensor {
	s := p.scope()
	defer s.Close()
	x := norm(p, m.LnFinal, s.in(resid))
	logits := x.MustLinear(m.WU, m.BU) // x W_U + b_U, as nn.Linear with WU = W_Uᵀ
	if c := m.cfg.OutputLogitsSoftCap; c > 0 {
		logits = logits.MustDivScalar(c).MustTanh().MustMulScalar(c)
	}
	return s.Keep(logits)
}

// lmLoss is TransformerLens's lm_cross_entropy_loss: the negative
// log-probability of each next token, [batch pos-1] per token, else the
// mean (over real tokens when a padding mask is given: a position counts
// when both it and the next token are real, as TransformerLens's
// next_token_mask says).
func lmLoss(p *pass, logits, tokens, padMask *gotch.Tensor, perToken bool) *gotch.Tensor {
	s := p.scope()
	defer s.Close()
	n := logits.Size(1)
	logProbs := s.in(logits).MustLogSoftmax(-1).MustNarrow(1, 0, n-1) // [batch pos-1 d_vocab_out]
	next := s.in(tokens).MustNarrow(1, 1, n-1).MustUnsqueeze(-1)      // [batch pos-1 1]
	nll := logProbs.MustGather(-1, next).MustSqueeze(-1).MustNeg()    // [batch pos-1]
	if padMask == nil {
		if perToken {
			return s.Keep(nll)
		}
		return s.Keep(nll.MustMean())
	}
	token := s.in(padMask).MustTo(gotch.Bool)                                                             // [batch pos]
	counts := token.MustNarrow(1, 0, n-1).MustLogicalAnd(token.MustNarrow(1, 1, n-1)).MustTo(nll.DType()) // [batch pos-1]
	nll = nll.MustMul(counts)
	if perToken {
		return s.Keep(nll)
	}
	return s.Keep(nll.MustSum().MustDiv(counts.MustSum()))
}

// Backward back-propagates the loss through the pass, fires its Bwd hooks
// with the gradients at their hook points, and (with InclBwd) caches them.
// The pass must have returned a scalar loss.
func (o *Output) Backward() error {
	if o.Loss == nil || o.Loss.Dim() != 0 {
		return fmt.Errorf("backward needs a scalar loss: run with Return(ReturnLoss) or ReturnBoth, without LossPerToken")
	}
	return o.BackwardFrom(o.Loss)
}

// BackwardFrom is Backward from a scalar the caller computed from the
// pass's outputs, such as a metric of its Logits (a logit difference, the
// log-probability of an answer): it back-propagates metric, fires the Bwd
// hooks and caches the gradients as Backward does. The pass must have asked
// for gradients (a Bwd hook, or InclBwd).
func (o *Output) BackwardFrom(metric *gotch.Tensor) (err error) {
	if metric == nil || metric.Freed() || metric.Dim() != 0 {
		return fmt.Errorf("backward needs a scalar (0-d) tensor computed from the pass's outputs, got %v", metric.Spec())
	}
	defer recoverPass(&err)
	if err := metric.Backward(nil, false); err != nil {
		return err
	}
	if o.p == nil {
		return nil
	}
	if err := o.p.runBackward(); err != nil {
		return err
	}
	return o.p.cache.settle()
}
