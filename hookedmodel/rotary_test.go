package hookedmodel

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// rotaryConfig is a rotary model rotating the first dim of d_head 4 with
// base.
func rotaryConfig(dim int, base float64) func(*Config) {
	return func(c *Config) {
		c.PositionalEmbeddingType, c.RotaryDim, c.RotaryBase = "rotary", dim, base
		c.NormalizationType, c.GatedMLP, c.ActFn = "RMS", true, "silu"
	}
}

// rotateRef is the NeoX rotate-half rotation in float64, written from
// Hugging Face's apply_rotary_pos_emb: x [batch pos head d_head] at
// position offset + pos, the first dim dimensions rotated.
func rotateRef(x []float64, shape []int64, dim int, base float64, offset int) []float64 {
	pos, heads, dh := int(shape[1]), int(shape[2]), int(shape[3])
	out := slices.Clone(x)
	half := dim / 2
	for i := 0; i < len(x); i += dh {
		p := float64(offset + i/(heads*dh)%pos)
		for j := range half {
			a := p * math.Pow(base, -float64(2*j)/float64(dim))
			x1, x2 := x[i+j], x[i+j+half]
			out[i+j] = x1*math.Cos(a) - x2*math.Sin(a)
			out[i+j+half] = x2*math.Cos(a) + x1*math.Sin(a)
		}
	}
	return out
}

// hook_rot_q and hook_rot_k are hook_q and hook_k rotated in NeoX's
// layout: full and partial rotary_dim, two bases. A wrong layout (adjacent
// pairs), a rotary_dim ignored or a base ignored fails it.
func TestRotaryClosedForm(t *testing.T) {
	for _, tc := range []struct {
		dim  int
		base float64
	}{{4, 10000}, {2, 10000}, {4, 7}, {2, 50}} {
		gotchtest.CheckLeaks(t)
		m := editedModel(t, rotaryConfig(tc.dim, tc.base), 9)
		cache, _ := runCached(t, m)
		for _, n := range []string{"q", "k"} {
			name := "blocks.1.attn.hook_" + n
			x := cache.MustGet(name)
			want := rotateRef(gotchtest.Values(t, x), x.Shape(), tc.dim, tc.base, 0)
			got := cache.MustGet("blocks.1.attn.hook_rot_" + n)
			if !slices.Equal(got.Shape(), x.Shape()) {
				t.Errorf("hook_rot_%s shape %v, want hook_%s's %v", n, got.Shape(), n, x.Shape())
			}
			gotchtest.Close(t, "hook_rot_"+n, gotchtest.Values(t, got), want, 1e-5)
		}
		if slices.Contains(m.HookNames(), "hook_pos_embed") {
			t.Error("a rotary model has hook_pos_embed")
		}
		m.Free()
	}
}

// At position 0 rotary is the identity; and with one token repeated, the
// layer-0 queries and keys are the same at every position before rotation,
// so a score depends on the query and key positions only through their
// difference.
func TestRotaryRelativePositions(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, rotaryConfig(4, 10000), 9)
	defer m.Free()
	n := int64(6)
	tok := gotch.MustFromSlice(slices.Repeat([]int64{3}, int(n)), []int64{1, n}, gotchtest.Device(t))
	defer tok.Free()
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	defer cache.Free()
	q, rq := gotchtest.Values(t, cache.MustGet("blocks.0.attn.hook_q")), gotchtest.Values(t, cache.MustGet("blocks.0.attn.hook_rot_q"))
	row := m.Cfg.NHeads * m.Cfg.DHead
	gotchtest.Close(t, "rot_q at position 0", rq[:row], q[:row], 1e-6)
	if gotchtest.RelErr(rq[row:2*row], q[row:2*row]) < 1e-3 {
		t.Error("rot_q at position 1 equals q: no rotation")
	}
	scores := gotchtest.Values(t, cache.MustGet("blocks.0.attn.hook_attn_scores")) // [1 head query key]
	for h := range int64(m.Cfg.NHeads) {
		at := func(i, j int64) float64 { return scores[(h*n+i)*n+j] }
		for i := int64(1); i < n; i++ {
			for j := int64(1); j <= i; j++ {
				if d := math.Abs(at(i, j) - at(i-1, j-1)); d > 1e-4*(1+math.Abs(at(i, j))) {
					t.Errorf("head %d: score(%d,%d) = %g but score(%d,%d) = %g", h, i, j, at(i, j), i-1, j-1, at(i-1, j-1))
				}
			}
		}
	}
}

