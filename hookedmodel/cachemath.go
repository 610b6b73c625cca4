package hookedmodel

import (
	"fmt"
	"slices"

	"github.com/golens/golens/gotch"
)

// This file is TransformerLens's ActivationCache maths: the residual stream
// taken apart into what each layer, head or neuron wrote to it, scaled by
// the cached LayerNorm scales, and projected onto unembedding directions.
//
// Every method returns a new tensor that is the caller's to free; those that
// build a stack [components ...batch_and_pos d_model] also return one label
// per component (TransformerLens's return_labels; they always come back).
// Weights come from the cache's model as they are when the method runs.
// The batch_and_pos dimensions are [batch pos], [pos] in a RemoveBatchDim
// cache, and lose pos when Positions selects a single one. Cached tensors
// are never modified.

// CacheMathOption configures one ActivationCache computation. Options a
// method does not read are ignored, as unused keyword arguments would be,
// and so is a nil one.
type CacheMathOption func(*mathOptions)

type mathOptions struct {
	inclMid, mlpInput, applyLN, recomputeLN, inclRemainder bool
	inclEmbeds, expandNeurons                              bool // default true
	mode                                                   ResidMode
	pos, batch                                             *PosSlice
	neurons                                                []int64 // nil: all of them
	hasBatchDim                                            *bool   // nil: whether the cache has one
}

// ResidMode selects the sublayers DecomposeResid keeps (TransformerLens's
// mode).
type ResidMode string

const (
	ResidAll  ResidMode = "all"
	ResidAttn ResidMode = "attn"
	ResidMLP  ResidMode = "mlp"
)

// InclMid also stacks each earlier layer's resid_mid (AccumulatedResid).
func InclMid() CacheMathOption { return func(o *mathOptions) { o.inclMid = true } }

// MLPInput decomposes the input to the layer's MLP instead of its
// attention: the layer's attention output is included and LayerNorm
// scaling uses ln2 instead of ln1 (TransformerLens's mlp_input).
func MLPInput() CacheMathOption { return func(o *mathOptions) { o.mlpInput = true } }

// ApplyLN scales the stack as the LayerNorm reading it would, with the
// cached scale (see ApplyLnToStack).
func ApplyLN() CacheMathOption { return func(o *mathOptions) { o.applyLN = true } }

// RecomputeLN makes ApplyLnToStack at the unembed normalise each component
// with ln_final itself, weights included, instead of dividing by the cached
// scale: the logit lens (AccumulatedResid sets it there).
func RecomputeLN() CacheMathOption { return func(o *mathOptions) { o.recomputeLN = true } }

// InclRemainder adds a last component, "remainder": the rest of the
// residual stream, so that the stack still sums to it.
func InclRemainder() CacheMathOption { return func(o *mathOptions) { o.inclRemainder = true } }

// InclEmbeds sets whether DecomposeResid includes the token and positional
// embeddings (default true).
func InclEmbeds(on bool) CacheMathOption { return func(o *mathOptions) { o.inclEmbeds = on } }

// ExpandNeurons sets whether GetFullResidDecomposition splits each MLP
// into its neurons (default true) or keeps one component per MLP.
func ExpandNeurons(on bool) CacheMathOption { return func(o *mathOptions) { o.expandNeurons = on } }

// Mode selects the sublayers DecomposeResid keeps (default ResidAll).
func Mode(m ResidMode) CacheMathOption { return func(o *mathOptions) { o.mode = m } }

// Positions keeps the positions ps selects (TransformerLens's pos_slice).
// For ApplyLnToStack and LogitAttrs the stack is taken to be sliced
// already and only the cached scale is.
func Positions(ps PosSlice) CacheMathOption { return func(o *mathOptions) { o.pos = &ps } }

// Batches keeps the batch rows bs selects, for ApplyLnToStack and
// LogitAttrs (TransformerLens's batch_slice): the stack's dimension 1 when
// it has a batch dimension, and the cached scale's.
func Batches(bs PosSlice) CacheMathOption { return func(o *mathOptions) { o.batch = &bs } }

