package hookedmodel

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// plainFromGrouped is the state dict of a plain multi-head model computing
// what the grouped-query model m computes: each query head h gets key and
// value head kvOf[h]. The tensors are in s.
func plainFromGrouped(t *testing.T, m *HookedTransformer, s *gotch.Scope, kvOf []int64) map[string]*gotch.Tensor {
	t.Helper()
	sd, sdScope, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer sdScope.Close()
	idx := s.Attach(gotch.MustFromSlice(kvOf, []int64{int64(len(kvOf))}, gotchtest.Device(t)))
	out := map[string]*gotch.Tensor{}
	for k, v := range sd {
		i := strings.LastIndex(k, "._")
		if i < 0 {
			out[k] = s.Attach(v.MustClone())
			continue
		}
		out[k[:i+1]+k[i+2:]] = s.Attach(v.MustIndexSelect(0, idx)) // _W_K [kv_head ...] -> W_K [head ...]
	}
	return out
}

func gqaConfig(kv int) func(*Config) {
	return func(c *Config) { c.NKeyValueHeads, c.NormalizationType, c.ActFn = kv, "RMS", "silu" }
}

// Grouped-query attention against plain attention with the key and value
// heads repeated by hand: query head h reads key/value head h / (n_heads
// / n_kv_heads) (Hugging Face's repeat_kv), so a grouping of heads h %
// n_kv_heads fails it. With n_kv_heads = n_heads it is plain attention.
func TestGroupedQueryAttentionEqualsRepeated(t *testing.T) {
	for _, tc := range []struct {
		kv   int
		kvOf []int64
	}{{4, []int64{0, 1, 2, 3}}, {2, []int64{0, 0, 1, 1}}, {1, []int64{0, 0, 0, 0}}} {
		gotchtest.CheckLeaks(t)
		g := editedModel(t, gqaConfig(tc.kv), 11)
		// newTestModel edits the weights in place through StateDict: remake
		// the repeated W_K/W_V copies, as Process and the loaders do.
		g.prepare()
		plain := editedModel(t, gqaConfig(0), 12)
		s := gotch.NewScope()
		if err := plain.LoadStateDict(plainFromGrouped(t, g, s, tc.kvOf)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, tok := randomTokens(t, 2, 6, g.Cfg.DVocab, 4)
		out, cache, err := g.RunWithCache(context.Background(), Tokens(tok))
		if err != nil {
			t.Fatal(err)
		}
		want := logProbs(t, plain, tok)
		lp := out.Logits.MustLogSoftmax(-1)
		gotchtest.Close(t, "grouped-query log-probs", gotchtest.Values(t, lp), want, 1e-4)
		if got := cache.MustGet("blocks.0.attn.hook_k").Shape(); !slices.Equal(got, []int64{2, 6, int64(tc.kv), 4}) {
			t.Errorf("hook_k shape %v, want [batch pos n_kv_heads d_head] = [2 6 %d 4]", got, tc.kv)
		}
		if got := cache.MustGet("blocks.0.attn.hook_pattern").Shape(); !slices.Equal(got, []int64{2, 4, 6, 6}) {
			t.Errorf("hook_pattern shape %v, want [2 4 6 6]", got)
		}
		wK, err := g.Blocks[0].Attn.W_K()
		pK, err2 := plain.Blocks[0].Attn.W_K()
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		gotchtest.Close(t, "W_K repeated per query head, kv "+itoa(tc.kv), gotchtest.Values(t, wK), gotchtest.Values(t, pK), 1e-6)
		lp.Free()
		out.Free()
		cache.Free()
		tok.Free()
		g.Free()
		plain.Free()
	}
}

// The state dict names grouped keys and values as TransformerLens's
// GroupedQueryAttention does, with n_kv_heads heads.
func TestGroupedQueryStateDictNames(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, gqaConfig(2), 11)
	defer m.Free()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, shape := range map[string][]int64{
		"blocks.0.attn._W_K": {2, 16, 4}, "blocks.0.attn._W_V": {2, 16, 4}, "blocks.0.attn._b_K": {2, 4}, "blocks.0.attn._b_V": {2, 4},
		"blocks.0.attn.W_Q": {4, 16, 4}, "blocks.0.attn.W_O": {4, 4, 16},
	} {
		if w, ok := sd[name]; !ok || !slices.Equal(w.Shape(), shape) {
			t.Errorf("%s: present %v, shape %v, want %v", name, ok, w.Shape(), shape)
		}
	}
	if _, ok := sd["blocks.0.attn.W_K"]; ok {
		t.Error("grouped state dict has W_K (TransformerLens's is _W_K)")
	}
	if !strings.Contains(m.String(), "GroupedQueryAttention") {
		t.Errorf("module tree has no GroupedQueryAttention:\n%s", m.String())
	}
}

