//go:build cgo

package einops_test

import (
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/einops"
)

// arange is a float32 tensor of shape holding 0, 1, 2, ...
func arange(shape ...int64) *gotch.Tensor {
	n := 1
	for _, s := range shape {
		n *= int(s)
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i)
	}
	return gotch.MustFromSlice(data, shape, gotch.CPU)
}

// Split the heads out of q [batch pos (head d_head)], as an attention
// layer does, and move them before the positions.
func ExampleRearrange() {
	q := arange(1, 2, 6) // [batch pos (head d_head)]
	defer q.Free()
	heads, err := einops.Rearrange(q, "b p (h d) -> b h p d", einops.Size("h", 3))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer heads.Free()
	fmt.Println(heads.Shape())
	fmt.Println(gotch.MustToSlice[float32](heads))

	_, err = einops.Rearrange(q, "b p (h d) -> b h p d", einops.Size("h", 4))
	fmt.Println(err)
	// Output:
	// [1 3 2 2]
	// [0 1 6 7 2 3 8 9 4 5 10 11]
	// einops: Rearrange(Tensor(float32[1 2 6] cpu), "b p (h d) -> b h p d", h=4): dim 2 "(h d)" has size 6, which h=4 does not divide
}

// Average over positions, and max-pool pairs of them.
func ExampleReduce() {
	x := arange(1, 4, 2) // [batch pos d]
	defer x.Free()
	mean, err := einops.Reduce(x, "b p d -> b d", einops.Mean)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mean.Free()
	pooled, err := einops.Reduce(x, "b (p 2) d -> b p d", einops.Max)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pooled.Free()
	fmt.Println(mean.Shape(), gotch.MustToSlice[float32](mean))
	fmt.Println(pooled.Shape(), gotch.MustToSlice[float32](pooled))
	// Output:
	// [1 2] [3 4]
	// [1 2 2] [2 3 6 7]
}

// Broadcast a bias over a batch, and repeat each element.
func ExampleRepeat() {
	b := arange(3) // [d]
	defer b.Free()
	batch, err := einops.Repeat(b, "d -> n d", einops.Size("n", 2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer batch.Free()
	each, err := einops.Repeat(b, "d -> (d 2)")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer each.Free()
	fmt.Println(batch.Shape(), gotch.MustToSlice[float32](batch))
	fmt.Println(each.Shape(), gotch.MustToSlice[float32](each))
	// Output:
	// [2 3] [0 1 2 0 1 2]
	// [6] [0 0 1 1 2 2]
}

// Unembed the residual stream with TransformerLens's names for the axes.
func ExampleEinsum() {
	resid := arange(1, 2, 3) // [batch pos d_model]
	defer resid.Free()
	wU := arange(3, 4) // [d_model d_vocab]
	defer wU.Free()
	logits, err := einops.Einsum("batch pos d_model, d_model d_vocab -> batch pos d_vocab", resid, wU)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer logits.Free()
	fmt.Println(logits.Shape())
	fmt.Println(gotch.MustToSlice[float32](logits))
	// Output:
	// [1 2 4]
	// [20 23 26 29 56 68 80 92]
}
