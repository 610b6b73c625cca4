package gotch

// NoGrad runs fn with autograd recording off. libtorch keeps grad mode per
// OS thread, so NoGrad locks the calling goroutine to its thread while fn
// runs: other goroutines keep their own mode, and goroutines that fn starts
// record gradients as usual. Without cgo it returns an error wrapping
// ErrNoCgo and does not run fn (nor does EnableGrad).
func NoGrad(fn func() error) error {
	return withGradMode(false, fn)
}

// EnableGrad runs fn with autograd recording on, for example a backward pass
// inside a NoGrad region.
func EnableGrad(fn func() error) error {
	return withGradMode(true, fn)
}

// IsGradEnabled reports the grad mode of the calling goroutine's thread;
// meaningful inside NoGrad or EnableGrad, where the thread is locked.
// Without cgo it is false.
func IsGradEnabled() bool { return isGradEnabled() }
