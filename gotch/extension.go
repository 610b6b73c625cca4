package gotch

/*
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "golens_torch_ext.h"

// dlerror's message, copied (the caller frees it): dlerror's own buffer
// belongs to the thread, and Go may move on to another one.
static char *gt_ext_dlerror(void) {
	const char *e = dlerror();
	return strdup(e ? e : "unknown dynamic loader error");
}

// Loads the library at path; on failure returns NULL and sets *err.
static void *gt_ext_open(const char *path, char **err) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) *err = gt_ext_dlerror();
	return h;
}

static void *gt_ext_sym(void *h, const char *name) { return dlsym(h, name); }

static char *gt_ext_close(void *h) { return dlclose(h) == 0 ? NULL : gt_ext_dlerror(); }

static int32_t gt_ext_abi(void *sym) { return ((int32_t (*)(void))sym)(); }

static const char *gt_ext_torch(void *sym) { return ((const char *(*)(void))sym)(); }

// One crossing: the thread gets golens's intra-op thread count, then the
// extension runs on that same thread.
static char *gt_ext_call(void *fn, void **state, const gt_tensor *ts, int32_t n_ts,
                         const int64_t *ints, int32_t n_ints) {
	gt_prepare_thread();
	return ((gt_ext_fn)fn)(state, ts, n_ts, ints, n_ints);
}
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Extension is a loaded golens extension: a C++ library built against
// libtorch and csrc/golens_torch_ext.h that runs its own ATen code on
// golens's tensors (bench/floor's C++ forward is one). Its methods are safe
// for concurrent use; Close waits for calls in progress.
type Extension struct {
	path string
	name string // the file's base name, for errors

	mu sync.RWMutex // held for reading during calls, for writing by Close
	h  unsafe.Pointer

	symMu sync.Mutex
	syms  map[string]unsafe.Pointer
}

// ExtState is the state slot an extension's functions share across calls
// (gt_ext_fn's state argument): what one call stores there, the next call
// given the same slot receives. Its zero value is an empty slot. Go never
// looks inside: the extension owns what the slot points to and has a
// function to free it. Calls given the same slot must not run concurrently.
type ExtState struct{ p unsafe.Pointer }

// Empty reports whether the slot holds nothing (NULL): it was never set, or
// the extension cleared it.
func (s *ExtState) Empty() bool { return s == nil || s.p == nil }

// OpenExtension loads the extension at path (a file; a name without a slash
// is searched for as the dynamic loader does) and checks that it fits this
// golens: the extension ABI of golens_torch_ext.h it was built with and its
// torch version, which must equal TorchVersion, since an at::Tensor's layout
// is shared only within one torch. Close it when done.
func OpenExtension(path string) (*Extension, error) {
	if strings.ContainsRune(path, '/') {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("gotch: open extension: %w", err)
		}
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	h := C.gt_ext_open(cpath, &cerr)
	if h == nil {
		defer C.free(unsafe.Pointer(cerr))
		return nil, fmt.Errorf("gotch: open extension %s: %s", path, C.GoString(cerr))
	}
	e := &Extension{path: path, name: filepath.Base(path), h: h, syms: map[string]unsafe.Pointer{}}
	if err := e.check(); err != nil {
		C.gt_ext_close(h) // its error, if any, says less than err
		return nil, err
	}
	return e, nil
}

// check compares the extension's identification symbols with this golens.
func (e *Extension) check() error {
	abi, torch := e.sym(C.GT_EXT_ABI_SYMBOL), e.sym(C.GT_EXT_TORCH_SYMBOL)
	if abi == nil || torch == nil {
		return fmt.Errorf("gotch: %s is not a golens extension: it has no %s or %s (put GT_EXTENSION() in one of its files, from gotch/csrc/golens_torch_ext.h)",
			e.path, C.GT_EXT_ABI_SYMBOL, C.GT_EXT_TORCH_SYMBOL)
	}
	if got := int(C.gt_ext_abi(abi)); got != ABIVersion {
		return fmt.Errorf("gotch: extension %s was built for golens ABI %d, this golens has %d: rebuild it against this golens's gotch/csrc/golens_torch_ext.h",
			e.path, got, ABIVersion)
	}
	if got, want := C.GoString(C.gt_ext_torch(torch)), TorchVersion(); got != want {
		return fmt.Errorf("gotch: extension %s was built against torch %s, this golens runs torch %s: rebuild it against torch %s (an at::Tensor's layout is shared only within one torch version)",
			e.path, got, want, want)
	}
	return nil
}

// sym looks a symbol up, once; nil when the library has none of that name.
// The caller holds e.mu (either way) with e.h open.
func (e *Extension) sym(name string) unsafe.Pointer {
	e.symMu.Lock()
	defer e.symMu.Unlock()
	if p, ok := e.syms[name]; ok {
		return p
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	p := C.gt_ext_sym(e.h, cname)
	if p != nil {
		e.syms[name] = p
	}
	return p
}

// Path is the path the extension was opened with.
func (e *Extension) Path() string { return e.path }

// Call runs the extension's function fn (a gt_ext_fn) on tensors and ints.
// A nil tensor reaches fn as NULL (an absent optional); a freed one is an
// error wrapping ErrFreed, and fn does not run. state is the slot fn reads
// and may set (nil: a fresh empty slot, whatever fn stores in it is lost).
// Before fn runs, its OS thread gets the intra-op thread count golens set
// (SetNumThreads). fn's failure comes back as a *Error whose Op names the
// extension and fn.
func (e *Extension) Call(fn string, state *ExtState, tensors []*Tensor, ints ...int64) error {
	op := e.name + ":" + fn
	hs, err := pinTensorList(op, "tensors", tensors, true)
	if err != nil {
		return err
	}
	defer unpinTensors(tensors)
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.h == nil {
		return &Error{Op: op, Msg: "the extension is closed"}
	}
	f := e.sym(fn)
	if f == nil {
		return &Error{Op: op, Msg: fmt.Sprintf("%s has no function %q (is it extern \"C\" and exported?)", e.path, fn)}
	}
	var slot unsafe.Pointer
	if state != nil {
		slot = state.p
	}
	var ths *C.gt_tensor
	if len(hs) > 0 {
		ths = &hs[0]
	}
	var cints *C.int64_t
	if len(ints) > 0 {
		cints = (*C.int64_t)(unsafe.Pointer(&ints[0]))
	}
	msg := C.gt_ext_call(f, &slot, ths, C.int32_t(len(hs)), cints, C.int32_t(len(ints)))
	runtime.KeepAlive(ints)
	if state != nil {
		state.p = slot
	}
	if msg != nil {
		defer C.free(unsafe.Pointer(msg))
		return &Error{Op: op, Args: describe(tensors), Msg: C.GoString(msg)}
	}
	return nil
}

// Close unloads the extension after the calls in progress; later calls
// return an error. Free what the extension's state slots hold first (with
// its own functions): Close does not. Idempotent.
func (e *Extension) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return nil
	}
	msg := C.gt_ext_close(e.h)
	e.h, e.syms = nil, nil
	if msg != nil {
		defer C.free(unsafe.Pointer(msg))
		return fmt.Errorf("gotch: close extension %s: %s", e.path, C.GoString(msg))
	}
	return nil
}
