//go:build cgo

package gotch_test

// Linear algebra: Svd, Svdvals, Eigvals, Eigh, Qr and Inv, checked through
// identities computed in plain Go (reconstruction, orthogonality) and
// against matrices whose decompositions are known in closed form.

import (
	"math"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// linalgEnv is newEnv on a device with LAPACK-style kernels. MPS lacks
// linalg_eigvals, linalg_svd and friends (and float64), so those tests run
// on the CPU there; CUDA runs them itself (cuSOLVER/MAGMA).
func linalgEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if e.dev.Type == gotch.MPSType {
		e.dev = gotch.CPU
	}
	return e
}

// identity is the n×n identity, row-major.
func identity(n int) []float64 {
	v := make([]float64, n*n)
	for i := range n {
		v[i*n+i] = 1
	}
	return v
}

// gram is AᵀA for a row-major [n m] matrix: the identity when A's columns
// are orthonormal.
func gram(a []float64, n, m int) []float64 {
	return matmul(transpose2(a, n, m), a, m, n, m)
}

// batch splits flat data into b equal matrices.
func batch(x []float64, b int) [][]float64 {
	out := make([][]float64, b)
	n := len(x) / b
	for i := range b {
		out[i] = x[i*n : (i+1)*n]
	}
	return out
}

func TestSvdKnown(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := linalgEnv(t)
	defer e.done()
	// AᵀA = [[25 20] [20 25]] has eigenvalues 45 and 5.
	a := from(e, []float32{3, 0, 4, 5}, 2, 2)
	u, s, vh := a.MustSvd(false)
	e.expect("Svd S", s, gotch.Float, []int64{2}, []float64{3 * math.Sqrt(5), math.Sqrt(5)})
	e.expect("Svdvals", a.MustSvdvals(), gotch.Float, []int64{2}, []float64{3 * math.Sqrt(5), math.Sqrt(5)})
	if !slices.Equal(u.Shape(), []int64{2, 2}) || !slices.Equal(vh.Shape(), []int64{2, 2}) {
		t.Errorf("Svd: U %v, Vh %v; want [2 2] and [2 2]", u.Shape(), vh.Shape())
	}
	uv, sv, vhv := e.vals(u), e.vals(s), e.vals(vh)
	gotchtest.Close(t, "Svd U diag(S) Vh", matmul(matmul(uv, diag(sv), 2, 2, 2), vhv, 2, 2, 2), []float64{3, 0, 4, 5}, tol)

	// A rank-one matrix u vᵀ with |u| = 3 and |v| = √5 has S = (3√5, 0, 0).
	r1 := from(e, []float32{2, 0, 0, 4, 1, 0, 0, 2, 2, 0, 0, 4}, 3, 4) // [2 1 2]ᵀ [1 0 0 2]
	gotchtest.Close(t, "Svdvals(rank one)", e.vals(r1.MustSvdvals()), []float64{3 * math.Sqrt(5), 0, 0}, tol)

	// A diagonal matrix's singular values are its sorted absolute diagonal.
	d := from(e, []float32{-1, 0, 0, 0, 4, 0, 0, 0, 2}, 3, 3)
	e.expect("Svdvals(diagonal)", d.MustSvdvals(), gotch.Float, []int64{3}, []float64{4, 2, 1})
}

func diag(s []float64) []float64 {
	n := len(s)
	v := make([]float64, n*n)
	for i, x := range s {
		v[i*n+i] = x
	}
	return v
}