// Neurons keeps these neurons of each MLP, in this order; negative indices
// count from the end (StackNeuronResults' neuron_slice).
func Neurons(idx ...int64) CacheMathOption {
	return func(o *mathOptions) { o.neurons = append([]int64{}, idx...) }
}

// HasBatchDim says whether a stack given to ApplyLnToStack or LogitAttrs
// has a batch dimension after its component dimension; by default, as the
// cache's activations do.
func HasBatchDim(on bool) CacheMathOption { return func(o *mathOptions) { o.hasBatchDim = &on } }

func (c *ActivationCache) mathOpts(opts []CacheMathOption) mathOptions {
	o := mathOptions{inclEmbeds: true, expandNeurons: true, mode: ResidAll}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.hasBatchDim == nil {
		has := !c.opts.removeBatchDim
		o.hasBatchDim = &has
	}
	return o
}

// mathError is a failure that a computation reports as a plain error,
// rather than as a panic with its stack.
type mathError struct{ error }

func mathFail(format string, args ...any) { panic(mathError{fmt.Errorf(format, args...)}) }

// run computes a stack in a scope of its own, freed on return, and hands
// the result to the caller.
func (c *ActivationCache) run(op string, f func(s *gotch.Scope) (*gotch.Tensor, []string)) (stack *gotch.Tensor, labels []string, err error) {
	if c.model == nil {
		return nil, nil, fmt.Errorf("%s: the cache has no model", op)
	}
	s := gotch.NewScope()
	defer s.Close()
	defer func() {
		if v := recover(); v != nil {
			stack, labels = nil, nil
			if e, ok := v.(mathError); ok {
				err = fmt.Errorf("%s: %w", op, e.error)
			} else {
				err = fmt.Errorf("%s: %w", op, gotch.PanicError(v))
			}
		}
	}()
	stack, labels = f(s)
	return s.Keep(stack), labels, nil
}

// layer resolves a layer argument, -1 meaning n_layers (the unembed's
// input), and checks that MLPInput names a layer with an MLP.
func (c *ActivationCache) layer(l int, o *mathOptions) int {
	n := len(c.model.Blocks)
	if l == -1 {
		l = n
	}
	if l < 0 || l > n {
		mathFail("layer %d is out of range [0, %d] (or -1 for the unembed)", l, n)
	}
	if o.mlpInput && l == n {
		mathFail("mlp_input at the unembed (layer %d): ln_final reads the whole stream, not an MLP's input", l)
	}
	return l
}

// get borrows a cached activation into s, or fails naming it.
func (c *ActivationCache) get(s *gotch.Scope, name string) *gotch.Tensor {
	t, err := c.Get(name)
	if err != nil {
		mathFail("%w", err)
	}
	return borrow(s, t)
}

func (c *ActivationCache) has(name string) bool { _, ok := c.acts[name]; return ok }

func blockHook(l int, name string) string { return fmt.Sprintf("blocks.%d.%s", l, name) }

// weightLike borrows a model weight into s on the device of like, a cached
// activation, so that a cache kept on another device (CacheDevice) works.
func weightLike(s *gotch.Scope, w, like *gotch.Tensor) *gotch.Tensor {
	w = borrow(s, w)
	if w.Device() != like.Device() {
		w = w.MustToDevice(like.Device(), false)
	}
	return w
}

// sliceEnd applies ps to dimension dim of t, counted from the end (-2 is pos
// in [... pos d_model]); nil keeps everything.
func sliceEnd(t *gotch.Tensor, dim int, ps *PosSlice) *gotch.Tensor {
	if ps == nil {
		return t
	}
	return slicePos(t, int64(t.Dim()+dim), *ps)
}

// dimToFront moves dimension dim (counted from the end) of t to the front.
func dimToFront(t *gotch.Tensor, dim int) *gotch.Tensor {
	d := t.Dim() + dim
	perm := []int64{int64(d)}
	for i := range t.Dim() {
		if i != d {
			perm = append(perm, int64(i))
		}
	}
	return t.MustPermute(perm)
}

