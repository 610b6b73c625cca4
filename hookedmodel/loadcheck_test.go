package hookedmodel

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/hub"
	"github.com/golens/golens/hookedmodel/weights"
)

// A weight holding NaN or an infinity (or a float32 one too large for the
// dtype it loads in) is refused, naming it, with ErrNonFinite; with
// AllowNonFinite it loads and the loss is NaN, as the weights make it.
func TestLoadRefusesNonFiniteWeights(t *testing.T) {
	const key = "transformer.h.1.mlp.c_fc.weight"
	for _, tc := range []struct {
		name  string
		value float32
		dtype gotch.DType // the checkpoint's is float32
		want  string
	}{
		{"NaN", float32(math.NaN()), gotch.Float, "holds 1 NaN and 0 infinite values of"},
		{"+Inf", float32(math.Inf(1)), gotch.Float, "holds 0 NaN and 1 infinite values of"},
		{"-Inf", float32(math.Inf(-1)), gotch.Float, "holds 0 NaN and 1 infinite values of"},
		{"too large for float16", 1e6, gotch.Half, "(F32) overflows float16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			src := newTestModel(t, smallConfig(), 3)
			dir := writeHFGPT2(t, src, hfCheckpoint{prefix: "transformer.", edit: func(ts map[string]*weights.Tensor, _ map[string]any) {
				binary.LittleEndian.PutUint32(ts[key].Data[4*5:], math.Float32bits(tc.value))
			}})
			src.Free()
			opts := []Option{OnDevice(gotchtest.Device(t)), NoProcessing(), WithDType(tc.dtype)}
			m, err := Load(context.Background(), dir, opts...)
			if err == nil {
				m.Free()
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), `"`+key+`"`) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want ErrNonFinite naming %q and saying %q", err, key, tc.want)
			}
			m, err = Load(context.Background(), dir, append(opts, AllowNonFinite())...)
			if err != nil {
				t.Fatalf("with AllowNonFinite: %v", err)
			}
			defer m.Free()
			if tc.dtype != gotch.Float {
				return // float16 may not compute here (the CPU of libtorch 1.13)
			}
			tok := gotch.MustFromSlice([]int64{1, 2, 3, 4}, []int64{1, 4}, m.Device())
			defer tok.Free()
			out, err := m.Forward(context.Background(), Tokens(tok), Return(ReturnLoss))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			if loss := out.Loss.MustItem(); !math.IsNaN(loss) {
				t.Errorf("loss %g with a non-finite weight, want NaN", loss)
			}
		})
	}
}

// A Hugging Face config.json whose sizes or layer_norm_epsilon cannot make
// a model is refused naming the key and the file (layer_norm_epsilon <= 0
// loaded and gave NaN losses); so is a golens checkpoint whose header's
// config says eps <= 0.
func TestLoadRefusesBadConfigNumbers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		key  string
		v    any
		want string
	}{
		{"layer_norm_epsilon", 0, "layer_norm_epsilon must be positive, got 0"},
		{"layer_norm_epsilon", -1e-5, "layer_norm_epsilon must be positive, got -1e-05"},
		{"n_layer", 0, "n_layer must be positive, got 0"},
		{"n_embd", -16, "n_embd must be positive, got -16"},
		{"n_head", 0, "n_head must be positive, got 0"},
		{"n_positions", 0, "n_positions must be positive, got 0"},
		{"vocab_size", -1, "vocab_size must be positive, got -1"},
		{"n_inner", 0, "n_inner must be positive or null"},
		{"activation_function", "tanh", `act_fn "tanh" is not supported`},
	} {
		t.Run(tc.key, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			src := newTestModel(t, smallConfig(), 3)
			dir := writeHFGPT2(t, src, hfCheckpoint{prefix: "transformer.", edit: func(_ map[string]*weights.Tensor, c map[string]any) { c[tc.key] = tc.v }})
			src.Free()
			m, err := Load(ctx, dir, OnDevice(gotchtest.Device(t)))
			if err == nil {
				m.Free()
				t.Fatal("Load succeeded")
			}
			if file := filepath.Join(dir, "config.json"); !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want one naming %s and saying %q", err, file, tc.want)
			}
		})
	}

	t.Run("golens header eps", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		path := savedWithConfig(t, func(c map[string]any) { c["eps"] = -1 })
		m, err := Load(ctx, path, OnDevice(gotchtest.Device(t)))
		if err == nil {
			m.Free()
			t.Fatal("Load succeeded")
		}
		if want := "config in the checkpoint header: eps must be a positive number"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("error %q: want one naming %s and saying %q", err, path, want)
		}
	})
}

