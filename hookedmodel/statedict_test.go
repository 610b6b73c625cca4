package hookedmodel

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/weights"
)

// tlKey is one entry of a TransformerLens state dict.
type tlKey struct {
	name  string
	shape []int64
}

// tlStateDict is what TransformerLens v3.5.1's HookedTransformer(cfg)
// .state_dict() holds, in its order (each module's parameters, then its
// buffers, then its children), written from TransformerLens's sources
// rather than from golens's:
//   - HookedTransformer.py: embed, pos_embed, blocks, ln_final (LN or
//     LNPre; none without normalization), unembed;
//   - embed.py W_E [d_vocab d_model]; pos_embed.py W_pos [n_ctx d_model];
//   - transformer_block.py: ln1, ln2 (not attn_only), attn, mlp (not
//     attn_only); layer_norm.py w, b [length] (LayerNormPre: none);
//   - abstract_attention.py: W_Q [n_heads d_model d_head], W_O [n_heads
//     d_head d_model], b_Q [n_heads d_head], b_O [d_model], buffers mask
//     (v3.4 and before: [n_ctx n_ctx] bool) and IGNORE []; attention.py
//     then W_K, W_V [n_heads d_model d_head], b_K, b_V [n_heads d_head];
//   - mlps/mlp.py: W_in [d_model d_mlp], b_in [d_mlp], W_out [d_mlp
//     d_model], b_out [d_model];
//   - unembed.py: W_U [d_model d_vocab_out], b_U [d_vocab_out].
func tlStateDict(c Config) []tlKey {
	dm, h, dh, f := int64(c.DModel), int64(c.NHeads), int64(c.DHead), int64(c.DMLP)
	keys := []tlKey{{"embed.W_E", []int64{int64(c.DVocab), dm}}, {"pos_embed.W_pos", []int64{int64(c.NCtx), dm}}}
	ln := func(name string) {
		if c.NormalizationType == "LN" {
			keys = append(keys, tlKey{name + ".w", []int64{dm}}, tlKey{name + ".b", []int64{dm}})
		}
	}
	for l := range c.NLayers {
		p := fmt.Sprintf("blocks.%d.", l)
		ln(p + "ln1")
		if !c.AttnOnly {
			ln(p + "ln2")
		}
		keys = append(keys,
			tlKey{p + "attn.W_Q", []int64{h, dm, dh}}, tlKey{p + "attn.W_O", []int64{h, dh, dm}},
			tlKey{p + "attn.b_Q", []int64{h, dh}}, tlKey{p + "attn.b_O", []int64{dm}},
			tlKey{p + "attn.W_K", []int64{h, dm, dh}}, tlKey{p + "attn.W_V", []int64{h, dm, dh}},
			tlKey{p + "attn.b_K", []int64{h, dh}}, tlKey{p + "attn.b_V", []int64{h, dh}},
			tlKey{p + "attn.mask", []int64{int64(c.NCtx), int64(c.NCtx)}}, tlKey{p + "attn.IGNORE", []int64{}})
		if !c.AttnOnly {
			keys = append(keys,
				tlKey{p + "mlp.W_in", []int64{dm, f}}, tlKey{p + "mlp.b_in", []int64{f}},
				tlKey{p + "mlp.W_out", []int64{f, dm}}, tlKey{p + "mlp.b_out", []int64{dm}})
		}
	}
	ln("ln_final")
	return append(keys, tlKey{"unembed.W_U", []int64{dm, int64(c.DVocabOut)}}, tlKey{"unembed.b_U", []int64{int64(c.DVocabOut)}})
}

func isBuffer(name string) bool {
	return strings.HasSuffix(name, ".attn.mask") || strings.HasSuffix(name, ".attn.IGNORE")
}

func attnOnlyConfig() Config {
	c := smallConfig()
	c.AttnOnly, c.DMLP, c.ActFn = true, 0, ""
	return c
}

