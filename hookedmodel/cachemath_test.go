package hookedmodel

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// mathFixture is a small random model (2 layers, 4 heads, d_mlp 24) run on
// tokens [batch 7] with everything cached. Tensors made in a test go into s.
type mathFixture struct {
	m      *HookedTransformer
	out    *Output
	cache  *ActivationCache
	tokens *gotch.Tensor // [batch pos]
	s      *gotch.Scope
}

func newMathFixture(t *testing.T, cfg Config, batch int, process bool, opts ...RunOption) *mathFixture {
	t.Helper()
	f := &mathFixture{m: newTestModel(t, cfg, 1), s: gotch.NewScope()}
	t.Cleanup(func() {
		f.s.Close()
		f.cache.Free()
		f.out.Free()
		f.m.Free()
	})
	if process {
		if err := f.m.Process(DefaultProcessing); err != nil {
			t.Fatal(err)
		}
	}
	_, tok := randomTokens(t, batch, 7, cfg.DVocab, 2)
	f.tokens = f.s.Attach(tok)
	var err error
	if f.out, f.cache, err = f.m.RunWithCache(context.Background(), Tokens(tok), opts...); err != nil {
		t.Fatal(err)
	}
	return f
}

// act borrows a cached activation into f.s, so ops on it land there.
func (f *mathFixture) act(t *testing.T, name string) *gotch.Tensor {
	t.Helper()
	x, err := f.cache.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return borrow(f.s, x)
}

// normedInput is (x - mean(x)) / scale for the cached input x of the
// LayerNorm at prefix and its cached hook_scale: the norm before its weight
// and bias, which is what apply_ln_to_stack applies (TransformerLens's
// ActivationCache.apply_ln_to_stack centres and divides by the cached scale).
func (f *mathFixture) normedInput(t *testing.T, input, prefix string) *gotch.Tensor {
	t.Helper()
	x := f.act(t, input)
	centred := x.MustSub(x.MustMeanDims([]int64{-1}, true))
	return centred.MustDiv(f.act(t, prefix+".hook_scale"))
}

// keep checks err and puts a result in f.s: f.keep(t)(c.ApplyLnToStack(...)).
func (f *mathFixture) keep(t *testing.T) func(*gotch.Tensor, error) *gotch.Tensor {
	return func(x *gotch.Tensor, err error) *gotch.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return f.s.Attach(x)
	}
}

// stack is keep for a stack and its labels.
func (f *mathFixture) stack(t *testing.T) func(*gotch.Tensor, []string, error) (*gotch.Tensor, []string) {
	return func(x *gotch.Tensor, labels []string, err error) (*gotch.Tensor, []string) {
		t.Helper()
		return f.keep(t)(x, err), labels
	}
}

func sumComponents(x *gotch.Tensor) *gotch.Tensor { return x.MustSumDims([]int64{0}, false) }

// mathClose compares shapes and values within 1e-4 relative.
func mathClose(t *testing.T, name string, got, want *gotch.Tensor) {
	t.Helper()
	if !slices.Equal(got.Shape(), want.Shape()) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape(), want.Shape())
		return
	}
	gotchtest.Close(t, name, gotchtest.Values(t, got), gotchtest.Values(t, want), 1e-4)
}

func mathLabels(t *testing.T, name string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: labels %q, want %q", name, got, want)
	}
}

func TestCacheMathDecomposeResidSumsToResid(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f := newMathFixture(t, smallConfig(), 2, false)
	c := f.cache
	cases := []struct {
		layer int
		mlp   bool
		want  string
	}{
		{0, false, "blocks.0.hook_resid_pre"},
		{0, true, "blocks.0.hook_resid_mid"},
		{1, false, "blocks.1.hook_resid_pre"},
		{1, true, "blocks.1.hook_resid_mid"},
		{2, false, "blocks.1.hook_resid_post"},
		{-1, false, "blocks.1.hook_resid_post"},
	}
	for _, tc := range cases {
		var opts []CacheMathOption
		if tc.mlp {
			opts = append(opts, MLPInput())
		}
		stack, _ := f.stack(t)(c.DecomposeResid(tc.layer, opts...))
		mathClose(t, fmt.Sprintf("layer %d mlp_input %v", tc.layer, tc.mlp), sumComponents(stack), f.act(t, tc.want))
	}

	_, labels := f.stack(t)(c.DecomposeResid(-1))
	mathLabels(t, "all", labels, []string{"embed", "pos_embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out"})
	_, labels = f.stack(t)(c.DecomposeResid(-1, Mode(ResidAttn)))
	mathLabels(t, "attn", labels, []string{"embed", "pos_embed", "0_attn_out", "1_attn_out"})
	_, labels = f.stack(t)(c.DecomposeResid(1, Mode(ResidMLP), InclEmbeds(false), MLPInput()))
	mathLabels(t, "mlp", labels, []string{"0_mlp_out"})

	last := PosSlice{Start: -1, Single: true}
	stack, _ := f.stack(t)(c.DecomposeResid(-1, Positions(last)))
	mathClose(t, "last position", sumComponents(stack), f.act(t, "blocks.1.hook_resid_post").MustSelect(1, 6))
	mid := PosSlice{Start: 2, Stop: 5}
	stack, _ = f.stack(t)(c.DecomposeResid(1, Positions(mid)))
	mathClose(t, "positions 2:5", sumComponents(stack), f.act(t, "blocks.1.hook_resid_pre").MustSlice(1, 2, 5, 1))
}

