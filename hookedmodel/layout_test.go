package hookedmodel

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/hftest"
	"github.com/golens/golens/hookedmodel/weights"
)

// wideConfig is smallConfig with d_model 1024, the smallest width whose
// MLP input and unembedding layout.go keeps column-major on the CPU;
// W_out (d_mlp 96) stays row-major.
func wideConfig(c *Config) { c.NLayers, c.DModel, c.DMLP = 1, 1024, 96 }

// checkMemoryOrder fails t unless every matrix weight [r c] of m has the
// strides layout.go promises, written out here by name rather than taken
// from colMajorWeights: column-major ({1, r}) for a float32 MLP matrix or
// unembedding on the CPU with c a multiple of 1024, row-major ({c, 1})
// for every other one. It returns how many were column-major.
func checkMemoryOrder(t *testing.T, m *HookedTransformer) (cols int) {
	t.Helper()
	for _, p := range m.Parameters() {
		w := p.Tensor
		if w.Dim() != 2 {
			continue
		}
		st, err := w.Strides()
		if err != nil {
			t.Fatal(err)
		}
		r, c := w.Size(0), w.Size(1)
		mlp := strings.Contains(p.Name, ".mlp.W_") || p.Name == "unembed.W_U"
		col := mlp && m.Device().Type == gotch.CPUType && m.DType() == gotch.Float && c%1024 == 0
		want := []int64{c, 1}
		if col {
			want, cols = []int64{1, r}, cols+1
		}
		if !slices.Equal(st, want) {
			t.Errorf("%s %v has strides %v, want %v (column-major %v)", p.Name, w.Shape(), st, want, col)
		}
	}
	return cols
}

