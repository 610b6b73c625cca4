package hookedmodel

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// A state dict of a Llama-like model (RMS ln.w, W_gate, _W_K/_W_V, the
// rotary buffers TransformerLens holds) loads into another model of the
// config, which then computes the same log-probabilities; a rotary buffer
// of the wrong shape is refused naming it.
func TestArchitectureStateDictRoundTrip(t *testing.T) {
	gotchtest.CheckLeaks(t)
	edit := func(c *Config) {
		c.NormalizationType, c.GatedMLP, c.ActFn = "RMS", true, "silu"
		c.PositionalEmbeddingType, c.RotaryDim, c.NKeyValueHeads = "rotary", 2, 2
	}
	a, b := editedModel(t, edit, 1), editedModel(t, edit, 2)
	defer a.Free()
	defer b.Free()
	sd, s, err := a.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"blocks.0.ln1.w", "blocks.0.mlp.W_gate", "blocks.0.attn._W_K", "blocks.0.attn._b_V", "ln_final.w"} {
		if _, ok := sd[k]; !ok {
			t.Errorf("state dict lacks %s", k)
		}
	}
	sd["blocks.0.attn.rotary_sin"] = s.Attach(gotch.MustZeros([]int64{int64(a.Cfg.NCtx), 2}, gotch.Float, gotchtest.Device(t)))
	if err := b.LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	_, tok := randomTokens(t, 2, 6, a.Cfg.DVocab, 3)
	defer tok.Free()
	gotchtest.Close(t, "log-probs after the round trip", logProbs(t, b, tok), logProbs(t, a, tok), 1e-6)
	// SaveStateDict writes the buffers too; the file loads back strictly.
	path := filepath.Join(t.TempDir(), "sd.safetensors")
	if err := a.SaveStateDict(path); err != nil {
		t.Fatal(err)
	}
	c := editedModel(t, edit, 3)
	defer c.Free()
	if err := c.LoadStateDictFile(path); err != nil {
		t.Fatal(err)
	}
	gotchtest.Close(t, "log-probs after a file round trip", logProbs(t, c, tok), logProbs(t, a, tok), 1e-6)
	sd["blocks.0.attn.rotary_sin"] = s.Attach(gotch.MustZeros([]int64{int64(a.Cfg.NCtx), 4}, gotch.Float, gotchtest.Device(t)))
	if err := b.LoadStateDict(sd); err == nil || !strings.Contains(err.Error(), "rotary_sin") {
		t.Errorf("a rotary_sin of the wrong shape: %v, want an error naming it", err)
	}
}
