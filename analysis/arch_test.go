package analysis

import (
	"context"
	"math"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// The toolkit on the architectures of issue #15: each case is a small
// random model of one family, with its weights perturbed so that no norm
// weight is neutral and no bias zero. The checks are identities that hold
// whatever the weights (patching a position's whole residual restores it,
// zero-ablated heads leave only b_O, the circuits are products of the
// state dict's matrices), so they need no reference model.
var archCases = []struct {
	name string
	edit func(c *hookedmodel.Config)
}{
	{"llama: RMSNorm, grouped-query, rotary, gated SiLU", func(c *hookedmodel.Config) {
		c.NormalizationType, c.FinalRMS, c.NKeyValueHeads = "RMS", true, 2
		c.PositionalEmbeddingType, c.RotaryBase = "rotary", 500000
		c.ActFn, c.GatedMLP = "silu", true
	}},
	{"gpt-neox: parallel attention and MLP, partial rotary", func(c *hookedmodel.Config) {
		c.PositionalEmbeddingType, c.RotaryDim, c.ParallelAttnMLP = "rotary", 2, true
		c.ActFn = "gelu"
	}},
	{"gemma: (1 + w) RMSNorm, d_head 6 of d_model 16 / 4 heads, one key/value head", gemmaEdit},
	{"gemma 2: post-norms, soft caps, sliding window, attn_scale", func(c *hookedmodel.Config) {
		gemmaEdit(c)
		types, err := hookedmodel.NewAttnTypes("local", "global")
		if err != nil {
			panic(err)
		}
		window := 3
		c.NKeyValueHeads, c.UseNormalizationBeforeAndAfter, c.AttnScale = 2, true, 3
		c.AttnScoresSoftCap, c.OutputLogitsSoftCap = 0.5, 2
		c.UseLocalAttn, c.AttnTypes, c.WindowSize = true, types, &window
	}},
}

func gemmaEdit(c *hookedmodel.Config) {
	c.NormalizationType, c.FinalRMS, c.NormWeightPlusOne, c.NKeyValueHeads, c.DHead = "RMS", true, true, 1, 6
	c.PositionalEmbeddingType, c.ActFn, c.GatedMLP = "rotary", "gelu_pytorch_tanh", true
}

func archModel(t *testing.T, edit func(c *hookedmodel.Config)) *hookedmodel.HookedTransformer {
	t.Helper()
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.DMLP = 2, 16, 4, 4, 32
	cfg.NCtx, cfg.DVocab, cfg.ActFn = 32, 40, "gelu_new"
	edit(&cfg)
	m, err := hookedmodel.New(cfg, hookedmodel.OnDevice(gotchtest.Device(t)), hookedmodel.WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	addNoise(t, m, 4)
	return m
}

func TestToolkitOnArchitectures(t *testing.T) {
	for _, tc := range archCases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := archModel(t, tc.edit)
			t.Run("workflow", func(t *testing.T) { checkWorkflow(t, m) })
			t.Run("logit attribution sums", func(t *testing.T) { checkAttributionSums(t, m) })
			t.Run("patching restores a position", func(t *testing.T) { checkPatchingPosition(t, m) })
			t.Run("patching every sweep", func(t *testing.T) { checkEverySweep(t, m) })
			t.Run("zero ablation leaves b_O", func(t *testing.T) { checkZeroAblation(t, m) })
			t.Run("full OV circuit", func(t *testing.T) { checkFullOV(t, m) })
		})
	}
}

// checkWorkflow: golens analyze's engine (induction, head detection,
// composition, attribution, lens) runs and gives finite numbers. (The
// model keeps the grouped-query W_K, W_V copies composition makes on first
// use until it is freed, so the leak check is the parent test's.)
func checkWorkflow(t *testing.T, m *hookedmodel.HookedTransformer) {
	tok := randomTokens(t, m, 1, 8, 5)
	sum, _, err := Workflow(context.Background(), m, tok)
	if err != nil {
		t.Fatal(err)
	}
	for l, row := range sum.InductionScores {
		for h, v := range append(row, sum.HeadAttrib[l]...) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("layer %d: induction score or head attribution [%d] = %g", l, h, v)
			}
		}
	}
}

// checkAttributionSums: direct logit attribution through the model's final
// norm splits the logit difference exactly.
func checkAttributionSums(t *testing.T, m *hookedmodel.HookedTransformer) {
	gotchtest.CheckLeaks(t)
	tok := randomTokens(t, m, 2, 6, 6)
	r, err := LogitAttribution(context.Background(), m, tok, []int64{3, 17}, []int64{30, 2})
	if err != nil {
		t.Fatal(err)
	}
	for b, s := range sumOver(r.Components, 0) {
		if math.Abs(s-r.Total[b]) > 1e-4*max(1, math.Abs(r.Total[b])) {
			t.Errorf("row %d: the components sum to %.6f, the logit difference is %.6f", b, s, r.Total[b])
		}
	}
}

