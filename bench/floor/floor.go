package floor

/*
#cgo CFLAGS: -I${SRCDIR}/../../gotch/csrc
#cgo LDFLAGS: -L${SRCDIR}/../../gotch/lib -lgolens_torch -Wl,-rpath,${SRCDIR}/../../gotch/lib -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "golens_torch.h"

typedef struct floor_model_s *floor_model;

typedef struct {
	int32_t (*abi)(void);
	gt_error (*model_new)(floor_model *, const gt_tensor *, int32_t, int64_t, int32_t, int32_t);
	gt_error (*forward)(floor_model, gt_tensor, gt_tensor);
	void (*model_free)(floor_model);
} floor_lib;

// The path of the loaded shim, where build.sh puts the floor too.
static const char *floor_shim_path(void) {
	Dl_info info;
	if (dladdr((void *)gt_abi_version, &info) && info.dli_fname) return info.dli_fname;
	return NULL;
}

// Loads the library at path into lib; returns NULL or dlerror's message.
static const char *floor_open(const char *path, floor_lib *lib) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
	lib->abi = (int32_t (*)(void))dlsym(h, "floor_abi_version");
	lib->model_new = (gt_error (*)(floor_model *, const gt_tensor *, int32_t, int64_t, int32_t, int32_t))dlsym(h, "floor_model_new");
	lib->forward = (gt_error (*)(floor_model, gt_tensor, gt_tensor))dlsym(h, "floor_forward");
	lib->model_free = (void (*)(floor_model))dlsym(h, "floor_model_free");
	if (!lib->abi || !lib->model_new || !lib->forward || !lib->model_free) {
		dlclose(h);
		return "a floor_* symbol is missing";
	}
	return NULL;
}

static int32_t floor_abi(floor_lib *l) { return l->abi(); }
static gt_error floor_new(floor_lib *l, floor_model *out, const gt_tensor *p, int32_t n, int64_t heads, int32_t attn_only, int32_t shortformer) {
	return l->model_new(out, p, n, heads, attn_only, shortformer);
}
static gt_error floor_fwd(floor_lib *l, floor_model m, gt_tensor tokens, gt_tensor logits) { return l->forward(m, tokens, logits); }
static void floor_free(floor_lib *l, floor_model m) { l->model_free(m); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// Lib is a loaded libgolens_floor.
type Lib struct{ c C.floor_lib }

// Path is where Open looks by default: $GOLENS_FLOOR_LIB, else
// libgolens_floor next to the loaded shim (gotch/lib after ./build.sh).
func Path() string {
	if p := os.Getenv("GOLENS_FLOOR_LIB"); p != "" {
		return p
	}
	name := "libgolens_floor.so"
	if runtime.GOOS == "darwin" {
		name = "libgolens_floor.dylib"
	}
	shim := C.floor_shim_path()
	if shim == nil {
		return name // the loader's own search
	}
	return filepath.Join(filepath.Dir(C.GoString(shim)), name)
}

// ErrNotBuilt is returned by Open when the library file does not exist.
var ErrNotBuilt = errors.New("libgolens_floor is not built (./build.sh floor)")

// Open loads the floor library at path ("" for Path()).
func Open(path string) (*Lib, error) {
	if path == "" {
		path = Path()
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("floor: %s: %w", path, ErrNotBuilt)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	l := &Lib{}
	if msg := C.floor_open(cpath, &l.c); msg != nil {
		return nil, fmt.Errorf("floor: loading %s: %s", path, C.GoString(msg))
	}
	if got := int(C.floor_abi(&l.c)); got != gotch.ABIVersion {
		return nil, fmt.Errorf("floor: %s was built for shim ABI %d, this golens has %d: rebuild it with ./build.sh floor", path, got, gotch.ABIVersion)
	}
	return l, nil
}

// Model is the floor's forward over a golens model's weights, shared, not
// copied: both run on the same memory.
type Model struct {
	lib *Lib
	c   C.floor_model
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
	handles := make([]C.gt_tensor, len(params))
	for i, p := range params {
		if p.Tensor.Freed() {
			return nil, fmt.Errorf("floor: model %q: weight %s is freed", c.ModelName, p.Name)
		}
		handles[i] = C.gt_tensor(p.Tensor.CHandle())
	}
	f := &Model{lib: l}
	e := C.floor_new(&l.c, &f.c, unsafe.SliceData(handles), C.int32_t(len(handles)), C.int64_t(c.NHeads),
		cBool(c.AttnOnly), cBool(c.PositionalEmbeddingType == "shortformer"))
	runtime.KeepAlive(params)
	if err := cError(e); err != nil {
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
	if f.c == nil {
		return errors.New("floor: the model is freed")
	}
	e := C.floor_fwd(&f.lib.c, f.c, C.gt_tensor(tokens.CHandle()), C.gt_tensor(dst.CHandle()))
	runtime.KeepAlive(tokens)
	runtime.KeepAlive(dst)
	if err := cError(e); err != nil {
		return fmt.Errorf("floor: forward: %w", err)
	}
	return nil
}

// Free releases the floor's references to the weights. Idempotent.
func (f *Model) Free() {
	if f.c != nil {
		C.floor_free(&f.lib.c, f.c)
		f.c = nil
	}
}

func cError(e C.gt_error) error {
	if e == nil {
		return nil
	}
	defer C.gt_error_free(e)
	return errors.New(C.GoString(e.message))
}

func cBool(b bool) C.int32_t {
	if b {
		return 1
	}
	return 0
}