func TestSvdBatched(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := linalgEnv(t)
	defer e.done()
	const B, M, N = 2, 3, 4 // K = min(M, N) = 3
	const K = 3
	av := f64(randf(100, B*M*N, -1, 1))
	a := from(e, randf(100, B*M*N, -1, 1), B, M, N)

	u, s, vh := a.MustSvd(false)
	if !slices.Equal(u.Shape(), []int64{B, M, K}) || !slices.Equal(s.Shape(), []int64{B, K}) || !slices.Equal(vh.Shape(), []int64{B, K, N}) {
		t.Fatalf("Svd(reduced): U %v S %v Vh %v; want [2 3 3] [2 3] [2 3 4]", u.Shape(), s.Shape(), vh.Shape())
	}
	us, ss, vs := batch(e.vals(u), B), batch(e.vals(s), B), batch(e.vals(vh), B)
	svals := batch(e.vals(a.MustSvdvals()), B)
	for b := range B {
		rec := matmul(matmul(us[b], diag(ss[b]), M, K, K), vs[b], M, K, N)
		gotchtest.Close(t, "Svd reconstruction", rec, av[b*M*N:(b+1)*M*N], tol)
		gotchtest.Close(t, "UᵀU = I", gram(us[b], M, K), identity(K), tol)
		gotchtest.Close(t, "Vh Vhᵀ = I", gram(transpose2(vs[b], K, N), N, K), identity(K), tol)
		if !slices.IsSortedFunc(ss[b], func(x, y float64) int { return -compare(x, y) }) || ss[b][K-1] < 0 {
			t.Errorf("Svd S[%d] = %v: want non-negative and descending", b, ss[b])
		}
		gotchtest.Close(t, "Svdvals = Svd's S", svals[b], ss[b], tol)
		// The singular values squared are the eigenvalues of A Aᵀ: their
		// sum is the squared Frobenius norm.
		var fro, s2 float64
		for _, v := range av[b*M*N : (b+1)*M*N] {
			fro += v * v
		}
		for _, v := range ss[b] {
			s2 += v * v
		}
		gotchtest.Close(t, "Σ S² = ‖A‖²", []float64{s2}, []float64{fro}, tol)
	}

	uf, sf, vhf := a.MustSvd(true)
	if !slices.Equal(uf.Shape(), []int64{B, M, M}) || !slices.Equal(sf.Shape(), []int64{B, K}) || !slices.Equal(vhf.Shape(), []int64{B, N, N}) {
		t.Fatalf("Svd(full): U %v S %v Vh %v; want [2 3 3] [2 3] [2 4 4]", uf.Shape(), sf.Shape(), vhf.Shape())
	}
	vfs := batch(e.vals(vhf), B)
	for b := range B {
		gotchtest.Close(t, "full Vh Vhᵀ = I", gram(transpose2(vfs[b], N, N), N, N), identity(N), tol)
	}
}

func compare(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// eig is a complex eigenvalue for sorting.
type eig struct{ re, im float64 }

func sortEigs(re, im []float64) []eig {
	out := make([]eig, len(re))
	for i := range re {
		out[i] = eig{re[i], im[i]}
	}
	slices.SortFunc(out, func(a, b eig) int {
		if c := compare(a.re, b.re); c != 0 && math.Abs(a.re-b.re) > 1e-4 {
			return c
		}
		return compare(a.im, b.im)
	})
	return out
}

func TestEigvals(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := linalgEnv(t)
	defer e.done()
	th := math.Pi / 6
	c, s := math.Cos(th), math.Sin(th)
	cases := []struct {
		name string
		m    []float32
		n    int64
		want []eig // sorted by real, then imaginary part
	}{
		{"symmetric", []float32{2, 1, 1, 2}, 2, []eig{{1, 0}, {3, 0}}},
		{"triangular", []float32{1, 2, 3, 0, 4, 5, 0, 0, 6}, 3, []eig{{1, 0}, {4, 0}, {6, 0}}},
		{"rotation by π/6", []float32{float32(c), float32(-s), float32(s), float32(c)}, 2, []eig{{c, -s}, {c, s}}},
		{"rotation by π/2 scaled", []float32{0, -2, 2, 0}, 2, []eig{{0, -2}, {0, 2}}},
		{"3-D rotation", []float32{float32(c), float32(-s), 0, float32(s), float32(c), 0, 0, 0, 1}, 3, []eig{{c, -s}, {c, s}, {1, 0}}},
		{"non-symmetric", []float32{4, 1, 2, 3}, 2, []eig{{2, 0}, {5, 0}}}, // trace 7, det 10
	}
	for _, k := range cases {
		m := from(e, k.m, k.n, k.n)
		re, im := m.MustEigvals()
		if re.DType() != gotch.Float || im.DType() != gotch.Float || !slices.Equal(re.Shape(), []int64{k.n}) || !slices.Equal(im.Shape(), []int64{k.n}) {
			t.Errorf("Eigvals(%s): got %s and %s, want float32[%d] twice", k.name, re, im, k.n)
			continue
		}
		got := sortEigs(e.vals(re), e.vals(im))
		for i, w := range k.want {
			if math.Abs(got[i].re-w.re) > 1e-5 || math.Abs(got[i].im-w.im) > 1e-5 {
				t.Errorf("Eigvals(%s): got %v, want %v", k.name, got, k.want)
				break
			}
		}
	}
	// Batched: [2 2 2].
	b := from(e, []float32{2, 1, 1, 2, 0, -1, 1, 0}, 2, 2, 2)
	re, im := b.MustEigvals()
	if !slices.Equal(re.Shape(), []int64{2, 2}) {
		t.Fatalf("Eigvals(batched): shape %v, want [2 2]", re.Shape())
	}
	rv, iv := e.vals(re), e.vals(im)
	if g := sortEigs(rv[:2], iv[:2]); math.Abs(g[0].re-1) > 1e-5 || math.Abs(g[1].re-3) > 1e-5 {
		t.Errorf("Eigvals(batched)[0]: got %v, want 1 and 3", g)
	}
	if g := sortEigs(rv[2:], iv[2:]); math.Abs(g[0].im+1) > 1e-5 || math.Abs(g[1].im-1) > 1e-5 || math.Abs(g[0].re) > 1e-5 {
		t.Errorf("Eigvals(batched)[1]: got %v, want ±i", g)
	}
	if _, _, err := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3).Eigvals(); err == nil {
		t.Error("Eigvals of a [2 3] matrix: got no error")
	}
}

