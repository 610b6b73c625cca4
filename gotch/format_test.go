//go:build cgo

package gotch_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// Printing a tensor shows its values as torch does, then its dtype and shape.
func ExampleTensor_String() {
	s := gotch.NewScope()
	defer s.Close()
	x := s.Attach(gotch.MustFromSlice([]float32{0.1, 0.2, 0.3, 0.4}, []int64{2, 2}, gotch.CPU))
	fmt.Println(x)
	fmt.Println(s.Attach(gotch.MustFromSlice([]int64{1, -20, 300}, []int64{3}, gotch.CPU)))
	fmt.Println(x.MustGtScalar(0.25))
	fmt.Println(x.MustMean())
	fmt.Println(x.MustSum()) // a whole number prints as torch does
	// Output:
	// tensor([[0.1000, 0.2000],
	//         [0.3000, 0.4000]], dtype=float32, shape=[2 2])
	// tensor([  1, -20, 300], dtype=int64, shape=[3])
	// tensor([[False, False],
	//         [ True,  True]], dtype=bool, shape=[2 2])
	// tensor(0.2500, dtype=float32, shape=[])
	// tensor(1., dtype=float32, shape=[])
}

// A tensor of more than 1000 elements is summarised as torch does: only
// the first and last 3 entries of each long dimension are read and shown.
func ExampleTensor_String_summarised() {
	s := gotch.NewScope()
	defer s.Close()
	fmt.Println(s.Attach(gotch.MustArange(0, 2000, 1, gotch.Int64, gotch.CPU)))
	fmt.Println(s.Attach(gotch.MustArange(1000, 3000, 1, gotch.Int64, gotch.CPU)).MustReshape([]int64{2, 1000}).MustDivScalar(1000))
	// Output:
	// tensor([   0,    1,    2,  ..., 1997, 1998, 1999], dtype=int64, shape=[2000])
	// tensor([[1.0000, 1.0010, 1.0020,  ..., 1.9970, 1.9980, 1.9990],
	//         [2.0000, 2.0010, 2.0020,  ..., 2.9970, 2.9980, 2.9990]], dtype=float32, shape=[2 1000])
}

// Spec describes a tensor without reading it, for error messages; a freed
// or nil tensor prints its Spec.
func ExampleTensor_Spec() {
	x := gotch.MustZeros([]int64{2, 3}, gotch.Float, gotch.CPU)
	fmt.Println(x.Spec())
	x.Free()
	fmt.Println(x)
	var none *gotch.Tensor
	fmt.Println(none)
	// Output:
	// Tensor(float32[2 3] cpu)
	// Tensor(float32[2 3] cpu (freed))
	// Tensor(nil)
}

