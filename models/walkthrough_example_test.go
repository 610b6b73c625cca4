package models_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/analysis/report"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/tokenizer"
	"github.com/golens/golens/hookedmodel/train"
	"github.com/golens/golens/models"
)

// testDevice is the device the walk-through runs on: GOLENS_TEST_DEVICE, as
// for the rest of the suite (the CPU when unset).
func testDevice() gotch.Device {
	name := os.Getenv(gotchtest.DeviceEnv)
	if name == "" {
		return gotch.CPU
	}
	d, err := gotch.ParseDevice(name)
	if err != nil {
		log.Fatal(err)
	}
	return d
}

// shippedModel loads induction-2l on the device under test.
func shippedModel() *hookedmodel.HookedTransformer {
	m, err := models.Load(context.Background(), "induction-2l", hookedmodel.OnDevice(testDevice()))
	if err != nil {
		log.Fatal(err)
	}
	return m
}

// seqLen is the length of the random sequence that the walk-through's
// repeated tokens repeat: [BOS, seq, seq] fills 39 of induction-2l's 40
// positions.
const seqLen = 19

// repeatedTokens is the walk-through's batch of repeated random tokens,
// 8 rows of [BOS, seq, seq]: [8 39].
func repeatedTokens(m *hookedmodel.HookedTransformer) *gotch.Tensor {
	tokens, err := analysis.RepeatedTokens(m, analysis.SeqLen(seqLen), analysis.BatchSize(8), analysis.WithSeed(1))
	if err != nil {
		log.Fatal(err)
	}
	return tokens
}

// Walk-through 1, ARENA 1.2 part 1 ("TransformerLens: Introduction"): the
// model, text and tokens, the loss, the logits and the top predictions.
// TransformerLens: model.to_str_tokens(text); logits, loss = model(tokens, return_type="both")
func Example_walkthrough1ModelAndTokens() {
	ctx := context.Background()
	m, err := models.Load(ctx, "induction-2l", hookedmodel.OnDevice(testDevice()))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()
	c := m.Config()
	fmt.Printf("%s: %d layers, %d heads of d_head %d, d_model %d, d_vocab %d, attn_only %v\n",
		c.ModelName, c.NLayers, c.NHeads, c.DHead, c.DModel, c.DVocab, c.AttnOnly)

	// Text and tokens: GPT-2's tokenizer is built in (the shipped model's
	// 64 ids have no text, so it has none: m.Tokenizer is nil).
	tok := tokenizer.GPT2()
	ids, _, err := tok.ToTokens([]string{"Hello world, hello world"}) // BOS first
	if err != nil {
		log.Fatal(err)
	}
	strs, err := tok.ToStrTokens("Hello world, hello world")
	if err != nil {
		log.Fatal(err)
	}
	text, err := tok.ToString(ids[0][1:])
	if err != nil {
		log.Fatal(err)
	}
	world, err := tok.ToSingleToken(" world")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("to_tokens:", ids[0])
	fmt.Printf("to_str_tokens: %q\n", strs)
	fmt.Printf("to_string: %q\n", text)
	fmt.Println("to_single_token(\" world\"):", world)

	// The model on ids: BOS (0), then 15 random tokens twice.
	seq := []int64{0, 7, 41, 3, 22, 58, 13, 30, 9, 47, 25, 61, 18, 36, 5, 52}
	seq = append(seq, seq[1:]...)
	tokens := gotch.MustFromSlice(seq, []int64{1, int64(len(seq))}, m.Device())
	defer tokens.Free()
	out, err := m.Forward(ctx, hookedmodel.Tokens(tokens), hookedmodel.Return(hookedmodel.ReturnBoth))
	if err != nil {
		log.Fatal(err)
	}
	defer out.Free()
	fmt.Println("logits:", out.Logits.Shape()) // [batch pos d_vocab]
	fmt.Printf("loss: %.2f\n", out.Loss.MustItem())

	// The top prediction after each position, right when it is the next
	// token (the second copy's first token cannot be known). out lends its
	// logits: what we make from them is ours, and outlives out.
	best := out.Logits.MustArgmax(-1, false) // [batch pos], batch 1
	defer best.Free()
	pred := gotch.MustToSlice[int64](best)
	right := func(from, to int) (n int) {
		for p := from; p < to; p++ {
			if pred[p] == seq[p+1] {
				n++
			}
		}
		return n
	}
	fmt.Printf("right: %d of 15 in the first copy, %d of 14 in the second\n", right(0, 15), right(16, 30))
	fmt.Println("after the last token it predicts", pred[len(seq)-1], "(a third copy)")
	// Output:
	// induction-2l: 2 layers, 4 heads of d_head 16, d_model 64, d_vocab 64, attn_only true
	// to_tokens: [50256 15496 995 11 23748 995]
	// to_str_tokens: ["<|endoftext|>" "Hello" " world" "," " hello" " world"]
	// to_string: "Hello world, hello world"
	// to_single_token(" world"): 995
	// logits: [1 31 64]
	// loss: 2.17
	// right: 0 of 15 in the first copy, 14 of 14 in the second
	// after the last token it predicts 7 (a third copy)
}