// stack stacks parts [...batch_and_pos d_model] into [components ...], or
// makes an empty stack shaped like the embeddings when there are none.
func (c *ActivationCache) stack(s *gotch.Scope, parts []*gotch.Tensor, o *mathOptions) *gotch.Tensor {
	if len(parts) > 0 {
		return gotch.MustStack(parts, 0)
	}
	like := sliceEnd(c.get(s, "hook_embed"), -2, o.pos)
	return s.Attach(gotch.MustZeros(append([]int64{0}, like.Shape()...), like.DType(), like.Device()))
}

// residAt is the residual stream that layer reads: resid_pre, resid_mid
// with MLPInput, or the final resid_post at the unembed.
func (c *ActivationCache) residAt(s *gotch.Scope, layer int, o *mathOptions) *gotch.Tensor {
	n := len(c.model.Blocks)
	switch {
	case layer == n:
		return c.get(s, blockHook(n-1, "hook_resid_post"))
	case o.mlpInput && !c.parallelAt(layer):
		return c.get(s, blockHook(layer, "hook_resid_mid"))
	}
	return c.get(s, blockHook(layer, "hook_resid_pre"))
}

// withRemainder appends the rest of the residual stream at layer, so the
// stack sums to it.
func (c *ActivationCache) withRemainder(s *gotch.Scope, stack *gotch.Tensor, labels []string, layer int, o *mathOptions) (*gotch.Tensor, []string) {
	rest := sliceEnd(c.residAt(s, layer, o), -2, o.pos).MustSub(stack.MustSumDims([]int64{0}, false))
	return gotch.MustCat([]*gotch.Tensor{stack, rest.MustUnsqueeze(0)}, 0), append(labels, "remainder")
}

// AccumulatedResid stacks the residual stream as it stands entering each
// layer up to layer ("0_pre", "1_pre", ..., with InclMid also "0_mid",
// ...; with MLPInput the layer's own "{layer}_mid"), and at layer -1 (or
// n_layers) the final "final_post". ApplyLN scales it as the layer's
// LayerNorm would; at the unembed each component is normalised with
// ln_final itself, TransformerLens's logit lens. Options: InclMid,
// MLPInput, ApplyLN, Positions.
func (c *ActivationCache) AccumulatedResid(layer int, opts ...CacheMathOption) (*gotch.Tensor, []string, error) {
	o := c.mathOpts(opts)
	return c.run("accumulated resid", func(s *gotch.Scope) (*gotch.Tensor, []string) {
		layer := c.layer(layer, &o)
		n := len(c.model.Blocks)
		var parts []*gotch.Tensor
		var labels []string
		add := func(name, label string) {
			parts = append(parts, sliceEnd(c.get(s, name), -2, o.pos))
			labels = append(labels, label)
		}
		for l := 0; l <= layer; l++ {
			if l == n {
				add(blockHook(n-1, "hook_resid_post"), "final_post")
				break
			}
			add(blockHook(l, "hook_resid_pre"), fmt.Sprintf("%d_pre", l))
			if ((o.inclMid && l < layer) || (o.mlpInput && l == layer)) && !c.parallelAt(l) {
				add(blockHook(l, "hook_resid_mid"), fmt.Sprintf("%d_mid", l))
			}
		}
		stack := c.stack(s, parts, &o)
		if o.applyLN {
			o.recomputeLN = layer == n
			stack = c.applyLN(s, stack, layer, &o)
		}
		return stack, labels
	})
}