// checkPatchingPosition: the corrupted prompt differs from the clean one at
// position j only, so patching layer 0's resid_pre at j gives the clean
// metric exactly and at any other position the corrupted one (the other
// positions' residuals are already equal): an identity whatever the
// attention, rotary or MLP layout.
func checkPatchingPosition(t *testing.T, m *hookedmodel.HookedTransformer) {
	gotchtest.CheckLeaks(t)
	const pos, j = 6, 2
	clean := randomTokens(t, m, 1, pos, 7)
	corrupted := clean.MustClone()
	defer corrupted.Free()
	at := corrupted.MustNarrow(1, j, 1)
	at.MustFill_(float64((tokenAt(t, clean, j) + 1) % int64(m.Cfg.DVocab)))
	at.Free()
	r, err := ActivationPatching(context.Background(), m, clean, corrupted, LogitDiff(pos-1, []int64{3}, []int64{5}), ResidPre)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Clean-r.Corrupted) < 1e-4 {
		t.Fatalf("the corruption does not change the metric (%g)", r.Clean)
	}
	for p := range pos {
		want := r.Corrupted
		if p == j {
			want = r.Clean
		}
		if got := r.Patched.At(0, p); math.Abs(got-want) > 1e-4*max(1, math.Abs(want)) {
			t.Errorf("resid_pre 0 patched at %d: %.6f, want %.6f", p, got, want)
		}
	}
}

func tokenAt(t *testing.T, tok *gotch.Tensor, p int) int64 {
	t.Helper()
	v := gotchtest.Values(t, tok)
	return int64(v[p])
}

// checkEverySweep: each sweep TransformerLens has either runs, with one
// entry per index of its activation (key and value sweeps over the
// key/value heads of grouped-query attention), or says why the model has
// no such activation.
func checkEverySweep(t *testing.T, m *hookedmodel.HookedTransformer) {
	gotchtest.CheckLeaks(t)
	clean, corrupted := randomTokens(t, m, 1, 5, 8), randomTokens(t, m, 1, 5, 9)
	metric := LogitDiff(4, []int64{3}, []int64{5})
	for s := ResidPre; s <= HeadPatternByPos; s++ {
		r, err := ActivationPatching(context.Background(), m, clean, corrupted, metric, s)
		parallel := m.Cfg.ParallelAttnMLP && s == ResidMid
		switch {
		case parallel && err == nil:
			t.Errorf("%v on a parallel-block model: no error (it has no resid_mid)", s)
		case parallel:
		case err != nil:
			t.Errorf("%v: %v", s, err)
		default:
			heads := m.Cfg.NHeads
			if s == HeadK || s == HeadV {
				heads = max(m.Cfg.NKeyValueHeads, 0)
				if heads == 0 {
					heads = m.Cfg.NHeads
				}
			}
			if s >= HeadOut && s != HeadOutByPos && r.Patched.Shape[1] != heads {
				t.Errorf("%v: shape %v, want %d heads", s, r.Patched.Shape, heads)
			}
			for i, v := range r.Patched.Data {
				if math.IsNaN(v) {
					t.Fatalf("%v [%d] is NaN", s, i)
				}
			}
		}
	}
}

// checkZeroAblation: with every head of layer 0 zero-ablated (hook_z = 0),
// the layer's attention output is b_O at every position (normalised by
// ln1_post in Gemma 2).
func checkZeroAblation(t *testing.T, m *hookedmodel.HookedTransformer) {
	gotchtest.CheckLeaks(t)
	var heads []Component
	for h := range m.Cfg.NHeads {
		heads = append(heads, Head(0, h))
	}
	a, err := NewAblation(context.Background(), m, ZeroAblation, heads)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tok := randomTokens(t, m, 2, 5, 10)
	var got []float64 // blocks.0.hook_attn_out [batch pos d_model]
	record := hookedmodel.Hook{Filter: hookedmodel.Name("blocks.0.hook_attn_out"), Fn: func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		got = gotchtest.Values(t, act)
		return nil, nil
	}}
	out, err := m.RunWithHooks(context.Background(), hookedmodel.Tokens(tok), append(a.Hooks(), record))
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
	want := gotchtest.Values(t, m.Blocks[0].Attn.BO)
	if ln := m.Blocks[0].Ln1Post; ln != nil {
		// Gemma 2: attn_out is ln1_post(b_O), Gemma2RMSNorm's
		// b_O / sqrt(mean(b_O²) + eps) · (1 + w)
		w, ms := gotchtest.Values(t, ln.W), 0.0
		for _, v := range want {
			ms += v * v / float64(len(want))
		}
		for i := range want {
			want[i] *= (1 + w[i]) / math.Sqrt(ms+m.Cfg.Eps)
		}
	}
	for i, v := range got {
		if w := want[i%len(want)]; math.Abs(v-w) > 1e-5 {
			t.Fatalf("attn_out[%d] = %g with every head ablated, want %g (b_O, through ln1_post if any)", i, v, w)
		}
	}
}

// checkFullOV: FullOVCircuit(0.h) is W_E · W_V · W_O · W_U with head h's
// value weights taken from the state dict's key/value head h / (n_heads /
// n_key_value_heads), as repeat_kv shares them. (The model keeps the
// stacked W_V, W_O views it makes until it is freed, so the leak check is
// the parent test's.)
func checkFullOV(t *testing.T, m *hookedmodel.HookedTransformer) {
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wv, ok := sd["blocks.0.attn.W_V"]
	group := 1
	if !ok {
		wv = sd["blocks.0.attn._W_V"]
		group = m.Cfg.NHeads / m.Cfg.NKeyValueHeads
	}
	for h := range m.Cfg.NHeads {
		f, err := FullOVCircuit(m, HeadID{0, h})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.AB()
		if err != nil {
			t.Fatal(err)
		}
		want := sd["embed.W_E"].MustMatmul(wv.MustSelect(0, int64(h/group))).MustMatmul(sd["blocks.0.attn.W_O"].MustSelect(0, int64(h))).MustMatmul(sd["unembed.W_U"]) // joins s
		if e := gotchtest.RelErr(gotchtest.Values(t, got), gotchtest.Values(t, want)); e > 1e-4 {
			t.Errorf("head 0.%d: relative error %g", h, e)
		}
		got.Free()
		f.Free()
	}
}