// Walk-through 2, ARENA 1.2 part 1: caching every activation, reading one
// by its name, and drawing attention patterns.
// TransformerLens: logits, cache = model.run_with_cache(tokens); cv.attention.attention_patterns(tokens=strs, attention=cache["pattern", 0][0])
func Example_walkthrough2CacheAndPatterns() {
	m := shippedModel()
	defer m.Free()
	tokens := repeatedTokens(m)
	defer tokens.Free()
	out, cache, err := m.RunWithCache(context.Background(), hookedmodel.Tokens(tokens))
	if err != nil {
		log.Fatal(err)
	}
	defer out.Free()
	defer cache.Free() // the cache owns its tensors

	fmt.Println(cache.Len(), "activations, e.g.", cache.Keys()[:3])
	var names []string
	for _, n := range m.HookNames() {
		if strings.HasPrefix(n, "blocks.0.") {
			names = append(names, strings.TrimPrefix(n, "blocks.0."))
		}
	}
	fmt.Println("layer 0's hook points:", names)

	full, err := hookedmodel.GetActName("pattern", 0) // utils.get_act_name
	if err != nil {
		log.Fatal(err)
	}
	pattern := cache.MustGet("pattern", 0) // [batch head query key]
	fmt.Println(full, pattern.Shape(), "q:", cache.MustGet("q", 0).Shape())

	// The pattern again from the cached queries and keys: causal softmax
	// of q·kᵀ/√d_head.
	s := gotch.NewScope()
	defer s.Close()
	q, k := cache.MustGet("q", 0), cache.MustGet("k", 0) // [batch pos head d_head]
	scores := s.Attach(gotch.MustEinsum("bqhd,bkhd->bhqk", []*gotch.Tensor{q, k})).MustDivScalar(math.Sqrt(float64(m.Cfg.DHead)))
	n := scores.Size(-1)
	future := s.Attach(gotch.MustOnes([]int64{n, n}, gotch.Float, m.Device())).MustTriu(1).MustEqScalar(1)
	mine := scores.MustMaskedFill(future, math.Inf(-1)).MustSoftmax(-1)
	fmt.Println("recomputed pattern matches the cache:", mine.MustAllClose(pattern, 1e-4, 1e-5))

	// The patterns of row 0 as an interactive page (circuitsvis's view).
	pats := gotch.MustToSlice[float64](s.Attach(pattern.MustSelect(0, 0))) // [head query key]
	view := report.Attention{Title: "Layer 0"}
	for _, id := range gotch.MustToSlice[int64](tokens)[:n] { // row 0
		view.Tokens = append(view.Tokens, fmt.Sprint(id))
	}
	for h := range m.Cfg.NHeads {
		view.Heads = append(view.Heads, analysis.HeadLabel(0, h))
		head := make([][]float64, n)
		for i := range head {
			head[i] = pats[(int64(h)*n+int64(i))*n:][:n]
		}
		view.Patterns = append(view.Patterns, head)
	}
	dir, err := os.MkdirTemp("", "walkthrough")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	r := report.Report{Title: "Attention patterns", Sections: []report.Section{{Views: []report.View{view}}}}
	if err := r.Save(dir); err != nil {
		log.Fatal(err)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range files {
		fmt.Println(f.Name())
	}
	// Output:
	// 26 activations, e.g. [hook_embed hook_pos_embed blocks.0.hook_resid_pre]
	// layer 0's hook points: [hook_resid_pre ln1.hook_scale ln1.hook_normalized attn.hook_q attn.hook_k attn.hook_v attn.hook_attn_scores attn.hook_pattern attn.hook_z hook_attn_out hook_resid_post]
	// blocks.0.attn.hook_pattern [8 4 39 39] q: [8 39 4 16]
	// recomputed pattern matches the cache: true
	// fig01-layer-0.png
	// index.html
}

// Walk-through 3, ARENA 1.2 part 2 ("Finding induction heads"): head
// detectors that score each head's attention against a pattern.
// TransformerLens: detect_head(model, tokens, "previous_token_head")
func Example_walkthrough3HeadDetectors() {
	m := shippedModel()
	defer m.Free()
	tokens := repeatedTokens(m)
	defer tokens.Free()
	ctx := context.Background()
	for _, name := range analysis.PatternNames() {
		pattern, err := analysis.PatternByName(name)
		if err != nil {
			log.Fatal(err)
		}
		scores, err := analysis.DetectHead(ctx, m, tokens, pattern)
		if err != nil {
			log.Fatal(err)
		}
		// ARENA's detectors call a head one whose score passes 0.4.
		var heads []string
		for i, v := range scores.Data {
			if v > 0.4 {
				idx := scores.Index(i)
				heads = append(heads, analysis.HeadLabel(idx[0], idx[1]))
			}
		}
		best := scores.Argmax()
		fmt.Printf("%-21s %v, best %s %.2f\n", name+":", heads, analysis.HeadLabel(best[0], best[1]), scores.At(best...))
	}
	// Output:
	// current_token_head:   [], best L0H0 0.18
	// duplicate_token_head: [], best L0H2 0.02
	// first_token_head:     [], best L1H0 0.36
	// induction_head:       [L1H1 L1H2 L1H3], best L1H3 0.50
	// previous_token_head:  [L0H0 L0H2], best L0H2 0.95
}

// Walk-through 4, ARENA 1.2 parts 2 and 3: the loss on repeated random
// tokens, and induction scores computed by a Go hook on every pattern.
// TransformerLens: model.run_with_hooks(rep_tokens, return_type=None, fwd_hooks=[(pattern_filter, induction_score_hook)])
func Example_walkthrough4Induction() {
	m := shippedModel()
	defer m.Free()
	tokens := repeatedTokens(m) // [batch 1+2·seq_len]
	defer tokens.Free()
	ctx := context.Background()

	// The loss of each prediction [batch pos-1]: the first copy cannot be
	// predicted, the second can.
	out, err := m.Forward(ctx, hookedmodel.Tokens(tokens), hookedmodel.Return(hookedmodel.ReturnLoss), hookedmodel.LossPerToken())
	if err != nil {
		log.Fatal(err)
	}
	defer out.Free()
	s := gotch.NewScope()
	defer s.Close()
	loss, err := s.Borrow(out.Loss) // a handle in s, so what we make from it is freed with s
	if err != nil {
		log.Fatal(err)
	}
	mean := func(from, to int64) float64 {
		return loss.MustNarrow(1, from, to-from).MustMean().MustItem()
	}
	fmt.Printf("loss: first copy %.2f (ln 64 = %.2f), second copy %.2f\n", mean(0, seqLen), math.Log(64), mean(seqLen, 2*seqLen))

	// The induction score from a hook on every pattern: the mean attention
	// from each token to the one seq_len-1 back, the token after its
	// earlier copy.
	scores := analysis.NewTable([]string{"layer", "head"}, m.Cfg.NLayers, m.Cfg.NHeads)
	isPattern := func(name string) bool { return strings.HasSuffix(name, "attn.hook_pattern") }
	score := func(pattern *gotch.Tensor, name string) (*gotch.Tensor, error) {
		layer, _ := hookedmodel.LayerOf(name)
		s := gotch.NewScope() // pattern is lent for the call: what we make from it dies with s
		defer s.Close()
		p, err := s.Borrow(pattern)
		if err != nil {
			return nil, err
		}
		return nil, gotch.Try(func() {
			stripe := p.MustDiagonal(-(seqLen - 1), 2, 3) // [batch head pos]
			for h, v := range gotch.MustToSlice[float64](stripe.MustMeanDims([]int64{0, 2}, false)) {
				scores.Set(v, layer, h)
			}
		})
	}
	none, err := m.RunWithHooks(ctx, hookedmodel.Tokens(tokens),
		[]hookedmodel.Hook{hookedmodel.FwdHook(hookedmodel.Match(isPattern), score)},
		hookedmodel.Return(hookedmodel.ReturnNone))
	if err != nil {
		log.Fatal(err)
	}
	none.Free()
	fmt.Println("induction scores:")
	for l := range m.Cfg.NLayers {
		fmt.Printf("  layer %d:", l)
		for h := range m.Cfg.NHeads {
			fmt.Printf(" %.2f", scores.At(l, h))
		}
		fmt.Println()
	}

	// analysis.InductionOn does all of it in one call.
	res, err := analysis.InductionOn(ctx, m, tokens, seqLen)
	if err != nil {
		log.Fatal(err)
	}
	same := slices.EqualFunc(res.Scores.Data, scores.Data, func(a, b float64) bool { return math.Abs(a-b) < 1e-5 })
	fmt.Printf("InductionOn: the same scores %v, loss %.2f then %.2f\n", same, res.FirstRepeatLoss, res.SecondRepeatLoss)
	// Output:
	// loss: first copy 4.18 (ln 64 = 4.16), second copy 0.11
	// induction scores:
	//   layer 0: 0.01 0.03 0.00 0.01
	//   layer 1: 0.70 0.83 0.86 0.84
	// InductionOn: the same scores true, loss 4.18 then 0.11
}

// Walk-through 5, ARENA 1.2 part 3: direct logit attribution, what each
// component and head writes to the right token's logit.
// TransformerLens: cache.logit_attrs(cache.stack_head_results(layer=-1, apply_ln=True), tokens)
func Example_walkthrough5DirectLogitAttribution() {
	m := shippedModel()
	defer m.Free()
	tokens := repeatedTokens(m) // [batch 1+2·seq_len]
	defer tokens.Free()
	ctx := context.Background()

	// What each part of the model writes to the logit of the right token
	// at position 2·seq_len-1, which predicts the last token of the second
	// copy; the mean over the batch.
	pos := 2*seqLen - 1
	ids := gotch.MustToSlice[int64](tokens)
	var right []int64 // the token each row should predict
	for row := 0; row < len(ids); row += 1 + 2*seqLen {
		right = append(right, ids[row+pos+1])
	}
	dla, err := analysis.LogitAttribution(ctx, m, tokens, right, nil, analysis.AtPosition(pos))
	if err != nil {
		log.Fatal(err)
	}
	batch := float64(len(right))
	sum := 0.0
	for i, label := range dla.Labels {
		v := 0.0
		for b := range right {
			v += dla.Components.At(i, b) / batch
		}
		sum += v
		fmt.Printf("%-10s %6.2f\n", label, v)
	}
	for h := range m.Cfg.NHeads {
		v := 0.0
		for b := range right {
			v += dla.Heads.At(1, h, b) / batch
		}
		fmt.Printf("  %s %6.2f\n", analysis.HeadLabel(1, h), v)
	}
	logit := 0.0
	for _, v := range dla.Total {
		logit += v / batch
	}
	fmt.Printf("the logit %.2f, the parts' sum %.2f\n", logit, sum)

	// TransformerLens's cache maths on a pass of their own: every head's
	// output [head batch pos d_model] divided by ln_final's scale, on the
	// unembedding of each next token; the mean over the second copy.
	// logit_attrs leaves ln_final's weight out (fold_ln would have put it
	// into W_U, but a shortformer model is not folded), so the numbers are
	// smaller than LogitAttribution's; the order of the heads is the same.
	out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(tokens))
	if err != nil {
		log.Fatal(err)
	}
	defer out.Free()
	defer cache.Free()
	s := gotch.NewScope()
	defer s.Close()
	second := hookedmodel.Positions(hookedmodel.PosSlice{Start: seqLen, Stop: 2 * seqLen})
	stack, labels, err := cache.StackHeadResults(-1, hookedmodel.ApplyLN(), second)
	if err != nil {
		log.Fatal(err)
	}
	s.Attach(stack)
	next := s.Attach(tokens.MustNarrow(1, seqLen+1, seqLen)) // [batch pos]
	attrs, err := cache.LogitAttrs(stack, next, nil, second) // [head batch pos]
	if err != nil {
		log.Fatal(err)
	}
	perHead := gotch.MustToSlice[float64](s.Attach(attrs).MustMeanDims([]int64{1, 2}, false))
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(perHead[b], perHead[a]) })
	fmt.Print("largest direct effects on the second copy:")
	for _, i := range order[:4] {
		fmt.Printf(" %s %.2f", labels[i], perHead[i])
	}
	fmt.Println()
	fmt.Println("layer 0's heads within 0.01 of zero:", math.Abs(perHead[order[4]]) < 0.01 && math.Abs(perHead[order[7]]) < 0.01)
	// Output:
	// embed       -0.08
	// 0_attn_out  -0.05
	// 1_attn_out  10.90
	// bias         0.04
	//   L1H0   2.11
	//   L1H1   2.61
	//   L1H2   3.91
	//   L1H3   2.24
	// the logit 10.81, the parts' sum 10.81
	// largest direct effects on the second copy: L1H2 1.64 L1H0 1.29 L1H1 1.05 L1H3 0.81
	// layer 0's heads within 0.01 of zero: true
}

