package hookedmodel

import (
	"fmt"
	"slices"

	"github.com/golens/golens/gotch"
)

// FactoredMatrix is TransformerLens's FactoredMatrix: the product A·B of
// A [... ldim mdim] and B [... mdim rdim], kept as its two factors. A
// head's QK and OV circuits are [d_model d_model] matrices of rank d_head;
// through the factors their products, SVD, eigenvalues and norm cost
// O(d_model·d_head²) where the dense matrix would cost O(d_model³).
//
// The leading dims (e.g. [layer head]) broadcast as in torch.matmul: the
// matrix holds A and B expanded to their common leading shape.
//
// A FactoredMatrix holds its own handles (views) of the tensors it was
// made from, so the caller keeps and frees those as before; writing into
// them in place changes the matrix. Free releases the matrix's handles.
// Every tensor and FactoredMatrix a method returns is new and the
// caller's to free. Methods only read the factors and may run
// concurrently.
type FactoredMatrix struct {
	a *gotch.Tensor // [... ldim mdim]
	b *gotch.Tensor // [... mdim rdim]
}

// NewFactoredMatrix is the product a·b of a [... ldim mdim] and b [...
// mdim rdim], whose leading dims broadcast.
func NewFactoredMatrix(a, b *gotch.Tensor) (*FactoredMatrix, error) {
	if a == nil || b == nil || a.Dim() < 2 || b.Dim() < 2 {
		return nil, fmt.Errorf("factored matrix: factors must be matrices [... ldim mdim] and [... mdim rdim], got %s and %s", shapeOf(a), shapeOf(b))
	}
	if a.Size(-1) != b.Size(-2) {
		return nil, fmt.Errorf("factored matrix: inner dims differ: A %v, B %v", a.Shape(), b.Shape())
	}
	if _, err := broadcastShapes(leadDims(a), leadDims(b)); err != nil {
		return nil, fmt.Errorf("factored matrix: A %v, B %v: %w", a.Shape(), b.Shape(), err)
	}
	f, err := newFactored("new", []*gotch.Tensor{a, b}, func(in []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		return in[0], in[1]
	})
	if err != nil {
		return nil, fmt.Errorf("factored matrix: %w", err)
	}
	return f, nil
}

// Free releases the matrix's handles of its factors. It is idempotent.
func (f *FactoredMatrix) Free() {
	if f != nil {
		f.a.Free()
		f.b.Free()
	}
}

// A is the left factor [... ldim mdim], expanded to the leading shape. It
// is lent: it belongs to the matrix (do not free it) and is in no scope,
// so ops on it make tensors that are yours.
func (f *FactoredMatrix) A() *gotch.Tensor { return f.a }

// B is the right factor [... mdim rdim], expanded to the leading shape. It
// is lent, as A is.
func (f *FactoredMatrix) B() *gotch.Tensor { return f.b }

// Shape is the shape of the product: [... ldim rdim].
func (f *FactoredMatrix) Shape() []int64 { return append(leadDims(f.a), f.LDim(), f.RDim()) }

// Ndim is the number of dims of the product, leading dims included.
func (f *FactoredMatrix) Ndim() int { return f.a.Dim() }

// LDim is the number of rows of the product.
func (f *FactoredMatrix) LDim() int64 { return f.a.Size(-2) }

// MDim is the inner dim: the factors' shared size, an upper bound on the
// product's rank.
func (f *FactoredMatrix) MDim() int64 { return f.a.Size(-1) }

// RDim is the number of columns of the product.
func (f *FactoredMatrix) RDim() int64 { return f.b.Size(-1) }

// AB is the dense product [... ldim rdim]: expensive where ldim and rdim
// are large (d_vocab, or d_model for every head).
func (f *FactoredMatrix) AB() (*gotch.Tensor, error) {
	return f.one("AB", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) *gotch.Tensor { return a.MustMatmul(b) })
}

// BA is the reverse product [... mdim mdim], defined when the product is
// square (ldim == rdim).
func (f *FactoredMatrix) BA() (*gotch.Tensor, error) {
	if err := f.square("BA"); err != nil {
		return nil, err
	}
	return f.one("BA", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) *gotch.Tensor { return b.MustMatmul(a) })
}