// DecomposeResid stacks what each component wrote to the residual stream
// entering layer: "embed", "pos_embed", then "{l}_attn_out" and
// "{l}_mlp_out" for every earlier layer (and the layer's own attention with
// MLPInput). The stack sums to the residual stream there. Options: Mode,
// InclEmbeds, MLPInput, ApplyLN, Positions.
//
// Unlike TransformerLens, a shortformer's positional embedding is left
// out: it feeds attention's queries and keys, never the residual stream.
func (c *ActivationCache) DecomposeResid(layer int, opts ...CacheMathOption) (*gotch.Tensor, []string, error) {
	o := c.mathOpts(opts)
	return c.run("decompose resid", func(s *gotch.Scope) (*gotch.Tensor, []string) {
		layer := c.layer(layer, &o)
		stack, labels := c.decompose(s, layer, &o)
		if o.applyLN {
			stack = c.applyLN(s, stack, layer, &o)
		}
		return stack, labels
	})
}

func (c *ActivationCache) decompose(s *gotch.Scope, layer int, o *mathOptions) (*gotch.Tensor, []string) {
	switch o.mode {
	case ResidAll, ResidAttn, ResidMLP:
	default:
		mathFail("mode %q is not all, attn or mlp", o.mode)
	}
	inclAttn := o.mode != ResidMLP
	inclMLP := o.mode != ResidAttn && !c.model.Cfg.AttnOnly
	var parts []*gotch.Tensor
	var labels []string
	add := func(name, label string) {
		parts = append(parts, sliceEnd(c.get(s, name), -2, o.pos))
		labels = append(labels, label)
	}
	if o.inclEmbeds {
		add("hook_embed", "embed")
		if c.posInResid() {
			add("hook_pos_embed", "pos_embed")
		}
	}
	for l := range layer {
		if inclAttn {
			add(blockHook(l, "hook_attn_out"), fmt.Sprintf("%d_attn_out", l))
		}
		if inclMLP {
			add(blockHook(l, "hook_mlp_out"), fmt.Sprintf("%d_mlp_out", l))
		}
	}
	if o.mlpInput && inclAttn && !c.parallelAt(layer) { // a parallel MLP reads resid_pre: no own attention
		add(blockHook(layer, "hook_attn_out"), fmt.Sprintf("%d_attn_out", layer))
	}
	return c.stack(s, parts, o), labels
}

// posInResid reports whether hook_pos_embed is added to the residual
// stream (not so for shortformer models, and rotary models have none).
func (c *ActivationCache) posInResid() bool {
	return c.model.Cfg.PositionalEmbeddingType == "standard"
}

// parallelAt reports whether layer's MLP reads resid_pre alongside the
// attention (parallel_attn_mlp), so that the layer has no resid_mid.
func (c *ActivationCache) parallelAt(layer int) bool {
	return layer < len(c.model.Blocks) && c.model.Blocks[layer].parallel
}

// StackHeadResults stacks each attention head's result, its write to the
// residual stream, for every layer before layer, labelled "L{l}H{h}":
// [layer·n_heads ...batch_and_pos d_model]. It reads hook_result where the
// cache holds it and otherwise computes it from hook_z and W_O, as
// TransformerLens's compute_head_results does. Summed over a layer's heads
// plus b_O it is that layer's hook_attn_out (with Gemma 2's ln1_post, the
// attention's output before that norm, which hook_attn_out follows).
// Options: InclRemainder, ApplyLN, Positions.
//
// The remainder at layer 0 is the residual stream entering block 0, where
// TransformerLens's index -1 gives the final one.
func (c *ActivationCache) StackHeadResults(layer int, opts ...CacheMathOption) (*gotch.Tensor, []string, error) {
	o := c.mathOpts(opts)
	return c.run("stack head results", func(s *gotch.Scope) (*gotch.Tensor, []string) {
		o.mlpInput = false // the stack feeds the layer's attention, or the unembed
		layer := c.layer(layer, &o)
		stack, labels := c.headResults(s, layer, &o)
		if o.inclRemainder {
			stack, labels = c.withRemainder(s, stack, labels, layer, &o)
		}
		if o.applyLN {
			stack = c.applyLN(s, stack, layer, &o)
		}
		return stack, labels
	})
}