// TestStateDictKeysMatchTransformerLens: the state dict golens walks,
// writes (SaveStateDict) and hands out (StateDict, without the buffers)
// has TransformerLens's keys, order and shapes, for a GPT-2-style model,
// the same after from_pretrained's processing (LNPre: no LayerNorm
// weights) and an attention-only one.
func TestStateDictKeysMatchTransformerLens(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cases := []struct {
		name    string
		cfg     Config
		process bool
	}{
		{"gpt2-like", smallConfig(), false},
		{"gpt2-like processed", smallConfig(), true},
		{"attn-only", attnOnlyConfig(), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newTestModel(t, c.cfg, 3)
			defer m.Free()
			if c.process {
				if err := m.Process(DefaultProcessing); err != nil {
					t.Fatal(err)
				}
				if m.Cfg.NormalizationType != "LNPre" {
					t.Fatalf("processed normalization_type %q, want LNPre", m.Cfg.NormalizationType)
				}
			}
			want := tlStateDict(m.Cfg)
			var walked []tlKey
			m.tlTree().walk("", func(prefix string, mod *tlModule) {
				for _, p := range mod.params {
					walked = append(walked, tlKey{prefix + p.name, p.shape})
				}
				for _, b := range mod.buffers {
					// the shape SaveStateDict writes, checked against the file below
					walked = append(walked, tlKey{prefix + b.name, nil})
				}
			})
			if len(walked) != len(want) {
				t.Fatalf("%d keys, want %d", len(walked), len(want))
			}
			for i, w := range want {
				if walked[i].name != w.name || (walked[i].shape != nil && !slices.Equal(walked[i].shape, w.shape)) {
					t.Errorf("key %d: %s %v, want %s %v", i, walked[i].name, walked[i].shape, w.name, w.shape)
				}
			}

			path := filepath.Join(t.TempDir(), "sd.safetensors")
			if err := m.SaveStateDict(path); err != nil {
				t.Fatal(err)
			}
			ck, err := weights.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			if got := len(ck.Keys()); got != len(want) {
				t.Errorf("the file has %d keys, want %d", got, len(want))
			}
			sd, s, err := m.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, w := range want {
				info, err := ck.Info(w.name)
				if err != nil {
					t.Errorf("file: %v", err)
					continue
				}
				wantDType := weights.F32
				switch {
				case strings.HasSuffix(w.name, ".mask"):
					wantDType = weights.BOOL
				case isBuffer(w.name):
				default:
					if got, ok := sd[w.name]; !ok || !slices.Equal(got.Shape(), w.shape) {
						t.Errorf("StateDict()[%s]: %v, want shape %v", w.name, got, w.shape)
					}
				}
				if !slices.Equal(info.Shape, w.shape) || info.DType != wantDType {
					t.Errorf("file %s: %s %v, want %s %v", w.name, info.DType, info.Shape, wantDType, w.shape)
				}
			}
			if got, want := len(sd), len(want)-2*m.Cfg.NLayers; got != want {
				t.Errorf("StateDict() has %d keys, want %d (TransformerLens's less the buffers)", got, want)
			}
		})
	}
}

// testTokens is a fixed batch [2 7] for smallConfig's vocabulary.
func testTokens(t *testing.T) *gotch.Tensor {
	_, tok := randomTokens(t, 2, 7, smallConfig().DVocab, 5)
	return tok
}

