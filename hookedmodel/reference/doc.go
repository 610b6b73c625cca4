// Package reference is a float64 HookedTransformer forward pass written in
// plain Go, independent of libtorch: the yardstick golens's own numbers are
// checked against, in hookedmodel's tests and in every row of the benchmark
// harness (bench). It follows TransformerLens's definitions step by step
// and returns every hook activation under its TransformerLens name.
//
// It is slow on purpose (plain loops, no BLAS): use it on small inputs.
package reference