func (c *ActivationCache) headResults(s *gotch.Scope, layer int, o *mathOptions) (*gotch.Tensor, []string) {
	var parts []*gotch.Tensor // each [n_heads ...batch_and_pos d_model]
	var labels []string
	for l := range layer {
		result := sliceEnd(c.headResult(s, l), -3, o.pos) // [...batch pos head d_model]
		parts = append(parts, dimToFront(result, -2))
		for h := range c.model.Cfg.NHeads {
			labels = append(labels, fmt.Sprintf("L%dH%d", l, h))
		}
	}
	if len(parts) == 0 {
		return c.stack(s, nil, o), labels
	}
	return gotch.MustCat(parts, 0), labels
}

// headResult is layer l's hook_result [...batch pos head d_model], cached
// or computed from hook_z.
func (c *ActivationCache) headResult(s *gotch.Scope, l int) *gotch.Tensor {
	name := blockHook(l, "attn.hook_result")
	if c.has(name) {
		return c.get(s, name)
	}
	zName := blockHook(l, "attn.hook_z")
	if !c.has(zName) {
		mathFail("the cache holds neither %s nor %s: run with use_attn_result or cache hook_z", name, zName)
	}
	z := c.get(s, zName)
	wO := weightLike(s, c.model.Blocks[l].Attn.views.wOHead, z) // [head d_head d_model]
	return gotch.MustEinsum("...hd,hdm->...hm", []*gotch.Tensor{z, wO})
}

// ComputeHeadResults adds each layer's blocks.{l}.attn.hook_result [...batch
// pos head d_model], each head's write to the residual stream (hook_z times
// its W_O), to the cache, as TransformerLens's compute_head_results does,
// so a cache taken without use_attn_result holds the per-head results too.
// Layers whose result is cached already are left as they are; every other
// layer needs its hook_z. On error the cache is unchanged.
func (c *ActivationCache) ComputeHeadResults() error {
	var names []string
	var results []*gotch.Tensor
	_, _, err := c.run("compute head results", func(s *gotch.Scope) (*gotch.Tensor, []string) {
		for l := range c.model.Blocks {
			if name := blockHook(l, "attn.hook_result"); !c.has(name) {
				names, results = append(names, name), append(results, c.headResult(s, l))
			}
		}
		for _, r := range results {
			s.Keep(r)
		}
		return nil, nil
	})
	if err != nil {
		return err
	}
	for i, name := range names {
		c.acts[name] = results[i]
		c.order = append(c.order, name)
	}
	return nil
}

// StackNeuronResults stacks each MLP neuron's write to the residual
// stream (its hook_post activation times its row of W_out) for every layer
// before layer, labelled "L{l}N{n}": [layer·neurons ...batch_and_pos
// d_model]. Summed over a layer's neurons plus b_out it is that layer's
// hook_mlp_out (the MLP's output before Gemma 2's ln2_post). Options: Neurons, InclRemainder, MLPInput (the remainder
// then reaches resid_mid, and ApplyLN uses ln2), ApplyLN, Positions.
func (c *ActivationCache) StackNeuronResults(layer int, opts ...CacheMathOption) (*gotch.Tensor, []string, error) {
	o := c.mathOpts(opts)
	return c.run("stack neuron results", func(s *gotch.Scope) (*gotch.Tensor, []string) {
		layer := c.layer(layer, &o)
		stack, labels := c.neuronResults(s, layer, &o)
		if o.inclRemainder {
			stack, labels = c.withRemainder(s, stack, labels, layer, &o)
		}
		if o.applyLN {
			stack = c.applyLN(s, stack, layer, &o)
		}
		return stack, labels
	})
}