// T is the transpose (A·B)ᵀ = Bᵀ·Aᵀ [... rdim ldim].
func (f *FactoredMatrix) T() (*FactoredMatrix, error) {
	return f.derive("T", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		return b.MustTranspose(-2, -1), a.MustTranspose(-2, -1)
	})
}

// SVD is the thin singular value decomposition A·B = U diag(S) Vh, with U
// [... ldim k], S [... k] descending and Vh [... k rdim], k = min(ldim,
// mdim, rdim), computed through the factors (see FactoredSVD). Vh is
// torch.linalg.svd's, the transpose of the V that TransformerLens's
// FactoredMatrix.Vh holds. 16-bit factors give float32 results.
func (f *FactoredMatrix) SVD() (u, s, vh *gotch.Tensor, err error) {
	out, err := f.apply("SVD", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) []*gotch.Tensor {
		u, s, vh := factoredSVD(a, b)
		return []*gotch.Tensor{u, s, vh}
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return out[0], out[1], out[2], nil
}

// Eigenvalues are the real and imaginary parts [... n] of the eigenvalues
// of a square product, n = min(ldim, mdim). When mdim < ldim they come
// from the small BA [mdim mdim]: if BA v = λv then AB (Av) = λ(Av), so AB
// has BA's eigenvalues and ldim − mdim zeros, which are left out.
// 16-bit factors give float32 results.
func (f *FactoredMatrix) Eigenvalues() (re, im *gotch.Tensor, err error) {
	if err := f.square("eigenvalues"); err != nil {
		return nil, nil, err
	}
	out, err := f.apply("eigenvalues", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) []*gotch.Tensor {
		a, b = forLinalg(a), forLinalg(b)
		m := a.MustMatmul(b) // [... ldim ldim]
		if f.MDim() < f.LDim() {
			m = b.MustMatmul(a) // [... mdim mdim]
		}
		re, im := m.MustEigvals()
		return []*gotch.Tensor{re, im}
	})
	if err != nil {
		return nil, nil, err
	}
	return out[0], out[1], nil
}

// Norm is the Frobenius norm of the product [...]. With A = Qa Ra and Bᵀ
// = Qb Rb (reduced QR), A·B = Qa (Ra Rbᵀ) Qbᵀ and orthonormal Qa, Qb keep
// norms, so the norm is that of the small Ra Rbᵀ: neither the dense
// product nor an SVD is needed. 16-bit factors give a float32 result.
func (f *FactoredMatrix) Norm() (*gotch.Tensor, error) {
	return f.one("norm", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) *gotch.Tensor {
		_, ra := forLinalg(a).MustQr("r")                       // [... min(ldim,mdim) mdim]
		_, rb := forLinalg(b).MustTranspose(-2, -1).MustQr("r") // [... min(rdim,mdim) mdim]
		return ra.MustMatmul(rb.MustTranspose(-2, -1)).MustVectorNorm(2, []int64{-2, -1}, false)
	})
}

// Corner is the top-left k×k block of the dense product [... k k] (fewer
// rows or columns where the product has fewer), computed from k rows of A
// and k columns of B. TransformerLens's get_corner also cuts the leading
// dims to k; Get selects them here.
func (f *FactoredMatrix) Corner(k int64) (*gotch.Tensor, error) {
	if k < 1 {
		return nil, fmt.Errorf("factored matrix %v: corner size %d, want at least 1", f.Shape(), k)
	}
	n := int64(f.Ndim())
	return f.one("corner", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) *gotch.Tensor {
		rows := a.MustNarrow(n-2, 0, min(k, f.LDim()))
		return rows.MustMatmul(b.MustNarrow(n-1, 0, min(k, f.RDim())))
	})
}

// CollapseL is TransformerLens's collapse_l: diag(S) Vh [... k rdim], the
// product with its orthonormal left factor U removed.
func (f *FactoredMatrix) CollapseL() (*gotch.Tensor, error) {
	return f.one("CollapseL", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) *gotch.Tensor {
		_, s, vh := factoredSVD(a, b)
		return vh.MustMul(s.MustUnsqueeze(-1))
	})
}

