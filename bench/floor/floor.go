package floor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// Lib is a loaded libgolens_floor.
type Lib struct{ ext *gotch.Extension }

// Path is where Open looks by default: $GOLENS_FLOOR_LIB, else
// lib/libgolens_floor.so (.dylib on macOS) in this package's source folder,
// where ./build.sh floor puts it. The source folder is the one this file
// was compiled from, so `go test ./bench/floor/` and any binary built in the
// checkout find it; a binary built with -trimpath knows no folder and looks
// in lib/ under its working directory (bench/gpu/run.sh sets
// $GOLENS_FLOOR_LIB instead).
func Path() string {
	if p := os.Getenv("GOLENS_FLOOR_LIB"); p != "" {
		return p
	}
	name := "libgolens_floor.so"
	if runtime.GOOS == "darwin" {
		name = "libgolens_floor.dylib"
	}
	dir := "lib"
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir = filepath.Join(filepath.Dir(file), "lib")
	}
	return filepath.Join(dir, name)
}

// ErrNotBuilt is returned by Open when the library file does not exist.
var ErrNotBuilt = errors.New("libgolens_floor is not built (./build.sh floor)")

// Open loads the floor library at path ("" for Path()) and checks that it
// was built against this golens's torch.
func Open(path string) (*Lib, error) {
	if path == "" {
		path = Path()
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("floor: %s: %w", path, ErrNotBuilt)
	}
	ext, err := gotch.OpenExtension(path)
	if err != nil {
		return nil, fmt.Errorf("floor: %w (./build.sh floor rebuilds it against the torch it finds)", err)
	}
	return &Lib{ext: ext}, nil
}

// Model is the floor's forward over a golens model's weights, shared, not
// copied: both run on the same memory.
type Model struct {
	lib   *Lib
	state gotch.ExtState // the C++ model, made by floor_model_new
}

// NewModel builds the floor over m's weights. The floor implements the
// GPT-2 forward only: LayerNorm (LN) with eps 1e-5, gelu_new, causal
// attention scaled by 1/sqrt(d_head), standard or shortformer positions;
// anything else is an error naming the setting.
func (l *Lib) NewModel(m *hookedmodel.HookedTransformer) (*Model, error) {
	c := m.Cfg
	for _, bad := range []struct {
		is   bool
		what string
	}{
		{c.NormalizationType != "LN", fmt.Sprintf("normalization_type %q (the floor has LN only)", c.NormalizationType)},
		{!c.AttnOnly && c.ActFn != "gelu_new", fmt.Sprintf("act_fn %q (the floor has gelu_new only)", c.ActFn)},
		{c.Eps != 1e-5, fmt.Sprintf("eps %g (the floor has 1e-5)", c.Eps)},
		{c.AttentionDir != "causal", fmt.Sprintf("attention_dir %q (the floor is causal)", c.AttentionDir)},
		{!c.UseAttnScale || c.AttnScaleByIdx, "a non-default attention scale (use_attn_scale, scale_attn_by_inverse_layer_idx)"},
		{c.ParallelAttnMLP, "parallel_attn_mlp"},
		{c.GatedMLP, "gated_mlp"},
	} {
		if bad.is {
			return nil, fmt.Errorf("floor: model %q has %s", c.ModelName, bad.what)
		}
	}
	params := m.Parameters()
	ts := make([]*gotch.Tensor, len(params))
	for i, p := range params {
		if p.Tensor.Freed() {
			return nil, fmt.Errorf("floor: model %q: weight %s is freed", c.ModelName, p.Name)
		}
		ts[i] = p.Tensor
	}
	f := &Model{lib: l}
	err := l.ext.Call("floor_model_new", &f.state, ts, int64(c.NHeads), flag(c.AttnOnly), flag(c.PositionalEmbeddingType == "shortformer"))
	if err != nil {
		return nil, fmt.Errorf("floor: model %q: %w", c.ModelName, err)
	}
	return f, nil
}

// Forward runs the floor's forward on tokens [batch pos] and drops the
// logits inside the call, as a timed golens pass frees its own.
func (f *Model) Forward(tokens *gotch.Tensor) error { return f.run(tokens, nil) }

// LogitsInto runs the forward and copies the logits [batch pos vocab] into
// dst, a tensor of that shape.
func (f *Model) LogitsInto(tokens, dst *gotch.Tensor) error { return f.run(tokens, dst) }

func (f *Model) run(tokens, dst *gotch.Tensor) error {
	if f.state.Empty() {
		return errors.New("floor: the model is freed")
	}
	st := f.state // the forward only reads it: a copy lets forwards run concurrently
	if err := f.lib.ext.Call("floor_forward", &st, []*gotch.Tensor{tokens, dst}); err != nil {
		return fmt.Errorf("floor: forward: %w", err)
	}
	return nil
}

// Free releases the floor's references to the weights. Idempotent.
func (f *Model) Free() {
	if !f.state.Empty() {
		// floor_model_free cannot fail; the only error would be a missing
		// symbol, which Open's library has.
		_ = f.lib.ext.Call("floor_model_free", &f.state, nil)
	}
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
