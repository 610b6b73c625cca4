package analysis

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// mlpModel is a small random model with LayerNorm and MLPs.
func mlpModel(t *testing.T) *hookedmodel.HookedTransformer {
	t.Helper()
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.DMLP = 2, 16, 4, 4, 32
	cfg.NCtx, cfg.DVocab, cfg.ActFn = 16, 40, "gelu_new"
	m, err := hookedmodel.New(cfg, hookedmodel.OnDevice(gotchtest.Device(t)), hookedmodel.WithSeed(9))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

func randomTokens(t *testing.T, m *hookedmodel.HookedTransformer, batch, pos int, seed uint64) *gotch.Tensor {
	t.Helper()
	gen := gotch.MustNewGenerator(seed)
	defer gen.Free()
	tok := gotch.MustRandint(0, int64(m.Cfg.DVocab), []int64{int64(batch), int64(pos)}, gen, m.Device())
	t.Cleanup(tok.Free)
	return tok
}

// perTokenLoss runs the model with hooks and returns the loss [batch pos-1].
func perTokenLoss(t *testing.T, m *hookedmodel.HookedTransformer, tok *gotch.Tensor, hooks []hookedmodel.Hook) *Table {
	t.Helper()
	out, err := m.RunWithHooks(context.Background(), hookedmodel.Tokens(tok), hooks, hookedmodel.Return(hookedmodel.ReturnLoss), hookedmodel.LossPerToken())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	return &Table{Axes: []string{"batch", "pos"}, Shape: []int{int(tok.Size(0)), int(tok.Size(1)) - 1}, Data: gotchtest.Values(t, out.Loss)}
}

// repeatLosses is the mean loss on the first and second repeat.
func repeatLosses(loss *Table, seqLen int) (first, second float64) {
	b, n := loss.Shape[0], loss.Shape[1]
	for r := range b {
		for p := range n {
			if p < seqLen {
				first += loss.At(r, p)
			} else {
				second += loss.At(r, p)
			}
		}
	}
	return first / float64(b*seqLen), second / float64(b*seqLen)
}

func TestAblatingTheInductionHead(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	tok := repeated(t, im, 11)
	ref := repeated(t, im, 12)
	ctx := context.Background()
	const seqLen = 10
	first, second := repeatLosses(perTokenLoss(t, im.Model, tok, nil), seqLen)
	t.Logf("clean: first repeat %.3f, second %.3f", first, second)
	if second > first/4 {
		t.Fatalf("the clean model does not use the repeat: %.3f vs %.3f", second, first)
	}
	for _, mode := range []AblationMode{ZeroAblation, MeanAblation, ResampleAblation} {
		t.Run(mode.String(), func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			a, err := NewAblation(ctx, im.Model, mode, []Component{Head(im.Induction.Layer, im.Induction.Head)}, Reference(ref), WithSeed(1))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			f, s := repeatLosses(perTokenLoss(t, im.Model, tok, a.Hooks()), seqLen)
			t.Logf("induction head %v-ablated: first repeat %.3f, second %.3f", mode, f, s)
			if s < 0.8*f {
				t.Errorf("with the induction head ablated the second repeat's loss %.3f is still well below the first's %.3f", s, f)
			}
		})
	}

	t.Run("table", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		res, err := AblationTable(ctx, im.Model, tok, ZeroAblation)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("base loss %.3f, change\n%v", res.Base, res.Change)
		// The two heads of the circuit matter; nothing else does much.
		order := make([]int, len(res.Change.Data))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(i, j int) int { return -cmpFloat(res.Change.Data[i], res.Change.Data[j]) })
		top := []HeadID{{res.Change.Index(order[0])[0], res.Change.Index(order[0])[1]}, {res.Change.Index(order[1])[0], res.Change.Index(order[1])[1]}}
		if !slices.Contains(top, im.Induction) || !slices.Contains(top, im.PrevToken) {
			t.Errorf("the largest loss changes are at %v, want the induction and previous-token heads", top)
		}
		if third := res.Change.Data[order[2]]; third > 0.1*res.Change.Data[order[1]] {
			t.Errorf("a third head changes the loss by %.3f", third)
		}
		// With a metric: the log-probability of the second repeat drops.
		res2, err := AblationTable(ctx, im.Model, tok, ZeroAblation, WithMetric(NextTokenLogProb(tok, seqLen+1, 0)))
		if err != nil {
			t.Fatal(err)
		}
		if got := res2.Change.At(im.Induction.Layer, im.Induction.Head); got > -1 {
			t.Errorf("ablating the induction head changes the second repeat's log-prob by %.3f, want a large drop", got)
		}
	})
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cachedWith runs the model with hooks registered and caches name.
func cachedWith(t *testing.T, m *hookedmodel.HookedTransformer, tok *gotch.Tensor, hooks []hookedmodel.Hook, name string) []float64 {
	t.Helper()
	remove, err := m.Hooks(hooks...)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	out, cache, err := m.RunWithCache(context.Background(), hookedmodel.Tokens(tok), hookedmodel.NamesFilter(hookedmodel.Name(name)))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	defer cache.Free()
	return gotchtest.Values(t, cache.MustGet(name))
}

