package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, js string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const model = `"model": {"n_layers": 2, "d_model": 32, "d_head": 8, "n_ctx": 64, "d_vocab": 100, "attn_only": true}`

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, `{`+model+`, "train": {"steps": 500, "lr": 3e-3}, "data": {"kind": "repeated_tokens", "prefix": 3}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultTrainConfig()
	want.Steps, want.LR = 500, 3e-3
	if cfg.Train != want {
		t.Errorf("train config %+v, want %+v", cfg.Train, want)
	}
	d := cfg.Data
	if d.Vocab != 100 || *d.BOS != 99 || d.Repeats != 2 || d.Length != (64-1-3)/2 {
		t.Errorf("data defaults: %+v (bos %d)", d, *d.BOS)
	}
	if cfg.Model.NHeads != 4 || cfg.Model.NormalizationType != "LN" {
		t.Errorf("model defaults: %+v", cfg.Model)
	}
}

// TestShippedConfig reads testdata/induction.json, the two-layer
// attention-only model of the induction-heads paper on repeated tokens.
func TestShippedConfig(t *testing.T) {
	cfg, err := LoadConfig("testdata/induction.json")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model.NLayers != 2 || !cfg.Model.AttnOnly || cfg.Train.Steps != 2000 || cfg.Data.Length != 31 || *cfg.Data.BOS != 127 {
		t.Errorf("testdata/induction.json reads as %+v", cfg)
	}
}

func TestLoadConfigTextPath(t *testing.T) {
	path := writeConfig(t, `{`+strings.Replace(model, "100", "50257", 1)+`, "train": {"steps": 5}, "data": {"kind": "text", "path": "corpus.txt"}}`)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs(filepath.Join(filepath.Dir(path), "corpus.txt"))
	if cfg.Data.Path != want || cfg.Data.SeqLen != 64 || cfg.Data.EvalFraction != 0.1 {
		t.Errorf("text data %+v, want path %s, seq_len 64, eval_fraction 0.1", cfg.Data, want)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, c := range []struct{ js, want string }{
		{`{` + model + `, "train": {"steps": 5, "lr_max": 1}, "data": {"kind": "repeated_tokens"}}`, `unknown field "lr_max"`},
		{`{` + model + `, "train": {"step": 5}, "data": {"kind": "repeated_tokens"}}`, `unknown field "step"`},
		{`{` + model + `, "data": {"kind": "repeated_tokens"}}`, "steps must be positive"},
		{`{` + model + `, "train": {"steps": 5, "warmup": 6}, "data": {"kind": "repeated_tokens"}}`, "warmup must be in [0, steps=5]"},
		{`{` + model + `, "train": {"steps": 5, "betas": [0.9, 1]}, "data": {"kind": "repeated_tokens"}}`, "betas must be in [0, 1)"},
		{`{` + model + `, "train": {"steps": 5}, "data": {"kind": "images"}}`, `kind "images" is not known`},
		{`{` + model + `, "train": {"steps": 5}, "data": {"kind": "repeated_tokens", "length": 40}}`, "a sequence of 81 tokens exceeds n_ctx=64"},
		{`{` + model + `, "train": {"steps": 5}, "data": {"kind": "repeated_tokens", "vocab": 101}}`, "vocab must be in [2, d_vocab=100]"},
		{`{` + model + `, "train": {"steps": 5}, "data": {"kind": "text", "path": "x.txt"}}`, "needs d_vocab >= 50257"},
		{`{"model": {"n_layers": 0}, "train": {"steps": 5}, "data": {"kind": "repeated_tokens"}}`, "model: n_layers must be positive"},
	} {
		_, err := LoadConfig(writeConfig(t, c.js))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant an error with %q", c.js, err, c.want)
		}
	}
}
