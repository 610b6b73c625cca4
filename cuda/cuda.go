package cuda

// The shim lives in ../gotch/lib after ./build.sh; CGO_LDFLAGS may point
// elsewhere.

/*
#cgo CFLAGS: -I${SRCDIR}/../gotch/csrc
#cgo LDFLAGS: -L${SRCDIR}/../gotch/lib -lgolens_torch -Wl,-rpath,${SRCDIR}/../gotch/lib
#include "golens_torch.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotCompiled is wrapped by every error of a shim built without CUDA
	// support.
	ErrNotCompiled = errors.New("the golens shim was built without CUDA support: rebuild it with ./build.sh shim against a CUDA libtorch, or use the cpu backend")
	// ErrUnavailable is wrapped by the error of a call about a CUDA device
	// that is not there.
	ErrUnavailable = errors.New("no such CUDA device: check nvidia-smi and CUDA_VISIBLE_DEVICES, or use the cpu backend")
)

// shimError converts and frees the shim's error: the one place in this
// package where a C error string becomes a Go error.
func shimError(what string, e C.gt_error) error {
	msg := C.GoString(e)
	C.gt_error_free(e)
	return classify(what, msg)
}

// classify wraps the sentinel that the shim's message stands for.
func classify(what, msg string) error {
	switch {
	case strings.HasPrefix(msg, "not compiled"):
		return fmt.Errorf("cuda: %s: %w", what, ErrNotCompiled)
	case strings.Contains(msg, "no CUDA device"):
		return fmt.Errorf("cuda: %s: %s: %w", what, msg, ErrUnavailable)
	}
	return fmt.Errorf("cuda: %s: %s", what, msg)
}

// DeviceCount is the number of CUDA devices libtorch sees; 0 without CUDA.
func DeviceCount() int { return int(C.gt_cuda_device_count()) }

// IsAvailable reports whether libtorch sees at least one CUDA device, so
// tensors can be put on one. The statistics in this package may still be
// missing (ErrNotCompiled) when the shim was built without the CUDA headers.
func IsAvailable() bool { return DeviceCount() > 0 }

// Props describes a CUDA device.
type Props struct {
	Name         string // e.g. "NVIDIA H100 80GB HBM3"
	Major, Minor int    // compute capability, e.g. 9 and 0
	TotalMemory  int64  // bytes
}

// Properties describes device dev.
func Properties(dev int) (Props, error) {
	var (
		buf          [256]C.char
		major, minor C.int32_t
		total        C.int64_t
	)
	if e := C.gt_cuda_device_properties(C.int32_t(dev), &buf[0], C.int32_t(len(buf)), &major, &minor, &total); e != nil {
		return Props{}, shimError(fmt.Sprintf("properties of device %d", dev), e)
	}
	return Props{Name: C.GoString(&buf[0]), Major: int(major), Minor: int(minor), TotalMemory: int64(total)}, nil
}

// Synchronize waits until all work queued on device dev has finished.
func Synchronize(dev int) error {
	if e := C.gt_cuda_synchronize(C.int32_t(dev)); e != nil {
		return shimError(fmt.Sprintf("synchronize device %d", dev), e)
	}
	return nil
}

// MemoryStats are the caching allocator's statistics for one device, in
// bytes. Reserved memory includes cached blocks that tensors no longer use;
// peaks count from the last ResetPeak.
type MemoryStats struct {
	Allocated, PeakAllocated int64
	Reserved, PeakReserved   int64
}

// Memory reads the memory statistics of device dev.
func Memory(dev int) (MemoryStats, error) {
	var a, pa, r, pr C.int64_t
	if e := C.gt_cuda_memory(C.int32_t(dev), &a, &pa, &r, &pr); e != nil {
		return MemoryStats{}, shimError(fmt.Sprintf("memory of device %d", dev), e)
	}
	return MemoryStats{Allocated: int64(a), PeakAllocated: int64(pa), Reserved: int64(r), PeakReserved: int64(pr)}, nil
}

// ResetPeak makes the peaks of device dev start again from the current
// values, so a measurement can cover one piece of work.
func ResetPeak(dev int) error {
	if e := C.gt_cuda_reset_peak(C.int32_t(dev)); e != nil {
		return shimError(fmt.Sprintf("reset peak memory of device %d", dev), e)
	}
	return nil
}

// EmptyCache returns the allocator's cached, unused blocks to the driver,
// so other processes (or nvidia-smi) see the memory as free.
func EmptyCache() error {
	if e := C.gt_cuda_empty_cache(); e != nil {
		return shimError("empty cache", e)
	}
	return nil
}