func (c *ActivationCache) neuronResults(s *gotch.Scope, layer int, o *mathOptions) (*gotch.Tensor, []string) {
	if c.model.Cfg.AttnOnly {
		mathFail("an attention-only model has no neurons")
	}
	idx := c.neuronIndices(o)
	var parts []*gotch.Tensor // each [neurons ...batch_and_pos d_model]
	var labels []string
	for l := range layer {
		post := sliceEnd(c.get(s, blockHook(l, "mlp.hook_post")), -2, o.pos) // [...batch_and_pos d_mlp]
		ids := s.Attach(gotch.MustFromSlice(idx, []int64{int64(len(idx))}, post.Device()))
		post = post.MustIndexSelect(int64(post.Dim()-1), ids)
		wOut := weightLike(s, c.model.Blocks[l].MLP.WOut, post).MustTranspose(0, 1).MustIndexSelect(0, ids) // [neurons d_model]
		parts = append(parts, dimToFront(post.MustUnsqueeze(-1).MustMul(wOut), -2))
		for _, n := range idx {
			labels = append(labels, fmt.Sprintf("L%dN%d", l, n))
		}
	}
	if len(parts) == 0 {
		return c.stack(s, nil, o), labels
	}
	return gotch.MustCat(parts, 0), labels
}

// neuronIndices resolves Neurons to indices in [0, d_mlp).
func (c *ActivationCache) neuronIndices(o *mathOptions) []int64 {
	n := int64(c.model.Cfg.DMLP)
	if o.neurons == nil {
		idx := make([]int64, n)
		for i := range idx {
			idx[i] = int64(i)
		}
		return idx
	}
	idx := make([]int64, len(o.neurons))
	for i, j := range o.neurons {
		if j < 0 {
			j += n
		}
		if j < 0 || j >= n {
			mathFail("neuron %d is out of range for d_mlp=%d", o.neurons[i], n)
		}
		idx[i] = j
	}
	return idx
}

// ApplyLnToStack scales stack [components ...batch_and_pos d_model], taken
// as the input to layer (ln1, or ln2 with MLPInput; -1 or n_layers is the
// unembed's ln_final), as that LayerNorm scales the whole residual stream:
// each component is centred and divided by the cached hook_scale. The
// scale is global to the stream, which is why the cached one is used:
// what each component contributes to the normalised input then sums to
// the stream before the norm's weight and bias (hook_normalized once
// fold_ln has run; TransformerLens applies no w or b here either). With RecomputeLN at the unembed, ln_final instead
// normalises each component on its own, weights included. A model without
// normalization gets the stack back unchanged (a new handle). Options:
// MLPInput, Positions and Batches (applied to the scale; Batches also to a
// stack with a batch dimension), HasBatchDim, RecomputeLN.
func (c *ActivationCache) ApplyLnToStack(stack *gotch.Tensor, layer int, opts ...CacheMathOption) (*gotch.Tensor, error) {
	o := c.mathOpts(opts)
	t, _, err := c.run("apply ln to stack", func(s *gotch.Scope) (*gotch.Tensor, []string) {
		if stack == nil {
			mathFail("no stack")
		}
		return c.applyLN(s, borrow(s, stack), c.layer(layer, &o), &o), nil
	})
	return t, err
}

func (c *ActivationCache) applyLN(s *gotch.Scope, stack *gotch.Tensor, layer int, o *mathOptions) *gotch.Tensor {
	m := c.model
	if m.Cfg.NormalizationType == "" {
		return stack
	}
	n := len(m.Blocks)
	if *o.hasBatchDim {
		stack = sliceEnd(stack, 1-stack.Dim(), o.batch) // dimension 1
	}
	ln := m.LnFinal
	if layer < n {
		ln = m.Blocks[layer].Ln1
	}
	if o.recomputeLN && layer == n && ln.rms {
		// RMSNorm's scale of each component alone, no centring; w after
		// the scale, as the norm applies it
		scaled := stack.MustDiv(stack.MustPowScalar(2).MustMeanDims([]int64{-1}, true).MustAddScalar(ln.eps).MustSqrt())
		if ln.W != nil {
			w := weightLike(s, ln.W, stack)
			if ln.plusOne {
				w = w.MustAddScalar(1)
			}
			scaled = scaled.MustMul(w)
		}
		return scaled
	}
	if o.recomputeLN && layer == n {
		var w, b *gotch.Tensor
		if ln.W != nil {
			w, b = weightLike(s, ln.W, stack), weightLike(s, ln.B, stack)
		}
		return stack.MustLayerNorm([]int64{stack.Size(-1)}, w, b, ln.eps)
	}
	// LN and LNPre centre; RMSNorm and RMSPre do not.
	if !ln.rms {
		stack = stack.MustSub(stack.MustMeanDims([]int64{-1}, true))
	}
	name := blockHook(layer, "ln1.hook_scale")
	switch {
	case layer == n:
		name = "ln_final.hook_scale"
	case o.mlpInput:
		name = blockHook(layer, "ln2.hook_scale")
	}
	if !c.has(name) {
		mathFail("applying LayerNorm needs the cached scale %s: cache it", name)
	}
	scale := sliceEnd(c.get(s, name), -2, o.pos) // [...batch_and_pos 1]
	if !c.opts.removeBatchDim {
		scale = sliceEnd(scale, -scale.Dim(), o.batch)
	}
	return stack.MustDiv(scale)
}

