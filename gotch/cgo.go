package gotch

// How cgo finds libtorch. shim.cpp compiles the shim's C++ into this
// package, so plain `go build` works where libtorch's headers and libraries
// are on the compiler's default paths, as with Debian's and Ubuntu's
// libtorch-dev. Anything else (pip or conda torch, the libtorch zip, a CUDA
// build) takes its flags from CGO_CPPFLAGS and CGO_LDFLAGS, which
// `go run github.com/golens/golens/cmd/golens-env` prints; the tag cuda adds
// the CUDA parts. The flags name no directory of this checkout, so a binary
// keeps working when the checkout moves.

/*
#cgo CPPFLAGS: -I${SRCDIR}/csrc -I/usr/include/torch/csrc/api/include
#cgo CXXFLAGS: -O2 -g0
#cgo cuda CPPFLAGS: -DGT_WITH_CUDA
#cgo !golens_prebuilt LDFLAGS: -ltorch -ltorch_cpu -lc10
#cgo !golens_prebuilt,cuda LDFLAGS: -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -lcudart -Wl,--as-needed
#cgo golens_prebuilt LDFLAGS: -lgolens_torch
#include <stdlib.h>
#include "golens_torch.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// ABIVersion is the shim ABI this package was written for.
const ABIVersion = C.GT_ABI_VERSION

var abiCheck = sync.OnceValue(func() error {
	if got := int(C.gt_abi_version()); got != ABIVersion {
		return fmt.Errorf("gotch: libgolens_torch has ABI %d but this package needs %d: rebuild the shim with ./build.sh build", got, ABIVersion)
	}
	return nil
})

func init() {
	if err := abiCheck(); err != nil {
		panic(err)
	}
}

// TorchVersion is the libtorch version the shim was compiled against.
func TorchVersion() string { return C.GoString(C.gt_torch_version()) }

// BuildInfo describes the libtorch build (BLAS, OpenMP, CUDA).
func BuildInfo() string { return C.GoString(C.gt_build_info()) }

// HasFusedAttention reports whether ScaledDotProductAttention has a fused
// kernel in this torch (2.0 and later); before, it computes the same result
// through the math path.
func HasFusedAttention() bool { return C.gt_has_fused_attention() != 0 }

// LiveHandles is the number of tensor and generator handles alive in the
// shim; see gotchtest for the leak check built on it.
func LiveHandles() int64 { return int64(C.gt_live_handles()) }

// SetNumThreads sets libtorch's number of intra-op threads. libtorch keeps
// the count per OS thread; the shim applies it to each OS thread before
// that thread's next op, so it holds whichever thread Go runs a call on
// (gotch sets it at init, from GOLENS_NUM_THREADS or its platform default).
func SetNumThreads(n int) error {
	if e := C.gt_set_num_threads(C.int32_t(n)); e != nil {
		return opError("SetNumThreads", e)
	}
	return nil
}

// NumThreads is libtorch's number of intra-op threads.
func NumThreads() int { return int(C.gt_get_num_threads()) }

// ManualSeed seeds libtorch's global generators (CPU and every CUDA device).
func ManualSeed(seed uint64) error {
	if e := C.gt_manual_seed(C.uint64_t(seed)); e != nil {
		return opError("ManualSeed", e)
	}
	return nil
}

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
