package gotch

// #include "golens_torch.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// Device specifics below are the shim's CUDA and MPS calls, for packages
// cuda and metal to build on: gotch is the one package that crosses into
// C. An error wraps ErrNotCompiled when this build lacks the device's
// support and ErrNoDevice when the device is not there.

// deviceError converts and frees a device call's error.
func deviceError(what string, e C.gt_error) error { return opError(what, e) }

// CUDADeviceCount is the number of CUDA devices libtorch sees; 0 without
// CUDA.
func CUDADeviceCount() int { return int(C.gt_cuda_device_count()) }

// CUDAProps describes a CUDA device.
type CUDAProps struct {
	Name         string // e.g. "NVIDIA H100 80GB HBM3"
	Major, Minor int    // compute capability, e.g. 9 and 0
	TotalMemory  int64  // bytes
}

// CUDAProperties describes CUDA device dev.
func CUDAProperties(dev int) (CUDAProps, error) {
	var (
		buf          [256]C.char
		major, minor C.int32_t
		total        C.int64_t
	)
	if e := C.gt_cuda_device_properties(C.int32_t(dev), &buf[0], C.int32_t(len(buf)), &major, &minor, &total); e != nil {
		return CUDAProps{}, deviceError(fmt.Sprintf("CUDAProperties(%d)", dev), e)
	}
	return CUDAProps{Name: C.GoString(&buf[0]), Major: int(major), Minor: int(minor), TotalMemory: int64(total)}, nil
}

// CUDASynchronize waits until all work queued on CUDA device dev has
// finished.
func CUDASynchronize(dev int) error {
	if e := C.gt_cuda_synchronize(C.int32_t(dev)); e != nil {
		return deviceError(fmt.Sprintf("CUDASynchronize(%d)", dev), e)
	}
	return nil
}

// CUDAMemoryStats are the caching allocator's statistics for one device,
// in bytes. Reserved memory includes cached blocks that tensors no longer
// use; peaks count from the last CUDAResetPeak.
type CUDAMemoryStats struct {
	Allocated, PeakAllocated int64
	Reserved, PeakReserved   int64
}

// CUDAMemory reads the allocator's statistics of CUDA device dev.
func CUDAMemory(dev int) (CUDAMemoryStats, error) {
	var a, pa, r, pr C.int64_t
	if e := C.gt_cuda_memory(C.int32_t(dev), &a, &pa, &r, &pr); e != nil {
		return CUDAMemoryStats{}, deviceError(fmt.Sprintf("CUDAMemory(%d)", dev), e)
	}
	return CUDAMemoryStats{Allocated: int64(a), PeakAllocated: int64(pa), Reserved: int64(r), PeakReserved: int64(pr)}, nil
}

// CUDAResetPeak makes the peaks of CUDA device dev start again from the
// current values.
func CUDAResetPeak(dev int) error {
	if e := C.gt_cuda_reset_peak(C.int32_t(dev)); e != nil {
		return deviceError(fmt.Sprintf("CUDAResetPeak(%d)", dev), e)
	}
	return nil
}

// CUDAEmptyCache returns the allocator's cached, unused blocks to the
// driver.
func CUDAEmptyCache() error {
	if e := C.gt_cuda_empty_cache(); e != nil {
		return deviceError("CUDAEmptyCache", e)
	}
	return nil
}

// CUDAEvent is a recorded point in a CUDA device's stream of work; it must
// be freed with Free.
type CUDAEvent struct {
	p unsafe.Pointer // a cudaEvent_t; nil once freed
}

// RecordCUDAEvent puts a new event on the current stream of device dev.
func RecordCUDAEvent(dev int) (*CUDAEvent, error) {
	var p unsafe.Pointer
	if e := C.gt_cuda_event_record(C.int32_t(dev), &p); e != nil {
		return nil, deviceError(fmt.Sprintf("RecordCUDAEvent(%d)", dev), e)
	}
	return &CUDAEvent{p: p}, nil
}

// CUDAElapsed is the GPU time in milliseconds from start to end; it waits
// until end has happened.
func CUDAElapsed(start, end *CUDAEvent) (float64, error) {
	if start == nil || start.p == nil || end == nil || end.p == nil {
		return 0, &Error{Op: "CUDAElapsed", Msg: "nil or freed event", Err: ErrFreed}
	}
	var ms C.float
	if e := C.gt_cuda_event_elapsed(start.p, end.p, &ms); e != nil {
		return 0, deviceError("CUDAElapsed", e)
	}
	return float64(ms), nil
}

// Free releases the event. It is idempotent and safe on a nil event.
func (e *CUDAEvent) Free() {
	if e == nil || e.p == nil {
		return
	}
	C.gt_cuda_event_free(e.p)
	e.p = nil
}

// MPSSynchronize waits until all work queued on the MPS device has
// finished.
func MPSSynchronize() error {
	if e := C.gt_mps_synchronize(); e != nil {
		return deviceError("MPSSynchronize", e)
	}
	return nil
}

// MPSMemory is the number of bytes the MPS allocator has handed to
// tensors.
func MPSMemory() (int64, error) {
	var n C.int64_t
	if e := C.gt_mps_memory(&n); e != nil {
		return 0, deviceError("MPSMemory", e)
	}
	return int64(n), nil
}