// GetFullResidDecomposition takes the residual stream entering layer (-1:
// the unembed's input) apart into every attention head ("L{l}H{h}"), every
// neuron ("L{l}N{n}"; with ExpandNeurons(false) every MLP, "{l}_mlp_out"),
// "embed", "pos_embed" and "bias", the sum of the biases the layers added
// (b_O, and b_out with expanded neurons); the stack sums to the stream.
// With post-norms (Gemma 2's ln1_post and ln2_post) it is an error past
// layer 0: the norms stand between the heads and neurons and the stream.
// Options: MLPInput, ExpandNeurons, ApplyLN, Positions.
func (c *ActivationCache) GetFullResidDecomposition(layer int, opts ...CacheMathOption) (*gotch.Tensor, []string, error) {
	o := c.mathOpts(opts)
	return c.run("full resid decomposition", func(s *gotch.Scope) (*gotch.Tensor, []string) {
		layer := c.layer(layer, &o)
		heads := layer
		if o.mlpInput && !c.parallelAt(layer) {
			heads++
		}
		if heads > 0 && c.model.Blocks[0].Ln1Post != nil {
			mathFail("blocks.0.ln1_post normalises the attention's output (use_normalization_before_and_after), so the heads' results and the neurons' do not sum to what a layer writes: " +
				"the residual stream has no decomposition into them; DecomposeResid takes it apart by sublayer (hook_attn_out, hook_mlp_out)")
		}
		stack, labels := c.headResults(s, heads, &o)
		parts := []*gotch.Tensor{stack}
		if !c.model.Cfg.AttnOnly && layer > 0 {
			var mlp *gotch.Tensor
			var mlpLabels []string
			if o.expandNeurons {
				mlp, mlpLabels = c.neuronResults(s, layer, &o)
			} else {
				mo := o
				mo.mode, mo.inclEmbeds = ResidMLP, false
				mlp, mlpLabels = c.decompose(s, layer, &mo)
			}
			parts, labels = append(parts, mlp), append(labels, mlpLabels...)
		}
		embed := sliceEnd(c.get(s, "hook_embed"), -2, o.pos)
		parts, labels = append(parts, embed.MustUnsqueeze(0)), append(labels, "embed")
		if c.posInResid() {
			pos := sliceEnd(c.get(s, "hook_pos_embed"), -2, o.pos)
			parts, labels = append(parts, pos.MustUnsqueeze(0)), append(labels, "pos_embed")
		}
		bias := c.accumulatedBias(s, layer, embed, &o).MustExpand(append([]int64{1}, embed.Shape()...))
		parts, labels = append(parts, bias), append(labels, "bias")
		full := gotch.MustCat(parts, 0)
		if o.applyLN {
			full = c.applyLN(s, full, layer, &o)
		}
		return full, labels
	})
}

