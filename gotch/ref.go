package gotch

import (
	"sync/atomic"
	"unsafe"
)

// ref is a C handle (a tensor's, a generator's) that goroutines may use and
// free at the same time. A call into the shim pins the handle for the
// call's length, and whichever comes last, the release (Free) or the last
// pin's end, frees it. Without this an op could load the handle, lose its
// core to a Free in another goroutine, and hand the shim freed memory.
//
// state counts the pins, in units of refPin, above two flags: released
// (Free was called) and dropped (the handle is freed). A pin is one atomic
// add, undone when it finds the handle released, so the fast path never
// loops; only the compare-and-swap to dropped frees, so exactly one
// goroutine does.
type ref struct {
	p     unsafe.Pointer // fixed when the handle is made
	state atomic.Int64
}

const (
	refReleased = 1 << iota
	refDropped
	refPin
)

// pin reports whether the handle is still there, and keeps it there until
// unpin if so. A zero ref (a zero Tensor) has none.
func (r *ref) pin(free func(unsafe.Pointer)) bool {
	if r.p == nil {
		return false
	}
	if r.state.Add(refPin)&refReleased == 0 {
		return true
	}
	r.unpin(free)
	return false
}

func (r *ref) unpin(free func(unsafe.Pointer)) {
	if r.state.Add(-refPin) == refReleased {
		r.drop(free)
	}
}

// release marks the handle released; it reports false when it already was,
// or when there is none. The caller then drops it, which frees it unless
// pins remain.
func (r *ref) release() bool { return r.p != nil && r.state.Or(refReleased)&refReleased == 0 }

func (r *ref) drop(free func(unsafe.Pointer)) {
	if r.state.CompareAndSwap(refReleased, refReleased|refDropped) {
		free(r.p)
	}
}

func (r *ref) released() bool { return r.p == nil || r.state.Load()&refReleased != 0 }