// TestStateDictRoundTrip: a state dict saved from one model and loaded
// into a fresh one of the same config with other weights gives the first
// model's logits exactly, from the file and from StateDict's map; into a
// float64 model, the same logits up to float32 rounding.
func TestStateDictRoundTrip(t *testing.T) {
	gotchtest.CheckLeaks(t)
	tok := testTokens(t)
	defer tok.Free()
	solu := smallConfig()
	solu.ActFn = "solu_ln"
	noLN := smallConfig()
	noLN.NormalizationType = ""
	for name, cfg := range map[string]Config{"gpt2-like": smallConfig(), "attn-only": attnOnlyConfig(), "solu_ln": solu, "no normalization": noLN} {
		t.Run(name, func(t *testing.T) {
			src := newTestModel(t, cfg, 1)
			defer src.Free()
			want := logits(t, src, tok)
			path := filepath.Join(t.TempDir(), "sd.safetensors")
			if err := src.SaveStateDict(path); err != nil {
				t.Fatal(err)
			}

			dst := newTestModel(t, cfg, 2)
			defer dst.Free()
			if err := dst.Process(Processing{CenterUnembed: true}); err != nil {
				t.Fatal(err)
			}
			if slices.Equal(logits(t, dst, tok), want) {
				t.Fatal("the two models agree before loading")
			}
			if _, err := dst.W_Q(); err != nil { // a stacked view of the old weights, to be dropped
				t.Fatal(err)
			}
			if err := dst.LoadStateDictFile(path); err != nil {
				t.Fatal(err)
			}
			if got := logits(t, dst, tok); !slices.Equal(got, want) {
				t.Errorf("after LoadStateDictFile: relative error %g, want identical logits", gotchtest.RelErr(got, want))
			}
			if r := dst.Processing(); len(r.Steps) != 0 {
				t.Errorf("processing record after a load: %v, want none", r)
			}
			srcWQ, _ := src.W_Q()
			dstWQ, err := dst.W_Q()
			if err != nil {
				t.Fatal(err)
			}
			gotchtest.TensorClose(t, "W_Q after the load", dstWQ, srcWQ, 0, 0)

			mem := newTestModel(t, cfg, 3)
			defer mem.Free()
			sd, s, err := src.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := mem.LoadStateDict(sd); err != nil {
				t.Fatal(err)
			}
			if got := logits(t, mem, tok); !slices.Equal(got, want) {
				t.Errorf("after LoadStateDict: relative error %g, want identical logits", gotchtest.RelErr(got, want))
			}

			wide, err := New(cfg, OnDevice(gotchtest.Device(t)), WithDType(gotch.Double))
			if err != nil {
				t.Fatal(err)
			}
			defer wide.Free()
			if err := wide.LoadStateDictFile(path); err != nil {
				t.Fatal(err)
			}
			gotchtest.Close(t, "float64 model's logits", logits(t, wide, tok), want, 1e-5)
		})
	}
}

// snapshot is every weight of m, to tell whether a failed load changed it.
func snapshot(t *testing.T, m *HookedTransformer) map[string][]float64 {
	t.Helper()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string][]float64{}
	for k, v := range sd {
		out[k] = gotchtest.Values(t, v)
	}
	return out
}

