package hookedmodel

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

func gatedConfig(act string) func(*Config) {
	return func(c *Config) { c.NormalizationType, c.GatedMLP, c.ActFn = "RMS", true, act }
}

// matmul is x [r n] times w [n k], row-major, in float64.
func matmul(x, w []float64, n, k int) []float64 {
	out := make([]float64, len(x)/n*k)
	for r := 0; r < len(x)/n; r++ {
		for j := range k {
			var sum float64
			for i := range n {
				sum += x[r*n+i] * w[i*k+j]
			}
			out[r*k+j] = sum
		}
	}
	return out
}

func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// runCached runs m on random tokens and returns the cache and the state
// dict, to be closed by the test.
func runCached(t *testing.T, m *HookedTransformer) (*ActivationCache, map[string]*gotch.Tensor) {
	t.Helper()
	_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 6)
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	tok.Free()
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
	t.Cleanup(cache.Free)
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return cache, sd
}

// The gated MLP against its closed form from ln2's output: hook_pre is
// x W_gate, hook_pre_linear x W_in, hook_post act(pre)·pre_linear + b_in,
// and hook_mlp_out post W_out + b_out. Swapping W_gate and W_in, or the
// activation, fails it.
func TestGatedMLPClosedForm(t *testing.T) {
	for _, tc := range []struct {
		act string
		f   func(float64) float64
	}{{"silu", silu}, {"gelu_pytorch_tanh", geluTanh}} {
		t.Run(tc.act, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, gatedConfig(tc.act), 7)
			defer m.Free()
			cache, sd := runCached(t, m)
			d, f := m.Cfg.DModel, m.Cfg.DMLP
			for l := range m.Cfg.NLayers {
				pre := "blocks." + itoa(l) + "."
				x := gotchtest.Values(t, cache.MustGet(pre+"ln2.hook_normalized"))
				w2 := gotchtest.Values(t, sd[pre+"ln2.w"])
				for i := range x {
					x[i] *= w2[i%d] // the norm's output: hook_normalized · w
				}
				gate := matmul(x, gotchtest.Values(t, sd[pre+"mlp.W_gate"]), d, f)
				lin := matmul(x, gotchtest.Values(t, sd[pre+"mlp.W_in"]), d, f)
				bIn := gotchtest.Values(t, sd[pre+"mlp.b_in"])
				post := make([]float64, len(gate))
				for i := range gate {
					post[i] = tc.f(gate[i])*lin[i] + bIn[i%f]
				}
				out := matmul(post, gotchtest.Values(t, sd[pre+"mlp.W_out"]), f, d)
				bOut := gotchtest.Values(t, sd[pre+"mlp.b_out"])
				for i := range out {
					out[i] += bOut[i%d]
				}
				gotchtest.Close(t, pre+"mlp.hook_pre", gotchtest.Values(t, cache.MustGet(pre+"mlp.hook_pre")), gate, 1e-4)
				gotchtest.Close(t, pre+"mlp.hook_pre_linear", gotchtest.Values(t, cache.MustGet(pre+"mlp.hook_pre_linear")), lin, 1e-4)
				gotchtest.Close(t, pre+"mlp.hook_post", gotchtest.Values(t, cache.MustGet(pre+"mlp.hook_post")), post, 1e-4)
				gotchtest.Close(t, pre+"hook_mlp_out", gotchtest.Values(t, cache.MustGet(pre+"hook_mlp_out")), out, 1e-4)
			}
			names := m.HookNames()
			i := slices.Index(names, "blocks.0.mlp.hook_pre")
			if i < 0 || !slices.Equal(names[i:i+3], []string{"blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_pre_linear", "blocks.0.mlp.hook_post"}) {
				t.Errorf("gated MLP hook points %v, want hook_pre, hook_pre_linear, hook_post", names)
			}
			wg, err := m.Blocks[0].MLP.W_gate()
			if err != nil || !slices.Equal(wg.Shape(), []int64{int64(d), int64(f)}) {
				t.Errorf("W_gate(): %v %v, want [d_model d_mlp]", wg.Shape(), err)
			}
			stacked, err := m.W_gate()
			if err != nil || !slices.Equal(stacked.Shape(), []int64{int64(m.Cfg.NLayers), int64(d), int64(f)}) {
				t.Errorf("model W_gate(): %v %v, want [n_layers d_model d_mlp]", stacked.Shape(), err)
			}
			gotchtest.Close(t, "W_gate of block 1", gotchtest.Values(t, stacked)[d*f:], gotchtest.Values(t, sd["blocks.1.mlp.W_gate"]), 1e-6)
		})
	}
}

