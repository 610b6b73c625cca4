package hookedmodel

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

func rmsConfig(c *Config) { c.NormalizationType, c.ActFn = "RMS", "silu" }

// rmsRows is RMSNorm's closed form on each row of x (last dimension n):
// the scale sqrt(mean(x²) + eps) and x / scale.
func rmsRows(x []float64, n int, eps float64) (scale, normalized []float64) {
	for r := 0; r < len(x)/n; r++ {
		row := x[r*n : (r+1)*n]
		var sq float64
		for _, v := range row {
			sq += v * v
		}
		s := math.Sqrt(sq/float64(n) + eps)
		scale = append(scale, s)
		for _, v := range row {
			normalized = append(normalized, v/s)
		}
	}
	return scale, normalized
}

// RMSNorm: hook_scale is sqrt(mean(x²)+eps) with no centring,
// hook_normalized is x / scale before w (TransformerLens's RMSNorm
// placement), and the norm's output is that times w, with no bias: the
// logits are ln_final's hook_normalized · w W_U + b_U.
func TestRMSNormClosedForm(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, func(c *Config) { rmsConfig(c); c.Eps = 1e-2 }, 5)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 6)
	defer tok.Free()
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	defer cache.Free()
	d := m.Cfg.DModel
	for _, ln := range []struct{ in, prefix string }{
		{"blocks.0.hook_resid_pre", "blocks.0.ln1"}, {"blocks.1.hook_resid_mid", "blocks.1.ln2"}, {"blocks.1.hook_resid_post", "ln_final"},
	} {
		x := gotchtest.Values(t, cache.MustGet(ln.in))
		scale, normalized := rmsRows(x, d, m.Cfg.Eps)
		gotchtest.Close(t, ln.prefix+".hook_scale", gotchtest.Values(t, cache.MustGet(ln.prefix+".hook_scale")), scale, 1e-5)
		gotchtest.Close(t, ln.prefix+".hook_normalized", gotchtest.Values(t, cache.MustGet(ln.prefix+".hook_normalized")), normalized, 1e-5)
	}
	// logits = (normalized · w) W_U + b_U, by hand
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := sd["blocks.0.ln1.b"]; ok {
		t.Error("an RMSNorm has a bias ln1.b; TransformerLens's has only w")
	}
	w, wU, bU := gotchtest.Values(t, sd["ln_final.w"]), gotchtest.Values(t, sd["unembed.W_U"]), gotchtest.Values(t, sd["unembed.b_U"])
	norm := gotchtest.Values(t, cache.MustGet("ln_final.hook_normalized"))
	v := m.Cfg.DVocabOut
	var want []float64
	for r := 0; r < len(norm)/d; r++ {
		for j := range v {
			sum := bU[j]
			for i := range d {
				sum += norm[r*d+i] * w[i] * wU[i*v+j]
			}
			want = append(want, sum)
		}
	}
	gotchtest.Close(t, "logits", gotchtest.Values(t, out.Logits), want, 1e-4)
	if got := m.String(); !strings.Contains(got, "RMSNorm") || strings.Contains(got, "LayerNorm") {
		t.Errorf("module tree names no RMSNorm (or a LayerNorm):\n%s", got)
	}
}

// RMSPre has no weights: hook_normalized is the norm's output.
// final_rms makes ln_final an RMSNorm in a LayerNorm model.
func TestRMSPreAndFinalRMS(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, func(c *Config) { c.NormalizationType = "RMSPre" }, 5)
	defer m.Free()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	for k := range sd {
		if strings.Contains(k, "ln") {
			t.Errorf("RMSPre model has norm weight %s", k)
		}
	}
	s.Close()

	f := editedModel(t, func(c *Config) { c.FinalRMS = true }, 5)
	defer f.Free()
	sd, s, err = f.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, hasB := sd["ln_final.b"]
	_, hasLn1B := sd["blocks.0.ln1.b"]
	if hasB || !hasLn1B {
		t.Errorf("final_rms: ln_final.b present %v (want false), ln1.b present %v (want true)", hasB, hasLn1B)
	}
	_, tok := randomTokens(t, 1, 4, f.Cfg.DVocab, 6)
	defer tok.Free()
	out, cache, err := f.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	defer cache.Free()
	x := gotchtest.Values(t, cache.MustGet("blocks.1.hook_resid_post"))
	scale, _ := rmsRows(x, f.Cfg.DModel, f.Cfg.Eps)
	gotchtest.Close(t, "final_rms ln_final.hook_scale (no centring)", gotchtest.Values(t, cache.MustGet("ln_final.hook_scale")), scale, 1e-5)
}