func TestString(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	grad := e.own(gotch.MustOnes([]int64{2}, gotch.Float, e.dev))
	grad.MustSetRequiresGrad_(true)
	dev := ""
	if e.dev != gotch.CPU {
		dev = ", device=" + e.dev.String()
	}
	cases := []struct {
		name string
		x    *gotch.Tensor
		want string
	}{
		{"whole floats", from(e, []float32{0, 10, -2}, 3), "tensor([ 0., 10., -2.], dtype=float32, shape=[3])"},
		{"zeros", e.own(gotch.MustZeros([]int64{2}, gotch.Float, e.dev)), "tensor([0., 0.], dtype=float32, shape=[2])"},
		{"negative", from(e, []float32{-1.5, 0.25}, 2), "tensor([-1.5000,  0.2500], dtype=float32, shape=[2])"},
		{"scientific: small", from(e, []float32{1e-5, 1, 100}, 3), "tensor([1.0000e-05, 1.0000e+00, 1.0000e+02], dtype=float32, shape=[3])"},
		{"scientific: wide range", from(e, []float32{1, 5000}, 2), "tensor([1.0000e+00, 5.0000e+03], dtype=float32, shape=[2])"},
		{"nan and inf", from(e, []float32{nan, inf, -inf, 1}, 4), "tensor([nan, inf, -inf, 1.], dtype=float32, shape=[4])"},
		{"float64", from(e, []float64{0.5}, 1), "tensor([0.5000], dtype=float64, shape=[1])"},
		{"float16", e.own(from(e, []float32{0.5, 2}, 2).MustTo(gotch.Half)), "tensor([0.5000, 2.0000], dtype=float16, shape=[2])"},
		{"int32", from(e, []int32{7, -8}, 2), "tensor([ 7, -8], dtype=int32, shape=[2])"},
		{"uint8", from(e, []uint8{255, 0}, 2), "tensor([255,   0], dtype=uint8, shape=[2])"},
		{"bool scalar", from(e, []bool{true}), "tensor(True, dtype=bool, shape=[])"},
		{"empty", e.own(gotch.MustZeros([]int64{2, 0}, gotch.Float, e.dev)), "tensor([], dtype=float32, shape=[2 0])"},
		{"requires grad", grad, "tensor([1., 1.], dtype=float32, shape=[2], requires_grad=true)"},
		{"wrapped row", e.own(gotch.MustArange(0, 13, 1, gotch.Float, e.dev)).MustDivScalar(4),
			"tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000, 1.2500, 1.5000, 1.7500, 2.0000,\n        2.2500, 2.5000, 2.7500, 3.0000], dtype=float32, shape=[13])"},
		{"3-d", e.own(gotch.MustArange(0, 8, 1, gotch.Int64, e.dev)).MustReshape([]int64{2, 2, 2}),
			"tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]], dtype=int64, shape=[2 2 2])"},
		// 1001 elements: summarised, the short dimension whole.
		{"summarised columns", e.own(gotch.MustArange(0, 1001, 1, gotch.Int64, e.dev)).MustReshape([]int64{1, 1001}),
			"tensor([[   0,    1,    2,  ...,  998,  999, 1000]], dtype=int64, shape=[1 1001])"},
		{"summarised rows", e.own(gotch.MustArange(0, 1001, 1, gotch.Int64, e.dev)).MustReshape([]int64{1001, 1}),
			"tensor([[   0],\n        [   1],\n        [   2],\n        ...,\n        [ 998],\n        [ 999],\n        [1000]], dtype=int64, shape=[1001 1])"},
		// 1000 elements: not summarised, wrapped to 80 columns.
		{"at the threshold", e.own(gotch.MustFull([]int64{1000}, 7, gotch.Int64, e.dev)), ""},
	}
	for _, c := range cases {
		got := c.x.String()
		if c.name == "at the threshold" {
			if strings.Contains(got, "...") || strings.Count(got, "7") != 1000 {
				t.Errorf("String/%s: summarised or lost values:\n%s", c.name, got)
			}
			continue
		}
		want := c.want
		if dev != "" { // the device goes after the shape
			at := strings.LastIndex(want, ")")
			if i := strings.Index(want, ", requires_grad"); i >= 0 {
				at = i
			}
			want = want[:at] + dev + want[at:]
		}
		if got != want {
			t.Errorf("String/%s:\n got %s\nwant %s", c.name, got, want)
		}
	}
}

// TestStringTouchesNothing: printing a scoped or requires-grad tensor
// leaves its scope and autograd alone, and a nil, freed or zero Tensor
// prints without crossing into libtorch.
func TestStringTouchesNothing(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := e.own(gotch.MustArange(0, 5000, 1, gotch.Float, e.dev)).MustReshape([]int64{50, 100})
	n := e.s.Len()
	_ = x.String()
	if e.s.Len() != n {
		t.Errorf("String added %d tensors to the operand's scope", e.s.Len()-n)
	}
	gone := gotch.MustOnes([]int64{2}, gotch.Float, e.dev)
	gone.Free()
	for _, c := range []struct {
		x    *gotch.Tensor
		want string
	}{
		{nil, "Tensor(nil)"},
		{gone, "Tensor(float32[2] " + e.dev.String() + " (freed))"},
		{&gotch.Tensor{}, "Tensor(float32[] cpu (freed))"},
	} {
		if got := c.x.String(); got != c.want {
			t.Errorf("String: got %q, want %q", got, c.want)
		}
		if got := fmt.Sprint(c.x); got != c.want {
			t.Errorf("Sprint: got %q, want %q", got, c.want)
		}
	}
	// Errors describe operands by Spec: no values in them.
	_, err := x.Matmul(x)
	var ge *gotch.Error
	if !errors.As(err, &ge) || strings.Contains(err.Error(), "tensor(") || !strings.Contains(err.Error(), "float32[50 100]") {
		t.Errorf("Matmul error %v: want the operands' specs, not their values", err)
	}
}
