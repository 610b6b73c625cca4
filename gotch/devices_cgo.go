//go:build cgo

package gotch

// #include "golens_torch.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// The device calls of devices.go, through the shim.

// deviceError converts and frees a device call's error.
func deviceError(what string, e C.gt_error) error { return opError(what, e) }

func cudaDeviceCount() int { return int(C.gt_cuda_device_count()) }

func cudaProperties(dev int) (CUDAProps, error) {
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

func cudaSynchronize(dev int) error {
	if e := C.gt_cuda_synchronize(C.int32_t(dev)); e != nil {
		return deviceError(fmt.Sprintf("CUDASynchronize(%d)", dev), e)
	}
	return nil
}

func cudaMemory(dev int) (CUDAMemoryStats, error) {
	var a, pa, r, pr C.int64_t
	if e := C.gt_cuda_memory(C.int32_t(dev), &a, &pa, &r, &pr); e != nil {
		return CUDAMemoryStats{}, deviceError(fmt.Sprintf("CUDAMemory(%d)", dev), e)
	}
	return CUDAMemoryStats{Allocated: int64(a), PeakAllocated: int64(pa), Reserved: int64(r), PeakReserved: int64(pr)}, nil
}

func cudaResetPeak(dev int) error {
	if e := C.gt_cuda_reset_peak(C.int32_t(dev)); e != nil {
		return deviceError(fmt.Sprintf("CUDAResetPeak(%d)", dev), e)
	}
	return nil
}

func cudaEmptyCache() error {
	if e := C.gt_cuda_empty_cache(); e != nil {
		return deviceError("CUDAEmptyCache", e)
	}
	return nil
}

func recordCUDAEvent(dev int) (*CUDAEvent, error) {
	var p unsafe.Pointer
	if e := C.gt_cuda_event_record(C.int32_t(dev), &p); e != nil {
		return nil, deviceError(fmt.Sprintf("RecordCUDAEvent(%d)", dev), e)
	}
	return &CUDAEvent{p: p}, nil
}

// cudaElapsed has events that are not nil and not freed.
func cudaElapsed(start, end *CUDAEvent) (float64, error) {
	var ms C.float
	if e := C.gt_cuda_event_elapsed(start.p, end.p, &ms); e != nil {
		return 0, deviceError("CUDAElapsed", e)
	}
	return float64(ms), nil
}

func freeCUDAEvent(p unsafe.Pointer) { C.gt_cuda_event_free(p) }

func mpsSynchronize() error {
	if e := C.gt_mps_synchronize(); e != nil {
		return deviceError("MPSSynchronize", e)
	}
	return nil
}

func mpsMemory() (int64, error) {
	var n C.int64_t
	if e := C.gt_mps_memory(&n); e != nil {
		return 0, deviceError("MPSMemory", e)
	}
	return int64(n), nil
}
