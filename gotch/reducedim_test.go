//go:build cgo

package gotch_test

// ProdDim, AllDim and AnyDim (the one-dim reductions einops's prod, all and
// any run one axis at a time), against values worked out by hand.

import (
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

func TestProdAllAnyDim(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	// [[1 2 3] [4 5 6]]
	m := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	ints := from(e, []int32{1, 2, 3, 4, 5, 6}, 2, 3)
	// [[true false true] [true true true]]
	b := from(e, []bool{true, false, true, true, true, true}, 2, 3)
	u8 := from(e, []uint8{0, 0, 1, 0, 0, 0}, 2, 3)
	F := gotch.Float
	runOpCases(e, []opCase{
		{"ProdDim/rows", func() (*gotch.Tensor, error) { return m.ProdDim(1, false) }, F, []int64{2}, []float64{6, 120}},
		{"ProdDim/columns, keepdim", func() (*gotch.Tensor, error) { return m.ProdDim(0, true) }, F, []int64{1, 3}, []float64{4, 10, 18}},
		{"ProdDim/negative dim", func() (*gotch.Tensor, error) { return m.ProdDim(-1, false) }, F, []int64{2}, []float64{6, 120}},
		{"ProdDim/int32 promotes to int64", func() (*gotch.Tensor, error) { return ints.ProdDim(1, false) }, gotch.Int64, []int64{2}, []float64{6, 120}},
		{"AllDim/rows", func() (*gotch.Tensor, error) { return b.AllDim(1, false) }, gotch.Bool, []int64{2}, []float64{0, 1}},
		{"AllDim/columns", func() (*gotch.Tensor, error) { return b.AllDim(0, false) }, gotch.Bool, []int64{3}, []float64{1, 0, 1}},
		{"AnyDim/rows", func() (*gotch.Tensor, error) { return u8.AnyDim(1, true) }, gotch.Uint8, []int64{2, 1}, []float64{1, 0}},
		{"AnyDim/floats", func() (*gotch.Tensor, error) { return m.AnyDim(0, false) }, gotch.Bool, []int64{3}, []float64{1, 1, 1}},
	})
	runErrCases(e, []errCase{
		{"ProdDim/dim out of range", func() (*gotch.Tensor, error) { return m.ProdDim(2, false) }, []string{"ProdDim", "float32[2 3]", "out of range"}},
		{"AnyDim/nil", func() (*gotch.Tensor, error) { return (*gotch.Tensor)(nil).AnyDim(0, false) }, []string{"AnyDim", "nil"}},
	})
}
