// Package backend chooses the device golens computes on and says what it
// can do there.
//
// Resolve takes the spelling a user gives: "cpu", "cuda" (cuda:0),
// "cuda:N", "mps", or "auto", which picks cuda:0, then MPS, then the CPU.
// A device that cannot be used is refused with an error that says why (a
// libtorch without CUDA, no CUDA device N, MPS off macOS, a torch with known
// wrong MPS results) and wraps a sentinel from package cuda, package metal
// or this package, for errors.Is.
//
// A Backend carries its Capabilities as data: for each floating-point
// dtype, whether tensors and the core ops (matmul, softmax, layer_norm) run
// there, measured on the device when it is resolved, plus fused attention,
// bfloat16 matmul and TF32. Supports turns that into an error wrapping
// ErrNotSupported. Measured with Debian's libtorch 1.13.1 on the CPU:
//
//	dtype     tensors  matmul  softmax  layer_norm
//	float32   yes      yes     yes      yes
//	float64   yes      yes     yes      yes
//	bfloat16  yes      yes     yes      yes
//	float16   yes      no      no       no    (add, mul and sum run; exp and gelu do not)
//
// A device can also compute wrong numbers without any error, as MPS has in
// some torch releases. SelfCheck compares a small matmul, softmax and
// layer_norm on the device against the CPU, and WithSelfCheck makes
// Resolve run it: "auto" then passes over a device that fails.
package backend