// CollapseR is TransformerLens's collapse_r: U diag(S) [... ldim k], the
// product with its orthonormal right factor Vh removed.
func (f *FactoredMatrix) CollapseR() (*gotch.Tensor, error) {
	return f.one("CollapseR", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) *gotch.Tensor {
		u, s, _ := factoredSVD(a, b)
		return u.MustMul(s.MustUnsqueeze(-2))
	})
}

// MakeEven refactors the same product as U√S · √S Vh: each factor carries
// half of every singular value, and each has orthogonal columns (rows).
func (f *FactoredMatrix) MakeEven() (*FactoredMatrix, error) {
	return f.derive("MakeEven", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		return evenFactors(a, b)
	})
}

// Mul is the product A·B·m with a plain matrix m [... rdim n]. As in
// TransformerLens the inner dim stays the smaller of mdim and rdim: m
// joins B when rdim > mdim, else the result is (A·B)·m.
func (f *FactoredMatrix) Mul(m *gotch.Tensor) (*FactoredMatrix, error) {
	if err := f.fits("Mul", m, m != nil && m.Dim() >= 2 && m.Size(-2) == f.RDim()); err != nil {
		return nil, err
	}
	return f.derive("Mul", []*gotch.Tensor{m}, func(a, b *gotch.Tensor, x []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		return mulRight(a, b, x[0])
	})
}

// LeftMul is the product m·A·B with a plain matrix m [... n ldim]; m
// joins A when ldim > mdim, else the result is m·(A·B).
func (f *FactoredMatrix) LeftMul(m *gotch.Tensor) (*FactoredMatrix, error) {
	if err := f.fits("LeftMul", m, m != nil && m.Dim() >= 2 && m.Size(-1) == f.LDim()); err != nil {
		return nil, err
	}
	return f.derive("LeftMul", []*gotch.Tensor{m}, func(a, b *gotch.Tensor, x []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		if a.Size(-2) > a.Size(-1) {
			return x[0].MustMatmul(a), b
		}
		return x[0], a.MustMatmul(b)
	})
}

// MulFactored is the product of f and g, (f·g.A)·g.B, each step keeping
// the inner dim small as Mul does.
func (f *FactoredMatrix) MulFactored(g *FactoredMatrix) (*FactoredMatrix, error) {
	if g == nil {
		return nil, fmt.Errorf("factored matrix %v: MulFactored by nil", f.Shape())
	}
	if err := f.fits("MulFactored", g.a, g.LDim() == f.RDim()); err != nil {
		return nil, err
	}
	return f.derive("MulFactored", []*gotch.Tensor{g.a, g.b}, func(a, b *gotch.Tensor, x []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		a, b = mulRight(a, b, x[0])
		return mulRight(a, b, x[1])
	})
}

// Get selects along the leading dims, as f[index...] in TransformerLens
// where the index covers only leading dims: on a [layer head ...] matrix,
// Get(l) is layer l's heads and Get(l, h) one head. Negative indices count
// from the end.
func (f *FactoredMatrix) Get(index ...int64) (*FactoredMatrix, error) {
	dims := leadDims(f.a)
	if len(index) > len(dims) {
		return nil, fmt.Errorf("factored matrix %v: index %v has more entries than the %d leading dims", f.Shape(), index, len(dims))
	}
	at := slices.Clone(index)
	for i, ix := range at {
		if ix < -dims[i] || ix >= dims[i] {
			return nil, fmt.Errorf("factored matrix %v: index %d out of range for dim %d of size %d", f.Shape(), ix, i, dims[i])
		}
		if ix < 0 {
			at[i] += dims[i]
		}
	}
	return f.derive("Get", nil, func(a, b *gotch.Tensor, _ []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		for _, ix := range at {
			a, b = a.MustSelect(0, ix), b.MustSelect(0, ix)
		}
		return a, b
	})
}

// Rows is the product's rows idx [... len(idx) rdim], TransformerLens's
// f[..., idx, :], taken from those rows of A alone: the dense product is
// never formed. Indices may repeat and come in any order; negative ones
// count from the end. A single index keeps its dim at size 1, as
// TransformerLens's does (it turns f[..., i, :] into f[..., i:i+1, :]), so
// the result is always a FactoredMatrix; no index selects no rows.
func (f *FactoredMatrix) Rows(idx ...int64) (*FactoredMatrix, error) {
	return f.pick("Rows", rowAxis, idx)
}

