package hookedmodel

import (
	"math/cmplx"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// Every FactoredMatrix result is checked against the same computation on
// the dense product A·B.

// fmEnv makes random factors on the test device and frees, when the test
// ends, every tensor and matrix handed to it.
type fmEnv struct {
	t   *testing.T
	s   *gotch.Scope
	gen *gotch.Generator
	dev gotch.Device
}

// newFMEnv is the environment of one test; call gotchtest.CheckLeaks
// first, so that its cleanup runs after the environment's.
func newFMEnv(t *testing.T, seed uint64) *fmEnv {
	dev := gotchtest.Device(t)
	if dev.Type == gotch.MPSType {
		dev = gotch.CPU // MPS has no SVD, QR or eigenvalues
	}
	e := &fmEnv{t: t, s: gotch.NewScope(), gen: gotch.MustNewGenerator(seed), dev: dev}
	t.Cleanup(func() {
		e.s.Close()
		e.gen.Free()
	})
	return e
}

// randn is a standard normal tensor of the given shape.
func (e *fmEnv) randn(shape ...int64) *gotch.Tensor {
	return e.s.Attach(gotch.MustRandn(shape, e.gen, gotch.Float, e.dev))
}

// keep hands t (a method's result) to the environment, failing on err.
func (e *fmEnv) keep(t *gotch.Tensor, err error) *gotch.Tensor {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	if t.Scope() != nil {
		e.t.Fatalf("result %v belongs to a scope; want it the caller's", t.Shape())
	}
	return e.s.Attach(t)
}

// fm hands f to the environment, failing on err.
func (e *fmEnv) fm(f *FactoredMatrix, err error) *FactoredMatrix {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(f.Free)
	return f
}

func (e *fmEnv) close(name string, got, want *gotch.Tensor) {
	e.t.Helper()
	if !slices.Equal(got.Shape(), want.Shape()) {
		e.t.Errorf("%s: shape %v, want %v", name, got.Shape(), want.Shape())
		return
	}
	gotchtest.Close(e.t, name, gotchtest.Values(e.t, got), gotchtest.Values(e.t, want), 1e-4)
}

// factorShapes are the cases most tests run: plain matrices, a product of
// rank below both sides, and leading dims that broadcast ([3] against
// [2 1] gives [2 3]).
var factorShapes = []struct {
	name   string
	aShape []int64 // [... ldim mdim]
	bShape []int64 // [... mdim rdim]
	lead   []int64
}{
	{"matrix", []int64{6, 3}, []int64{3, 5}, nil},
	{"wide middle", []int64{4, 7}, []int64{7, 5}, nil},
	{"layer head", []int64{2, 3, 8, 3}, []int64{2, 3, 3, 8}, []int64{2, 3}},
	{"broadcast", []int64{3, 8, 3}, []int64{2, 1, 3, 5}, []int64{2, 3}},
}

func TestFactoredMatrixProducts(t *testing.T) {
	for _, tc := range factorShapes {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			e := newFMEnv(t, 1)
			a, b := e.randn(tc.aShape...), e.randn(tc.bShape...)
			f := e.fm(NewFactoredMatrix(a, b))
			dense := a.MustMatmul(b) // [... ldim rdim]
			n := int64(dense.Dim())
			ldim, rdim := dense.Size(-2), dense.Size(-1)

			if want := append(slices.Clone(tc.lead), ldim, rdim); !slices.Equal(f.Shape(), want) || f.Ndim() != len(want) {
				t.Errorf("Shape %v, Ndim %d; want %v, %d", f.Shape(), f.Ndim(), want, len(want))
			}
			if f.MDim() != a.Size(-1) {
				t.Errorf("MDim %d, want %d", f.MDim(), a.Size(-1))
			}
			e.close("AB", e.keep(f.AB()), dense)
			ft := e.fm(f.T())
			e.close("T().AB()", e.keep(ft.AB()), dense.MustTranspose(-2, -1))
			e.close("Corner(2)", e.keep(f.Corner(2)), dense.MustNarrow(n-2, 0, 2).MustNarrow(n-1, 0, 2))
			e.close("Corner(100)", e.keep(f.Corner(100)), dense)
			e.close("Norm", e.keep(f.Norm()), dense.MustVectorNorm(2, []int64{-2, -1}, false))
			if len(tc.lead) > 0 {
				g := e.fm(f.Get(1))
				e.close("Get(1).AB()", e.keep(g.AB()), dense.MustSelect(0, 1))
				h := e.fm(f.Get(-1, 2))
				e.close("Get(-1, 2).AB()", e.keep(h.AB()), dense.MustSelect(0, tc.lead[0]-1).MustSelect(0, 2))
			}
		})
	}
}