func TestCacheMathAccumulatedResid(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f := newMathFixture(t, smallConfig(), 2, false)
	c := f.cache

	stack, labels := f.stack(t)(c.AccumulatedResid(-1, InclMid()))
	mathLabels(t, "incl_mid", labels, []string{"0_pre", "0_mid", "1_pre", "1_mid", "final_post"})
	for i, name := range []string{"blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_mid", "blocks.1.hook_resid_post"} {
		mathClose(t, labels[i], stack.MustSelect(0, int64(i)), f.act(t, name))
	}
	_, labels = f.stack(t)(c.AccumulatedResid(1, MLPInput()))
	mathLabels(t, "mlp_input", labels, []string{"0_pre", "1_pre", "1_mid"})

	// At the unembed, apply_ln is the logit lens: ln_final itself on each
	// component, so the last one unembeds to the logits.
	stack, _ = f.stack(t)(c.AccumulatedResid(-1, ApplyLN()))
	logits := stack.MustSelect(0, 2).MustLinear(borrow(f.s, f.m.WU), borrow(f.s, f.m.BU))
	mathClose(t, "logit lens of final_post", logits, borrow(f.s, f.out.Logits))
	// Before it, the cached ln1 scale: the layer's own stream gives what
	// that LayerNorm computes before its weight and bias.
	stack, _ = f.stack(t)(c.AccumulatedResid(1, ApplyLN()))
	mathClose(t, "1_pre through ln1", stack.MustSelect(0, 1), f.normedInput(t, "blocks.1.hook_resid_pre", "blocks.1.ln1"))
	stack, _ = f.stack(t)(c.AccumulatedResid(1, ApplyLN(), MLPInput(), Positions(PosSlice{Start: 3, Single: true})))
	mathClose(t, "1_mid through ln2 at position 3", stack.MustSelect(0, 2), f.normedInput(t, "blocks.1.hook_resid_mid", "blocks.1.ln2").MustSelect(1, 3))
}

func TestCacheMathStackHeadResults(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	cfg.UseAttnResult = true
	f := newMathFixture(t, cfg, 2, false)
	// The same model and tokens, caching hook_z but not hook_result.
	noResult := func(n string) bool { return !strings.HasSuffix(n, "hook_result") }
	zOut, zCache, err := f.m.RunWithCache(context.Background(), Tokens(f.tokens), NamesFilter(noResult), Return(ReturnNone))
	if err != nil {
		t.Fatal(err)
	}
	defer zOut.Free()
	defer zCache.Free()

	fromResult, labels := f.stack(t)(f.cache.StackHeadResults(-1))
	fromZ, zLabels := f.stack(t)(zCache.StackHeadResults(-1))
	want := []string{"L0H0", "L0H1", "L0H2", "L0H3", "L1H0", "L1H1", "L1H2", "L1H3"}
	mathLabels(t, "from hook_result", labels, want)
	mathLabels(t, "from hook_z", zLabels, want)
	mathClose(t, "heads from hook_z", fromZ, fromResult)
	for l := range 2 {
		result := f.act(t, blockHook(l, "attn.hook_result")) // [batch pos head d_model]
		heads := fromZ.MustNarrow(0, int64(4*l), 4)
		mathClose(t, fmt.Sprintf("layer %d heads", l), heads, result.MustPermute([]int64{2, 0, 1, 3}))
		attnOut := sumComponents(heads).MustAdd(borrow(f.s, f.m.Blocks[l].Attn.BO))
		mathClose(t, fmt.Sprintf("layer %d heads + b_O", l), attnOut, f.act(t, blockHook(l, "hook_attn_out")))
	}

	last, _ := f.stack(t)(zCache.StackHeadResults(-1, Positions(PosSlice{Start: -1, Single: true})))
	mathClose(t, "heads at the last position", last, fromZ.MustSelect(2, 6))

	stack, labels := f.stack(t)(zCache.StackHeadResults(1, InclRemainder()))
	if len(labels) != 5 || labels[4] != "remainder" {
		t.Errorf("labels %q, want L0H0..L0H3 and remainder", labels)
	}
	mathClose(t, "heads + remainder", sumComponents(stack), f.act(t, "blocks.1.hook_resid_pre"))
	stack, labels = f.stack(t)(zCache.StackHeadResults(0))
	if len(labels) != 0 || !slices.Equal(stack.Shape(), []int64{0, 2, 7, 16}) {
		t.Errorf("layer 0: shape %v labels %q, want an empty [0 2 7 16] stack", stack.Shape(), labels)
	}
}

