package metal

// The shim lives in ../gotch/lib after ./build.sh; CGO_LDFLAGS may point
// elsewhere.

/*
#cgo CFLAGS: -I${SRCDIR}/../gotch/csrc
#cgo LDFLAGS: -L${SRCDIR}/../gotch/lib -lgolens_torch -Wl,-rpath,${SRCDIR}/../gotch/lib
#include "golens_torch.h"
*/
import "C"

// shimError converts and frees the shim's error: the one place in this
// package where a C error string becomes a Go error.
func shimError(what string, e C.gt_error) error {
	msg := C.GoString(e)
	C.gt_error_free(e)
	return classify(what, msg)
}

// IsAvailable reports whether libtorch can put tensors on the MPS device.
func IsAvailable() bool { return C.gt_has_device(C.GT_MPS) != 0 }

// Synchronize waits until all work queued on the MPS device has finished.
func Synchronize() error {
	if e := C.gt_mps_synchronize(); e != nil {
		return shimError("synchronize", e)
	}
	return nil
}

// Memory is the number of bytes the MPS allocator has handed to tensors.
func Memory() (int64, error) {
	var n C.int64_t
	if e := C.gt_mps_memory(&n); e != nil {
		return 0, shimError("memory", e)
	}
	return int64(n), nil
}