// With the key-value cache, the new positions are rotated at their
// offset: running a prefix and then the rest with the cache gives the
// logits of one pass over the whole sequence; hook_rot_k covers the
// cached positions, as TransformerLens's does.
func TestRotaryKVCacheOffset(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, rotaryConfig(2, 100), 9)
	defer m.Free()
	ctx := context.Background()
	_, tok := randomTokens(t, 2, 6, m.Cfg.DVocab, 5)
	defer tok.Free()
	full, err := m.Forward(ctx, Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer full.Free()
	kv := m.NewKVCache()
	defer kv.Free()
	head, rest := tok.MustNarrow(1, 0, 4), tok.MustNarrow(1, 4, 2)
	defer head.Free()
	defer rest.Free()
	first, err := m.Forward(ctx, Tokens(head), WithKVCache(kv))
	if err != nil {
		t.Fatal(err)
	}
	first.Free()
	out, cache, err := m.RunWithCache(ctx, Tokens(rest), WithKVCache(kv))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	defer cache.Free()
	want := full.Logits.MustNarrow(1, 4, 2)
	defer want.Free()
	gotchtest.Close(t, "logits with the cache", gotchtest.Values(t, out.Logits), gotchtest.Values(t, want), 1e-4)
	if got := cache.MustGet("blocks.0.attn.hook_rot_k").Size(1); got != 6 {
		t.Errorf("hook_rot_k covers %d positions, want 6 (cached and new)", got)
	}
}

// Processing a rotary model keeps its log-probabilities; the refactoring
// is skipped (W_Q W_Kᵀ is not what rotated scores read).
func TestRotaryProcessing(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, func(c *Config) { c.PositionalEmbeddingType, c.RotaryDim = "rotary", 2 }, 3)
	defer m.Free()
	_, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, 4)
	defer tok.Free()
	before := logProbs(t, m, tok)
	all := DefaultProcessing
	all.RefactorFactoredAttn = true
	if err := m.Process(all); err != nil {
		t.Fatal(err)
	}
	if m.Processing().Ran(StepRefactorFactoredAttn) {
		t.Error("refactor_factored_attn ran on a rotary model")
	}
	gotchtest.Close(t, "log-probs after processing", logProbs(t, m, tok), before, 1e-4)
}

// Left padding: a padded row's positions count its real tokens only, so
// its logits at the real tokens are those of the row run alone.
func TestRotaryLeftPadding(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, rotaryConfig(2, 100), 9)
	defer m.Free()
	checkLeftPadding(t, m, []int64{5, 7, 2}, 2)
}

// checkLeftPadding runs tokens left-padded with pad masked-out zeros and
// checks that the log-probs at the real tokens are those of tokens alone.
func checkLeftPadding(t *testing.T, m *HookedTransformer, tokens []int64, pad int) {
	t.Helper()
	dev := gotchtest.Device(t)
	n := int64(len(tokens))
	padded := gotch.MustFromSlice(append(make([]int64, pad), tokens...), []int64{1, int64(pad) + n}, dev)
	mask := gotch.MustFromSlice(append(make([]int64, pad), slices.Repeat([]int64{1}, len(tokens))...), []int64{1, int64(pad) + n}, dev)
	alone := gotch.MustFromSlice(tokens, []int64{1, n}, dev)
	defer padded.Free()
	defer mask.Free()
	defer alone.Free()
	got, err := m.Forward(context.Background(), Tokens(padded), AttentionMask(mask))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Free()
	want := logProbs(t, m, alone)
	narrow := got.Logits.MustNarrow(1, int64(pad), n)
	defer narrow.Free()
	real := narrow.MustLogSoftmax(-1)
	defer real.Free()
	gotchtest.Close(t, "left-padded log-probs", gotchtest.Values(t, real), want, 1e-4)
}

// TestRotaryAdjacentPairsLayout: with rotary_adjacent_pairs golens rotates
// GPT-J's pairs (2i, 2i+1), as the float64 reference does from
// modeling_gptj.py, and not NeoX's halves: hook_rot_q and hook_rot_k match
// the reference with adjacent pairs and differ from it with halves.
func TestRotaryAdjacentPairsLayout(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, gptjLike, 11)
	defer m.Free()
	_, cache, ref := cachedWithReference(t, m, 12)
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	halves := newRefModel(t, m.Cfg, sd)
	halves.Cfg.RotaryAdjacentPairs = false
	rows, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, 12)
	tok.Free()
	wrong := halves.Forward(rows)
	for _, name := range []string{"blocks.0.attn.hook_rot_q", "blocks.1.attn.hook_rot_k"} {
		compare(t, name, cache.MustGet(name), ref[name])
		got := gotchtest.Values(t, cache.MustGet(name))
		if gotchtest.RelErr(got, wrong[name].Data) < 1e-2 {
			t.Errorf("%s: golens's adjacent-pair rotation is within 1e-2 of NeoX's halves", name)
		}
	}
	// TransformerLens's rotary_sin buffer repeats each angle in a row
	// ("d -> (d 2)"): at position 1, sin θ0, sin θ0, sin θ1, sin θ1.
	r := m.Blocks[0].Attn.rotary
	sin := m.rotaryBuffers(r)[0].value(s)
	row := gotchtest.Values(t, sin.MustSelect(0, 1))
	t0, t1 := r.invFreq[0], r.invFreq[1]
	gotchtest.Close(t, "rotary_sin at position 1", row, []float64{math.Sin(t0), math.Sin(t0), math.Sin(t1), math.Sin(t1)}, 1e-6)
}