// TestLoadStateDictErrors: each bad state dict gives an error naming the
// key and what is wrong with it, and leaves the model as it was, even
// when every other key is good.
func TestLoadStateDictErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	m := newTestModel(t, smallConfig(), 1)
	defer m.Free()
	other := newTestModel(t, smallConfig(), 2) // its weights are the good keys
	defer other.Free()
	processed := newTestModel(t, smallConfig(), 2)
	defer processed.Free()
	if err := processed.Process(DefaultProcessing); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, m)
	s := gotch.NewScope()
	defer s.Close()
	// good is other's state dict as Python's would be: with buffers.
	good := func() map[string]*gotch.Tensor {
		sd, vs, err := other.StateDict()
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range sd {
			sd[k] = s.Attach(v.MustClone())
		}
		vs.Close()
		for l := range 2 {
			p := fmt.Sprintf("blocks.%d.attn.", l)
			sd[p+"mask"] = s.Attach(gotch.MustOnes([]int64{12, 12}, gotch.Bool, dev)).MustTril(0)
			sd[p+"IGNORE"] = s.Attach(gotch.MustFull(nil, math.Inf(-1), gotch.Float, dev))
		}
		return sd
	}
	with := func(edit func(sd map[string]*gotch.Tensor)) map[string]*gotch.Tensor {
		sd := good()
		edit(sd)
		return sd
	}
	freed := gotch.MustZeros([]int64{23}, gotch.Float, dev)
	freed.Free()
	procSD, ps, err := processed.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()

	cases := []struct {
		name string
		sd   map[string]*gotch.Tensor
		want []string
	}{
		{"nil map", nil, []string{"the state dict is empty"}},
		{"empty map", map[string]*gotch.Tensor{}, []string{"the state dict is empty"}},
		{"missing key", with(func(sd map[string]*gotch.Tensor) { delete(sd, "blocks.1.attn.W_V") }), []string{"missing keys: blocks.1.attn.W_V"}},
		{"extra key", with(func(sd map[string]*gotch.Tensor) { sd["blocks.1.attn.W_X"] = sd["blocks.1.attn.W_V"] }), []string{"unexpected keys: blocks.1.attn.W_X"}},
		{"wrong shape", with(func(sd map[string]*gotch.Tensor) {
			sd["blocks.1.attn.W_Q"] = s.Attach(gotch.MustZeros([]int64{4, 16, 5}, gotch.Float, dev))
		}), []string{"blocks.1.attn.W_Q: shape [4 16 5] in the state dict, [4 16 4] in the model"}},
		{"transposed", with(func(sd map[string]*gotch.Tensor) { sd["unembed.W_U"] = sd["unembed.W_U"].MustTranspose(0, 1) }),
			[]string{"unembed.W_U: shape [23 16] in the state dict, [16 23] in the model"}},
		{"int dtype", with(func(sd map[string]*gotch.Tensor) { sd["embed.W_E"] = sd["embed.W_E"].MustTo(gotch.Int64) }), []string{"embed.W_E: dtype int64; want a floating-point type"}},
		{"bool dtype", with(func(sd map[string]*gotch.Tensor) { sd["unembed.b_U"] = sd["unembed.b_U"].MustTo(gotch.Bool) }), []string{"unembed.b_U: dtype bool"}},
		{"nil tensor", with(func(sd map[string]*gotch.Tensor) { sd["unembed.b_U"] = nil }), []string{"unembed.b_U: nil tensor"}},
		{"freed tensor", with(func(sd map[string]*gotch.Tensor) { sd["unembed.b_U"] = freed }), []string{"unembed.b_U: freed tensor"}},
		{"nil buffer", with(func(sd map[string]*gotch.Tensor) { sd["blocks.0.attn.IGNORE"] = nil }), []string{"blocks.0.attn.IGNORE: nil tensor"}},
		{"mask not causal", with(func(sd map[string]*gotch.Tensor) {
			sd["blocks.1.attn.mask"] = s.Attach(gotch.MustOnes([]int64{12, 12}, gotch.Bool, dev))
		}),
			[]string{"buffer blocks.1.attn.mask: not the causal mask"}},
		{"mask shape", with(func(sd map[string]*gotch.Tensor) {
			sd["blocks.1.attn.mask"] = s.Attach(gotch.MustOnes([]int64{3, 3}, gotch.Bool, dev))
		}),
			[]string{"buffer blocks.1.attn.mask: shape [3 3]; want [12 12] (n_ctx) or TransformerLens 3.5's empty [0 0]"}},
		{"IGNORE not -inf", with(func(sd map[string]*gotch.Tensor) {
			sd["blocks.0.attn.IGNORE"] = s.Attach(gotch.MustZeros(nil, gotch.Float, dev))
		}),
			[]string{"buffer blocks.0.attn.IGNORE: 0; golens gives masked scores -inf"}},
		{"two problems", with(func(sd map[string]*gotch.Tensor) { delete(sd, "embed.W_E"); sd["pos_embed.W_pos"] = nil }),
			[]string{"missing keys: embed.W_E", "pos_embed.W_pos: nil tensor"}},
		{"processed into unprocessed", procSD, []string{"missing keys: blocks.0.ln1.w, blocks.0.ln1.b", "and 2 more",
			`the state dict has no LayerNorm weights, as from_pretrained's (fold_ln) have none, but the model's normalization_type is "LN"`}},
		{"lenient, no weight", map[string]*gotch.Tensor{"x": good()["embed.W_E"]}, []string{"the state dict holds none of the model's weights"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var opts []StateDictOption
			if strings.HasPrefix(c.name, "lenient") {
				opts = append(opts, Strict(false))
			}
			err := m.LoadStateDict(c.sd, opts...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			after := snapshot(t, m)
			for k, v := range before {
				if !slices.Equal(after[k], v) {
					t.Errorf("%s changed", k)
				}
			}
		})
	}

	// An unprocessed state dict into a processed (LNPre) model.
	sd := good()
	err = processed.LoadStateDict(sd)
	for _, w := range []string{"unexpected keys: blocks.0.ln1.b, blocks.0.ln1.w", `but the model's normalization_type is "LNPre", with none`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("unprocessed into processed: error %v does not say %q", err, w)
		}
	}
	// A processed one's LayerNorm-free keys load into it.
	if err := processed.LoadStateDict(procSD); err != nil {
		t.Errorf("processed into processed: %v", err)
	}

	// Strict(false) loads what is there and keeps the rest.
	sd = good()
	delete(sd, "embed.W_E")
	sd["extra"] = sd["unembed.b_U"]
	if err := m.LoadStateDict(sd, Strict(false)); err != nil {
		t.Fatal(err)
	}
	after, want := snapshot(t, m), snapshot(t, other)
	for k := range before {
		w := want[k]
		if k == "embed.W_E" {
			w = before[k]
		}
		if !slices.Equal(after[k], w) {
			t.Errorf("Strict(false): %s is neither the state dict's nor kept", k)
		}
	}
	// The empty [0 0] mask TransformerLens 3.5 holds is accepted.
	sd = good()
	sd["blocks.0.attn.mask"] = s.Attach(gotch.MustZeros([]int64{0, 0}, gotch.Bool, dev))
	if err := m.LoadStateDict(sd); err != nil {
		t.Errorf("[0 0] mask: %v", err)
	}
	// A nil option is no option (it panicked).
	if err := m.LoadStateDict(good(), nil); err != nil {
		t.Errorf("a nil option: %v", err)
	}
}