// compute_head_results fills hook_result from hook_z: against the values
// the forward pass itself hooked with use_attn_result, and each layer's
// heads plus b_O against hook_attn_out.
func TestCacheComputeHeadResults(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	cfg.UseAttnResult = true
	f := newMathFixture(t, cfg, 2, false)
	ctx := context.Background()
	noResult := func(n string) bool { return !strings.HasSuffix(n, "hook_result") }
	zOut, zCache, err := f.m.RunWithCache(ctx, Tokens(f.tokens), NamesFilter(noResult), Return(ReturnNone))
	if err != nil {
		t.Fatal(err)
	}
	defer zOut.Free()
	defer zCache.Free()
	before := zCache.Len()
	if err := zCache.ComputeHeadResults(); err != nil {
		t.Fatal(err)
	}
	if got := zCache.Len(); got != before+2 {
		t.Errorf("%d activations after computing head results, want %d", got, before+2)
	}
	for l := range 2 {
		name := blockHook(l, "attn.hook_result")
		got := borrow(f.s, zCache.MustGet(name))
		mathClose(t, name, got, f.act(t, name))
		attnOut := got.MustSumDims([]int64{2}, false).MustAdd(borrow(f.s, f.m.Blocks[l].Attn.BO))
		mathClose(t, fmt.Sprintf("layer %d heads + b_O", l), attnOut, f.act(t, blockHook(l, "hook_attn_out")))
	}
	if err := zCache.ComputeHeadResults(); err != nil || zCache.Len() != before+2 {
		t.Errorf("a second call: %v, %d activations; want no change", err, zCache.Len())
	}

	// Without hook_z of layer 1 nothing is added, and the error names it.
	noZ1 := func(n string) bool { return noResult(n) && n != "blocks.1.attn.hook_z" }
	out, c, err := f.m.RunWithCache(ctx, Tokens(f.tokens), NamesFilter(noZ1), Return(ReturnNone))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	defer c.Free()
	n := c.Len()
	if err := c.ComputeHeadResults(); err == nil || !strings.Contains(err.Error(), "blocks.1.attn.hook_z") {
		t.Errorf("without blocks.1.attn.hook_z: %v, want an error naming it", err)
	}
	if c.Len() != n {
		t.Errorf("a failed call changed the cache: %d activations, want %d", c.Len(), n)
	}
}

func TestCacheMathStackNeuronResults(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f := newMathFixture(t, smallConfig(), 2, false)
	c := f.cache
	stack, labels := f.stack(t)(c.StackNeuronResults(-1))
	if len(labels) != 48 || labels[0] != "L0N0" || labels[47] != "L1N23" {
		t.Errorf("labels %q..., want L0N0 ... L1N23", labels[:min(3, len(labels))])
	}
	for l := range 2 {
		neurons := stack.MustNarrow(0, int64(24*l), 24)
		mlpOut := sumComponents(neurons).MustAdd(borrow(f.s, f.m.Blocks[l].MLP.BOut))
		mathClose(t, fmt.Sprintf("layer %d neurons + b_out", l), mlpOut, f.act(t, blockHook(l, "hook_mlp_out")))
	}

	some, labels := f.stack(t)(c.StackNeuronResults(1, Neurons(5, -1), Positions(PosSlice{Start: 1, Stop: 3})))
	mathLabels(t, "neuron slice", labels, []string{"L0N5", "L0N23"})
	mathClose(t, "neurons 5 and 23", some, gotch.MustStack([]*gotch.Tensor{stack.MustSelect(0, 5), stack.MustSelect(0, 23)}, 0).MustSlice(2, 1, 3, 1))

	stack, labels = f.stack(t)(c.StackNeuronResults(1, InclRemainder(), MLPInput()))
	if labels[len(labels)-1] != "remainder" {
		t.Errorf("last label %q, want remainder", labels[len(labels)-1])
	}
	mathClose(t, "neurons + remainder", sumComponents(stack), f.act(t, "blocks.1.hook_resid_mid"))
}