// accumulatedBias is the sum of the biases the layers before layer wrote to
// the residual stream [d_model]: every b_O, b_out too when neurons are
// expanded (unexpanded MLP outputs carry theirs), and the layer's own b_O
// with MLPInput; on the device of like.
func (c *ActivationCache) accumulatedBias(s *gotch.Scope, layer int, like *gotch.Tensor, o *mathOptions) *gotch.Tensor {
	bias := s.Attach(gotch.MustZeros([]int64{int64(c.model.Cfg.DModel)}, c.model.DType(), like.Device()))
	for l, b := range c.model.Blocks {
		if l < layer || (l == layer && o.mlpInput && !b.parallel) {
			bias = bias.MustAdd(weightLike(s, b.Attn.BO, like))
		}
		if l < layer && o.expandNeurons && b.MLP != nil {
			bias = bias.MustAdd(weightLike(s, b.MLP.BOut, like))
		}
	}
	return bias
}

// LogitAttrs is each component's direct contribution to the logit of
// tokens, or with incorrect (same shape, may be nil) to the logit
// difference tokens − incorrect: the component, scaled by the cached
// ln_final scale (ApplyLnToStack at the unembed), dotted with the tokens'
// unembedding directions, columns of W_U. b_U is left out, as
// TransformerLens leaves it: the components sum to the logit less b_U (with
// folded LayerNorm weights; unfolded, they sum to the norm before its
// weight and bias, (hook_normalized − b) / w, times W_U).
//
// tokens (int64 or int32) is a single token (any tensor of one element),
// [batch] (one token per row, for every position), [pos] (one per
// position, when its length is not the batch size), or [batch pos]; it
// must match the stack's batch and positions after Positions and Batches.
// The result is [components ...batch_and_pos]. Options: Positions,
// Batches, HasBatchDim.
func (c *ActivationCache) LogitAttrs(stack, tokens, incorrect *gotch.Tensor, opts ...CacheMathOption) (*gotch.Tensor, error) {
	o := c.mathOpts(opts)
	t, _, err := c.run("logit attrs", func(s *gotch.Scope) (*gotch.Tensor, []string) {
		if stack == nil {
			mathFail("no stack")
		}
		stack := borrow(s, stack)
		dirs := c.residualDirections(s, tokens, stack)
		if incorrect != nil {
			if got, want := incorrect.Shape(), tokens.Shape(); !slices.Equal(got, want) {
				mathFail("incorrect tokens %v must have the shape of tokens %v", got, want)
			}
			dirs = dirs.MustSub(c.residualDirections(s, incorrect, stack))
		}
		scaled := c.applyLN(s, stack, len(c.model.Blocks), &o)
		single := o.batch != nil && o.batch.Single
		if *o.hasBatchDim && !single && scaled.Dim() == 4 && dirs.Dim() == 2 && dirs.Size(0) == scaled.Size(1) {
			dirs = dirs.MustUnsqueeze(-2) // per-row tokens broadcast over positions, not across rows
		}
		return scaled.MustMul(dirs).MustSumDims([]int64{-1}, false), nil
	})
	return t, err
}

// residualDirections are the unembedding directions of tokens, [...tokens
// d_model] ([d_model] for a single token), on the device of like.
func (c *ActivationCache) residualDirections(s *gotch.Scope, tokens, like *gotch.Tensor) *gotch.Tensor {
	if tokens == nil || tokens.Numel() == 0 {
		mathFail("no tokens (%s)", tokens.Spec())
	}
	if d := tokens.DType(); d != gotch.Int64 && d != gotch.Int32 {
		mathFail("tokens must be int64 or int32, not %v", d)
	}
	wU := borrow(s, c.model.WU) // [d_vocab_out d_model]: row t is W_U[:, t]
	ids := borrow(s, tokens).MustToDevice(wU.Device(), false).MustTo(gotch.Int64)
	if ids.Numel() == 1 {
		ids = ids.MustReshape([]int64{})
	}
	return gotch.MustEmbedding(wU, ids).MustToDevice(like.Device(), false)
}