func TestEigh(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := linalgEnv(t)
	defer e.done()
	// The second-difference matrix: eigenvalues 2 - √2, 2, 2 + √2.
	av := []float64{2, -1, 0, -1, 2, -1, 0, -1, 2}
	a := from(e, []float32{2, -1, 0, -1, 2, -1, 0, -1, 2}, 3, 3)
	w, v := a.MustEigh()
	e.expect("Eigh eigenvalues (ascending)", w, gotch.Float, []int64{3}, []float64{2 - math.Sqrt2, 2, 2 + math.Sqrt2})
	if v.DType() != gotch.Float || !slices.Equal(v.Shape(), []int64{3, 3}) {
		t.Fatalf("Eigh eigenvectors: got %s, want float32[3 3]", v)
	}
	wv, vv := e.vals(w), e.vals(v)
	// A V = V diag(w), VᵀV = I.
	gotchtest.Close(t, "A V = V diag(w)", matmul(av, vv, 3, 3, 3), matmul(vv, diag(wv), 3, 3, 3), tol)
	gotchtest.Close(t, "VᵀV = I", gram(vv, 3, 3), identity(3), tol)

	// Batched random symmetric matrices S = B + Bᵀ.
	const n = 4
	bv := f64(randf(110, 2*n*n, -1, 1))
	sv := make([]float32, 2*n*n)
	sf := make([]float64, 2*n*n)
	for b := range 2 {
		for i := range n {
			for j := range n {
				x := bv[b*n*n+i*n+j] + bv[b*n*n+j*n+i]
				sv[b*n*n+i*n+j], sf[b*n*n+i*n+j] = float32(x), float64(float32(x))
			}
		}
	}
	ws, vs := from(e, sv, 2, n, n).MustEigh()
	wb, vb := batch(e.vals(ws), 2), batch(e.vals(vs), 2)
	for b := range 2 {
		if !slices.IsSorted(wb[b]) {
			t.Errorf("Eigh[%d]: eigenvalues %v are not ascending", b, wb[b])
		}
		gotchtest.Close(t, "batched A V = V diag(w)", matmul(sf[b*n*n:(b+1)*n*n], vb[b], n, n, n), matmul(vb[b], diag(wb[b]), n, n, n), tol)
		gotchtest.Close(t, "batched VᵀV = I", gram(vb[b], n, n), identity(n), tol)
	}
}