// A model processed as from_pretrained does has LNPre everywhere, so the
// cached scale turns each summed stack into the normalised input exactly.
func TestCacheMathApplyLnToStack(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f := newMathFixture(t, smallConfig(), 2, true)
	c := f.cache
	if f.m.Cfg.NormalizationType != "LNPre" {
		t.Fatalf("normalization %q after processing, want LNPre", f.m.Cfg.NormalizationType)
	}
	cases := []struct {
		layer int
		opts  []CacheMathOption
		want  string
	}{
		{-1, nil, "ln_final.hook_normalized"},
		{1, nil, "blocks.1.ln1.hook_normalized"},
		{1, []CacheMathOption{MLPInput()}, "blocks.1.ln2.hook_normalized"},
		{0, nil, "blocks.0.ln1.hook_normalized"},
	}
	for _, tc := range cases {
		stack, _ := f.stack(t)(c.DecomposeResid(tc.layer, tc.opts...))
		scaled := f.keep(t)(c.ApplyLnToStack(sumComponents(stack).MustUnsqueeze(0), tc.layer, tc.opts...))
		mathClose(t, tc.want, scaled.MustSelect(0, 0), f.act(t, tc.want))
		// Scaling is linear once the scale is fixed: the sum of the scaled
		// components is the same.
		each, _ := f.stack(t)(c.DecomposeResid(tc.layer, append(tc.opts, ApplyLN())...))
		mathClose(t, tc.want+" summed after scaling", sumComponents(each), f.act(t, tc.want))
	}

	last := PosSlice{Start: -1, Single: true}
	stack, _ := f.stack(t)(c.DecomposeResid(-1, Positions(last)))
	scaled := f.keep(t)(c.ApplyLnToStack(sumComponents(stack).MustUnsqueeze(0), -1, Positions(last)))
	mathClose(t, "last position", scaled.MustSelect(0, 0), f.act(t, "ln_final.hook_normalized").MustSelect(1, 6))
	row := PosSlice{Start: 1, Single: true}
	scaled = f.keep(t)(c.ApplyLnToStack(sumComponents(stack).MustUnsqueeze(0), -1, Positions(last), Batches(row)))
	mathClose(t, "last position of row 1", scaled.MustSelect(0, 0), f.act(t, "ln_final.hook_normalized").MustSelect(1, 6).MustSelect(0, 1))
}

func TestCacheMathFullResidDecomposition(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f := newMathFixture(t, smallConfig(), 2, false)
	c := f.cache
	stack, labels := f.stack(t)(c.GetFullResidDecomposition(-1))
	if len(labels) != 8+48+3 || labels[8] != "L0N0" || !slices.Equal(labels[len(labels)-3:], []string{"embed", "pos_embed", "bias"}) {
		t.Errorf("labels %q", labels)
	}
	if stack.Size(0) != int64(len(labels)) {
		t.Errorf("%d components for %d labels", stack.Size(0), len(labels))
	}
	mathClose(t, "full decomposition", sumComponents(stack), f.act(t, "blocks.1.hook_resid_post"))

	stack, labels = f.stack(t)(c.GetFullResidDecomposition(1, MLPInput(), ExpandNeurons(false)))
	mathLabels(t, "mlp layers", labels, []string{"L0H0", "L0H1", "L0H2", "L0H3", "L1H0", "L1H1", "L1H2", "L1H3", "0_mlp_out", "embed", "pos_embed", "bias"})
	mathClose(t, "input to MLP 1", sumComponents(stack), f.act(t, "blocks.1.hook_resid_mid"))

	stack, labels = f.stack(t)(c.GetFullResidDecomposition(0))
	mathLabels(t, "layer 0", labels, []string{"embed", "pos_embed", "bias"})
	mathClose(t, "layer 0", sumComponents(stack), f.act(t, "blocks.0.hook_resid_pre"))

	stack, _ = f.stack(t)(c.GetFullResidDecomposition(-1, ApplyLN()))
	mathClose(t, "full decomposition through ln_final", sumComponents(stack), f.normedInput(t, "blocks.1.hook_resid_post", "ln_final"))
}

