// Package cuda exposes what golens needs from a CUDA device beyond running
// tensors on it: availability, properties, synchronisation, the caching
// allocator's memory statistics and timing events.
//
// It is a thin layer over the CUDA entry points of the golens shim
// (gotch/csrc/golens_torch.h); tensors themselves live in package gotch.
// The shim has these entry points only when ./build.sh found a libtorch with
// CUDA and the CUDA runtime headers. Otherwise every call returns an error
// that wraps ErrNotCompiled; a call about a device that is not there returns
// one that wraps ErrUnavailable. Test for them with errors.Is and fall back
// to the CPU:
//
//	if _, err := cuda.Memory(0); errors.Is(err, cuda.ErrNotCompiled) || errors.Is(err, cuda.ErrUnavailable) {
//		// no CUDA statistics here
//	}
//
// Most programs choose their device with package backend, which uses this
// package to say why CUDA cannot be used.
package cuda
