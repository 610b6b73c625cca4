package hookedmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/weights"
)

// hfCheckpoint describes how writeHFGPT2 lays out a checkpoint.
type hfCheckpoint struct {
	dtype   weights.DType // F32 (default), F16 or BF16
	sharded bool          // two safetensors shards and an index
	prefix  string        // "transformer." as GPT2LMHeadModel writes, or ""
	edit    func(map[string]*weights.Tensor, map[string]any)
}

// writeHFGPT2 writes m's weights as a Hugging Face GPT-2 checkpoint
// (config.json and safetensors, Conv1D weights [in out]) into a new dir.
func writeHFGPT2(t *testing.T, m *HookedTransformer, layout hfCheckpoint) string {
	t.Helper()
	dir := t.TempDir()
	m.BU.MustZero_() // GPT-2 has no unembedding bias
	c := m.Cfg
	cfg := map[string]any{
		"model_type": "gpt2", "architectures": []string{"GPT2LMHeadModel"},
		"n_layer": c.NLayers, "n_embd": c.DModel, "n_head": c.NHeads, "n_positions": c.NCtx,
		"n_inner": c.DMLP, "vocab_size": c.DVocab, "activation_function": c.ActFn, "layer_norm_epsilon": c.Eps,
	}
	dt := layout.dtype
	if dt == "" {
		dt = weights.F32
	}
	ts := map[string]*weights.Tensor{}
	put := func(key string, x *gotch.Tensor, transpose bool) {
		s := gotch.NewScope()
		defer s.Close()
		x = borrow(s, x)
		if transpose {
			x = x.MustTranspose(0, 1).MustContiguous()
		}
		b, err := x.MustTo(wdtypes[dt]).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		ts[key] = &weights.Tensor{Name: key, DType: dt, Shape: x.Shape(), Data: b}
	}
	p := layout.prefix
	put(p+"wte.weight", m.WE, false)
	put(p+"wpe.weight", m.WPos, false)
	for l, b := range m.Blocks {
		h := fmt.Sprintf("%sh.%d.", p, l)
		put(h+"ln_1.weight", b.Ln1.W, false)
		put(h+"ln_1.bias", b.Ln1.B, false)
		put(h+"attn.c_attn.weight", b.Attn.WQKV, true)
		put(h+"attn.c_attn.bias", b.Attn.BQKV, false)
		put(h+"attn.c_proj.weight", b.Attn.WO, true)
		put(h+"attn.c_proj.bias", b.Attn.BO, false)
		put(h+"ln_2.weight", b.Ln2.W, false)
		put(h+"ln_2.bias", b.Ln2.B, false)
		put(h+"mlp.c_fc.weight", b.MLP.WIn, true)
		put(h+"mlp.c_fc.bias", b.MLP.BIn, false)
		put(h+"mlp.c_proj.weight", b.MLP.WOut, true)
		put(h+"mlp.c_proj.bias", b.MLP.BOut, false)
		ts[h+"attn.bias"] = &weights.Tensor{Name: h + "attn.bias", DType: weights.U8, Shape: []int64{1}, Data: []byte{1}}
	}
	put(p+"ln_f.weight", m.LnFinal.W, false)
	put(p+"ln_f.bias", m.LnFinal.B, false)
	put("lm_head.weight", m.WU, false)
	if layout.edit != nil {
		layout.edit(ts, cfg)
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var all []*weights.Tensor
	for _, x := range ts {
		all = append(all, x)
	}
	if !layout.sharded {
		if err := weights.WriteSafetensors(filepath.Join(dir, "model.safetensors"), all, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	idx := map[string]string{}
	half := len(all) / 2
	for i, part := range [][]*weights.Tensor{all[:half], all[half:]} {
		name := fmt.Sprintf("model-%05d-of-00002.safetensors", i+1)
		for _, x := range part {
			idx[x.Name] = name
		}
		if err := weights.WriteSafetensors(filepath.Join(dir, name), part, nil); err != nil {
			t.Fatal(err)
		}
	}
	b, _ = json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": idx})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func logits(t *testing.T, m *HookedTransformer, tok *gotch.Tensor) []float64 {
	t.Helper()
	out, err := m.Forward(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	return gotchtest.Values(t, out.Logits)
}

func TestLoadHFGPT2(t *testing.T) {
	ctx := context.Background()
	dev := gotchtest.Device(t)
	cases := []struct {
		name   string
		layout hfCheckpoint
		tol    float64
	}{
		{"safetensors", hfCheckpoint{prefix: "transformer."}, 1e-6},
		{"no prefix", hfCheckpoint{}, 1e-6},
		{"sharded", hfCheckpoint{sharded: true, prefix: "transformer."}, 1e-6},
		{"float16", hfCheckpoint{dtype: weights.F16}, 2e-3},
		{"bfloat16", hfCheckpoint{dtype: weights.BF16}, 2e-2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			src := newTestModel(t, smallConfig(), 7)
			defer src.Free()
			dir := writeHFGPT2(t, src, tc.layout)
			_, tok := randomTokens(t, 2, 6, src.Cfg.DVocab, 8)
			defer tok.Free()
			want := logits(t, src, tok)

			raw, err := Load(ctx, dir, NoProcessing(), OnDevice(dev))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Free()
			gotchtest.Close(t, "logits without processing", logits(t, raw, tok), want, tc.tol)

			processed, err := Load(ctx, dir, OnDevice(dev))
			if err != nil {
				t.Fatal(err)
			}
			defer processed.Free()
			if processed.Cfg.NormalizationType != "LNPre" {
				t.Errorf("normalization_type %q after default processing, want LNPre", processed.Cfg.NormalizationType)
			}
			gotchtest.Close(t, "log-probs with processing", logProbs(t, processed, tok), logProbs(t, raw, tok), 1e-4)
		})
	}
}

func TestLoadBadCheckpoints(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		edit func(map[string]*weights.Tensor, map[string]any)
		file func(dir string) // damage after writing
		want []string         // substrings of the error
	}{
		{"missing key", func(ts map[string]*weights.Tensor, _ map[string]any) { delete(ts, "transformer.h.1.mlp.c_fc.bias") },
			nil, []string{"transformer.h.1.mlp.c_fc.bias"}},
		{"wrong shape", func(ts map[string]*weights.Tensor, _ map[string]any) {
			x := ts["transformer.h.0.attn.c_proj.bias"]
			x.Shape, x.Data = []int64{8}, x.Data[:32]
		}, nil, []string{"transformer.h.0.attn.c_proj.bias", "[8]", "[16]"}},
		{"integer weight", func(ts map[string]*weights.Tensor, _ map[string]any) {
			x := ts["transformer.ln_f.bias"]
			x.DType = weights.I32
		}, nil, []string{"transformer.ln_f.bias", "I32"}},
		{"config has more layers", func(_ map[string]*weights.Tensor, c map[string]any) { c["n_layer"] = 3 },
			nil, []string{"transformer.h.2."}},
		{"config has fewer layers", func(_ map[string]*weights.Tensor, c map[string]any) { c["n_layer"] = 1 },
			nil, []string{"does not account for", "transformer.h.1."}},
		{"config has another width", func(_ map[string]*weights.Tensor, c map[string]any) { c["n_embd"] = 32 },
			nil, []string{"transformer.wte.weight"}},
		{"unsupported model type", func(_ map[string]*weights.Tensor, c map[string]any) { c["model_type"] = "bert" },
			nil, []string{"bert", "not supported"}},
		{"truncated file", nil, func(dir string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}, []string{"model.safetensors"}},
		{"corrupt header", nil, func(dir string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			copy(b[8:], "{{{{")
			os.WriteFile(p, b, 0o644)
		}, []string{"model.safetensors"}},
		{"no config", nil, func(dir string) { os.Remove(filepath.Join(dir, "config.json")) }, []string{"config.json"}},
		// Read, these would wait for a writer forever or read without end.
		{"config is a FIFO", nil, func(dir string) {
			p := filepath.Join(dir, "config.json")
			os.Remove(p)
			syscall.Mkfifo(p, 0o644)
		}, []string{"config.json", "named pipe (FIFO), not a regular file"}},
		{"config links to /dev/zero", nil, func(dir string) {
			p := filepath.Join(dir, "config.json")
			os.Remove(p)
			os.Symlink("/dev/zero", p)
		}, []string{"config.json", "character device, not a regular file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			src := newTestModel(t, smallConfig(), 9)
			dir := writeHFGPT2(t, src, hfCheckpoint{prefix: "transformer.", edit: tc.edit})
			src.Free()
			if tc.file != nil {
				tc.file(dir)
			}
			m, err := Load(ctx, dir, OnDevice(gotchtest.Device(t)))
			if err == nil {
				m.Free()
				t.Fatalf("Load succeeded; want an error mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigRefusesWhatIsNotAFile(t *testing.T) {
	for path, want := range map[string]string{
		"/dev/zero": "/dev/zero: it is a character device, not a regular file",
		t.TempDir(): "it is a directory, not a regular file",
	} {
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadConfig(%s): %v, want an error containing %q", path, err, want)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	cfg.UseAttnResult = true
	m := newTestModel(t, cfg, 11)
	defer m.Free()
	if err := m.Process(DefaultProcessing); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(context.Background(), path, OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Free()
	if back.Cfg != m.Cfg {
		t.Errorf("config after the round trip:\n got %+v\nwant %+v", back.Cfg, m.Cfg)
	}
	_, tok := randomTokens(t, 1, 5, cfg.DVocab, 12)
	defer tok.Free()
	gotchtest.Close(t, "logits after save and load", logits(t, back, tok), logits(t, m, tok), 0)
}

func TestLoadPytorchBinMatchesTorchReference(t *testing.T) {
	gotchtest.CheckLeaks(t)
	b, err := os.ReadFile("testdata/gpt2-tiny-bin/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Tokens []int64   `json:"tokens"`
		Logits []float64 `json:"logits"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, pr := range []Option{NoProcessing(), WithProcessing(DefaultProcessing)} {
		m, err := Load(context.Background(), "testdata/gpt2-tiny-bin", pr, OnDevice(gotchtest.Device(t)))
		if err != nil {
			t.Fatal(err)
		}
		tok := gotch.MustFromSlice(want.Tokens, []int64{1, int64(len(want.Tokens))}, gotchtest.Device(t))
		if m.Cfg.NormalizationType == "LN" {
			gotchtest.Close(t, "logits of pytorch_model.bin", logits(t, m, tok), want.Logits, 1e-4)
		}
		// Processing changes logits by a per-position shift only.
		s := gotch.NewScope()
		vocab := int64(len(want.Logits) / len(want.Tokens))
		lp := s.Attach(gotch.MustFromSlice(want.Logits, []int64{1, int64(len(want.Tokens)), vocab}, gotch.CPU)).MustLogSoftmax(-1)
		gotchtest.Close(t, "log-probs of pytorch_model.bin", logProbs(t, m, tok), gotchtest.Values(t, lp), 1e-4)
		s.Close()
		tok.Free()
		m.Free()
	}
}