// Cols is the product's columns idx [... ldim len(idx)],
// TransformerLens's f[..., :, idx], taken from those columns of B alone;
// indices as for Rows.
func (f *FactoredMatrix) Cols(idx ...int64) (*FactoredMatrix, error) {
	return f.pick("Cols", colAxis, idx)
}

// RowRange is rows lo ≤ i < hi of the product [... hi-lo rdim],
// TransformerLens's f[..., lo:hi, :], a view of those rows of A. Negative
// bounds count from the end. Unlike a Python slice, and like a Go one, a
// bound outside the matrix or lo > hi is an error rather than clamped.
func (f *FactoredMatrix) RowRange(lo, hi int64) (*FactoredMatrix, error) {
	return f.span("RowRange", rowAxis, lo, hi)
}

// ColRange is columns lo ≤ j < hi of the product [... ldim hi-lo],
// TransformerLens's f[..., :, lo:hi], a view of those columns of B;
// bounds as for RowRange.
func (f *FactoredMatrix) ColRange(lo, hi int64) (*FactoredMatrix, error) {
	return f.span("ColRange", colAxis, lo, hi)
}

// matrixAxis is one of the product's two matrix dims, counted from the
// end: its rows live in A, its columns in B.
type matrixAxis int64

const (
	rowAxis matrixAxis = -2
	colAxis matrixAxis = -1
)

func (ax matrixAxis) String() string {
	if ax == rowAxis {
		return "rows"
	}
	return "columns"
}

// size is the product's extent along ax.
func (f *FactoredMatrix) size(ax matrixAxis) int64 {
	if ax == rowAxis {
		return f.LDim()
	}
	return f.RDim()
}

// position is index i along ax with a negative i counted from the end, or
// an error naming the dim and its size.
func (f *FactoredMatrix) position(op string, ax matrixAxis, i int64, bound bool) (int64, error) {
	n := f.size(ax)
	limit := n - 1 // an index names an element; a range bound may be n
	if bound {
		limit = n
	}
	if i < -n || i > limit {
		return 0, fmt.Errorf("factored matrix %v: %s: index %d out of range for dim %d (%s) of size %d", f.Shape(), op, i, int64(f.Ndim())+int64(ax), ax, n)
	}
	if i < 0 {
		i += n
	}
	return i, nil
}

// pick selects positions idx along ax from the factor that holds it.
func (f *FactoredMatrix) pick(op string, ax matrixAxis, idx []int64) (*FactoredMatrix, error) {
	at := make([]int64, len(idx))
	for k, i := range idx {
		var err error
		if at[k], err = f.position(op, ax, i, false); err != nil {
			return nil, err
		}
	}
	ix, err := gotch.FromSlice(at, []int64{int64(len(at))}, f.a.Device())
	if err != nil {
		return nil, fmt.Errorf("factored matrix %v: %s: %w", f.Shape(), op, err)
	}
	defer ix.Free()
	return f.along(op, ax, []*gotch.Tensor{ix}, func(t *gotch.Tensor, x []*gotch.Tensor) *gotch.Tensor {
		return t.MustIndexSelect(int64(ax), x[0])
	})
}

// span is the view of positions lo ≤ i < hi along ax.
func (f *FactoredMatrix) span(op string, ax matrixAxis, lo, hi int64) (*FactoredMatrix, error) {
	from, err := f.position(op, ax, lo, true)
	if err != nil {
		return nil, err
	}
	to, err := f.position(op, ax, hi, true)
	if err != nil {
		return nil, err
	}
	if from > to {
		return nil, fmt.Errorf("factored matrix %v: %s(%d, %d): start %d is after end %d", f.Shape(), op, lo, hi, from, to)
	}
	return f.along(op, ax, nil, func(t *gotch.Tensor, _ []*gotch.Tensor) *gotch.Tensor {
		return t.MustNarrow(int64(ax), from, to-from)
	})
}

// along is the matrix with sel applied to the factor that holds ax: A for
// rows, B for columns; the other factor is shared.
func (f *FactoredMatrix) along(op string, ax matrixAxis, extra []*gotch.Tensor, sel func(t *gotch.Tensor, x []*gotch.Tensor) *gotch.Tensor) (*FactoredMatrix, error) {
	return f.derive(op, extra, func(a, b *gotch.Tensor, x []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		if ax == rowAxis {
			return sel(a, x), b
		}
		return a, sel(b, x)
	})
}

