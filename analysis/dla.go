package analysis

import (
	"context"
	"fmt"
	"math"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// LogitAttributionResult splits a logit difference at one position into
// the direct contributions of the model's parts.
type LogitAttributionResult struct {
	Pos int // the position explained, counted from 0
	// Total [batch] is the logit difference, read from the logits; for a
	// model whose logits are soft-capped (Gemma 2's
	// output_logits_soft_cap), the difference before the cap, which is
	// what the components add up to, each logit recovered as
	// cap·atanh(logit/cap).
	Total []float64

	// Labels names the components of Components: "embed", "pos_embed",
	// "{l}_attn_out" and "{l}_mlp_out" per layer, and "bias", the constant
	// the final LayerNorm's bias and b_U add.
	Labels []string
	// Components [component batch] is what each component wrote to the
	// final residual stream, centred and divided by the cached ln_final
	// scale (the whole stream's, as the pass applied it), through the
	// LayerNorm's weight and the unembedding directions of the answers. It
	// sums over components to Total.
	Components *Table
	// Heads [layer head batch] splits each attention layer's
	// contribution, b_O aside, between its heads. With Gemma 2's ln1_post
	// between the heads and the residual stream it is each head's write
	// before that norm, through ln_final's scale, as TransformerLens's
	// stack_head_results and logit_attrs compute it: not a direct
	// contribution, and not summing to the layer's component.
	Heads *Table
	// HeadSources [layer head src_pos batch] splits each head's
	// contribution between the positions it reads from (its attention
	// there times that position's value through W_O); it sums over src_pos
	// to Heads.
	HeadSources *Table
}

// uncapped is the logits t [batch] before the model's logit soft cap, if it
// has one: cap·atanh(logit/cap) undoes cap·tanh(x/cap).
func uncapped(m *hookedmodel.HookedTransformer, t *gotch.Tensor) []float64 {
	v := must(gotch.ToSlice[float64](t))
	if c := m.Cfg.OutputLogitsSoftCap; c > 0 {
		for i := range v {
			v[i] = c * math.Atanh(v[i]/c)
		}
	}
	return v
}

// LogitAttribution is direct logit attribution of the difference between
// the logits of correct[b] and incorrect[b] (nil: the logit of correct[b]
// alone) at one position of each row b of tokens [batch pos]. It uses
// hookedmodel's cache maths (DecomposeResid, StackHeadResults,
// ApplyLnToStack) for the LayerNorm scale. Options: AtPosition (default the
// last).
func LogitAttribution(ctx context.Context, m *hookedmodel.HookedTransformer, tokens *gotch.Tensor, correct, incorrect []int64, opts ...Option) (*LogitAttributionResult, error) {
	o, err := collect("LogitAttribution", opts, optAtPosition)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("logit attribution: nil model")
	}
	if tokens == nil || tokens.Dim() != 2 {
		return nil, fmt.Errorf("logit attribution: tokens must be [batch pos], got %v", tokens.Spec())
	}
	b, n := int(tokens.Size(0)), int(tokens.Size(1))
	pos := o.pos
	if pos < 0 {
		pos += n
	}
	switch {
	case pos < 0 || pos >= n:
		return nil, fmt.Errorf("logit attribution: position %d is out of range for %d positions", o.pos, n)
	case len(correct) != b || (incorrect != nil && len(incorrect) != b):
		return nil, fmt.Errorf("logit attribution: %d correct and %d incorrect tokens for a batch of %d", len(correct), len(incorrect), b)
	}
	for _, t := range append(append([]int64(nil), correct...), incorrect...) {
		if t < 0 || t >= int64(m.Cfg.DVocabOut) {
			return nil, fmt.Errorf("logit attribution: answer token %d is not in the vocabulary of %d", t, m.Cfg.DVocabOut)
		}
	}

	nl, nh := len(m.Blocks), m.Cfg.NHeads
	names := map[string]bool{"hook_embed": true, "hook_pos_embed": true, "ln_final.hook_scale": true}
	for l := range nl {
		for _, a := range []string{"hook_attn_out", "hook_mlp_out", "attn.hook_z", "attn.hook_v", "attn.hook_pattern"} {
			names[fmt.Sprintf("blocks.%d.%s", l, a)] = true
		}
	}
	out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(tokens), hookedmodel.NamesFilter(func(s string) bool { return names[s] }))
	if err != nil {
		return nil, fmt.Errorf("logit attribution: %w", err)
	}
	defer out.Free()
	defer cache.Free()
	sd, s, err := m.StateDict()
	if err != nil {
		return nil, err
	}
	defer s.Close()

	res := &LogitAttributionResult{Pos: pos}
	at := hookedmodel.Positions(hookedmodel.PosSlice{Start: int64(pos), Single: true})
	err = gotch.Try(func() {
		dev := out.Logits.Device()
		logits := must(s.Borrow(out.Logits)).MustSelect(1, int64(pos)).MustTo(gotch.Double) // [batch d_vocab]
		res.Total = uncapped(m, gatherRows(logits, correct))
		// The answers' directions in the normalised stream [batch d_model],
		// and the constant the LayerNorm bias and b_U add [batch].
		wU := sd["unembed.W_U"].MustTo(gotch.Double).MustTranspose(0, 1) // [d_vocab d_model]
		ids := func(t []int64) *gotch.Tensor {
			return s.Attach(gotch.MustFromSlice(t, []int64{int64(len(t))}, wU.Device()))
		}
		dir := gotch.MustEmbedding(wU, ids(correct))
		bias := gotch.MustEmbedding(sd["unembed.b_U"].MustTo(gotch.Double).MustUnsqueeze(1), ids(correct)).MustSqueeze(1)
		if incorrect != nil {
			for i, v := range uncapped(m, gatherRows(logits, incorrect)) {
				res.Total[i] -= v
			}
			dir = dir.MustSub(gotch.MustEmbedding(wU, ids(incorrect)))
			bias = bias.MustSub(gotch.MustEmbedding(sd["unembed.b_U"].MustTo(gotch.Double).MustUnsqueeze(1), ids(incorrect)).MustSqueeze(1))
		}
		if w, ok := sd["ln_final.w"]; ok {
			if b, ok := sd["ln_final.b"]; ok { // RMSNorm has no bias
				bias = bias.MustAdd(dir.MustMul(b.MustTo(gotch.Double)).MustSumDims([]int64{-1}, false))
			}
			w = w.MustTo(gotch.Double)
			if m.Cfg.NormWeightPlusOne { // Gemma's RMSNorm scales by (1 + w)
				w = w.MustAddScalar(1)
			}
			dir = dir.MustMul(w)
		}
		dir, bias = dir.MustToDevice(dev, false), bias.MustToDevice(dev, false)

		// attribute projects a stack [components batch d_model] onto the
		// directions: [components batch].
		attribute := func(stack *gotch.Tensor) []float64 {
			return must(gotch.ToSlice[float64](s.Attach(stack).MustTo(gotch.Double).MustMul(dir).MustSumDims([]int64{-1}, false)))
		}
		comps, labels, err := cache.DecomposeResid(-1, hookedmodel.ApplyLN(), at)
		if err != nil {
			panic(err)
		}
		res.Labels = append(labels, "bias")
		res.Components = &Table{Axes: []string{"component", "batch"}, Shape: []int{len(res.Labels), b},
			Data: append(attribute(comps), must(gotch.ToSlice[float64](bias))...)}

		heads, _, err := cache.StackHeadResults(-1, hookedmodel.ApplyLN(), at)
		if err != nil {
			panic(err)
		}
		res.Heads = &Table{Axes: []string{"layer", "head", "batch"}, Shape: []int{nl, nh, b}, Data: attribute(heads)}

		res.HeadSources = NewTable([]string{"layer", "head", "src_pos", "batch"}, nl, nh, n, b)
		per := nh * n * b
		for l := range nl {
			if err := ctx.Err(); err != nil {
				panic(err)
			}
			pattern := must(s.Borrow(cache.MustGet("pattern", l))).MustSelect(2, int64(pos)) // [batch head key]
			v := must(s.Borrow(cache.MustGet("v", l)))                                       // [batch key head d_head]
			if kv := v.Size(2); kv < int64(nh) {                                             // grouped-query: each value head serves nh/kv query heads in a row (repeat_kv)
				bk, d := []int64{v.Size(0), v.Size(1)}, v.Size(3)
				v = v.MustUnsqueeze(3).MustExpand(append(bk, kv, int64(nh)/kv, d)).MustReshape(append(bk, int64(nh), d))
			}
			wO := sd[fmt.Sprintf("blocks.%d.attn.W_O", l)].MustToDevice(v.Device(), false).MustTo(v.DType())
			// The write of each head from each source position:
			// [head key batch d_model], flattened into components.
			src := gotch.MustEinsum("bhk,bkhd,hdm->hkbm", []*gotch.Tensor{pattern.MustTo(v.DType()), v, wO})
			src = src.MustReshape([]int64{int64(nh) * int64(n), int64(b), src.Size(-1)})
			scaled, err := cache.ApplyLnToStack(src, -1, at)
			if err != nil {
				panic(err)
			}
			copy(res.HeadSources.Data[l*per:(l+1)*per], attribute(scaled))
		}
	})
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("logit attribution: %w", cerr) // not the panic's stack
	}
	if err != nil {
		return nil, fmt.Errorf("logit attribution: %w", err)
	}
	return res, nil
}
