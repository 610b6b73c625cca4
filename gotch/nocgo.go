//go:build !cgo

package gotch

// Built without cgo, golens has no libtorch: these stand in for the calls
// into the shim of cgo.go, devices_cgo.go and blas_threads_cgo.go (and
// ops_nocgo_gen.go for the ops), so that every package compiles and each
// entry point returns an error wrapping ErrNoCgo, which says how to get a
// build that works. What cannot return an error returns its zero value (or
// -1 for BLASThreads). No tensor or generator can be made, so what takes
// one never reaches these.

import (
	"time"
	"unsafe"
)

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

func copyFrom(unsafe.Pointer, []int64, DType, DType, Device) (*Tensor, error) {
	return nil, noCgo("FromSlice")
}

func copyTo(*Tensor, unsafe.Pointer, int, DType) error { return noCgo("ToSlice") }

func tensorVersion(*Tensor) (int64, error)   { return 0, noCgo("Version") }
func tensorStrides(*Tensor) ([]int64, error) { return nil, noCgo("Strides") }

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

// dist.go

func hasDistBackend(int) bool { return false }

func storeTCP(string, int, bool, time.Duration) (unsafe.Pointer, int, error) {
	return nil, 0, noCgo("NewTCPStore")
}

func storeFile(string, int, time.Duration) (unsafe.Pointer, error) {
	return nil, noCgo("NewFileStore")
}

// No store, group or work can be made, so these are never reached.

func storePrefix(unsafe.Pointer, string) (unsafe.Pointer, error) { return nil, noCgo("Store.Prefixed") }
func freeStore(unsafe.Pointer)                                   {}
func storeSet(unsafe.Pointer, string, []byte) error              { return noCgo("Store.Set") }
func storeGet(unsafe.Pointer, string) ([]byte, error)            { return nil, noCgo("Store.Get") }
func storeAdd(unsafe.Pointer, string, int64) (int64, error)      { return 0, noCgo("Store.Add") }
func storeCheck(unsafe.Pointer, string) (bool, error)            { return false, noCgo("Store.Has") }
func pgNew(unsafe.Pointer, int, GroupOptions) (unsafe.Pointer, error) {
	return nil, noCgo("NewProcessGroup")
}
func pgSetSequence(unsafe.Pointer) error { return noCgo("SetSequenceNumber") }
func freeProcessGroup(unsafe.Pointer)    {}
func pgAllReduce(unsafe.Pointer, unsafe.Pointer, ReduceOp) (unsafe.Pointer, error) {
	return nil, noCgo("AllReduce")
}
func pgBroadcast(unsafe.Pointer, unsafe.Pointer, int) (unsafe.Pointer, error) {
	return nil, noCgo("Broadcast")
}
func pgAllGather(unsafe.Pointer, []unsafe.Pointer, unsafe.Pointer) (unsafe.Pointer, error) {
	return nil, noCgo("AllGather")
}
func pgReduceScatter(unsafe.Pointer, unsafe.Pointer, []unsafe.Pointer, ReduceOp) (unsafe.Pointer, error) {
	return nil, noCgo("ReduceScatter")
}
func pgBarrier(unsafe.Pointer) (unsafe.Pointer, error) { return nil, noCgo("Barrier") }
func pgSend(unsafe.Pointer, unsafe.Pointer, int, int) (unsafe.Pointer, error) {
	return nil, noCgo("Send")
}
func pgRecv(unsafe.Pointer, unsafe.Pointer, int, int) (unsafe.Pointer, error) {
	return nil, noCgo("Recv")
}
func workWait(unsafe.Pointer) error { return noCgo("Work.Wait") }
func freeWork(unsafe.Pointer)       {}