func TestQr(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := linalgEnv(t)
	defer e.done()
	const M, N = 4, 3
	av := randf(120, M*N, -1, 1)
	a, af := from(e, av, M, N), f64(av)
	upper := func(name string, r []float64, rows, cols int) {
		for i := range rows {
			for j := range min(i, cols) {
				if math.Abs(r[i*cols+j]) > 1e-6 {
					t.Errorf("%s: R[%d][%d] = %g below the diagonal", name, i, j, r[i*cols+j])
				}
			}
		}
	}

	q, r := a.MustQr("reduced")
	if !slices.Equal(q.Shape(), []int64{M, N}) || !slices.Equal(r.Shape(), []int64{N, N}) {
		t.Fatalf("Qr(reduced): Q %v R %v, want [4 3] [3 3]", q.Shape(), r.Shape())
	}
	qv, rv := e.vals(q), e.vals(r)
	gotchtest.Close(t, "Qr(reduced) Q R = A", matmul(qv, rv, M, N, N), af, tol)
	gotchtest.Close(t, "Qr(reduced) QᵀQ = I", gram(qv, M, N), identity(N), tol)
	upper("Qr(reduced)", rv, N, N)

	qc, rc := a.MustQr("complete")
	if !slices.Equal(qc.Shape(), []int64{M, M}) || !slices.Equal(rc.Shape(), []int64{M, N}) {
		t.Fatalf("Qr(complete): Q %v R %v, want [4 4] [4 3]", qc.Shape(), rc.Shape())
	}
	qcv, rcv := e.vals(qc), e.vals(rc)
	gotchtest.Close(t, "Qr(complete) Q R = A", matmul(qcv, rcv, M, M, N), af, tol)
	gotchtest.Close(t, "Qr(complete) QᵀQ = I", gram(qcv, M, M), identity(M), tol)
	upper("Qr(complete)", rcv, M, N)

	// Mode "r" computes R alone; Q comes back empty.
	qr, rr := a.MustQr("r")
	if qr != nil && qr.Numel() != 0 {
		t.Errorf("Qr(r): Q is %s, want an empty tensor", qr)
	}
	gotchtest.Close(t, "Qr(r) R", absAll(e.vals(rr)), absAll(rv), tol)

	// A known case: the columns of [[3 1] [4 2]] give |R₀₀| = 5.
	_, rk := from(e, []float32{3, 1, 4, 2}, 2, 2).MustQr("reduced")
	if v := e.vals(rk); math.Abs(math.Abs(v[0])-5) > 1e-5 || math.Abs(math.Abs(v[0]*v[3])-2) > 1e-5 {
		t.Errorf("Qr([[3 1] [4 2]]): R = %v, want |R₀₀| = 5 and |det| = 2", v)
	}
	if _, _, err := a.Qr("thin"); err == nil {
		t.Error(`Qr("thin"): got no error`)
	}
}

func absAll(x []float64) []float64 { return mapf(x, math.Abs) }

func TestInv(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := linalgEnv(t)
	defer e.done()
	// [[4 7] [2 6]]⁻¹ = [[6 -7] [-2 4]] / 10.
	a := from(e, []float32{4, 7, 2, 6}, 2, 2)
	e.expect("Inv", a.MustInv(), gotch.Float, []int64{2, 2}, []float64{0.6, -0.7, -0.2, 0.4})

	// Batched well-conditioned matrices 3I + noise: A A⁻¹ = I.
	const n = 4
	bv := randf(130, 2*n*n, -0.5, 0.5)
	for b := range 2 {
		for i := range n {
			bv[b*n*n+i*n+i] += 3
		}
	}
	bi := e.vals(from(e, bv, 2, n, n).MustInv())
	for b := range 2 {
		gotchtest.Close(t, "A A⁻¹ = I", matmul(f64(bv[b*n*n:(b+1)*n*n]), bi[b*n*n:(b+1)*n*n], n, n, n), identity(n), tol)
	}

	// Float64 keeps its dtype.
	d := from(e, []float64{2, 0, 0, 0.5}, 2, 2)
	e.expect("Inv(float64)", d.MustInv(), gotch.Double, []int64{2, 2}, []float64{0.5, 0, 0, 2})
	if _, err := from(e, []float32{1, 2, 2, 4}, 2, 2).Inv(); err == nil {
		t.Error("Inv of a singular matrix: got no error")
	}
	if _, err := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3).Inv(); err == nil {
		t.Error("Inv of a [2 3] matrix: got no error")
	}
}