func TestAblationModes(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := mlpModel(t)
	tok := randomTokens(t, m, 3, 7, 1)
	ref := randomTokens(t, m, 2, 7, 2)
	ctx := context.Background()
	build := func(t *testing.T, mode AblationMode, c Component, opts ...Option) []hookedmodel.Hook {
		t.Helper()
		a, err := NewAblation(ctx, m, mode, []Component{c}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		return a.Hooks()
	}
	const d, dmlp = 16, 32

	t.Run("zero neuron", func(t *testing.T) {
		got := cachedWith(t, m, tok, build(t, ZeroAblation, Neuron(1, 5)), "blocks.1.mlp.hook_post")
		clean := cachedWith(t, m, tok, nil, "blocks.1.mlp.hook_post")
		for i := range got {
			want := clean[i]
			if i%dmlp == 5 {
				want = 0
			}
			if got[i] != want {
				t.Fatalf("post[%d] = %g, want %g", i, got[i], want)
			}
		}
	})

	t.Run("mean attention layer", func(t *testing.T) {
		mean := make([]float64, d)
		refAct := cachedWith(t, m, ref, nil, "blocks.0.hook_attn_out")
		for i, v := range refAct {
			mean[i%d] += v / float64(len(refAct)/d)
		}
		got := cachedWith(t, m, tok, build(t, MeanAblation, AttnLayer(0), Reference(ref)), "blocks.0.hook_attn_out")
		for i := range got {
			if math.Abs(got[i]-mean[i%d]) > 1e-5 {
				t.Fatalf("attn_out[%d] = %g, want the reference mean %g", i, got[i], mean[i%d])
			}
		}
	})

	t.Run("resample MLP layer", func(t *testing.T) {
		one := ref.MustNarrow(0, 1, 1)
		defer one.Free()
		refAct := cachedWith(t, m, one, nil, "blocks.1.hook_mlp_out")
		got := cachedWith(t, m, tok, build(t, ResampleAblation, MLPLayer(1), Reference(one)), "blocks.1.hook_mlp_out")
		for i := range got {
			if math.Abs(got[i]-refAct[i%len(refAct)]) > 1e-6 {
				t.Fatalf("mlp_out[%d] = %g, want the reference row's %g", i, got[i], refAct[i%len(refAct)])
			}
		}
	})

	t.Run("resample head draws rows", func(t *testing.T) {
		refAct := cachedWith(t, m, ref, nil, "blocks.0.attn.hook_z")
		got := cachedWith(t, m, tok, build(t, ResampleAblation, Head(0, 3), Reference(ref), WithSeed(4)), "blocks.0.attn.hook_z")
		per := 7 * 4 * 4 // pos head d_head
		for r := range 3 {
			matched := false
			for rr := range 2 {
				ok := true
				for p := range 7 {
					for k := range 4 {
						if math.Abs(got[r*per+(p*4+3)*4+k]-refAct[rr*per+(p*4+3)*4+k]) > 1e-6 {
							ok = false
						}
					}
				}
				matched = matched || ok
			}
			if !matched {
				t.Errorf("row %d's head 3 is no reference row's", r)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		im := inductionModel(t)
		for _, tc := range []struct {
			name  string
			m     *hookedmodel.HookedTransformer
			mode  AblationMode
			c     Component
			opts  []Option
			wants string
		}{
			{"mean without reference", m, MeanAblation, Head(0, 0), nil, "Reference"},
			{"neuron of an attention-only model", im.Model, ZeroAblation, Neuron(0, 0), nil, "no MLPs"},
			{"head out of range", m, ZeroAblation, Head(0, 4), nil, "head 4"},
			{"layer out of range", m, ZeroAblation, AttnLayer(2), nil, "layer 2"},
			{"neuron out of range", m, ZeroAblation, Neuron(1, dmlp), nil, "neuron 32"},
			{"unknown mode", m, AblationMode(7), Head(0, 0), []Option{Reference(ref)}, "unknown mode"},
		} {
			a, err := NewAblation(ctx, tc.m, tc.mode, []Component{tc.c}, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wants)
			}
			a.Close()
		}
		// Resampling from a reference of another length fails the pass,
		// naming the hook point.
		short := ref.MustNarrow(1, 0, 5)
		defer short.Free()
		hooks := build(t, ResampleAblation, Head(1, 0), Reference(short))
		_, err := m.RunWithHooks(ctx, hookedmodel.Tokens(tok), hooks)
		if err == nil || !strings.Contains(err.Error(), "blocks.1.attn.hook_z") || !strings.Contains(err.Error(), "5 positions") {
			t.Errorf("resampling from 5 positions into 7 gave %v", err)
		}
	})
}
