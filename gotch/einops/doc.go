// Package einops reshapes, reduces, repeats and contracts gotch tensors by
// named-axis patterns, as the Python einops package does, so that
// TransformerLens code written with einops ports line for line:
//
//	einops.rearrange(q, "b p (h d) -> b h p d", h=12)
//	einops.reduce(x, "b p d -> b d", "mean")
//	einops.repeat(v, "d -> b d", b=4)
//	einops.einsum(resid, W_U, "batch pos d_model, d_model d_vocab -> batch pos d_vocab")
//
// become
//
//	einops.Rearrange(q, "b p (h d) -> b h p d", einops.Size("h", 12))
//	einops.Reduce(x, "b p d -> b d", einops.Mean)
//	einops.Repeat(v, "d -> b d", einops.Size("b", 4))
//	einops.Einsum("batch pos d_model, d_model d_vocab -> batch pos d_vocab", resid, wU)
//
// # Patterns
//
// A pattern is "left -> right", each side a list of dims separated by
// spaces, following einops's rules. A dim is an axis name (an identifier
// that neither starts nor ends with "_"), a number (an anonymous axis of
// that size; each is distinct from every other), 1 or () (a unit dim), or
// a parenthesised composition of axes, one level deep, whose elements are
// enumerated in row-major order ("(h d)": d varies fastest). "..." stands
// for the dims the rest of the left side leaves over, at most once a side,
// and may be composed on the right ("b ... -> b (...)"). An axis appears at
// most once a side. Rearrange needs the same axes on both sides, Repeat's
// right side may add axes (each named one needs a Size), and Reduce's may
// drop axes, which it reduces. Sizes are inferred from the tensor: every
// dim may have one axis whose size is not given. Einsum's patterns are
// described at Einsum.
//
// Every call checks the pattern, the given sizes and the tensor's shape
// before it runs an op, and returns an error naming what is wrong; an op's
// own failure (out of memory, say) comes back wrapped. None panics.
//
// # Memory
//
// The input is never freed. Each call returns a new tensor handle that the
// caller frees (or a Scope frees: like any op's result, it joins its
// input's Scope), and frees every tensor it made along the way. Where
// torch's view semantics allow it, the result is a view that shares the
// input's memory, as the Python einops's is.
//
// The package uses only gotch's public API, so it builds with
// CGO_ENABLED=0 too, where, as for gotch, no tensor can be made.
package einops
