package gotch

import "unsafe"

// Device specifics below are the shim's CUDA and MPS calls, for packages
// cuda and metal to build on: gotch is the one package that crosses into
// C (devices_cgo.go). An error wraps ErrNotCompiled when this build lacks
// the device's support, ErrNoDevice when the device is not there, and
// ErrNoCgo in a build without cgo, where the counts are 0.

// CUDADeviceCount is the number of CUDA devices libtorch sees; 0 without
// CUDA.
func CUDADeviceCount() int { return cudaDeviceCount() }

// CUDAProps describes a CUDA device.
type CUDAProps struct {
	Name         string // e.g. "NVIDIA H100 80GB HBM3"
	Major, Minor int    // compute capability, e.g. 9 and 0
	TotalMemory  int64  // bytes
}

// CUDAProperties describes CUDA device dev.
func CUDAProperties(dev int) (CUDAProps, error) { return cudaProperties(dev) }

// CUDASynchronize waits until all work queued on CUDA device dev has
// finished.
func CUDASynchronize(dev int) error { return cudaSynchronize(dev) }

// CUDAMemoryStats are the caching allocator's statistics for one device,
// in bytes. Reserved memory includes cached blocks that tensors no longer
// use; peaks count from the last CUDAResetPeak.
type CUDAMemoryStats struct {
	Allocated, PeakAllocated int64
	Reserved, PeakReserved   int64
}

// CUDAMemory reads the allocator's statistics of CUDA device dev.
func CUDAMemory(dev int) (CUDAMemoryStats, error) { return cudaMemory(dev) }

// CUDAResetPeak makes the peaks of CUDA device dev start again from the
// current values.
func CUDAResetPeak(dev int) error { return cudaResetPeak(dev) }

// CUDAEmptyCache returns the allocator's cached, unused blocks to the
// driver.
func CUDAEmptyCache() error { return cudaEmptyCache() }

// CUDAEvent is a recorded point in a CUDA device's stream of work; it must
// be freed with Free.
type CUDAEvent struct {
	p unsafe.Pointer // a cudaEvent_t; nil once freed
}

// RecordCUDAEvent puts a new event on the current stream of device dev.
func RecordCUDAEvent(dev int) (*CUDAEvent, error) { return recordCUDAEvent(dev) }

// CUDAElapsed is the GPU time in milliseconds from start to end; it waits
// until end has happened.
func CUDAElapsed(start, end *CUDAEvent) (float64, error) {
	if start == nil || start.p == nil || end == nil || end.p == nil {
		return 0, &Error{Op: "CUDAElapsed", Msg: "nil or freed event", Err: ErrFreed}
	}
	return cudaElapsed(start, end)
}

// Free releases the event. It is idempotent and safe on a nil event.
func (e *CUDAEvent) Free() {
	if e == nil || e.p == nil {
		return
	}
	freeCUDAEvent(e.p)
	e.p = nil
}

// MPSSynchronize waits until all work queued on the MPS device has
// finished.
func MPSSynchronize() error { return mpsSynchronize() }

// MPSMemory is the number of bytes the MPS allocator has handed to
// tensors.
func MPSMemory() (int64, error) { return mpsMemory() }