// Split q/k/v input gives keys and values n_kv_heads inputs; processing
// keeps log-probabilities (fold_value_biases adds each query head's shared
// b_V W_O; the refactoring is skipped); generation with the cache (grouped,
// rotary) equals generation without it.
func TestGroupedQuerySplitProcessGenerate(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, func(c *Config) {
		gqaConfig(2)(c)
		c.UseSplitQKVIn, c.PositionalEmbeddingType, c.RotaryDim = true, "rotary", 2
	}, 13)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 4)
	defer tok.Free()
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	if got := cache.MustGet("blocks.0.hook_k_input").Shape(); !slices.Equal(got, []int64{2, 5, 2, 16}) {
		t.Errorf("hook_k_input shape %v, want [2 5 2 16]", got)
	}
	out.Free()
	cache.Free()
	ctx := context.Background()
	withKV, err := m.Generate(ctx, Tokens(tok), MaxNewTokens(4), StopAtEOS(false), Greedy())
	if err != nil {
		t.Fatal(err)
	}
	without, err := m.Generate(ctx, Tokens(tok), MaxNewTokens(4), StopAtEOS(false), Greedy(), NoKVCache())
	if err != nil {
		t.Fatal(err)
	}
	for i := range withKV {
		if !slices.Equal(withKV[i], without[i]) {
			t.Errorf("row %d: generation with the cache %v, without %v", i, withKV[i], without[i])
		}
	}
	before := logProbs(t, m, tok)
	all := DefaultProcessing
	all.RefactorFactoredAttn = true
	if err := m.Process(all); err != nil {
		t.Fatal(err)
	}
	if rec := m.Processing(); !rec.Ran(StepFoldValueBiases) || rec.Ran(StepRefactorFactoredAttn) {
		t.Errorf("processing record %v: want fold_value_biases run, refactor_factored_attn skipped", rec)
	}
	gotchtest.Close(t, "log-probs after processing", logProbs(t, m, tok), before, 1e-4)
}

// W_K and W_V of a grouped-query model are copies repeated per query
// head, made on first use (a load does not pay for them), once even when
// asked for from several goroutines at a time.
func TestGroupedQueryExpandedViewsMadeOnFirstUse(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, gqaConfig(2), 11)
	defer m.Free()
	a := m.Blocks[0].Attn
	if a.views.wExp[1] != nil || a.views.bExp[2] != nil {
		t.Fatal("the repeated W_K/b_V exist before anyone asked for them")
	}
	got := make([]*gotch.Tensor, 4)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = a.W_K()
		}()
	}
	wg.Wait()
	for i, w := range got {
		if w == nil || w != got[0] || !slices.Equal(w.Shape(), []int64{4, 16, 4}) {
			t.Fatalf("goroutine %d: W_K %v, want one [4 16 4] tensor for all", i, w)
		}
	}
}

// TestMultiQueryWeightViews: with one key/value head (Gemma 2B) the
// per-query-head W_V, a block's and the stacked one, follow an in-place
// change of the weights (it was a stride-0 view of them, which refreshing
// could not write into).
func TestMultiQueryWeightViews(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, func(c *Config) { c.NKeyValueHeads = 1 }, 3)
	defer m.Free()
	for range 2 {
		for _, view := range []func() (*gotch.Tensor, error){m.W_V, m.Blocks[0].Attn.W_V} {
			if _, err := view(); err != nil {
				t.Fatal(err)
			}
		}
		sd, s, err := m.StateDict()
		if err != nil {
			t.Fatal(err)
		}
		sd["blocks.0.attn._W_V"].MustMulScalar_(2)
		s.Close()
	}
	wv, err := m.Blocks[0].Attn.W_V() // [n_heads d_model d_head]: every head the one value head
	if err != nil {
		t.Fatal(err)
	}
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	one := gotchtest.Values(t, sd["blocks.0.attn._W_V"])
	got := gotchtest.Values(t, wv)
	for h := range m.Cfg.NHeads {
		gotchtest.Close(t, "head "+itoa(h), got[h*len(one):(h+1)*len(one)], one, 0)
	}
}