// savedWithConfig saves a small model and rewrites its header's config
// with edit, returning the file.
func savedWithConfig(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	m := newTestModel(t, smallConfig(), 5)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	err := m.Save(path)
	m.Free()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []*weights.Tensor
	for _, k := range ck.Keys() {
		x, err := ck.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, x)
	}
	meta := map[string]string{}
	for k, v := range ck.Metadata() {
		meta[k] = v
	}
	ck.Close()
	var cfg map[string]any
	if err := json.Unmarshal([]byte(meta[golensConfigKey]), &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	b, _ := json.Marshal(cfg)
	meta[golensConfigKey] = string(b)
	if err := weights.WriteSafetensors(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	return path
}

// A config edit (WithConfig, the CLI's --set) takes effect or is an error
// naming the field: normalization_type null and attn_only=true on a GPT-2
// checkpoint panicked in the loader (nil LayerNorm and MLP), d_vocab_out
// was ignored, n_layers 10^9 must not build 10^9 blocks to say no.
func TestLoadConfigEdits(t *testing.T) {
	gotchtest.CheckLeaks(t)
	src := newTestModel(t, smallConfig(), 3)
	dir := writeHFGPT2(t, src, hfCheckpoint{prefix: "transformer."})
	golens := filepath.Join(t.TempDir(), "m.safetensors")
	if err := src.Save(golens); err != nil {
		t.Fatal(err)
	}
	src.Free()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" the edit applies
		cfg  func(Config) bool
	}{
		{"normalization_type null", func(c *Config) { c.NormalizationType = "" }, `fix normalization_type at "LN"`, nil},
		{"LNPre", func(c *Config) { c.NormalizationType = "LNPre" }, `fix normalization_type at "LN"`, nil},
		{"attn_only", func(c *Config) { c.AttnOnly = true }, "fix attn_only at false", nil},
		{"d_vocab_out", func(c *Config) { c.DVocabOut = 100 }, "config edit d_vocab_out=100: the checkpoint's weights fix d_vocab_out at 23", nil},
		{"n_layers 10^9", func(c *Config) { c.NLayers = 1_000_000_000 }, "fix n_layers at 2", nil},
		{"d_mlp", func(c *Config) { c.DMLP = 7 }, "fix d_mlp at 24", nil},
		{"solu_ln has weights", func(c *Config) { c.ActFn = "solu_ln" }, `fix act_fn at "gelu_new"`, nil},
		{"act_fn unknown", func(c *Config) { c.ActFn = "tanh" }, `config edit act_fn="tanh": act_fn "tanh" is not supported`, nil},
		{"eps 0", func(c *Config) { c.Eps = 0 }, "eps must be a positive number", nil},
		{"seed", func(c *Config) { s := int64(3); c.Seed = &s }, "seed only affects the weights New initialises", nil},
		{"n_params", func(c *Config) { c.NParams = 1 }, "n_params is derived", nil},
		{"act_fn relu", func(c *Config) { c.ActFn = "relu" }, "", func(c Config) bool { return c.ActFn == "relu" }},
		{"eps", func(c *Config) { c.Eps = 1e-3 }, "", func(c Config) bool { return c.Eps == 1e-3 }},
		{"use_attn_result", func(c *Config) { c.UseAttnResult = true }, "", func(c Config) bool { return c.UseAttnResult }},
		{"same value", func(c *Config) { c.NLayers = 2 }, "", func(c Config) bool { return c.NLayers == 2 }},
	} {
		for _, path := range []string{dir, golens} {
			m, err := Load(context.Background(), path, OnDevice(gotchtest.Device(t)), WithConfig(tc.edit), NoProcessing())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s on %s: %v", tc.name, filepath.Base(path), err)
			case tc.want == "" && !tc.cfg(m.Cfg):
				t.Errorf("%s on %s: the edit did not take effect: %+v", tc.name, filepath.Base(path), m.Cfg)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s on %s: error %v, want one saying %q", tc.name, filepath.Base(path), err, tc.want)
			}
			if err == nil {
				m.Free()
			}
		}
	}
}

