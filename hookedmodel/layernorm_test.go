package hookedmodel

import (
	"math"
	"strconv"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
)

// TestLayerNormHooksMatchTransformerLens checks every LayerNorm hook of
// unprocessed (normalization_type LN, random w and b) and processed (LNPre)
// models two ways: against the float64 reference, and against the
// definition itself, recomputed here from the cached input of each norm.
//
// Where the expectation comes from: TransformerLens's
// components/layer_norm.py (the 2.x HookedTransformer, which
// from_pretrained_no_processing and the ARENA notebooks use) computes
//
//	x = x - x.mean(-1);  scale = hook_scale((x.pow(2).mean(-1) + eps).sqrt())
//	x = x / scale;  return hook_normalized(x * w + b)
//
// and layer_norm_pre.py hook_normalized(x / scale). hook_normalized is
// thus the norm's output: with random w and b in the unprocessed cases, a
// hook taken before them (TransformerLens 3.x's placement, PR #770) fails.
func TestLayerNormHooksMatchTransformerLens(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*Config)
		process bool
	}{
		{"LN unprocessed", nil, false},
		{"LN unprocessed attn-only", func(c *Config) { c.AttnOnly = true }, false},
		{"LN unprocessed solu_ln", func(c *Config) { c.ActFn = "solu_ln" }, false},
		{"LNPre after fold_ln", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, tc.edit, 51)
			defer m.Free()
			if tc.process {
				if err := m.Process(DefaultProcessing); err != nil {
					t.Fatal(err)
				}
			}
			_, cache, ref := cachedWithReference(t, m, 52)

			// Each norm and the hook that holds its input.
			type norm struct{ prefix, input string }
			var norms []norm
			last := "blocks." + strconv.Itoa(m.Cfg.NLayers-1) + ".hook_resid_post"
			for l := range m.Cfg.NLayers {
				p := "blocks." + strconv.Itoa(l) + "."
				norms = append(norms, norm{p + "ln1", p + "hook_resid_pre"})
				if !m.Cfg.AttnOnly {
					norms = append(norms, norm{p + "ln2", p + "hook_resid_mid"})
				}
				if m.Cfg.ActFn == "solu_ln" {
					norms = append(norms, norm{p + "mlp.ln", p + "mlp.hook_mid"})
				}
			}
			norms = append(norms, norm{"ln_final", last})
			if got := m.LnFinal.W != nil; got == tc.process {
				t.Fatalf("ln_final has weights: %v; want %v", got, !tc.process)
			}

			for _, n := range norms {
				for _, h := range []string{".hook_scale", ".hook_normalized"} {
					got, err := cache.Get(n.prefix + h)
					if err != nil {
						t.Fatal(err)
					}
					compare(t, n.prefix+h+" against the reference", got, ref[n.prefix+h])
				}
				x := gotchtest.Values(t, cache.MustGet(n.input))
				gotScale := gotchtest.Values(t, cache.MustGet(n.prefix+".hook_scale"))
				gotNorm := gotchtest.Values(t, cache.MustGet(n.prefix+".hook_normalized"))
				width := len(x) / len(gotScale)
				w, b := lnAffine(t, m, n.prefix, width)
				wantScale := make([]float64, len(gotScale))
				wantNorm := make([]float64, len(x))
				for r := range wantScale {
					row := x[r*width:][:width]
					mean := 0.0
					for _, v := range row {
						mean += v
					}
					mean /= float64(width)
					ss := 0.0
					for _, v := range row {
						ss += (v - mean) * (v - mean)
					}
					wantScale[r] = math.Sqrt(ss/float64(width) + m.Cfg.Eps)
					for j, v := range row {
						wantNorm[r*width+j] = (v-mean)/wantScale[r]*w[j] + b[j]
					}
				}
				gotchtest.Close(t, n.prefix+".hook_scale from "+n.input, gotScale, wantScale, 1e-4)
				gotchtest.Close(t, n.prefix+".hook_normalized = (x - mean) / scale * w + b of "+n.input, gotNorm, wantNorm, 1e-4)
			}
		})
	}
}

// lnAffine is the weight and bias of the LayerNorm at prefix as float64
// (ones and zeros for LNPre, which has none).
func lnAffine(t *testing.T, m *HookedTransformer, prefix string, width int) (w, b []float64) {
	t.Helper()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sd[prefix+".w"] == nil {
		w, b = make([]float64, width), make([]float64, width)
		for i := range w {
			w[i] = 1
		}
		return w, b
	}
	return gotchtest.Values(t, sd[prefix+".w"]), gotchtest.Values(t, sd[prefix+".b"])
}
