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
// components/layer_norm.py, since PR #770 (first released in v3.0.0, and
// unchanged through v3.5.1 and v4.0.0b1), computes
//
//	x = x - x.mean(-1);  scale = hook_scale((x.pow(2).mean(-1) + eps).sqrt())
//	x = hook_normalized(x / scale);  return x * w + b
//
// and layer_norm_pre.py the same without w and b. hook_normalized is thus
// (x - mean) / scale in both, whatever w and b are. (TransformerLens 2.x,
// through v2.18.0, hooked x / scale * w + b in LayerNorm: on these models
// that differs by the random weights, which this test would catch.)
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
						wantNorm[r*width+j] = (v - mean) / wantScale[r]
					}
				}
				gotchtest.Close(t, n.prefix+".hook_scale from "+n.input, gotScale, wantScale, 1e-4)
				gotchtest.Close(t, n.prefix+".hook_normalized = (x - mean) / scale of "+n.input, gotNorm, wantNorm, 1e-4)
			}
		})
	}
}