// TokenizerOf gives what the loaded model has, from its config alone:
// GPT-2's for a GPT-2 vocabulary, none (an error saying so) for another.
func TestLoadTokenizerOf(t *testing.T) {
	gotchtest.CheckLeaks(t)
	other := newTestModel(t, smallConfig(), 3) // d_vocab 23
	hfDir := writeHFGPT2(t, other, hfCheckpoint{prefix: "transformer."})
	otherFile := filepath.Join(t.TempDir(), "other.safetensors")
	if err := other.Save(otherFile); err != nil {
		t.Fatal(err)
	}
	other.Free()
	cfg := smallConfig()
	cfg.DVocab = gpt2VocabSize()
	gpt2Vocab := newTestModel(t, cfg, 3)
	gpt2File := filepath.Join(t.TempDir(), "gpt2vocab.safetensors")
	if err := gpt2Vocab.Save(gpt2File); err != nil {
		t.Fatal(err)
	}
	gpt2Vocab.Free()
	for _, tc := range []struct {
		model string
		want  string // "" GPT-2's tokenizer
	}{
		{"gpt2", ""},
		{"gpt2-medium", ""},
		{"openai-community/gpt2", ""},
		{gpt2File, ""},
		{"testdata/gpt2-tiny-bin", `model "testdata/gpt2-tiny-bin" has no tokenizer: its vocabulary has 29 tokens, not GPT-2's 50257`},
		{hfDir, "its vocabulary has 23 tokens"},
		{otherFile, "its vocabulary has 23 tokens"},
		{"gpt2x", `no tokenizer known for model "gpt2x"`},
		{"", `no tokenizer known for model ""`},
		{"testdata/gpt2-tiny-bin/config.json", "gpt2-tiny-bin/config.json"},
	} {
		tok, err := TokenizerOf(tc.model)
		switch {
		case tc.want == "" && (err != nil || tok == nil || tok.VocabSize() != gpt2VocabSize()):
			t.Errorf("TokenizerOf(%q) = %v, %v; want GPT-2's", tc.model, tok, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("TokenizerOf(%q): error %v, want one saying %q", tc.model, err, tc.want)
		}
	}
}

// A mistyped local path is said not to exist, naming the missing part,
// and is never sent to the hub as a repository name; a name that can only
// be a repository still goes there.
func TestLoadMissingPathIsNotAHubName(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, "not found", http.StatusNotFound)
	}))
	defer srv.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("models", 0o755); err != nil {
		t.Fatal(err)
	}
	opts := []Option{WithHub(hub.WithEndpoint(srv.URL), hub.WithCacheDir(t.TempDir()), hub.WithProgress(io.Discard))}
	for _, tc := range []struct {
		model, want string
		hub         bool
	}{
		{"./modls/x", `no such file or directory: "." has no "modls"`, false},
		{"models/foo.safetensors", `no such file or directory: "models" has no "foo.safetensors"`, false},
		{"models/foo", `no such file or directory: "models" has no "foo"`, false},
		{filepath.Join(dir, "models", "a", "b"), `has no "a"`, false},
		{"org/name", "no such file or directory, and as a hub repository", true},
	} {
		before := requests.Load()
		m, err := Load(context.Background(), tc.model, opts...)
		if err == nil {
			m.Free()
			t.Fatalf("Load(%q) succeeded", tc.model)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q): %v, want an error saying %q", tc.model, err, tc.want)
		}
		if asked := requests.Load() > before; asked != tc.hub {
			t.Errorf("Load(%q) asked the hub: %v, want %v", tc.model, asked, tc.hub)
		}
	}
}

// Init refuses numbers no model has, naming the field (several were
// silently replaced by their defaults: n_heads -3, d_mlp -4, eps 0), and
// sizes whose weight count overflows.
func TestConfigRefusesBadNumbers(t *testing.T) {
	base := `"n_layers": 1, "d_model": 8, "d_head": 4, "n_ctx": 4, "d_vocab": 5, "act_fn": "relu"`
	for _, tc := range []struct{ json, want string }{
		{`"eps": 0`, "eps must be a positive number"},
		{`"eps": -1e-5`, "eps must be a positive number"},
		{`"n_heads": 0`, "n_heads must be positive (or -1 for d_model / d_head), got 0"},
		{`"n_heads": -3`, "n_heads must be positive"},
		{`"d_head": 16`, "n_heads: d_model 8 / d_head 16 makes no head"},
		{`"d_mlp": -4`, "d_mlp must be positive (or 0 for 4 d_model), got -4"},
		{`"d_vocab_out": -5`, "d_vocab_out must be positive (or -1 for d_vocab), got -5"},
		{`"rotary_dim": 4`, "rotary_dim 4 needs positional_embedding_type rotary"},
		{`"positional_embedding_type": "rotary", "rotary_dim": 3`, "rotary_dim 3 must be even"},
		{`"n_key_value_heads": 3`, "n_key_value_heads 3 must divide n_heads 2"},
		{`"window_size": 0`, "window_size must be positive, got 0"},
		{`"rotary_dim": -1`, "rotary_dim must not be negative"},
		{`"positional_embedding_type": "rotary", "use_NTK_by_parts_rope": true, "NTK_by_parts_factor": 0`, "NTK_by_parts_factor must be a positive number"},
		{`"positional_embedding_type": "rotary", "use_NTK_by_parts_rope": true, "NTK_original_ctx_len": -8`, "NTK_original_ctx_len must be positive, got -8"},
		{`"positional_embedding_type": "rotary", "use_NTK_by_parts_rope": true, "NTK_by_parts_high_freq_factor": 1`, "NTK_by_parts_low_freq_factor 1 and NTK_by_parts_high_freq_factor 1 must be positive, low below high"},
		{`"n_key_value_heads": -1`, "n_key_value_heads must not be negative"},
		{`"dtype": "int8"`, `dtype "int8" is not a floating-point type golens runs models in (want float32, float64, float16 or bfloat16)`},
		{`"n_layers": 9223372036854775807, "d_model": 9223372036854775807, "d_head": 1`, "d_mlp: 4 d_model overflows"},
		{`"n_layers": 9223372036854775807, "d_model": 8, "d_head": 1, "attn_only": true`, "the sizes make more than 2^63 weights"},
	} {
		path := filepath.Join(t.TempDir(), "config.json")
		// Later keys win in encoding/json: tc.json overrides base.
		if err := os.WriteFile(path, []byte("{"+base+", "+tc.json+"}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", tc.json, err, tc.want)
		}
	}
}
