package weights

import (
	"fmt"
	"math"
	"slices"
)

// DType names an element type as safetensors spells it.
type DType string

// The dtypes a Tensor may hold: those libtorch accepts from raw bytes.
const (
	F32  DType = "F32"
	F64  DType = "F64"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	U8   DType = "U8"
	BOOL DType = "BOOL"
)

// Size returns the byte size of one element, or 0 for an unsupported dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case U8, BOOL:
		return 1
	}
	return 0
}

// Tensor is one named tensor: contiguous row-major little-endian Data of the
// given dtype and shape. A 0-d tensor has an empty Shape and one element.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// NBytes is the number of bytes t's data takes: its elements times its
// dtype's size (0 for an unknown dtype or an invalid shape).
func (t *Tensor) NBytes() int64 {
	n, ok := numel(t.Shape, math.MaxInt64/max(int64(t.DType.Size()), 1))
	if !ok {
		return 0
	}
	return n * int64(t.DType.Size())
}

// validate checks that t's dtype is supported and that Data holds exactly
// the bytes its shape needs.
func (t *Tensor) validate() error {
	size := t.DType.Size()
	if size == 0 {
		return fmt.Errorf("key %q: unknown dtype %q", t.Name, t.DType)
	}
	n, ok := numel(t.Shape, math.MaxInt64/int64(size))
	if !ok {
		return fmt.Errorf("key %q: invalid shape %v", t.Name, t.Shape)
	}
	if want := n * int64(size); int64(len(t.Data)) != want {
		return fmt.Errorf("key %q: %d data bytes, shape %v of %s needs %d", t.Name, len(t.Data), t.Shape, t.DType, want)
	}
	return nil
}

// numel returns the product of shape, or false if a dimension is negative or
// the product exceeds limit.
func numel(shape []int64, limit int64) (int64, bool) {
	if slices.Contains(shape, 0) {
		return 0, !slices.ContainsFunc(shape, func(d int64) bool { return d < 0 })
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 || d > limit/n {
			return 0, false
		}
		n *= d
	}
	return n, true
}
