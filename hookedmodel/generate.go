package hookedmodel

import (
	"context"
	"fmt"
	"math"

	"github.com/golens/golens/gotch"
)

// GenOption configures Generate; a nil one is ignored.
type GenOption func(*genOptions)

type genOptions struct {
	maxNew      int
	temperature float64
	topK        int
	topP        float64
	freqPenalty float64
	seed        uint64
	stopAtEOS   bool
	eos         int64
	noKVCache   bool
	hooks       []Hook
	run         []RunOption
}

// MaxNewTokens bounds the number of generated tokens (default 10).
func MaxNewTokens(n int) GenOption { return func(o *genOptions) { o.maxNew = n } }

// Temperature divides the logits before sampling (default 1); 0 is greedy.
func Temperature(t float64) GenOption { return func(o *genOptions) { o.temperature = t } }

// Greedy always takes the most likely token (do_sample=False).
func Greedy() GenOption { return Temperature(0) }

// TopK samples among the k most likely tokens only.
func TopK(k int) GenOption { return func(o *genOptions) { o.topK = k } }

// TopP samples among the most likely tokens whose probabilities add up to
// p (nucleus sampling); it applies when TopK is not set, as in
// TransformerLens.
func TopP(p float64) GenOption { return func(o *genOptions) { o.topP = p } }

// FreqPenalty subtracts penalty times the number of earlier occurrences of
// each token from its logit.
func FreqPenalty(penalty float64) GenOption { return func(o *genOptions) { o.freqPenalty = penalty } }

// Seed seeds sampling (default 0), so a seed gives the same text.
func Seed(seed uint64) GenOption { return func(o *genOptions) { o.seed = seed } }

// StopAtEOS ends a sequence at the end-of-sequence token (default on);
// finished sequences continue with that token until all are done.
func StopAtEOS(on bool) GenOption { return func(o *genOptions) { o.stopAtEOS = on } }

// EOSToken sets the end-of-sequence id (default the tokenizer's).
func EOSToken(id int64) GenOption { return func(o *genOptions) { o.eos = id } }

// NoKVCache recomputes the whole sequence at every step instead of
// caching keys and values; the tokens are the same.
func NoKVCache() GenOption { return func(o *genOptions) { o.noKVCache = true } }

// GenHooks runs hooks on every forward pass of the generation.
func GenHooks(hooks ...Hook) GenOption {
	return func(o *genOptions) { o.hooks = append(o.hooks, hooks...) }
}

// GenRun passes run options (PrependBOS, PaddingSide, ...) to the passes.
func GenRun(opts ...RunOption) GenOption {
	return func(o *genOptions) { o.run = append(o.run, opts...) }
}

// Generate extends each sequence of in by up to MaxNewTokens tokens and
// returns the input tokens followed by the generated ones, per batch row.
// Hooks registered on the model (and GenHooks) fire on every pass.
func (m *HookedTransformer) Generate(ctx context.Context, in Input, opts ...GenOption) ([][]int64, error) {
	o := genOptions{maxNew: 10, temperature: 1, stopAtEOS: true, eos: -1}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.eos < 0 {
		if m.Tokenizer == nil && o.stopAtEOS {
			return nil, fmt.Errorf("generate: no tokenizer to know the end-of-sequence token: set EOSToken or StopAtEOS(false)")
		}
		if m.Tokenizer != nil {
			o.eos = int64(m.Tokenizer.EOS())
		}
	}
	if o.maxNew < 0 || o.temperature < 0 || o.topK < 0 || o.topP < 0 || o.topP > 1 {
		return nil, fmt.Errorf("generate: bad options: max new tokens %d, temperature %g, top-k %d, top-p %g", o.maxNew, o.temperature, o.topK, o.topP)
	}
	gen, err := gotch.NewGenerator(o.seed)
	if err != nil {
		return nil, err
	}
	defer gen.Free()
	var kv *KVCache
	if !o.noKVCache {
		kv = m.NewKVCache()
		defer kv.Free()
	}
	g := &generation{m: m, o: &o, gen: gen, kv: kv}
	return g.run(ctx, in)
}

type generation struct {
	m       *HookedTransformer
	o       *genOptions
	gen     *gotch.Generator
	kv      *KVCache
	rows    [][]int64     // every sequence so far
	padMask *gotch.Tensor // padding mask over rows, or nil
}

func (g *generation) run(ctx context.Context, in Input) ([][]int64, error) {
	out, err := g.pass(ctx, in, g.o.run...)
	if err != nil {
		return nil, err
	}
	g.rows, err = rowsOf(out.Tokens)
	if out.padMask != nil {
		s := gotch.NewScope()
		defer s.Close()
		g.padMask = s.Attach(out.padMask.MustAlias()) // outlives out
	}
	finished := make([]bool, len(g.rows))
	for step := 0; err == nil && step < g.o.maxNew; step++ {
		var next []int64
		next, err = g.sample(out.Logits)
		out.Free()
		out = nil
		if err != nil {
			break
		}
		done := true
		for b, id := range next {
			if finished[b] {
				id = g.o.eos
			}
			g.rows[b] = append(g.rows[b], id)
			finished[b] = finished[b] || (g.o.stopAtEOS && id == g.o.eos)
			done = done && finished[b]
		}
		if done || step == g.o.maxNew-1 {
			break
		}
		out, err = g.step(ctx, next)
	}
	out.Free()
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	return g.rows, nil
}