// Walk-through 6, ARENA 1.2 part 3: zero and mean ablation of heads, and
// how much the loss rises.
// TransformerLens: model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(utils.get_act_name("z", 0), head_ablation_hook)])
func Example_walkthrough6Ablation() {
	m := shippedModel()
	defer m.Free()
	tokens := repeatedTokens(m)
	defer tokens.Free()
	ctx := context.Background()
	loss := func(hooks ...hookedmodel.Hook) float64 {
		out, err := m.RunWithHooks(ctx, hookedmodel.Tokens(tokens), hooks, hookedmodel.Return(hookedmodel.ReturnLoss))
		if err != nil {
			log.Fatal(err)
		}
		defer out.Free()
		return out.Loss.MustItem()
	}

	// A Go hook zeroes head 0.2's output z [batch pos head d_head] in
	// place, for this call only; the view of the head is ours to free.
	zero := hookedmodel.FwdHook(hookedmodel.Name("blocks.0.attn.hook_z"),
		func(z *gotch.Tensor, _ string) (*gotch.Tensor, error) {
			head, err := z.Select(2, 2)
			if err != nil {
				return nil, err
			}
			defer head.Free()
			return nil, head.Zero_()
		})
	base := loss()
	fmt.Printf("loss %.2f; zeroing L0H2 adds %.2f\n", base, loss(zero)-base)

	// Mean ablation: the head's output averaged over other random tokens.
	ref, err := analysis.RepeatedTokens(m, analysis.SeqLen(seqLen), analysis.BatchSize(32), analysis.WithSeed(2))
	if err != nil {
		log.Fatal(err)
	}
	defer ref.Free()
	mean, err := analysis.NewAblation(ctx, m, analysis.MeanAblation, []analysis.Component{analysis.Head(0, 2)}, analysis.Reference(ref))
	if err != nil {
		log.Fatal(err)
	}
	defer mean.Close()
	fmt.Printf("mean-ablating L0H2 adds %.2f\n", loss(mean.Hooks()...)-base)

	// Layer 1's four induction heads back one another up: each alone
	// matters little (below), all four together a lot.
	layer1 := []analysis.Component{analysis.Head(1, 0), analysis.Head(1, 1), analysis.Head(1, 2), analysis.Head(1, 3)}
	all, err := analysis.NewAblation(ctx, m, analysis.ZeroAblation, layer1)
	if err != nil {
		log.Fatal(err)
	}
	defer all.Close()
	fmt.Printf("zeroing all of layer 1's heads adds %.2f\n", loss(all.Hooks()...)-base)

	// Every head in turn: how much the loss rises without it
	// (ARENA's get_ablation_scores).
	tab, err := analysis.AblationTable(ctx, m, tokens, analysis.ZeroAblation)
	if err != nil {
		log.Fatal(err)
	}
	for l := range m.Cfg.NLayers {
		fmt.Printf("layer %d:", l)
		for h := range m.Cfg.NHeads {
			fmt.Printf(" %+.2f", tab.Change.At(l, h))
		}
		fmt.Println()
	}
	// Output:
	// loss 2.15; zeroing L0H2 adds 1.81
	// mean-ablating L0H2 adds 1.81
	// zeroing all of layer 1's heads adds 2.70
	// layer 0: +0.21 +1.55 +1.81 +0.01
	// layer 1: +0.01 +0.06 +0.03 +0.04
}