// FactoredSVD is the thin SVD U diag(S) Vh of the product A B ([... n r] ×
// [... r n'], batched over leading dims) computed from the factors: the
// SVD of the small middle Sa Vha Ub Sb, as TransformerLens's
// FactoredMatrix.svd does. 16-bit factors are taken in float32, which
// LAPACK needs. The results are new and the caller's to free, as a
// FactoredMatrix's are; the intermediates are freed.
func FactoredSVD(a, b *gotch.Tensor) (u, s, vh *gotch.Tensor, err error) {
	if a == nil || b == nil || a.Dim() < 2 || b.Dim() < 2 || a.Size(-1) != b.Size(-2) {
		return nil, nil, nil, fmt.Errorf("factored SVD: factors must be matrices [... n r] and [... r n'], got %s and %s", shapeOf(a), shapeOf(b))
	}
	out, err := runScoped([]*gotch.Tensor{a, b}, func(in []*gotch.Tensor) []*gotch.Tensor {
		u, s, vh := factoredSVD(in[0], in[1])
		return []*gotch.Tensor{u, s, vh}
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("factored SVD of %v and %v: %w", a.Shape(), b.Shape(), err)
	}
	return out[0], out[1], out[2], nil
}

// factoredSVD is FactoredSVD for code under gotch.Try: it panics on error
// and its intermediates join the factors' scope.
func factoredSVD(a, b *gotch.Tensor) (u, s, vh *gotch.Tensor) {
	ua, sa, vha := forLinalg(a).MustSvd(false)
	ub, sb, vhb := forLinalg(b).MustSvd(false)
	middle := sa.MustUnsqueeze(-1).MustMul(vha).MustMatmul(ub).MustMul(sb.MustUnsqueeze(-2))
	um, sm, vhm := middle.MustSvd(false)
	return ua.MustMatmul(um), sm, vhm.MustMatmul(vhb)
}

// evenFactors refactors the product A B ([... n r] × [... r n']) as U√S,
// √S Vh from its SVD, computed through the factors without forming A B.
func evenFactors(a, b *gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
	u, s, vh := factoredSVD(a, b)
	root := s.MustSqrt()
	return u.MustMul(root.MustUnsqueeze(-2)), vh.MustMul(root.MustUnsqueeze(-1))
}

// mulRight is (A B) m with the inner dim kept small, as TransformerLens
// does: m joins B when B widens (rdim > mdim), else A B becomes the left
// factor and m the right one.
func mulRight(a, b, m *gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
	if b.Size(-1) > b.Size(-2) {
		return a, b.MustMatmul(m)
	}
	return a.MustMatmul(b), m
}

// forLinalg is t in float32 when it is 16-bit: LAPACK and cuSOLVER have no
// half-precision SVD, QR or eigenvalues.
func forLinalg(t *gotch.Tensor) *gotch.Tensor {
	if d := t.DType(); d == gotch.Half || d == gotch.BFloat16 {
		return t.MustTo(gotch.Float)
	}
	return t
}

// square checks that the product is square, which op needs.
func (f *FactoredMatrix) square(op string) error {
	if f.LDim() != f.RDim() {
		return fmt.Errorf("factored matrix %v: %s needs a square product", f.Shape(), op)
	}
	return nil
}

// fits checks a multiplication's operand: its inner dim (ok) and that its
// leading dims broadcast with f's.
func (f *FactoredMatrix) fits(op string, m *gotch.Tensor, ok bool) error {
	if !ok {
		return fmt.Errorf("factored matrix %v: %s by %s: inner dims differ", f.Shape(), op, shapeOf(m))
	}
	if _, err := broadcastShapes(leadDims(f.a), leadDims(m)); err != nil {
		return fmt.Errorf("factored matrix %v: %s by %v: %w", f.Shape(), op, m.Shape(), err)
	}
	return nil
}

// apply runs fn on handles a, b of f's factors and x of extra, inside a
// scope of its own and under Try. The tensors fn returns leave the scope
// for the caller to free; everything else fn made is freed, on error too.
func (f *FactoredMatrix) apply(op string, extra []*gotch.Tensor, fn func(a, b *gotch.Tensor, x []*gotch.Tensor) []*gotch.Tensor) ([]*gotch.Tensor, error) {
	out, err := runScoped(append([]*gotch.Tensor{f.a, f.b}, extra...), func(in []*gotch.Tensor) []*gotch.Tensor {
		return fn(in[0], in[1], in[2:])
	})
	if err != nil {
		return nil, fmt.Errorf("factored matrix %v: %s: %w", f.Shape(), op, err)
	}
	return out, nil
}

// one is apply for a single result.
func (f *FactoredMatrix) one(op string, extra []*gotch.Tensor, fn func(a, b *gotch.Tensor, x []*gotch.Tensor) *gotch.Tensor) (*gotch.Tensor, error) {
	out, err := f.apply(op, extra, func(a, b *gotch.Tensor, x []*gotch.Tensor) []*gotch.Tensor {
		return []*gotch.Tensor{fn(a, b, x)}
	})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// derive is apply for a result that is itself a factored matrix.
func (f *FactoredMatrix) derive(op string, extra []*gotch.Tensor, fn func(a, b *gotch.Tensor, x []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor)) (*FactoredMatrix, error) {
	g, err := newFactored(op, append([]*gotch.Tensor{f.a, f.b}, extra...), func(in []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
		return fn(in[0], in[1], in[2:])
	})
	if err != nil {
		return nil, fmt.Errorf("factored matrix %v: %w", f.Shape(), err)
	}
	return g, nil
}

// newFactored makes a FactoredMatrix of the factors fn computes from
// handles of in, expanded to their common leading shape.
func newFactored(op string, in []*gotch.Tensor, fn func(in []*gotch.Tensor) (*gotch.Tensor, *gotch.Tensor)) (*FactoredMatrix, error) {
	out, err := runScoped(in, func(h []*gotch.Tensor) []*gotch.Tensor {
		a, b := fn(h)
		common, err := broadcastShapes(leadDims(a), leadDims(b))
		if err != nil {
			panic(err)
		}
		expand := func(t *gotch.Tensor) *gotch.Tensor {
			return t.MustExpand(append(slices.Clone(common), t.Size(-2), t.Size(-1)))
		}
		return []*gotch.Tensor{expand(a), expand(b)}
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &FactoredMatrix{a: out[0], b: out[1]}, nil
}

// runScoped runs fn on handles of in, inside a scope of its own and under
// Try. The tensors fn returns leave the scope, owned by no scope, for the
// caller to free; everything else fn made is freed, on error too.
func runScoped(in []*gotch.Tensor, fn func(h []*gotch.Tensor) []*gotch.Tensor) ([]*gotch.Tensor, error) {
	s := gotch.NewScope()
	defer s.Close()
	var out []*gotch.Tensor
	err := gotch.Try(func() {
		h := make([]*gotch.Tensor, len(in))
		for i, t := range in {
			h[i] = borrow(s, t)
		}
		out = fn(h)
	})
	if err != nil {
		return nil, err
	}
	// Keep only now: a kept tensor leaves s, and ops on it would too.
	for _, t := range out {
		s.Keep(t)
	}
	return out, nil
}

// leadDims is t's leading dims: all but the last two.
func leadDims(t *gotch.Tensor) []int64 { return t.Shape()[:t.Dim()-2] }

func shapeOf(t *gotch.Tensor) string {
	if t == nil {
		return "nil"
	}
	return fmt.Sprint(t.Shape())
}

// broadcastShapes is the shape x and y broadcast to, as torch's
// broadcast_shapes: aligned from the right, each pair of sizes equal or
// one of them 1.
func broadcastShapes(x, y []int64) ([]int64, error) {
	long, short := x, y
	if len(long) < len(short) {
		long, short = short, long
	}
	out := slices.Clone(long)
	off := len(long) - len(short)
	for i, n := range short {
		switch m := out[off+i]; {
		case m == 1:
			out[off+i] = n
		case n != 1 && n != m:
			return nil, fmt.Errorf("leading dims %v and %v do not broadcast", x, y)
		}
	}
	return out, nil
}