// With LayerNorm folded, the components' direct logit attributions sum to
// the logit less b_U, which logit_attrs leaves out.
func TestCacheMathLogitAttrs(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f := newMathFixture(t, smallConfig(), 2, true)
	c := f.cache
	logits := borrow(f.s, f.out.Logits).MustSub(borrow(f.s, f.m.BU)) // [batch pos vocab], less b_U
	logitOf := func(tok *gotch.Tensor) *gotch.Tensor {
		return logits.MustGather(-1, tok.MustUnsqueeze(-1)).MustSqueeze(-1)
	}
	stack, _ := f.stack(t)(c.GetFullResidDecomposition(-1))

	// [batch pos] tokens: the next token at every position.
	attrs := f.keep(t)(c.LogitAttrs(stack, f.tokens, nil))
	mathClose(t, "logits of [batch pos] tokens", sumComponents(attrs), logitOf(f.tokens))

	wrong := f.tokens.MustFlip([]int64{1})
	attrs = f.keep(t)(c.LogitAttrs(stack, f.tokens, wrong))
	mathClose(t, "logit differences", sumComponents(attrs), logitOf(f.tokens).MustSub(logitOf(wrong)))

	// [batch] tokens: one per row, at every position.
	perRow := mathInt64s(f, []int64{3, 11})
	attrs = f.keep(t)(c.LogitAttrs(stack, perRow, nil))
	want := logitOf(perRow.MustView([]int64{2, 1}).MustExpand([]int64{2, 7}))
	mathClose(t, "logits of [batch] tokens", sumComponents(attrs), want)

	// One token, at the last position only.
	last := PosSlice{Start: -1, Single: true}
	lastStack, _ := f.stack(t)(c.DecomposeResid(-1, Positions(last)))
	one := mathInt64s(f, []int64{5})
	attrs = f.keep(t)(c.LogitAttrs(lastStack, one, nil, Positions(last)))
	mathClose(t, "logit of one token at the last position", sumComponents(attrs), logits.MustSelect(1, 6).MustSelect(1, 5))
}

// mathInt64s is a 1-D int64 tensor in f.s.
func mathInt64s(f *mathFixture, v []int64) *gotch.Tensor {
	return f.s.Attach(gotch.MustFromSlice(v, []int64{int64(len(v))}, f.tokens.Device()))
}

// Without a batch dimension stacks are [components pos d_model], and a
// [pos] token tensor gives one token per position.
func TestCacheMathRemoveBatchDim(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f := newMathFixture(t, smallConfig(), 1, true, RemoveBatchDim())
	c := f.cache
	stack, _ := f.stack(t)(c.GetFullResidDecomposition(-1))
	if want := []int64{8 + 48 + 3, 7, 16}; !slices.Equal(stack.Shape(), want) {
		t.Fatalf("shape %v, want %v", stack.Shape(), want)
	}
	mathClose(t, "full decomposition", sumComponents(stack), f.act(t, "blocks.1.hook_resid_post"))
	scaled := f.keep(t)(c.ApplyLnToStack(stack, -1))
	mathClose(t, "through ln_final", sumComponents(scaled), f.act(t, "ln_final.hook_normalized"))

	tok := f.tokens.MustSelect(0, 0) // [pos]
	attrs := f.keep(t)(c.LogitAttrs(stack, tok, nil))
	logits := borrow(f.s, f.out.Logits).MustSelect(0, 0).MustSub(borrow(f.s, f.m.BU))
	mathClose(t, "logits of [pos] tokens", sumComponents(attrs), logits.MustGather(-1, tok.MustUnsqueeze(-1)).MustSqueeze(-1))
}

func TestCacheMathErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	f := newMathFixture(t, smallConfig(), 2, false, NamesFilter(func(n string) bool {
		return !strings.HasSuffix(n, "attn.hook_z") && n != "ln_final.hook_scale" && n != "blocks.1.hook_mlp_out"
	}))
	c := f.cache
	stack, _ := f.stack(t)(c.AccumulatedResid(-1))
	check := func(what string, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", what, err, w)
			}
		}
	}
	_, _, err := c.StackHeadResults(-1)
	check("heads without hook_z", err, "blocks.0.attn.hook_z", "use_attn_result")
	_, err = c.ApplyLnToStack(stack, -1)
	check("ln_final without its scale", err, "ln_final.hook_scale")
	_, _, err = c.DecomposeResid(-1)
	check("decompose without mlp_out", err, "blocks.1.hook_mlp_out")
	_, _, err = c.DecomposeResid(3)
	check("layer out of range", err, "layer 3")
	_, _, err = c.DecomposeResid(-1, Mode("heads"))
	check("bad mode", err, `"heads"`)
	_, _, err = c.StackNeuronResults(1, Neurons(24))
	check("neuron out of range", err, "neuron 24")
	_, err = c.LogitAttrs(stack, f.tokens, mathInt64s(f, []int64{1}))
	check("token shapes", err, "shape")
}
