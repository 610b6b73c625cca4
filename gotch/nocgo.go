//go:build !cgo

package gotch

// Built without cgo, golens has no libtorch: these stand in for the calls
// into the shim of cgo.go, devices_cgo.go and blas_threads_cgo.go (and
// ops_nocgo_gen.go for the ops), so that every package compiles and each
// entry point returns an error wrapping ErrNoCgo, which says how to get a
// build that works. What cannot return an error returns its zero value (or
// -1 for BLASThreads). No tensor or generator can be made, so what takes
// one never reaches these.

import "unsafe"

const cgoEnabled = false

// noCgo is the error of op in a build without cgo.
func noCgo(op string) error { return &Error{Op: op, Msg: ErrNoCgo.Error(), Err: ErrNoCgo} }

// libtorch.go

func torchVersion() string    { return "" }
func buildInfo() string       { return "" }
func hasFusedAttention() bool { return false }
func liveHandles() int64      { return 0 }
func setNumThreads(int) error { return noCgo("SetNumThreads") }
func numThreads() int         { return 0 }
func manualSeed(uint64) error { return noCgo("ManualSeed") }

// tensor.go, generator.go, data.go

func freeTensor(unsafe.Pointer)    {}
func freeGenerator(unsafe.Pointer) {}

func newGenerator(uint64) (*Generator, error) { return nil, noCgo("NewGenerator") }

func copyFrom(unsafe.Pointer, []int64, DType, Device) (*Tensor, error) {
	return nil, noCgo("FromSlice")
}

func copyTo(*Tensor, unsafe.Pointer, int, DType) error { return noCgo("ToSlice") }

// grad.go, device.go

func withGradMode(enabled bool, _ func() error) error {
	if enabled {
		return noCgo("EnableGrad")
	}
	return noCgo("NoGrad")
}

func isGradEnabled() bool       { return false }
func hasDevice(DeviceType) bool { return false }

// devices.go

func cudaDeviceCount() int                                { return 0 }
func cudaProperties(int) (CUDAProps, error)               { return CUDAProps{}, noCgo("CUDAProperties") }
func cudaSynchronize(int) error                           { return noCgo("CUDASynchronize") }
func cudaMemory(int) (CUDAMemoryStats, error)             { return CUDAMemoryStats{}, noCgo("CUDAMemory") }
func cudaResetPeak(int) error                             { return noCgo("CUDAResetPeak") }
func cudaEmptyCache() error                               { return noCgo("CUDAEmptyCache") }
func recordCUDAEvent(int) (*CUDAEvent, error)             { return nil, noCgo("RecordCUDAEvent") }
func cudaElapsed(*CUDAEvent, *CUDAEvent) (float64, error) { return 0, noCgo("CUDAElapsed") }
func freeCUDAEvent(unsafe.Pointer)                        {}
func mpsSynchronize() error                               { return noCgo("MPSSynchronize") }
func mpsMemory() (int64, error)                           { return 0, noCgo("MPSMemory") }

// blas_threads.go

func blasThreads() int        { return -1 }
func setBLASThreads(int) bool { return false }
