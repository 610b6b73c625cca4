package gotch

// #include "golens_torch.h"
import "C"

import "runtime"

// NoGrad runs fn with autograd recording off. libtorch keeps grad mode per
// OS thread, so NoGrad locks the calling goroutine to its thread while fn
// runs: other goroutines keep their own mode, and goroutines that fn starts
// record gradients as usual.
func NoGrad(fn func() error) error {
	return withGradMode(false, fn)
}

// EnableGrad runs fn with autograd recording on, for example a backward pass
// inside a NoGrad region.
func EnableGrad(fn func() error) error {
	return withGradMode(true, fn)
}

func withGradMode(enabled bool, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.gt_set_grad_enabled(cBool(enabled))
	defer C.gt_set_grad_enabled(prev)
	return fn()
}

// IsGradEnabled reports the grad mode of the calling goroutine's thread;
// meaningful inside NoGrad or EnableGrad, where the thread is locked.
func IsGradEnabled() bool {
	return C.gt_is_grad_enabled() != 0
}
