// Package cuda exposes what golens needs from a CUDA device beyond running
// tensors on it: availability, properties, synchronisation, the caching
// allocator's memory statistics and timing events.
//
// It is plain Go over package gotch's CUDA calls (gotch is the one package
// that crosses into C); tensors themselves live in gotch too. They work
// when golens was built with the tag cuda against a CUDA libtorch.
// Otherwise every call returns an error that wraps ErrNotCompiled; a call
// about a device that is not there returns one that wraps ErrUnavailable,
// as gotch's error code for the failure says. Test for them with errors.Is and fall back
// to the CPU:
//
//	if _, err := cuda.Memory(0); errors.Is(err, cuda.ErrNotCompiled) || errors.Is(err, cuda.ErrUnavailable) {
//		// no CUDA statistics here
//	}
//
// Most programs choose their device with package backend, which uses this
// package to say why CUDA cannot be used.
package cuda
