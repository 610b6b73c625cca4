//go:build cgo

package gotch_test

import (
	"errors"
	"fmt"

	"github.com/golens/golens/gotch"
)

// Create a tensor, run an op, read the result back and free both.
func ExampleFromSlice() {
	x, err := gotch.FromSlice([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, gotch.CPU)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Free()

	sums, err := x.SumDims([]int64{1}, false) // row sums
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sums.Free()

	v, err := gotch.ToSlice[float32](sums)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sums, v)
	// Output: tensor([ 6., 15.], dtype=float32, shape=[2]) [6 15]
}

// A Scope frees every tensor made from its tensors when it closes; Keep
// takes out the one result that must outlive it.
func ExampleScope() {
	s := gotch.NewScope()
	x := s.Attach(gotch.MustFromSlice([]float32{1, 2, 3}, []int64{3}, gotch.CPU))
	probs := x.MustSoftmax(0)                 // joins s: its operand x is in s
	top := s.Keep(probs.MustArgmax(0, false)) // leaves s
	fmt.Println("owned:", s.Len())
	s.Close()
	defer top.Free()

	fmt.Println("x freed:", x.Freed(), "probs freed:", probs.Freed())
	fmt.Println("argmax:", top.MustItem())
	// Output:
	// owned: 2
	// x freed: true probs freed: true
	// argmax: 2
}

// Ops return a *gotch.Error that names the op and its operands; a tensor
// used after Free gives one that wraps ErrFreed.
func ExampleError() {
	s := gotch.NewScope()
	defer s.Close()
	a := s.Attach(gotch.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, gotch.CPU))

	_, err := a.Matmul(a) // [2 3] × [2 3] does not fit
	var ge *gotch.Error
	if errors.As(err, &ge) {
		fmt.Println(ge.Op, ge.Args)
	}

	b := gotch.MustOnes([]int64{3}, gotch.Float, gotch.CPU)
	b.Free()
	_, err = a.Add(b)
	fmt.Println(errors.Is(err, gotch.ErrFreed))
	// Output:
	// Matmul [float32[2 3] cpu float32[2 3] cpu]
	// true
}
