package hookedmodel

import (
	"slices"

	"github.com/golens/golens/gotch"
)

// Memory order of the weights
//
// Every matrix weight has nn.Linear's shape, [out in]: the shape Save
// writes, Parameters shows and an optimiser's moments take, and values
// and every call are the same whatever its memory order. Row-major
// (nn.Linear's order), x·W is a GEMM against the transposed weight, which
// OpenBLAS runs 5-13% slower when a row of the weight is a multiple of
// 1024 float32s (4 KiB: llama-1b's MLP and unembedding, pythia's and
// gemma2-2b's W_out) than against the weight stored [in out],
// TransformerLens's order; for other rows the two are within 3% either
// way (bench/RESULTS.md). So on the CPU a float32 MLP matrix or
// unembedding whose d_in is a multiple of 1024 is kept column-major;
// attention's matrices gained nothing, and the other devices and dtypes,
// unmeasured, keep the row-major order PyTorch's own models use.

// colMajorWeights are the weights the model may keep column-major.
func (m *HookedTransformer) colMajorWeights() []**gotch.Tensor {
	var ws []**gotch.Tensor
	for _, b := range m.Blocks {
		if p := b.MLP; p != nil {
			ws = append(ws, &p.WIn, &p.WOut)
			if p.gated {
				ws = append(ws, &p.WGate)
			}
		}
	}
	return append(ws, &m.WU)
}

// colMajor reports whether the model keeps dst's weight, of shape [out
// in], column-major.
func (m *HookedTransformer) colMajor(dst **gotch.Tensor, shape []int64) bool {
	return m.device.Type == gotch.CPUType && m.dtype == gotch.Float && len(shape) == 2 && shape[1]%1024 == 0 &&
		slices.Contains(m.colMajorWeights(), dst)
}

// arrange puts each matrix weight in the memory order the model keeps it
// in, copying only those not in it already (after loading the CPU's
// column-major ones in a chunk; after To, any), so that the tensors
// Parameters hands out stay the model's own. Under gotch.Try.
func (m *HookedTransformer) arrange() {
	for _, w := range m.colMajorWeights() {
		if *w == nil {
			continue
		}
		if col := m.colMajor(w, (*w).Shape()); !inOrder(*w, col) {
			old := *w
			*w = reordered(old, col)
			old.Free()
		}
	}
}

// inOrder reports whether w [r c]'s memory is column-major (col) or
// row-major; strides of size-1 dimensions do not matter, as in torch's
// is_contiguous.
func inOrder(w *gotch.Tensor, col bool) bool {
	st := must(w.Strides())
	r, c := w.Size(0), w.Size(1)
	if col {
		return (r == 1 || st[0] == 1) && (c == 1 || st[1] == r)
	}
	return (c == 1 || st[1] == 1) && (r == 1 || st[0] == c)
}

// reordered copies w into the order asked for: a new leaf that records
// gradients when w does.
func reordered(w *gotch.Tensor, col bool) *gotch.Tensor {
	var out *gotch.Tensor
	err := gotch.NoGrad(func() error {
		return gotch.Try(func() {
			s := gotch.NewScope()
			defer s.Close()
			if col {
				out = s.Keep(borrow(s, w).MustTranspose(0, 1).MustContiguous().MustTranspose(0, 1))
			} else {
				out = s.Keep(borrow(s, w).MustContiguous())
			}
		})
	})
	if err != nil {
		panic(err)
	}
	if w.RequiresGrad() {
		out.MustSetRequiresGrad_(true)
	}
	return out
}

// zerosFor is zeros of shape in the memory order the model keeps dst's
// weight in, for a load to copy into.
func (m *HookedTransformer) zerosFor(dst **gotch.Tensor, shape []int64) (*gotch.Tensor, error) {
	if !m.colMajor(dst, shape) {
		return gotch.Zeros(shape, m.dtype, m.device)
	}
	var w *gotch.Tensor
	err := gotch.Try(func() {
		s := gotch.NewScope()
		defer s.Close()
		w = s.Keep(s.Attach(gotch.MustZeros([]int64{shape[1], shape[0]}, m.dtype, m.device)).MustTranspose(0, 1))
	})
	return w, err
}