func TestFactoredMatrixBA(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newFMEnv(t, 2)
	a, b := e.randn(2, 3, 6, 4), e.randn(3, 4, 6)
	f := e.fm(NewFactoredMatrix(a, b))
	e.close("BA", e.keep(f.BA()), b.MustMatmul(a))
}

func TestFactoredMatrixSVD(t *testing.T) {
	for _, tc := range factorShapes {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			e := newFMEnv(t, 3)
			a, b := e.randn(tc.aShape...), e.randn(tc.bShape...)
			f := e.fm(NewFactoredMatrix(a, b))
			dense := a.MustMatmul(b)
			k := min(f.LDim(), f.MDim(), f.RDim())

			u, s, vh, err := f.SVD()
			if err != nil {
				t.Fatal(err)
			}
			u, s, vh = e.s.Attach(u), e.s.Attach(s), e.s.Attach(vh)
			e.close("S", s, dense.MustSvdvals().MustNarrow(int64(s.Dim()-1), 0, k))
			e.close("U diag(S) Vh", u.MustMul(s.MustUnsqueeze(-2)).MustMatmul(vh), dense)
			// U has orthonormal columns: Uᵀ U = I
			eye := e.s.Attach(gotch.MustEye(k, gotch.Float, e.dev))
			e.close("UᵀU", u.MustTranspose(-2, -1).MustMatmul(u), eye.MustExpand(append(slices.Clone(tc.lead), k, k)))

			e.close("U CollapseL", u.MustMatmul(e.keep(f.CollapseL())), dense)
			e.close("CollapseR Vh", e.keep(f.CollapseR()).MustMatmul(vh), dense)

			even := e.fm(f.MakeEven())
			e.close("MakeEven AB", e.keep(even.AB()), dense)
			// Each even factor carries √S: AᵀA = B Bᵀ = diag(S).
			ea, eb := borrow(e.s, even.A()), borrow(e.s, even.B())
			diagS := eye.MustMul(s.MustUnsqueeze(-1))
			e.close("MakeEven AᵀA", ea.MustTranspose(-2, -1).MustMatmul(ea), diagS)
			e.close("MakeEven B Bᵀ", eb.MustMatmul(eb.MustTranspose(-2, -1)), diagS)
		})
	}
}

// The factored SVD of 16-bit factors runs in float32.
func TestFactoredMatrixSVDHalf(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newFMEnv(t, 4)
	a, b := e.randn(6, 3), e.randn(3, 5)
	f := e.fm(NewFactoredMatrix(a.MustTo(gotch.BFloat16), b.MustTo(gotch.BFloat16)))
	u, s, vh, err := f.SVD()
	if err != nil {
		t.Fatal(err)
	}
	e.s.Attach(u)
	e.s.Attach(vh)
	s = e.s.Attach(s)
	if s.DType() != gotch.Float {
		t.Errorf("S of bfloat16 factors is %v, want float32", s.DType())
	}
	want := gotchtest.Values(t, a.MustMatmul(b).MustSvdvals().MustNarrow(0, 0, 3))
	gotchtest.Close(t, "S of bfloat16 factors", gotchtest.Values(t, s), want, 2e-2)
}

// FactoredSVD of raw factors is the matrix's SVD; its results are the
// caller's and its intermediates are freed, not left in the factors' scope.
func TestFactoredSVD(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newFMEnv(t, 6)
	a, b := e.randn(2, 6, 3), e.randn(2, 3, 5)
	before := e.s.Len()
	u, s, vh := e.keep3(FactoredSVD(a, b))
	if got := e.s.Len() - before; got != 3 {
		t.Errorf("the factors' scope gained %d tensors, want only the 3 results", got)
	}
	e.close("U diag(S) Vh", u.MustMul(s.MustUnsqueeze(-2)).MustMatmul(vh), a.MustMatmul(b))
	if _, _, _, err := FactoredSVD(a, a); err == nil || !strings.Contains(err.Error(), "got [2 6 3] and [2 6 3]") {
		t.Errorf("FactoredSVD of [2 6 3] and [2 6 3]: err %v, want one naming both shapes", err)
	}
}