// TestStateDictFileErrors: bad paths and files give errors that say what
// is wrong, and SaveStateDict replaces only regular files (through a
// link to one too).
func TestStateDictFileErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 1)
	defer m.Free()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := m.SaveStateDict(good); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.safetensors")
	if err := os.WriteFile(truncated, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.safetensors")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	golensCkpt := filepath.Join(dir, "golens.safetensors")
	if err := m.Save(golensCkpt); err != nil {
		t.Fatal(err)
	}
	other := newTestModel(t, attnOnlyConfig(), 1)
	defer other.Free()
	attnOnly := filepath.Join(dir, "attn-only.safetensors")
	if err := other.SaveStateDict(attnOnly); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.safetensors")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, m)

	for _, c := range []struct{ name, path, want string }{
		{"empty path", "", "no path"},
		{"missing", filepath.Join(dir, "nope.safetensors"), "no such file"},
		{"directory", dir, "it is a directory, not a regular file; want a state dict file"},
		{"device", os.DevNull, "it is a character device, not a regular file; want a state dict file"},
		{"truncated", truncated, "truncated.safetensors"},
		{"empty file", empty, "empty.safetensors"},
		{"golens checkpoint", golensCkpt, "a golens checkpoint written by Save, in golens's own layout: open it with Load"},
		{"other config", attnOnly, "missing keys: blocks.0.ln2.w, blocks.0.ln2.b, blocks.0.mlp.W_in"},
	} {
		t.Run("load "+c.name, func(t *testing.T) {
			err := m.LoadStateDictFile(c.path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
			after := snapshot(t, m)
			for k, v := range before {
				if !slices.Equal(after[k], v) {
					t.Errorf("%s changed", k)
				}
			}
		})
	}
	// A symbolic link to a state dict file is followed.
	if err := m.LoadStateDictFile(link); err != nil {
		t.Errorf("load through a link: %v", err)
	}

	for _, c := range []struct{ name, path, want string }{
		{"empty path", "", "no path"},
		{"directory", dir, "it is a directory, not a regular file"},
		{"device", os.DevNull, "it is a character device, not a regular file"},
		{"no parent", filepath.Join(dir, "nope", "x.safetensors"), "no such file"},
	} {
		t.Run("save "+c.name, func(t *testing.T) {
			if err := m.SaveStateDict(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
	if err := m.SaveStateDict(link); err != nil { // the file it links to is replaced
		t.Errorf("save through a link: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
}

// python is /usr/bin/python3 with torch, or skips the test.
func python(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		t.Skipf("no %s with torch: %v", py, err)
	}
	if _, err := os.Stat("testdata/tl_mirror.py"); err != nil {
		t.Skip("testdata/tl_mirror.py is not here (a test binary run elsewhere)")
	}
	return py
}

// configFile writes cfg as JSON to path for testdata/tl_mirror.py.
func configFile(t *testing.T, path string, cfg Config) string {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, js, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mirror runs the jobs (each a mode, a config file and their arguments)
// of testdata/tl_mirror.py, a stand-in for TransformerLens's module tree
// in plain torch, in one python3.
func mirror(t *testing.T, jobs ...[]string) {
	t.Helper()
	var args []string
	for i, j := range jobs {
		if i > 0 {
			args = append(args, "--")
		}
		args = append(args, j...)
	}
	out, err := exec.Command(python(t), append([]string{"testdata/tl_mirror.py"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tl_mirror.py: %v\n%s", err, out)
	}
}

// TestStateDictPython: a state dict torch saves from TransformerLens's
// module tree loads into golens and gives the float64 reference's logits
// of the file's own tensors; one golens saves passes Python's strict
// load_state_dict, and what Python saves from it loads back into golens
// with the original logits.
func TestStateDictPython(t *testing.T) {
	python(t)
	gotchtest.CheckLeaks(t)
	tok := testTokens(t)
	defer tok.Free()
	rows := make([][]int64, 2)
	flat := gotch.MustToSlice[int64](tok)
	for b := range rows {
		rows[b] = flat[b*7 : (b+1)*7]
	}
	type side struct {
		name                             string
		cfg                              Config
		config, fromPython, golens, back string
	}
	var sides []*side
	var saves, reloads [][]string
	for name, cfg := range map[string]Config{"gpt2-like": smallConfig(), "attn-only": attnOnlyConfig()} {
		if err := cfg.Init(); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		sd := &side{name, cfg, configFile(t, filepath.Join(dir, "config.json"), cfg), filepath.Join(dir, "python.pt"), filepath.Join(dir, "golens.safetensors"), filepath.Join(dir, "back.pt")}
		sides = append(sides, sd)
		saves = append(saves, []string{"save", sd.config, "7", sd.fromPython})
		reloads = append(reloads, []string{"reload", sd.config, sd.golens, sd.back})
	}
	mirror(t, saves...)
	models := map[string]*HookedTransformer{}
	for _, sd := range sides {
		t.Run(sd.name+"/from Python", func(t *testing.T) {
			m := newTestModel(t, sd.cfg, 1)
			models[sd.name] = m
			if err := m.LoadStateDictFile(sd.fromPython); err != nil {
				t.Fatal(err)
			}
			ck, err := weights.Open(sd.fromPython)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			s := gotch.NewScope()
			defer s.Close()
			file := map[string]*gotch.Tensor{}
			for _, k := range ck.Keys() {
				w, err := ck.Get(k)
				if err != nil {
					t.Fatal(err)
				}
				file[k] = s.Attach(must(gotch.FromBytes(w.Data, w.Shape, wdtypes[w.DType], gotch.CPU)))
			}
			want := newRefModel(t, m.Cfg, file).Forward(rows)["logits"].Data
			gotchtest.Close(t, "logits of Python's state dict", logits(t, m, tok), want, 1e-4)
			if err := m.SaveStateDict(sd.golens); err != nil {
				t.Fatal(err)
			}
		})
	}
	defer func() {
		for _, m := range models {
			m.Free()
		}
	}()
	if t.Failed() {
		return
	}
	mirror(t, reloads...)
	for _, sd := range sides {
		t.Run(sd.name+"/back from Python", func(t *testing.T) {
			again := newTestModel(t, sd.cfg, 2)
			defer again.Free()
			if err := again.LoadStateDictFile(sd.back); err != nil {
				t.Fatal(err)
			}
			if got, want := logits(t, again, tok), logits(t, models[sd.name], tok); !slices.Equal(got, want) {
				t.Errorf("through Python's load_state_dict and back: relative error %g, want identical logits", gotchtest.RelErr(got, want))
			}
		})
	}
}
