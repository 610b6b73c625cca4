package gotch

import "fmt"

// DType is a tensor element type. The values are the shim's gt_dtype codes.
type DType int32

const (
	Float    DType = 0 // float32
	Double   DType = 1 // float64
	Half     DType = 2 // float16
	BFloat16 DType = 3 // bfloat16
	Int64    DType = 4
	Int32    DType = 5
	Uint8    DType = 6
	Bool     DType = 7
)

var dtypeNames = [...]string{"float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"}
var dtypeSizes = [...]int{4, 8, 2, 2, 8, 4, 1, 1}

func (d DType) valid() bool { return d >= 0 && int(d) < len(dtypeNames) }

// String is torch's name without the "torch." prefix, e.g. "float32".
func (d DType) String() string {
	if !d.valid() {
		return fmt.Sprintf("DType(%d)", int32(d))
	}
	return dtypeNames[d]
}

// Size is the number of bytes per element.
func (d DType) Size() int {
	if !d.valid() {
		return 0
	}
	return dtypeSizes[d]
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d >= Float && d <= BFloat16 }

// ParseDType accepts torch's names and their usual aliases: float32/float,
// float64/double, float16/half/fp16, bfloat16/bf16, int64/long, int32/int,
// uint8, bool.
func ParseDType(s string) (DType, error) {
	switch s {
	case "float32", "float", "fp32":
		return Float, nil
	case "float64", "double", "fp64":
		return Double, nil
	case "float16", "half", "fp16":
		return Half, nil
	case "bfloat16", "bf16":
		return BFloat16, nil
	case "int64", "long":
		return Int64, nil
	case "int32", "int":
		return Int32, nil
	case "uint8":
		return Uint8, nil
	case "bool":
		return Bool, nil
	}
	return 0, fmt.Errorf("gotch: unknown dtype %q (want float32, float64, float16, bfloat16, int64, int32, uint8 or bool)", s)
}

// Elem is the set of Go element types that map one-to-one onto a DType.
type Elem interface {
	~float32 | ~float64 | ~int64 | ~int32 | ~uint8 | ~bool
}

// DTypeOf is the DType that holds elements of type T.
func DTypeOf[T Elem]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float
	case float64:
		return Double
	case int64:
		return Int64
	case int32:
		return Int32
	case uint8:
		return Uint8
	case bool:
		return Bool
	}
	panic("unreachable: Elem admits no other type")
}
