package cuda_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/golens/golens/cuda"
	"github.com/golens/golens/gotch"
)

// Time a piece of work on the GPU with events where there is one, and on
// the host clock where there is not.
func ExampleRecord() {
	work := func(dev gotch.Device) error {
		s := gotch.NewScope()
		defer s.Close()
		x, err := gotch.Ones([]int64{256, 256}, gotch.Float, dev)
		if err != nil {
			return err
		}
		_, err = s.Attach(x).Matmul(x)
		return err
	}

	start, err := cuda.Record(0)
	if errors.Is(err, cuda.ErrNotCompiled) || errors.Is(err, cuda.ErrUnavailable) {
		t0 := time.Now()
		if err := work(gotch.CPU); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("measured:", time.Since(t0) > 0)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer start.Free()
	if err := work(gotch.CUDA(0)); err != nil {
		fmt.Println(err)
		return
	}
	end, err := cuda.Record(0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer end.Free()
	d, err := cuda.Elapsed(start, end)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("measured:", d > 0)
	// Output: measured: true
}

// Errors say why CUDA cannot be used and wrap a sentinel to test for.
func ExampleMemory() {
	m, err := cuda.Memory(0)
	switch {
	case errors.Is(err, cuda.ErrNotCompiled):
		fmt.Println("no CUDA in this build")
	case errors.Is(err, cuda.ErrUnavailable):
		fmt.Println("no GPU 0")
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Printf("%d MiB allocated\n", m.Allocated>>20)
	}
}