// keep3 is keep for the three results of an SVD.
func (e *fmEnv) keep3(u, s, vh *gotch.Tensor, err error) (*gotch.Tensor, *gotch.Tensor, *gotch.Tensor) {
	e.t.Helper()
	return e.keep(u, err), e.keep(s, err), e.keep(vh, err)
}

func TestFactoredMatrixEigenvalues(t *testing.T) {
	cases := []struct {
		name           string
		aShape, bShape []int64
	}{
		{"through BA", []int64{2, 3, 7, 3}, []int64{2, 3, 3, 7}},
		{"through AB", []int64{2, 3, 4, 6}, []int64{6, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			e := newFMEnv(t, 5)
			a, b := e.randn(tc.aShape...), e.randn(tc.bShape...)
			f := e.fm(NewFactoredMatrix(a, b))
			re, im, err := f.Eigenvalues()
			if err != nil {
				t.Fatal(err)
			}
			re, im = e.s.Attach(re), e.s.Attach(im)
			n := min(f.LDim(), f.MDim())
			if want := []int64{2, 3, n}; !slices.Equal(re.Shape(), want) || !slices.Equal(im.Shape(), want) {
				t.Fatalf("eigenvalues: real %v, imaginary %v; want %v", re.Shape(), im.Shape(), want)
			}
			dRe, dIm := a.MustMatmul(b).MustEigvals()
			got, want := complexes(t, re, im, int(n)), complexes(t, dRe, dIm, int(f.LDim()))
			for i := range got {
				checkEigenvalues(t, got[i], want[i])
			}
		})
	}
}

// complexes reads eigenvalues [... n] as one slice per matrix.
func complexes(t *testing.T, re, im *gotch.Tensor, n int) [][]complex128 {
	r, i := gotchtest.Values(t, re), gotchtest.Values(t, im)
	var out [][]complex128
	for at := 0; at < len(r); at += n {
		m := make([]complex128, n)
		for j := range m {
			m[j] = complex(r[at+j], i[at+j])
		}
		out = append(out, m)
	}
	return out
}

// checkEigenvalues matches each factored eigenvalue to its nearest dense
// one; the dense eigenvalues left over must be the product's zeros.
func checkEigenvalues(t *testing.T, got, dense []complex128) {
	t.Helper()
	var scale float64
	for _, d := range dense {
		scale = max(scale, cmplx.Abs(d))
	}
	left := slices.Clone(dense)
	for _, g := range got {
		best := 0
		for j := range left {
			if cmplx.Abs(left[j]-g) < cmplx.Abs(left[best]-g) {
				best = j
			}
		}
		if d := cmplx.Abs(left[best] - g); d > 1e-4*scale {
			t.Errorf("eigenvalue %v: nearest dense eigenvalue %v is %.3g away", g, left[best], d)
		}
		left = slices.Delete(left, best, best+1)
	}
	for _, d := range left {
		if cmplx.Abs(d) > 1e-4*scale {
			t.Errorf("dense eigenvalue %v has no factored match and is not zero", d)
		}
	}
}