// With W_gate zero the gate's pre-activation is 0 and silu(0) = 0: the
// MLP outputs b_in W_out + b_out whatever its input.
func TestGatedMLPZeroGate(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, gatedConfig("silu"), 7)
	defer m.Free()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	sd["blocks.0.mlp.W_gate"].MustZero_()
	bIn, wOut, bOut := gotchtest.Values(t, sd["blocks.0.mlp.b_in"]), gotchtest.Values(t, sd["blocks.0.mlp.W_out"]), gotchtest.Values(t, sd["blocks.0.mlp.b_out"])
	s.Close()
	cache, _ := runCached(t, m)
	want := matmul(bIn, wOut, m.Cfg.DMLP, m.Cfg.DModel)
	for i := range want {
		want[i] += bOut[i]
	}
	got := gotchtest.Values(t, cache.MustGet("blocks.0.hook_mlp_out"))
	for r := 0; r < len(got)/len(want); r++ {
		gotchtest.Close(t, "mlp_out with a zero gate", got[r*len(want):(r+1)*len(want)], want, 1e-5)
	}
}

// parallel_attn_mlp: the MLP reads ln2(resid_pre), not resid_mid, which
// does not exist, and resid_post = resid_pre + attn_out + mlp_out.
func TestParallelAttnMLP(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, func(c *Config) { c.ParallelAttnMLP, c.ActFn = true, "gelu" }, 8)
	defer m.Free()
	if slices.Contains(m.HookNames(), "blocks.0.hook_resid_mid") {
		t.Error("a parallel block has hook_resid_mid")
	}
	cache, _ := runCached(t, m)
	d := m.Cfg.DModel
	for l := range m.Cfg.NLayers {
		pre := "blocks." + itoa(l) + "."
		x := gotchtest.Values(t, cache.MustGet(pre+"hook_resid_pre"))
		a, o := gotchtest.Values(t, cache.MustGet(pre+"hook_attn_out")), gotchtest.Values(t, cache.MustGet(pre+"hook_mlp_out"))
		sum := make([]float64, len(x))
		var scale []float64
		for r := 0; r < len(x)/d; r++ {
			var mean, sq float64
			for i := range d {
				mean += x[r*d+i] / float64(d)
			}
			for i := range d {
				sq += (x[r*d+i] - mean) * (x[r*d+i] - mean) / float64(d)
			}
			scale = append(scale, math.Sqrt(sq+m.Cfg.Eps))
		}
		for i := range x {
			sum[i] = x[i] + a[i] + o[i]
		}
		gotchtest.Close(t, pre+"ln2.hook_scale (of resid_pre)", gotchtest.Values(t, cache.MustGet(pre+"ln2.hook_scale")), scale, 1e-5)
		gotchtest.Close(t, pre+"hook_resid_post", gotchtest.Values(t, cache.MustGet(pre+"hook_resid_post")), sum, 1e-5)
	}
}

// Processing keeps log-probabilities of gated and parallel models; fold_ln
// is skipped for a LayerNorm model with a gated MLP (ln2's bias reaches
// W_gate, which has no bias).
func TestGatedParallelProcessing(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		fold bool
	}{
		{"gated RMS", gatedConfig("silu"), true},
		{"gated LN", func(c *Config) { c.GatedMLP, c.ActFn = true, "silu" }, false},
		{"parallel LN", func(c *Config) { c.ParallelAttnMLP = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, tc.edit, 3)
			defer m.Free()
			_, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, 4)
			defer tok.Free()
			before := logProbs(t, m, tok)
			if err := m.Process(DefaultProcessing); err != nil {
				t.Fatal(err)
			}
			if got := m.Processing().Ran(StepFoldLN); got != tc.fold {
				t.Errorf("fold_ln ran %v, want %v: %v", got, tc.fold, m.Processing())
			}
			gotchtest.Close(t, "log-probs after processing", logProbs(t, m, tok), before, 1e-4)
		})
	}
}