// Walk-through 7, ARENA 1.2 part 4 ("Reverse-engineering induction
// circuits"): the OV and QK circuits read from the weights as factored
// matrices, and the composition of the two layers.
// TransformerLens: full_OV = FactoredMatrix(W_E @ W_V, W_O @ W_U); comp = (W_A @ W_B).norm() / (W_A.norm() * W_B.norm())
func Example_walkthrough7Circuits() {
	m := shippedModel()
	defer m.Free()
	s := gotch.NewScope()
	defer s.Close()
	weight := func(t *gotch.Tensor, err error) *gotch.Tensor { // a handle of our own in s
		if err == nil {
			t, err = s.Borrow(t)
		}
		if err != nil {
			log.Fatal(err)
		}
		return t
	}
	wE, wU := weight(m.W_E()), weight(m.W_U()) // [d_vocab d_model], [d_model d_vocab]

	// The full OV circuit of each layer-1 head, W_E W_V W_O W_U
	// [d_vocab d_vocab], kept factored until the end; a copying head
	// gives each token its own logit first (top-1 accuracy).
	ov, err := m.OV() // [layer head d_model d_model]
	if err != nil {
		log.Fatal(err)
	}
	defer ov.Free()
	fmt.Print("OV top-1 accuracy, layer 1:")
	for h := range int64(m.Cfg.NHeads) {
		head, err := ov.Get(1, h)
		if err != nil {
			log.Fatal(err)
		}
		left, err := head.LeftMul(wE)
		if err != nil {
			log.Fatal(err)
		}
		full, err := left.Mul(wU)
		if err != nil {
			log.Fatal(err)
		}
		dense, err := full.AB()
		if err != nil {
			log.Fatal(err)
		}
		head.Free()
		left.Free()
		full.Free()
		s.Attach(dense)
		best := dense.MustArgmax(-1, false)
		tokens := s.Attach(gotch.MustArange(0, float64(m.Cfg.DVocab), 1, gotch.Int64, m.Device()))
		fmt.Printf(" %.2f", best.MustEq(tokens).MustTo(gotch.Double).MustMean().MustItem())
	}
	fmt.Println()

	// analysis.Circuits: the previous-token head's positional QK circuit,
	// the K-composition circuit of the pair, the induction head's OV circuit.
	c, err := analysis.Circuits(m, analysis.HeadID{Layer: 0, Head: 2}, analysis.HeadID{Layer: 1, Head: 2}, 2*seqLen+1)
	if err != nil {
		log.Fatal(err)
	}
	prev := 0 // query positions whose largest score (causal) is on the previous key
	for q := 1; q < c.PrevQK.Shape[0]; q++ {
		best := 0
		for k := 1; k <= q; k++ {
			if c.PrevQK.At(q, k) > c.PrevQK.At(q, best) {
				best = k
			}
		}
		if best == q-1 {
			prev++
		}
	}
	fmt.Printf("L0H2 QK: %d of %d queries favour the previous position\n", prev, c.PrevQK.Shape[0]-1)
	fmt.Printf("L0H2 -> L1H2 K-composition circuit, top-1 accuracy %.2f\n", analysis.DiagonalShare(c.KComposition))
	fmt.Printf("L1H2 OV circuit, top-1 accuracy %.2f\n", analysis.DiagonalShare(c.OV))

	// Composition scores ‖W_A W_B‖ / (‖W_A‖ ‖W_B‖): by hand for L0H2 -> L1H2's
	// keys (W_A = L0H2's W_V W_O, W_B = L1H2's W_K W_Qᵀ), then every pair.
	qk, err := m.QK()
	if err != nil {
		log.Fatal(err)
	}
	defer qk.Free()
	wA, err := ov.Get(0, 2)
	if err != nil {
		log.Fatal(err)
	}
	defer wA.Free()
	qk12, err := qk.Get(1, 2)
	if err != nil {
		log.Fatal(err)
	}
	defer qk12.Free()
	wB, err := qk12.T()
	if err != nil {
		log.Fatal(err)
	}
	defer wB.Free()
	wAB, err := wA.MulFactored(wB)
	if err != nil {
		log.Fatal(err)
	}
	defer wAB.Free()
	norm := func(f *hookedmodel.FactoredMatrix) float64 {
		n, err := f.Norm()
		if err != nil {
			log.Fatal(err)
		}
		return s.Attach(n).MustItem()
	}
	byHand := norm(wAB) / (norm(wA) * norm(wB))
	comp, err := analysis.CompositionScores(context.Background(), m)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("K-composition L0H2 -> L1H2: %.2f by hand, %.2f by CompositionScores (random: %.2f)\n",
		byHand, comp.K.At(0, 2, 1, 2), comp.Baseline)
	for h := range m.Cfg.NHeads {
		fmt.Printf("L0H%d -> layer 1 K:", h)
		for h1 := range m.Cfg.NHeads {
			fmt.Printf(" %.2f", comp.K.At(0, h, 1, h1))
		}
		fmt.Println()
	}
	// Output:
	// OV top-1 accuracy, layer 1: 0.98 0.98 0.98 0.58
	// L0H2 QK: 37 of 38 queries favour the previous position
	// L0H2 -> L1H2 K-composition circuit, top-1 accuracy 0.98
	// L1H2 OV circuit, top-1 accuracy 0.98
	// K-composition L0H2 -> L1H2: 0.20 by hand, 0.20 by CompositionScores (random: 0.12)
	// L0H0 -> layer 1 K: 0.20 0.17 0.19 0.24
	// L0H1 -> layer 1 K: 0.22 0.26 0.28 0.04
	// L0H2 -> layer 1 K: 0.21 0.22 0.20 0.26
	// L0H3 -> layer 1 K: 0.17 0.15 0.17 0.23
}