// TestWeightMemoryOrder: however a model is made (New, a Hugging Face
// Llama directory read whole or a few rows at a time, GPT-2's Conv1D
// weights that load transposed, a golens checkpoint, another dtype), its
// weights are in layout.go's memory order with the values the checkpoint
// holds. Arranging happens once: the tensors Parameters hands out stay the
// model's own through SetRequiresGrad and Process, which an optimiser
// relies on.
func TestWeightMemoryOrder(t *testing.T) {
	gpt2VocabSize() // GPT-2's tokenizer, loaded once, for the models' tokenizer checks
	dev := gotchtest.Device(t)
	ctx := context.Background()
	wide := hftest.Dims{Layers: 1, DModel: 1024, Heads: 2, KVHeads: 1, HeadDim: 8, DMLP: 2048, Vocab: 64, Ctx: 16}
	llama := hftest.Write(t, "llama", hftest.Opts{Dims: &wide, DType: weights.BF16, Seed: 3,
		Edit: func(c map[string]any) { delete(c, "rope_scaling") }})
	gpt2Src := newTestModel(t, func() Config { c := smallConfig(); wideConfig(&c); c.DHead, c.DMLP = 256, 2048; return c }(), 5)
	defer gpt2Src.Free()
	gpt2 := writeHFGPT2(t, gpt2Src, hfCheckpoint{prefix: "transformer."})
	load := func(dir string, chunk int64, opts ...Option) func(t *testing.T) *HookedTransformer {
		return func(t *testing.T) *HookedTransformer {
			defer func(was int64) { loadChunk = was }(loadChunk)
			if chunk > 0 {
				loadChunk = chunk
			}
			m, err := Load(ctx, dir, append([]Option{NoProcessing(), WithDType(gotch.Float), OnDevice(dev)}, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	// The values to hold: a load read whole keeps the single-chunk
	// path's (arrange's copy); one read in chunks copies rows into a
	// column-major weight.
	llamaWhole := load(llama.Dir, 0)(t)
	defer llamaWhole.Free()
	for _, tc := range []struct {
		name string
		make func(t *testing.T) *HookedTransformer
		cols int                // column-major weights on the CPU in float32
		want *HookedTransformer // whose weights the model's must equal, or nil
	}{
		{"new small", func(t *testing.T) *HookedTransformer { return editedModel(t, nil, 1) }, 0, nil},
		{"new wide gated", func(t *testing.T) *HookedTransformer {
			return editedModel(t, func(c *Config) { gatedConfig("silu")(c); wideConfig(c) }, 2)
		}, 3, nil},
		{"llama in chunks", load(llama.Dir, 100), 4, llamaWhole},
		{"llama bfloat16", load(llama.Dir, 0, WithDType(gotch.BFloat16)), 0, nil},
		{"gpt2 conv1d whole", load(gpt2, 0), 3, gpt2Src},
		{"gpt2 conv1d in chunks", load(gpt2, 100), 3, gpt2Src},
		{"golens checkpoint in chunks", func(t *testing.T) *HookedTransformer {
			path := filepath.Join(t.TempDir(), "m.safetensors")
			if err := llamaWhole.Save(path); err != nil {
				t.Fatal(err)
			}
			return load(path, 100)(t)
		}, 4, llamaWhole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := tc.make(t)
			defer m.Free()
			if n := checkMemoryOrder(t, m); dev.Type == gotch.CPUType && n != tc.cols {
				t.Errorf("%d weights column-major, want %d", n, tc.cols)
			}
			if tc.want != nil {
				want := tc.want.Parameters()
				for i, p := range m.Parameters() {
					if !slices.Equal(gotchtest.Values(t, p.Tensor), gotchtest.Values(t, want[i].Tensor)) {
						t.Errorf("%s differs from %s", p.Name, want[i].Name)
					}
				}
			}
			before := map[string]*gotch.Tensor{}
			for _, p := range m.Parameters() {
				before[p.Name] = p.Tensor
			}
			for _, on := range []bool{true, false} {
				if err := m.SetRequiresGrad(on); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Process(DefaultProcessing); err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Parameters() { // fold_ln drops the norms' weights
				if p.Tensor != before[p.Name] {
					t.Errorf("%s: a new tensor after SetRequiresGrad and Process; the one Parameters gave before is no longer the model's", p.Name)
				}
			}
			checkMemoryOrder(t, m)
		})
	}
	if n := checkMemoryOrder(t, llamaWhole); dev.Type == gotch.CPUType && n != 4 {
		t.Errorf("llama read whole: %d weights column-major, want 4", n)
	}
}

// TestNewSameWeightsInEitherOrder: New draws the same weights for a seed
// whatever their memory order: a float32 model on the CPU, some of whose
// weights are column-major, holds exactly the values of the float64 model
// of the same seed, all row-major (float32 draws widen exactly), with
// each weight drawn in several blocks.
func TestNewSameWeightsInEitherOrder(t *testing.T) {
	gotchtest.CheckLeaks(t)
	defer func(was int64) { normalBlock = was }(normalBlock)
	normalBlock = 40 << 10 // 10 rows of 1024 float32s a block
	cfg := smallConfig()
	wideConfig(&cfg)
	gatedConfig("silu")(&cfg)
	dev := gotchtest.Device(t)
	f32, err := New(cfg, WithSeed(3), OnDevice(dev))
	if err != nil {
		t.Fatal(err)
	}
	defer f32.Free()
	f64, err := New(cfg, WithSeed(3), WithDType(gotch.Double), OnDevice(dev))
	if err != nil {
		t.Fatal(err)
	}
	defer f64.Free()
	if n := checkMemoryOrder(t, f32); dev.Type == gotch.CPUType && n != 3 {
		t.Errorf("float32: %d weights column-major, want 3", n)
	}
	checkMemoryOrder(t, f64)
	want := f64.Parameters()
	for i, p := range f32.Parameters() {
		got := gotchtest.Values(t, p.Tensor)
		if !slices.Equal(got, gotchtest.Values(t, want[i].Tensor)) {
			t.Errorf("%s: float32 weights differ from the float64 model's of the same seed", p.Name)
		}
		// Every block drawn: the mean square of each half of a normal
		// weight is near std² (a block left at zero would halve it).
		if strings.Contains(p.Name, "W_") {
			for _, half := range [][]float64{got[:len(got)/2], got[len(got)/2:]} {
				var ss float64
				for _, v := range half {
					ss += v * v
				}
				if r := ss / float64(len(half)) / (f32.Cfg.InitializerRange * f32.Cfg.InitializerRange); r < 0.8 || r > 1.2 {
					t.Errorf("%s: mean square %.3g std² in one half, want about 1", p.Name, r)
				}
			}
		}
	}
}

// TestColumnMajorSameLogits: the same weights give the same logits
// (within float32 rounding: the GEMMs sum in another order) whether the
// MLP and unembedding are column-major, as layout.go keeps them, or
// row-major, the order every float64 reference test runs with (their
// models are narrower than 1024).
func TestColumnMajorSameLogits(t *testing.T) {
	if gotchtest.Device(t).Type != gotch.CPUType {
		t.Skip("column-major weights are the CPU's")
	}
	gotchtest.CheckLeaks(t)
	m := editedModel(t, func(c *Config) { gatedConfig("silu")(c); wideConfig(c); c.DMLP = 1024 }, 9)
	defer m.Free()
	if n := checkMemoryOrder(t, m); n != 4 {
		t.Fatalf("%d weights column-major, want 4", n)
	}
	_, tok := randomTokens(t, 2, 6, m.Cfg.DVocab, 8)
	defer tok.Free()
	col := logits(t, m, tok)
	// Row-major copies put in by hand; prepare would put them back.
	for _, w := range m.colMajorWeights() {
		old := *w
		*w = old.MustContiguous()
		old.Free()
		if !inOrder(*w, false) {
			t.Fatalf("%v: not row-major after Contiguous", (*w).Shape())
		}
	}
	gotchtest.Close(t, "logits, column-major against row-major", col, logits(t, m, tok), 1e-5)
}