// Processing an RMSNorm model folds w without centring the readers and
// skips center_writing_weights (RMSNorm keeps the mean), recording both;
// log-probabilities do not change.
func TestRMSProcessing(t *testing.T) {
	for _, edit := range []func(*Config){rmsConfig, func(c *Config) { c.FinalRMS = true }} {
		gotchtest.CheckLeaks(t)
		m := editedModel(t, edit, 3)
		_, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, 4)
		before := logProbs(t, m, tok)
		if err := m.Process(DefaultProcessing); err != nil {
			t.Fatal(err)
		}
		rec := m.Processing()
		if rec.Ran(StepCenterWritingWeights) {
			t.Errorf("%s: center_writing_weights ran on a model with an RMSNorm: %v", m.Cfg.NormalizationType, rec)
		}
		if !rec.Ran(StepFoldLN) || !strings.HasSuffix(m.Cfg.NormalizationType, "Pre") {
			t.Errorf("fold_ln did not run (normalization_type %q): %v", m.Cfg.NormalizationType, rec)
		}
		gotchtest.Close(t, "log-probs after processing "+rec.String(), logProbs(t, m, tok), before, 1e-4)
		tok.Free()
		m.Free()
	}
}

// A bfloat16 model normalises in float32 and casts back before w.
func TestRMSNormHalf(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	rmsConfig(&cfg)
	m, err := New(cfg, OnDevice(gotchtest.Device(t)), WithDType(gotch.BFloat16))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	_, tok := randomTokens(t, 1, 4, cfg.DVocab, 6)
	defer tok.Free()
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	defer cache.Free()
	if d := cache.MustGet("blocks.0.ln1.hook_scale").DType(); d != gotch.Float {
		t.Errorf("hook_scale dtype %v, want float32", d)
	}
	if d := out.Logits.DType(); d != gotch.BFloat16 {
		t.Errorf("logits dtype %v, want bfloat16", d)
	}
}

// rms_norm_weight_plus_one (Gemma's GemmaRMSNorm): the norm scales by
// (1 + w), w initialised to zeros; fold_ln folds (1 + w).
func TestRMSNormPlusOne(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	rmsConfig(&cfg)
	cfg.NormWeightPlusOne = true
	fresh, err := New(cfg, OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	if w := gotchtest.Values(t, fresh.LnFinal.W); w[0] != 0 {
		t.Errorf("a new (1 + w) norm's w is %g, want 0 (scale 1)", w[0])
	}
	fresh.Free()

	m := newTestModel(t, cfg, 5)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 6)
	defer tok.Free()
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	w, wU, bU := gotchtest.Values(t, sd["ln_final.w"]), gotchtest.Values(t, sd["unembed.W_U"]), gotchtest.Values(t, sd["unembed.b_U"])
	s.Close()
	norm := gotchtest.Values(t, cache.MustGet("ln_final.hook_normalized"))
	d, v := m.Cfg.DModel, m.Cfg.DVocabOut
	var want []float64
	for r := 0; r < len(norm)/d; r++ {
		for j := range v {
			sum := bU[j]
			for i := range d {
				sum += norm[r*d+i] * (1 + w[i]) * wU[i*v+j]
			}
			want = append(want, sum)
		}
	}
	gotchtest.Close(t, "logits with (1 + w)", gotchtest.Values(t, out.Logits), want, 1e-4)
	out.Free()
	cache.Free()

	before := logProbs(t, m, tok)
	if err := m.Process(DefaultProcessing); err != nil {
		t.Fatal(err)
	}
	gotchtest.Close(t, "log-probs after folding (1 + w)", logProbs(t, m, tok), before, 1e-4)
}
