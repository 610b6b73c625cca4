package weights

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkLoadSafetensors opens a 100 MiB safetensors file (25 float32
// [1024 1024] tensors, GPT-2-small's size class) and reads every tensor,
// as a model load does; the file stays in the page cache between rounds.
func BenchmarkLoadSafetensors(b *testing.B) {
	const tensors, side = 25, 1024
	path := filepath.Join(b.TempDir(), "model.safetensors")
	ts := make([]*Tensor, tensors)
	for i := range ts {
		data := make([]byte, side*side*4)
		for j := range data {
			data[j] = byte(i + j)
		}
		ts[i] = &Tensor{Name: fmt.Sprintf("w%d", i), DType: F32, Shape: []int64{side, side}, Data: data}
	}
	if err := WriteSafetensors(path, ts, nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(tensors * side * side * 4)
	for b.Loop() {
		c, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for _, key := range c.Keys() {
			if _, err := c.Get(key); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
	}
}