func TestFactoredMatrixMul(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newFMEnv(t, 6)
	narrow := e.fm(NewFactoredMatrix(e.randn(2, 3, 8, 2), e.randn(2, 3, 2, 8))) // rdim 8 > mdim 2
	wide := e.fm(NewFactoredMatrix(e.randn(2, 3, 5, 6), e.randn(2, 3, 6, 4)))   // rdim 4 ≤ mdim 6
	cases := []struct {
		name  string
		f     *FactoredMatrix
		m     *gotch.Tensor
		mdim  int64 // the inner dim TransformerLens's rule keeps
		right bool  // Mul, else LeftMul
	}{
		{"Mul folds into B", narrow, e.randn(8, 7), 2, true},
		{"Mul multiplies out", wide, e.randn(3, 4, 7), 4, true},
		{"LeftMul folds into A", narrow, e.randn(7, 8), 2, false},
		{"LeftMul multiplies out", wide, e.randn(7, 5), 5, false},
	}
	for _, tc := range cases {
		dense := e.keep(tc.f.AB())
		var got *FactoredMatrix
		var want *gotch.Tensor
		if tc.right {
			got, want = e.fm(tc.f.Mul(tc.m)), dense.MustMatmul(tc.m)
		} else {
			got, want = e.fm(tc.f.LeftMul(tc.m)), tc.m.MustMatmul(dense)
		}
		if got.MDim() != tc.mdim {
			t.Errorf("%s: inner dim %d, want %d", tc.name, got.MDim(), tc.mdim)
		}
		e.close(tc.name, e.keep(got.AB()), want)
	}

	// narrow·narrow: (A B A')·B' keeps the inner dim 2.
	nn := e.fm(narrow.MulFactored(narrow))
	if nn.MDim() != 2 {
		t.Errorf("MulFactored: inner dim %d, want 2", nn.MDim())
	}
	d := e.keep(narrow.AB())
	e.close("MulFactored", e.keep(nn.AB()), d.MustMatmul(d))
}

func TestFactoredMatrixErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newFMEnv(t, 7)
	f := e.fm(NewFactoredMatrix(e.randn(2, 6, 3), e.randn(3, 5)))
	errs := []struct {
		name, want string
		err        func() error
	}{
		{"inner dims", "inner dims differ: A [6 3], B [4 5]", func() error {
			_, err := NewFactoredMatrix(e.randn(6, 3), e.randn(4, 5))
			return err
		}},
		{"vector", "must be matrices", func() error { _, err := NewFactoredMatrix(e.randn(3), e.randn(3, 5)); return err }},
		{"leading dims", "leading dims [2] and [3] do not broadcast", func() error {
			_, err := NewFactoredMatrix(e.randn(2, 6, 3), e.randn(3, 3, 5))
			return err
		}},
		{"BA", "BA needs a square product", func() error { _, err := f.BA(); return err }},
		{"eigenvalues", "eigenvalues needs a square product", func() error { _, _, err := f.Eigenvalues(); return err }},
		{"corner", "corner size 0", func() error { _, err := f.Corner(0); return err }},
		{"Get range", "index 2 out of range for dim 0 of size 2", func() error { _, err := f.Get(2); return err }},
		{"Get length", "more entries than the 1 leading dims", func() error { _, err := f.Get(0, 0); return err }},
		{"Mul", "Mul by [4 2]: inner dims differ", func() error { _, err := f.Mul(e.randn(4, 2)); return err }},
		{"LeftMul", "LeftMul by [3 3 6]: leading dims [2] and [3] do not broadcast", func() error {
			_, err := f.LeftMul(e.randn(3, 3, 6))
			return err
		}},
		{"MulFactored", "MulFactored by [2 6 3]: inner dims differ", func() error { _, err := f.MulFactored(f); return err }},
	}
	for _, tc := range errs {
		err := tc.err()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// denseRef is the product of f's factors computed in float64 in plain Go,
// [batch][ldim][rdim] with the leading dims flattened into batch.
func denseRef(t *testing.T, f *FactoredMatrix) [][][]float64 {
	a, b := gotchtest.Values(t, f.A()), gotchtest.Values(t, f.B())
	l, m, r := int(f.LDim()), int(f.MDim()), int(f.RDim())
	batch := 1
	for _, d := range f.Shape()[:f.Ndim()-2] {
		batch *= int(d)
	}
	out := make([][][]float64, batch)
	for n := range out {
		out[n] = make([][]float64, l)
		for i := range l {
			out[n][i] = make([]float64, r)
			for j := range r {
				for k := range m {
					out[n][i][j] += a[(n*l+i)*m+k] * b[(n*m+k)*r+j]
				}
			}
		}
	}
	return out
}

// seq is lo, lo+1, ..., hi-1.
func seq(lo, hi int64) []int64 {
	var s []int64
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

func TestFactoredMatrixIndexing(t *testing.T) {
	for _, sh := range factorShapes {
		t.Run(sh.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			e := newFMEnv(t, 8)
			f := e.fm(NewFactoredMatrix(e.randn(sh.aShape...), e.randn(sh.bShape...)))
			ref := denseRef(t, f)
			l, r := f.LDim(), f.RDim()
			cases := []struct {
				name       string
				get        func() (*FactoredMatrix, error)
				rows, cols []int64 // what the result holds of the product
			}{
				{"Rows(2, 0, -1, 2)", func() (*FactoredMatrix, error) { return f.Rows(2, 0, -1, 2) }, []int64{2, 0, l - 1, 2}, seq(0, r)},
				{"Rows(-2): one row, kept", func() (*FactoredMatrix, error) { return f.Rows(-2) }, []int64{l - 2}, seq(0, r)},
				{"Rows(): none", func() (*FactoredMatrix, error) { return f.Rows() }, nil, seq(0, r)},
				{"Cols(1, -1)", func() (*FactoredMatrix, error) { return f.Cols(1, -1) }, seq(0, l), []int64{1, r - 1}},
				{"Cols(): none", func() (*FactoredMatrix, error) { return f.Cols() }, seq(0, l), nil},
				{"RowRange(1, 3)", func() (*FactoredMatrix, error) { return f.RowRange(1, 3) }, seq(1, 3), seq(0, r)},
				{"RowRange(-3, -1)", func() (*FactoredMatrix, error) { return f.RowRange(-3, -1) }, seq(l-3, l-1), seq(0, r)},
				{"RowRange(2, 2): none", func() (*FactoredMatrix, error) { return f.RowRange(2, 2) }, nil, seq(0, r)},
				{"ColRange(-2, r)", func() (*FactoredMatrix, error) { return f.ColRange(-2, r) }, seq(0, l), seq(r-2, r)},
				{"ColRange(0, r)", func() (*FactoredMatrix, error) { return f.ColRange(0, r) }, seq(0, l), seq(0, r)},
				{"Rows then Cols", func() (*FactoredMatrix, error) {
					g, err := f.Rows(3, 1)
					if err != nil {
						return nil, err
					}
					defer g.Free()
					return g.Cols(0, 0, 4)
				}, []int64{3, 1}, []int64{0, 0, 4}},
			}
			for _, tc := range cases {
				g := e.fm(tc.get())
				want := []float64{}
				for _, m := range ref {
					for _, i := range tc.rows {
						for _, j := range tc.cols {
							want = append(want, m[i][j])
						}
					}
				}
				wantShape := append(slices.Clone(sh.lead), int64(len(tc.rows)), int64(len(tc.cols)))
				if !slices.Equal(g.Shape(), wantShape) {
					t.Errorf("%s: shape %v, want %v", tc.name, g.Shape(), wantShape)
					continue
				}
				// Only the factor that holds the selected dim changes: A·B
				// is never formed, and the inner dim stays.
				if g.MDim() != f.MDim() {
					t.Errorf("%s: inner dim %d, want %d", tc.name, g.MDim(), f.MDim())
				}
				gotchtest.Close(t, tc.name, gotchtest.Values(t, e.keep(g.AB())), want, 1e-4)
			}
		})
	}
}

func TestFactoredMatrixIndexingErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newFMEnv(t, 9)
	f := e.fm(NewFactoredMatrix(e.randn(2, 6, 3), e.randn(3, 5))) // [2 6 5]
	errs := []struct {
		name, want string
		get        func() (*FactoredMatrix, error)
	}{
		{"row past the end", "Rows: index 6 out of range for dim 1 (rows) of size 6", func() (*FactoredMatrix, error) { return f.Rows(0, 6) }},
		{"row before the start", "Rows: index -7 out of range for dim 1 (rows) of size 6", func() (*FactoredMatrix, error) { return f.Rows(-7) }},
		{"column", "Cols: index 5 out of range for dim 2 (columns) of size 5", func() (*FactoredMatrix, error) { return f.Cols(5) }},
		{"range end", "RowRange: index 7 out of range for dim 1 (rows) of size 6", func() (*FactoredMatrix, error) { return f.RowRange(0, 7) }},
		{"range start", "ColRange: index -6 out of range for dim 2 (columns) of size 5", func() (*FactoredMatrix, error) { return f.ColRange(-6, 2) }},
		{"reversed range", "RowRange(4, -4): start 4 is after end 2", func() (*FactoredMatrix, error) { return f.RowRange(4, -4) }},
	}
	for _, tc := range errs {
		g, err := tc.get()
		if err == nil {
			g.Free()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
