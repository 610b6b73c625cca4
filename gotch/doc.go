// Package gotch is golens's Go binding over libtorch's ATen: tensors,
// dtypes and devices, the ops a transformer and its analysis need, autograd,
// and explicit memory ownership.
//
// Every op crosses into libtorch through a small C ABI (csrc/golens_torch.h),
// whose C++ cgo compiles into the package (shim.cpp; cgo.go says how it
// finds libtorch). Built without cgo (CGO_ENABLED=0), gotch and everything
// above it still compile, with the same API, but every op and entry point
// returns an error wrapping ErrNoCgo, which says how to get a build that
// has libtorch (Available checks up front). An op comes in two forms:
// x.Matmul(y) returns (*Tensor, error), and x.MustMatmul(y) panics with a
// *Error; model code uses the Must forms inside a function that recovers
// them with Try, so library callers always get an error.
//
// Memory is owned explicitly. A tensor holds libtorch memory, possibly on a
// GPU, that Go's garbage collector cannot see. The rule: a tensor made from
// a tensor of a Scope joins that scope and is freed when it closes (the
// newest scope, when operands belong to several); every other tensor you
// make is yours to Free. A finalizer frees a
// forgotten tensor as a last resort and counts it (GCFreed), so tests can
// prove that nothing relied on it. Freeing a tensor (or closing its scope)
// while other goroutines run ops on it is safe: each op holds the tensor's
// handle for the length of its call into libtorch, the handle goes when the
// last such op returns, and an op that starts after the Free returns an
// error wrapping ErrFreed.
//
// Printing a tensor (String) shows its values as torch's print does,
// summarising one of more than 1000 elements with "..."; Spec describes it
// by dtype, shape and device without reading it, and is what errors use.
// AllClose compares two tensors as torch.allclose, and gotchtest's
// TensorClose reports where and by how much two tensors differ.
//
// Grad mode is per OS thread in libtorch; NoGrad locks the goroutine to its
// thread for the duration, so concurrent goroutines never see each other's
// mode.
//
// A goroutine that makes a long series of ops should offer a Yielder's
// Yield between them, so that Go's scheduler does not take it for a stuck
// one and preempt it inside every op.
//
// An extension runs a program's own ATen code on golens's tensors: a C++
// library built against libtorch and csrc/golens_torch_ext.h (its header
// opens with a worked example), which reaches a tensor's at::Tensor through
// gt_ext_tensor and turns C++ exceptions into returned messages.
// OpenExtension loads it, checking that it was built against this golens's
// torch version; Extension.Call runs one of its functions on tensors and
// integers, with golens's intra-op thread count applied to the calling
// thread. bench/floor's C++ forward is one.
package gotch

//go:generate go run ./internal/opgen