// Walk-through 8: training a small two-layer attention-only model on
// repeated random tokens (1.2 loads a trained one; ARENA 1.1 trains its own).
// TransformerLens: train(HookedTransformer(cfg), HookedTransformerTrainConfig(lr=1e-2, ...), dataset)
func Example_walkthrough8Training() {
	mc := hookedmodel.DefaultConfig()
	mc.NLayers, mc.NHeads, mc.DModel, mc.DHead, mc.AttnOnly = 2, 4, 32, 8, true
	mc.NCtx, mc.DVocab, mc.PositionalEmbeddingType = 22, 16, "shortformer"
	tc := train.DefaultTrainConfig()
	tc.Steps, tc.Batch, tc.LR, tc.Warmup, tc.WeightDecay, tc.EvalEvery = 400, 16, 1e-2, 10, 0, 0
	bos := int64(0)
	// Rows [BOS, prefix, segment, segment, filler], the segment 5 to 10 tokens.
	data := train.DataConfig{Kind: "repeated_tokens", Length: 10, MinLength: 5, Prefix: 1, BOS: &bos}

	dir, err := os.MkdirTemp("", "walkthrough-train")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var evals []train.Record
	keep := func(r train.Record) {
		if r.Kind == "eval" {
			evals = append(evals, r)
		}
	}
	res, err := train.Run(context.Background(), train.Config{Model: mc, Train: tc, Data: data}, dir,
		train.OnDevice(testDevice()), train.OnRecord(keep), train.WithProgress(nil))
	if err != nil {
		log.Fatal(err)
	}
	first, last := evals[0], evals[len(evals)-1]
	fmt.Printf("held-out loss at step 0: %.2f (ln 16 = %.2f)\n", first.Loss, math.Log(16))
	// Comparisons rather than digits: a GPU's float sums drift apart
	// from the CPU's over hundreds of steps.
	fmt.Printf("after %d steps lower by more than 0.3: %v\n", last.Step, last.Loss < first.Loss-0.3)
	fmt.Println("the repeat now easier than its first copy (ICL score below -0.5):", *last.ICL < -0.5)

	// The trained model is a checkpoint like any other.
	trained, err := hookedmodel.Load(context.Background(), res.Model, hookedmodel.OnDevice(testDevice()))
	if err != nil {
		log.Fatal(err)
	}
	defer trained.Free()
	fmt.Println(filepath.Base(res.Model), trained.Cfg.NLayers, "layers")
	// Output:
	// held-out loss at step 0: 3.02 (ln 16 = 2.77)
	// after 400 steps lower by more than 0.3: true
	// the repeat now easier than its first copy (ICL score below -0.5): true
	// model.safetensors 2 layers
}

// The walk-through frees every tensor it makes: each example runs again
// under the leak check, its printing discarded.
func TestWalkthroughFreesItsTensors(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = devNull
	defer func() {
		os.Stdout = stdout
		devNull.Close()
	}()
	for _, ex := range []struct {
		name string
		run  func()
	}{
		{"ModelAndTokens", Example_walkthrough1ModelAndTokens},
		{"CacheAndPatterns", Example_walkthrough2CacheAndPatterns},
		{"HeadDetectors", Example_walkthrough3HeadDetectors},
		{"Induction", Example_walkthrough4Induction},
		{"DirectLogitAttribution", Example_walkthrough5DirectLogitAttribution},
		{"Ablation", Example_walkthrough6Ablation},
		{"Circuits", Example_walkthrough7Circuits},
		{"Training", Example_walkthrough8Training},
	} {
		t.Run(ex.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			ex.run()
		})
	}
}
