package gotch

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// Tensor is a handle to a libtorch tensor. Its shape, dtype and device are
// known on the Go side, so asking for them costs no crossing.
//
// A Tensor must be freed: by Free, or by closing the Scope it belongs to.
// Using it afterwards returns an error wrapping ErrFreed. Free may race
// with ops on the tensor in other goroutines: an op that started before it
// finishes on the tensor, whose handle goes when the last such op returns,
// and one that starts after it returns ErrFreed. (In-place ops still must
// not race with other uses of the tensor: they change its values and shape.)
type Tensor struct {
	h            ref // the C.gt_tensor
	cleanup      runtime.Cleanup
	shape        []int64
	dtype        DType
	device       Device
	requiresGrad bool
	scope        atomic.Pointer[Scope] // see Scope for who may change it
}

var gcFreed atomic.Int64

// GCFreed counts the tensors that were never freed and were reclaimed by
// the garbage collector's safety net. Correct code keeps it at zero.
func GCFreed() int64 { return gcFreed.Load() }

// Free releases the tensor's handle, at once or, while ops on it run in
// other goroutines, when the last of them returns; the memory goes when
// nothing else (a view, the autograd graph) refers to it. Free is
// idempotent and safe on a nil Tensor.
func (t *Tensor) Free() {
	if t == nil || !t.h.release() {
		return
	}
	t.cleanup.Stop()
	t.h.drop(freeTensor)
}

// pin keeps t's handle alive for a call into the shim; it reports false
// once t is freed. unpin ends it, and frees the handle when t was freed
// during the call. cgo.go converts the pinned handle (ptr) for the shim.
func (t *Tensor) pin() bool { return t.h.pin(freeTensor) }

func (t *Tensor) unpin() {
	if t != nil {
		t.h.unpin(freeTensor)
	}
}

// Freed reports whether Free was called (directly or by a Scope).
func (t *Tensor) Freed() bool { return t == nil || t.h.released() }

// Shape returns a copy of the sizes.
func (t *Tensor) Shape() []int64 { return append([]int64(nil), t.shape...) }

// Dim is the number of dimensions.
func (t *Tensor) Dim() int { return len(t.shape) }

// Size is the size of dimension d; negative d counts from the end.
func (t *Tensor) Size(d int) int64 {
	if d < 0 {
		d += len(t.shape)
	}
	return t.shape[d]
}

// Numel is the number of elements.
func (t *Tensor) Numel() int64 { return numel(t.shape) }

// DType is the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Device is where the tensor lives.
func (t *Tensor) Device() Device { return t.device }

// RequiresGrad reports whether autograd records operations on the tensor.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// Version is the tensor's version counter, torch's t._version(): each
// in-place write to the tensor or to a view of the same storage increments
// it, so a value computed from a tensor is stale when its version moved.
func (t *Tensor) Version() (int64, error) { return tensorVersion(t) }

// Strides are the steps in elements between neighbours along each
// dimension, torch's t.stride(): they say the memory order (a transpose
// is a view with the strides swapped, MustContiguous a copy in row-major
// order).
func (t *Tensor) Strides() ([]int64, error) { return tensorStrides(t) }

// Scope is the scope that owns the tensor, or nil.
func (t *Tensor) Scope() *Scope { return t.scope.Load() }

func (t *Tensor) spec() string {
	s := fmt.Sprintf("%s%v %s", t.dtype, t.shape, t.device)
	if t.Freed() {
		s += " (freed)"
	}
	return s
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, s := range shape {
		n *= s
	}
	return n
}
