//go:build cgo

package einops_test

import (
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// The reference side of the tests: plain-Go index arithmetic over
// row-major arrays, written per case, that knows nothing of patterns.

// numel is the number of elements of a shape.
func numel(shape []int64) int {
	n := 1
	for _, s := range shape {
		n *= int(s)
	}
	return n
}

// each calls f with every multi-index of shape, in row-major order.
func each(shape []int64, f func(idx []int)) {
	idx := make([]int, len(shape))
	for k := range numel(shape) {
		r := k
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d] = r % int(shape[d])
			r /= int(shape[d])
		}
		f(idx)
	}
}

// flat is the row-major offset of idx in shape.
func flat(shape []int64, idx []int) int {
	off := 0
	for d, s := range shape {
		off = off*int(s) + idx[d]
	}
	return off
}

// tensor makes a float32 tensor of shape whose element at flat offset i is
// val(i), on the device under test, and returns it with its values.
func tensor(t *testing.T, val func(i int) float64, shape ...int64) (*gotch.Tensor, []float64) {
	t.Helper()
	data := make([]float32, numel(shape))
	want := make([]float64, len(data))
	for i := range data {
		data[i] = float32(val(i))
		want[i] = float64(data[i])
	}
	x, err := gotch.FromSlice(data, shape, gotchtest.Device(t))
	if err != nil {
		t.Fatalf("FromSlice %v: %v", shape, err)
	}
	return x, want
}

// values reads a float32, int64 or bool tensor as float64s.
func values(t *testing.T, x *gotch.Tensor) []float64 {
	t.Helper()
	var out []float64
	var err error
	switch x.DType() {
	case gotch.Float:
		var v []float32
		v, err = gotch.ToSlice[float32](x)
		for _, e := range v {
			out = append(out, float64(e))
		}
	case gotch.Int64:
		var v []int64
		v, err = gotch.ToSlice[int64](x)
		for _, e := range v {
			out = append(out, float64(e))
		}
	case gotch.Bool:
		var v []bool
		v, err = gotch.ToSlice[bool](x)
		for _, e := range v {
			out = append(out, map[bool]float64{false: 0, true: 1}[e])
		}
	default:
		t.Fatalf("values: no reader for %s", x.Spec())
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// counting is the data of the rearrangement tests: 1, 2, 3, ..., so every
// element is told apart and none is zero.
func counting(i int) float64 { return float64(i + 1) }
