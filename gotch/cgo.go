//go:build cgo

package gotch

// How cgo finds libtorch. shim.cpp compiles the shim's C++ into this
// package, so plain `go build` works where libtorch's headers and libraries
// are on the compiler's default paths, as with Debian's and Ubuntu's
// libtorch-dev. Anything else (pip or conda torch, the libtorch zip, a CUDA
// build) takes its flags from CGO_CPPFLAGS and CGO_LDFLAGS, which
// `go run github.com/golens/golens/cmd/golens-env` prints; the tag cuda adds
// the CUDA parts. The flags name no directory of this checkout, so a binary
// keeps working when the checkout moves.
//
// This file holds the hand-written calls into the shim that the untagged
// files (tensor.go, data.go, libtorch.go, ...) build on; devices_cgo.go,
// blas_threads_cgo.go and the generated ops_gen.go hold the rest. Built
// without cgo, nocgo.go and ops_nocgo_gen.go stand in for them.

/*
#cgo CPPFLAGS: -I${SRCDIR}/csrc -I/usr/include/torch/csrc/api/include
#cgo CXXFLAGS: -O2 -g0
#cgo cuda CPPFLAGS: -DGT_WITH_CUDA
#cgo !golens_prebuilt LDFLAGS: -ltorch -ltorch_cpu -lc10
#cgo !golens_prebuilt,cuda LDFLAGS: -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed
#cgo golens_prebuilt LDFLAGS: -lgolens_torch
// The shim copies the data during the call and keeps no pointer to it.
#cgo noescape gt_from_data_as
#cgo nocallback gt_from_data_as
#cgo noescape gt_copy_to
#cgo nocallback gt_copy_to
#cgo nocallback gt_tensor_free
#include <stdlib.h>
#include "golens_torch.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

const cgoEnabled = true

// ABIVersion is written out in libtorch.go, for builds without cgo; these
// array lengths are negative, which fails the build, unless it equals the
// header's GT_ABI_VERSION.
var (
	_ [ABIVersion - C.GT_ABI_VERSION]struct{}
	_ [C.GT_ABI_VERSION - ABIVersion]struct{}
)

var abiCheck = sync.OnceValue(func() error {
	if got := int(C.gt_abi_version()); got != ABIVersion {
		return fmt.Errorf("gotch: the prebuilt libgolens_torch has ABI %d but this package needs %d: rebuild it from this version's sources with ./build.sh shim", got, ABIVersion)
	}
	return nil
})

func init() {
	if err := abiCheck(); err != nil {
		panic(err)
	}
}

// libtorch.go

func torchVersion() string { return C.GoString(C.gt_torch_version()) }

func buildInfo() string { return C.GoString(C.gt_build_info()) }

func hasFusedAttention() bool { return C.gt_has_fused_attention() != 0 }

func liveHandles() int64 { return int64(C.gt_live_handles()) }

func setNumThreads(n int) error {
	if e := C.gt_set_num_threads(C.int32_t(n)); e != nil {
		return opError("SetNumThreads", e)
	}
	return nil
}

func numThreads() int { return int(C.gt_get_num_threads()) }

func manualSeed(seed uint64) error {
	if e := C.gt_manual_seed(C.uint64_t(seed)); e != nil {
		return opError("ManualSeed", e)
	}
	return nil
}

// tensor.go

func freeLeaked(p C.gt_tensor) {
	C.gt_tensor_free(p)
	gcFreed.Add(1)
}

func newTensor(out *C.gt_out, s *Scope) *Tensor {
	if out.tensor == nil {
		return nil // an undefined result, such as a missing gradient
	}
	t := &Tensor{h: ref{p: unsafe.Pointer(out.tensor)}}
	t.refresh(out)
	t.cleanup = runtime.AddCleanup(t, freeLeaked, out.tensor)
	if s != nil {
		s.add(t)
	}
	return t
}

func newTensorList(outs *C.gt_out, n C.int32_t, s *Scope) []*Tensor {
	if outs == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(outs))
	res := make([]*Tensor, n)
	for i, o := range unsafe.Slice(outs, int(n)) {
		res[i] = newTensor(&o, s)
	}
	return res
}

func (t *Tensor) refresh(out *C.gt_out) {
	n := int(out.ndim)
	t.shape = make([]int64, n)
	for i := range n {
		t.shape[i] = int64(out.shape[i])
	}
	t.dtype = DType(out.dtype)
	t.device = Device{DeviceType(out.device_type), int(out.device_index)}
	t.requiresGrad = out.requires_grad != 0
}

// ptr is t's handle for the shim, NULL for a nil t; t must be pinned.
func (t *Tensor) ptr() C.gt_tensor {
	if t == nil {
		return nil
	}
	return C.gt_tensor(t.h.p)
}

func freeTensor(p unsafe.Pointer) { C.gt_tensor_free(C.gt_tensor(p)) }

// generator.go

func newGenerator(seed uint64) (*Generator, error) {
	var p C.gt_generator
	if e := C.gt_generator_new(&p, C.uint64_t(seed)); e != nil {
		return nil, opError("NewGenerator", e)
	}
	g := &Generator{h: ref{p: unsafe.Pointer(p)}}
	g.cleanup = runtime.AddCleanup(g, func(p C.gt_generator) { C.gt_generator_free(p); gcFreed.Add(1) }, p)
	return g, nil
}

// ptr is g's handle for the shim; g must be pinned.
func (g *Generator) ptr() C.gt_generator { return C.gt_generator(g.h.p) }

func freeGenerator(p unsafe.Pointer) { C.gt_generator_free(C.gt_generator(p)) }

// data.go

// copyFrom makes a tensor of dtype from the elements of stored dtype at p;
// fromData checked them.
func copyFrom(p unsafe.Pointer, shape []int64, stored, dtype DType, dev Device) (*Tensor, error) {
	var out C.gt_out
	e := C.gt_from_data_as(&out, p, cInts(shape), C.int32_t(len(shape)), C.int32_t(stored), C.int32_t(dtype), C.int32_t(dev.Type), C.int32_t(dev.Index))
	if e != nil {
		return nil, opError("FromSlice", e)
	}
	return newTensor(&out, nil), nil
}

func tensorVersion(t *Tensor) (int64, error) {
	if err := pinTensor("Version", "self", t); err != nil {
		return 0, err
	}
	defer t.unpin()
	var v C.int64_t
	if e := C.gt_tensor_version(t.ptr(), &v); e != nil {
		return 0, opError("Version", e, t)
	}
	return int64(v), nil
}

func tensorStrides(t *Tensor) ([]int64, error) {
	if err := pinTensor("Strides", "self", t); err != nil {
		return nil, err
	}
	defer t.unpin()
	out := make([]int64, max(t.Dim(), 1)) // a pointer to pass for a 0-d tensor
	if e := C.gt_tensor_strides(t.ptr(), (*C.int64_t)(unsafe.Pointer(&out[0])), C.int32_t(t.Dim())); e != nil {
		return nil, opError("Strides", e, t)
	}
	return out[:t.Dim()], nil
}

func copyTo(t *Tensor, dst unsafe.Pointer, nbytes int, dtype DType) error {
	if err := pinTensor("ToSlice", "self", t); err != nil {
		return err
	}
	defer t.unpin()
	if e := C.gt_copy_to(t.ptr(), dst, C.int64_t(nbytes), C.int32_t(dtype)); e != nil {
		return opError("ToSlice", e, t)
	}
	return nil
}

// grad.go

func withGradMode(enabled bool, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.gt_set_grad_enabled(cBool(enabled))
	defer C.gt_set_grad_enabled(prev)
	return fn()
}

func isGradEnabled() bool { return C.gt_is_grad_enabled() != 0 }

// device.go

func hasDevice(t DeviceType) bool { return C.gt_has_device(C.int32_t(t)) != 0 }

// errors.go

// codeErrors maps the shim's gt_error_code to the sentinel an Error wraps.
var codeErrors = map[C.int32_t]error{
	C.GT_ERR_NOT_COMPILED:  ErrNotCompiled,
	C.GT_ERR_NO_DEVICE:     ErrNoDevice,
	C.GT_ERR_OUT_OF_MEMORY: ErrOutOfMemory,
}

// opError converts and frees the shim's error: the one place a C error
// becomes a Go error.
func opError(op string, e C.gt_error, operands ...*Tensor) error {
	msg, code := C.GoString(e.message), e.code
	C.gt_error_free(e)
	return &Error{Op: op, Args: describe(operands), Msg: msg, Err: codeErrors[code]}
}

// pinTensorList pins a list's tensors for a call into the shim, as
// pinTensor does one, and returns their handles; nil entries mean "absent"
// (torch's None, passed as NULL) where optional, else they are an error.
// The caller unpins the list with unpinTensors when the call returns.
func pinTensorList(op, name string, ts []*Tensor, optional bool) ([]C.gt_tensor, error) {
	hs := make([]C.gt_tensor, len(ts))
	for i, t := range ts {
		if t == nil && optional {
			continue
		}
		if t == nil || !t.pin() {
			unpinTensors(ts[:i])
			return nil, badTensor(op, fmt.Sprintf("%s[%d]", name, i), t)
		}
		hs[i] = t.ptr()
	}
	return hs, nil
}

func unpinTensors(ts []*Tensor) {
	for _, t := range ts {
		t.unpin()
	}
}

// Conversions for the generated ops.

func cBool(b bool) C.int32_t {
	if b {
		return 1
	}
	return 0
}

func cInts(xs []int64) *C.int64_t {
	if len(xs) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(unsafe.SliceData(xs)))
}

func sliceData(hs []C.gt_tensor) *C.gt_tensor {
	if len(hs) == 0 {
		return nil
	}
	return unsafe.SliceData(hs)
}