// pass runs the model with the generation's hooks.
func (g *generation) pass(ctx context.Context, in Input, opts ...RunOption) (*Output, error) {
	if g.kv != nil {
		opts = append(opts, WithKVCache(g.kv))
	}
	return g.m.RunWithHooks(ctx, in, g.o.hooks, opts...)
}

// step runs the next tokens: alone with the key-value cache, else the
// whole sequences again.
func (g *generation) step(ctx context.Context, next []int64) (*Output, error) {
	if g.kv != nil {
		t, err := gotch.FromSlice(next, []int64{int64(len(next)), 1}, g.m.device)
		if err != nil {
			return nil, err
		}
		defer t.Free()
		return g.pass(ctx, Tokens(t))
	}
	flat := make([]int64, 0, len(g.rows)*len(g.rows[0]))
	for _, r := range g.rows {
		flat = append(flat, r...)
	}
	t, err := gotch.FromSlice(flat, []int64{int64(len(g.rows)), int64(len(g.rows[0]))}, g.m.device)
	if err != nil {
		return nil, err
	}
	defer t.Free()
	opts := []RunOption{}
	if g.padMask != nil {
		// New tokens are real: extend the padding mask with ones.
		s := gotch.NewScope()
		defer s.Close()
		ones := s.Attach(gotch.MustOnes([]int64{int64(len(g.rows)), int64(len(g.rows[0])) - g.padMask.Size(1)}, gotch.Bool, g.m.device))
		opts = append(opts, AttentionMask(s.Attach(gotch.MustCat([]*gotch.Tensor{g.padMask, ones}, 1))))
	}
	return g.pass(ctx, Tokens(t), opts...)
}

// sample picks the next token of each row from the last position's
// logits, as TransformerLens's sample_logits does.
func (g *generation) sample(logits *gotch.Tensor) (ids []int64, err error) {
	s := gotch.NewScope()
	defer s.Close()
	err = gotch.Try(func() {
		last := borrow(s, logits).MustSelect(1, logits.Size(1)-1).MustTo(gotch.Float) // [batch vocab]
		var pick *gotch.Tensor
		if g.o.temperature == 0 {
			pick = last.MustArgmax(-1, false)
		} else {
			last = last.MustDivScalar(g.o.temperature)
			if g.o.freqPenalty > 0 {
				last = last.MustSub(g.penalty(s, last.Size(-1)))
			}
			if k := int64(g.o.topK); k > 0 {
				top, _ := last.MustTopk(min(k, last.Size(-1)), -1, true, true)
				kth := top.MustNarrow(-1, top.Size(-1)-1, 1)
				last = last.MustMaskedFill(last.MustLt(kth), math.Inf(-1))
			} else if g.o.topP > 0 {
				last = last.MustMaskedFill(nucleusMask(last, g.o.topP), math.Inf(-1))
			}
			pick = last.MustSoftmax(-1).MustMultinomial(1, false, g.gen).MustSqueeze(-1)
		}
		ids = gotch.MustToSlice[int64](pick)
	})
	return ids, err
}

// nucleusMask marks the tokens outside the smallest set whose
// probabilities reach p; the most likely token always stays.
func nucleusMask(logits *gotch.Tensor, p float64) *gotch.Tensor {
	sorted, order := logits.MustSort(-1, true)
	cum := sorted.MustSoftmax(-1).MustCumsum(-1)
	// Drop a token when the tokens before it already reach p.
	before := cum.MustSub(sorted.MustSoftmax(-1))
	dropSorted := before.MustGtScalar(p)
	_, inverse := order.MustSort(-1, false) // where each token went in the sorted order
	return dropSorted.MustGather(-1, inverse)
}

// penalty is freqPenalty times each token's count so far, [batch vocab].
func (g *generation) penalty(s *gotch.Scope, vocab int64) *gotch.Tensor {
	counts := make([]float32, int64(len(g.rows))*vocab)
	for b, r := range g.rows {
		for _, id := range r {
			counts[int64(b)*vocab+id] += float32(g.o.freqPenalty)
		}
	}
	return s.Attach(gotch.MustFromSlice(counts, []int64{int64(len(g.rows)), vocab}, g.m.device))
}

func rowsOf(t *gotch.Tensor) ([][]int64, error) {
	flat, err := gotch.ToSlice[int64](t)
	if err != nil {
		return nil, err
	}
	b, n := int(t.Size(0)), int(t.Size(1))
	rows := make([][]int64, b)
	for i := range rows {
		rows[i] = append([]int64(nil), flat[i*n:(i+1)*n]...)
	}
	return rows, nil
}
