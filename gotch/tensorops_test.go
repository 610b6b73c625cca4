//go:build cgo

package gotch_test

// The indexing and comparison ops a TransformerLens notebook uses
// (SqueezeAll, Diagonal, MaskedSelect, Nonzero, Argsort, Scatter, IndexPut,
// Roll, IsClose, All, Any, AllClose), each checked against values written
// by hand from torch's documented semantics, and their errors.

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// opCase is one op call and what it must give.
type opCase struct {
	name  string
	run   func() (*gotch.Tensor, error)
	dtype gotch.DType
	shape []int64
	want  []float64
}

func runOpCases(e *env, cases []opCase) {
	e.t.Helper()
	for _, c := range cases {
		x, err := c.run()
		if err != nil {
			e.t.Errorf("%s: %v", c.name, err)
			continue
		}
		e.s.Attach(x)
		e.expect(c.name, x, c.dtype, c.shape, c.want)
	}
}

// errCase is one op call that must fail with an error mentioning each of
// want.
type errCase struct {
	name string
	run  func() (*gotch.Tensor, error)
	want []string
}

func runErrCases(e *env, cases []errCase) {
	e.t.Helper()
	for _, c := range cases {
		x, err := c.run()
		if err == nil {
			e.s.Attach(x)
			e.t.Errorf("%s: got %s and no error", c.name, x.Spec())
			continue
		}
		var ge *gotch.Error
		if !errors.As(err, &ge) {
			e.t.Errorf("%s: error %v is not a *gotch.Error", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				e.t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

func TestSqueezeAllDiagonalRoll(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	a6 := from(e, []float32{0, 1, 2, 3, 4, 5}, 1, 3, 1, 2)
	one := from(e, []float32{7}, 1, 1)
	// [[0 1 2] [3 4 5] [6 7 8]]
	m := from(e, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8}, 3, 3)
	// x[i][j][k] = 4i + 2j + k
	cube := from(e, []float32{0, 1, 2, 3, 4, 5, 6, 7}, 2, 2, 2)
	// torch.roll's documented example: [[1 2] [3 4] [5 6] [7 8]]
	r := from(e, []int64{1, 2, 3, 4, 5, 6, 7, 8}, 4, 2)
	F, I := gotch.Float, gotch.Int64
	runOpCases(e, []opCase{
		{"SqueezeAll", func() (*gotch.Tensor, error) { return a6.SqueezeAll() }, F, []int64{3, 2}, []float64{0, 1, 2, 3, 4, 5}},
		{"SqueezeAll/to a scalar", func() (*gotch.Tensor, error) { return one.SqueezeAll() }, F, []int64{}, []float64{7}},
		{"SqueezeAll/nothing to squeeze", func() (*gotch.Tensor, error) { return m.SqueezeAll() }, F, []int64{3, 3}, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"Diagonal", func() (*gotch.Tensor, error) { return m.Diagonal(0, 0, 1) }, F, []int64{3}, []float64{0, 4, 8}},
		{"Diagonal/above", func() (*gotch.Tensor, error) { return m.Diagonal(1, 0, 1) }, F, []int64{2}, []float64{1, 5}},
		{"Diagonal/below", func() (*gotch.Tensor, error) { return m.Diagonal(-1, 0, 1) }, F, []int64{2}, []float64{3, 7}},
		{"Diagonal/off the matrix", func() (*gotch.Tensor, error) { return m.Diagonal(3, 0, 1) }, F, []int64{0}, []float64{}},
		{"Diagonal/swapped dims", func() (*gotch.Tensor, error) { return m.Diagonal(1, 1, 0) }, F, []int64{2}, []float64{3, 7}},
		// out[i][d] = x[i][d][d]
		{"Diagonal/batched", func() (*gotch.Tensor, error) { return cube.Diagonal(0, 1, 2) }, F, []int64{2, 2}, []float64{0, 3, 4, 7}},
		// out[j][d] = x[d][j][d] = 5d + 2j
		{"Diagonal/outer dims", func() (*gotch.Tensor, error) { return cube.Diagonal(0, 0, -1) }, F, []int64{2, 2}, []float64{0, 5, 2, 7}},
		{"Roll/flat", func() (*gotch.Tensor, error) { return r.Roll([]int64{1}, nil) }, I, []int64{4, 2}, []float64{8, 1, 2, 3, 4, 5, 6, 7}},
		{"Roll/dim 0", func() (*gotch.Tensor, error) { return r.Roll([]int64{1}, []int64{0}) }, I, []int64{4, 2}, []float64{7, 8, 1, 2, 3, 4, 5, 6}},
		{"Roll/back", func() (*gotch.Tensor, error) { return r.Roll([]int64{-1}, []int64{0}) }, I, []int64{4, 2}, []float64{3, 4, 5, 6, 7, 8, 1, 2}},
		{"Roll/two dims", func() (*gotch.Tensor, error) { return r.Roll([]int64{2, 1}, []int64{0, 1}) }, I, []int64{4, 2}, []float64{6, 5, 8, 7, 2, 1, 4, 3}},
		{"Roll/more than the size", func() (*gotch.Tensor, error) { return r.Roll([]int64{9}, []int64{0}) }, I, []int64{4, 2}, []float64{7, 8, 1, 2, 3, 4, 5, 6}},
	})
	runErrCases(e, []errCase{
		{"Diagonal/same dim", func() (*gotch.Tensor, error) { return m.Diagonal(0, 1, 1) }, []string{"Diagonal", "float32[3 3]"}},
		{"Diagonal/no such dim", func() (*gotch.Tensor, error) { return m.Diagonal(0, 0, 2) }, []string{"Diagonal", "float32[3 3]"}},
		{"Roll/shifts and dims differ in length", func() (*gotch.Tensor, error) { return r.Roll([]int64{1, 2}, []int64{0}) }, []string{"Roll", "int64[4 2]"}},
	})
	// Diagonal is a view: writing through it writes m.
	d := e.s.Attach(m.MustClone()).MustDiagonal(0, 0, 1)
	d.MustFill_(-1)
	e.expect("Diagonal/view", e.own(d.MustAlias()), F, []int64{3}, []float64{-1, -1, -1})
}

func TestMaskedSelectNonzeroArgsort(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	mask := from(e, []bool{true, false, true, false, true, false}, 2, 3)
	row := from(e, []bool{false, true, true}, 3)
	none := from(e, []bool{false, false, false, false, false, false}, 2, 3)
	fmask := from(e, []float32{1, 0, 1}, 3)
	short := from(e, []bool{true, false}, 2)
	nz := from(e, []float32{0, 1, 0, 2, 0, 3}, 2, 3)
	v := from(e, []float32{3, 1, 2}, 3)
	m2 := from(e, []int64{3, 1, 1, 2}, 2, 2)
	F, I := gotch.Float, gotch.Int64
	runOpCases(e, []opCase{
		{"MaskedSelect", func() (*gotch.Tensor, error) { return x.MaskedSelect(mask) }, F, []int64{3}, []float64{1, 3, 5}},
		{"MaskedSelect/broadcast mask", func() (*gotch.Tensor, error) { return x.MaskedSelect(row) }, F, []int64{4}, []float64{2, 3, 5, 6}},
		{"MaskedSelect/nothing", func() (*gotch.Tensor, error) { return x.MaskedSelect(none) }, F, []int64{0}, []float64{}},
		{"Nonzero", func() (*gotch.Tensor, error) { return nz.Nonzero() }, I, []int64{3, 2}, []float64{0, 1, 1, 0, 1, 2}},
		{"Nonzero/bool", func() (*gotch.Tensor, error) { return mask.Nonzero() }, I, []int64{3, 2}, []float64{0, 0, 0, 2, 1, 1}},
		{"Nonzero/none", func() (*gotch.Tensor, error) { return none.Nonzero() }, I, []int64{0, 2}, []float64{}},
		{"Nonzero/vector", func() (*gotch.Tensor, error) { return row.Nonzero() }, I, []int64{2, 1}, []float64{1, 2}},
		{"Argsort", func() (*gotch.Tensor, error) { return v.Argsort(0, false) }, I, []int64{3}, []float64{1, 2, 0}},
		{"Argsort/descending", func() (*gotch.Tensor, error) { return v.Argsort(0, true) }, I, []int64{3}, []float64{0, 2, 1}},
		{"Argsort/dim 0", func() (*gotch.Tensor, error) { return m2.Argsort(0, false) }, I, []int64{2, 2}, []float64{1, 0, 0, 1}},
		{"Argsort/last dim", func() (*gotch.Tensor, error) { return m2.Argsort(-1, false) }, I, []int64{2, 2}, []float64{1, 0, 0, 1}},
	})
	runErrCases(e, []errCase{
		{"MaskedSelect/float mask", func() (*gotch.Tensor, error) { return x.MaskedSelect(fmask) }, []string{"MaskedSelect", "float32[2 3]", "float32[3]", "Bool"}},
		{"MaskedSelect/mask does not broadcast", func() (*gotch.Tensor, error) { return x.MaskedSelect(short) }, []string{"MaskedSelect", "float32[2 3]", "bool[2]"}},
		{"MaskedSelect/nil mask", func() (*gotch.Tensor, error) { return x.MaskedSelect(nil) }, []string{"MaskedSelect", "mask", "nil"}},
		{"Argsort/no such dim", func() (*gotch.Tensor, error) { return v.Argsort(1, false) }, []string{"Argsort", "float32[3]"}},
	})
}

func TestScatterIndexPut(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	F := gotch.Float
	z35 := e.own(gotch.MustZeros([]int64{3, 5}, F, e.dev))
	// torch.scatter's documented examples: src = arange(1, 11).reshape(2, 5)
	src := from(e, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5)
	idx0 := from(e, []int64{0, 1, 2, 0}, 1, 4)
	idx1 := from(e, []int64{0, 1, 2, 0, 1, 4}, 2, 3)
	fidx := from(e, []float32{0, 1, 2, 0}, 1, 4)
	big := from(e, []int64{0, 1, 5, 0}, 1, 4)

	z33 := e.own(gotch.MustZeros([]int64{3, 3}, F, e.dev))
	rows := from(e, []int64{0, 2}, 2)
	cols := from(e, []int64{1, 0}, 2)
	vals := from(e, []float32{5, 6}, 2)
	z3 := e.own(gotch.MustZeros([]int64{3}, F, e.dev))
	dup := from(e, []int64{0, 0, 2}, 3)
	add := from(e, []float32{1, 2, 3}, 3)
	z23 := e.own(gotch.MustZeros([]int64{2, 3}, F, e.dev))
	col2 := from(e, []int64{2}, 1)
	seven := from(e, []float32{7}, 1)
	ar4 := from(e, []float32{0, 1, 2, 3}, 4)
	even := from(e, []bool{true, false, true, false}, 4)
	minus := from(e, []float32{-1}) // a 0-d value, broadcast
	three := from(e, []float32{1, 2, 3}, 3)
	runOpCases(e, []opCase{
		{"Scatter/dim 0", func() (*gotch.Tensor, error) { return z35.Scatter(0, idx0, src) }, F, []int64{3, 5},
			[]float64{1, 0, 0, 4, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0}},
		{"Scatter/dim 1", func() (*gotch.Tensor, error) { return z35.Scatter(1, idx1, src) }, F, []int64{3, 5},
			[]float64{1, 2, 3, 0, 0, 6, 7, 0, 0, 8, 0, 0, 0, 0, 0}},
		{"IndexPut/pairs", func() (*gotch.Tensor, error) {
			return z33.IndexPut([]*gotch.Tensor{rows, cols}, vals, false)
		}, F, []int64{3, 3}, []float64{0, 5, 0, 0, 0, 0, 6, 0, 0}},
		{"IndexPut/accumulate duplicates", func() (*gotch.Tensor, error) {
			return z3.IndexPut([]*gotch.Tensor{dup}, add, true)
		}, F, []int64{3}, []float64{3, 0, 3}},
		{"IndexPut/nil is a whole dim", func() (*gotch.Tensor, error) {
			return z23.IndexPut([]*gotch.Tensor{nil, col2}, seven, false)
		}, F, []int64{2, 3}, []float64{0, 0, 7, 0, 0, 7}},
		{"IndexPut/bool mask", func() (*gotch.Tensor, error) {
			return ar4.IndexPut([]*gotch.Tensor{even}, minus, false)
		}, F, []int64{4}, []float64{-1, 1, -1, 3}},
	})
	// Neither op works in place.
	e.expect("Scatter/self unchanged", z35, F, []int64{3, 5}, make([]float64, 15))
	e.expect("IndexPut/self unchanged", ar4, F, []int64{4}, []float64{0, 1, 2, 3})
	runErrCases(e, []errCase{
		{"Scatter/float index", func() (*gotch.Tensor, error) { return z35.Scatter(0, fidx, src) }, []string{"Scatter", "float32[1 4]"}},
		{"Scatter/index out of range", func() (*gotch.Tensor, error) { return z35.Scatter(0, big, src) }, []string{"Scatter", "int64[1 4]"}},
		{"IndexPut/values do not fit", func() (*gotch.Tensor, error) {
			return z33.IndexPut([]*gotch.Tensor{rows, cols}, three, false)
		}, []string{"IndexPut", "float32[3 3]", "float32[3]", "int64[2]"}},
		{"IndexPut/float index", func() (*gotch.Tensor, error) {
			return z3.IndexPut([]*gotch.Tensor{add}, add, false)
		}, []string{"IndexPut", "float32[3]"}},
		{"IndexPut/too many indices", func() (*gotch.Tensor, error) {
			return z3.IndexPut([]*gotch.Tensor{dup, dup}, add, false)
		}, []string{"IndexPut", "float32[3]"}},
	})
	// A freed index is an error on the Go side, before the shim.
	gone := gotch.MustFromSlice([]int64{0}, []int64{1}, e.dev)
	gone.Free()
	if _, err := z3.IndexPut([]*gotch.Tensor{gone}, add, false); !errors.Is(err, gotch.ErrFreed) || !strings.Contains(err.Error(), "indices[0]") {
		t.Errorf("IndexPut with a freed index: got %v, want an ErrFreed naming indices[0]", err)
	}
}

func TestAllCloseIsClose(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	a := from(e, []float32{1, 2}, 2)
	near := from(e, []float32{1.000001, 2}, 2)
	far := from(e, []float32{1.1, 2}, 2)
	nan := from(e, []float32{float32(math.NaN()), 2}, 2)
	rows := from(e, []float32{1, 2, 1, 2}, 2, 2)
	three := from(e, []float32{1, 2, 3}, 3)
	ints := from(e, []int64{1, 2}, 2)
	cases := []struct {
		name       string
		x, y       *gotch.Tensor
		rtol, atol float64
		want       bool
	}{
		{"equal", a, a, 1e-5, 1e-8, true},
		{"within rtol", a, near, 1e-5, 1e-8, true},
		{"beyond rtol", a, far, 1e-5, 1e-8, false},
		{"within atol", a, far, 0, 0.2, true},
		{"within a loose rtol", a, far, 0.1, 0, true},
		{"NaN", nan, nan, 1e-5, 1e-8, false},
		{"broadcast", rows, a, 1e-5, 1e-8, true},
	}
	for _, c := range cases {
		got, err := c.x.AllClose(c.y, c.rtol, c.atol)
		if err != nil || got != c.want {
			t.Errorf("AllClose/%s: got %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	runOpCases(e, []opCase{
		{"IsClose", func() (*gotch.Tensor, error) { return a.IsClose(far, 1e-5, 1e-8, false) }, gotch.Bool, []int64{2}, []float64{0, 1}},
		{"IsClose/NaN", func() (*gotch.Tensor, error) { return nan.IsClose(nan, 1e-5, 1e-8, false) }, gotch.Bool, []int64{2}, []float64{0, 1}},
		{"IsClose/equal NaN", func() (*gotch.Tensor, error) { return nan.IsClose(nan, 1e-5, 1e-8, true) }, gotch.Bool, []int64{2}, []float64{1, 1}},
		{"All", func() (*gotch.Tensor, error) { return a.All() }, gotch.Bool, []int64{}, []float64{1}},
		{"All/false", func() (*gotch.Tensor, error) { return e.s.Attach(a.MustSubScalar(1)).All() }, gotch.Bool, []int64{}, []float64{0}},
		{"Any", func() (*gotch.Tensor, error) { return e.s.Attach(a.MustSubScalar(1)).Any() }, gotch.Bool, []int64{}, []float64{1}},
	})
	for _, c := range []struct {
		name string
		x, y *gotch.Tensor
		want []string
	}{
		{"shapes", a, three, []string{"AllClose", "float32[2]", "float32[3]"}},
		{"dtypes", a, ints, []string{"AllClose", "float32[2]", "int64[2]"}},
		{"nil", a, nil, []string{"AllClose", "other", "nil"}},
	} {
		if _, err := c.x.AllClose(c.y, 1e-5, 1e-8); err == nil {
			t.Errorf("AllClose/%s: no error", c.name)
		} else {
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("AllClose/%s: error %q does not mention %q", c.name, err, w)
				}
			}
		}
	}
	gone := gotch.MustFromSlice([]float32{1, 2}, []int64{2}, e.dev)
	gone.Free()
	if _, err := a.AllClose(gone, 1e-5, 1e-8); !errors.Is(err, gotch.ErrFreed) {
		t.Errorf("AllClose with a freed tensor: got %v, want ErrFreed", err)
	}
}

// TestMismatch checks gotchtest's assert-close report: where the worst
// elements are and by how much.
func TestMismatch(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	want := from(e, []float32{0.25, 1, 2, 3, 4, 5}, 2, 3)
	cases := []struct {
		name string
		got  *gotch.Tensor
		rtol float64
		atol float64
		msg  string
	}{
		{"equal", from(e, []float32{0.25, 1, 2, 3, 4, 5}, 2, 3), 1e-5, 1e-8, ""},
		{"within tolerance", from(e, []float32{0.25, 1, 2, 3, 4, 5.00001}, 2, 3), 1e-5, 1e-8, ""},
		{"two differ", from(e, []float32{0.5, 1, 2, 3, 4, 5.5}, 2, 3), 1e-5, 1e-8,
			"2 of 6 elements differ beyond rtol 1e-05, atol 1e-08: greatest absolute difference 0.5 at [1 2] (got 5.5, want 5), greatest relative difference 1 at [0 0] (got 0.5, want 0.25)"},
		{"shape", from(e, []float32{0.25, 1, 2, 3, 4, 5}, 3, 2), 1e-5, 1e-8, "shape [3 2], want [2 3]"},
		{"dtype", from(e, []float64{0.25, 1, 2, 3, 4, 5}, 2, 3), 1e-5, 1e-8, "dtype float64, want float32"},
		{"NaN", from(e, []float32{0.25, 1, 2, 3, float32(math.NaN()), 5}, 2, 3), 1e-5, 1e-8,
			"1 of 6 elements differ beyond rtol 1e-05, atol 1e-08: greatest absolute difference +Inf at [1 1] (got NaN, want 4), greatest relative difference +Inf at [1 1] (got NaN, want 4)"},
	}
	for _, c := range cases {
		msg, err := gotchtest.Mismatch(c.got, want, c.rtol, c.atol)
		if err != nil || msg != c.msg {
			t.Errorf("Mismatch/%s:\n got %q, %v\nwant %q", c.name, msg, err, c.msg)
		}
	}
	if _, err := gotchtest.Mismatch(nil, want, 0, 0); err == nil {
		t.Error("Mismatch(nil, ...): no error")
	}
}

// TestVersion: the version counter moves with in-place writes to the
// tensor or to a view of it, not with reads or out-of-place ops, and a
// freed tensor says so.
func TestVersion(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, 2, 3, 4}, 2, 2)
	version := func() int64 {
		t.Helper()
		v, err := x.Version()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	x.MustAddScalar(1).Free()
	if v := version(); v != v0 {
		t.Errorf("an out-of-place add moved the version %d -> %d", v0, v)
	}
	x.MustFill_(5)
	v1 := version()
	if v1 <= v0 {
		t.Errorf("fill_ left the version at %d (was %d)", v1, v0)
	}
	row := x.MustSelect(0, 1)
	row.MustFill_(7)
	row.Free()
	if v := version(); v <= v1 {
		t.Errorf("fill_ of a view left the version at %d (was %d)", v, v1)
	}
	y := x.MustClone()
	y.Free()
	if _, err := y.Version(); err == nil || !strings.Contains(err.Error(), "freed") {
		t.Errorf("Version of a freed tensor: %v", err)
	}
}

// TestStrides: strides in elements as torch gives them for a row-major
// tensor, its transpose, a column of it, a column-major copy and a 0-d
// tensor; a freed tensor says so.
func TestStrides(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	for _, tc := range []struct {
		name string
		t    *gotch.Tensor
		want []int64
	}{
		{"row-major [2 3]", x, []int64{3, 1}},
		{"transposed [3 2]", x.MustTranspose(0, 1), []int64{1, 3}},
		{"column [2]", x.MustSelect(1, 2), []int64{3}},
		{"column-major [2 3]", x.MustTranspose(0, 1).MustContiguous().MustTranspose(0, 1), []int64{1, 2}},
		{"0-d", x.MustSum(), []int64{}},
	} {
		got, err := tc.t.Strides()
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Strides() = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	y := x.MustClone()
	y.Free()
	if _, err := y.Strides(); err == nil || !strings.Contains(err.Error(), "freed") {
		t.Errorf("Strides of a freed tensor: %v", err)
	}
}
