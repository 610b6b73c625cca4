package gotch

import (
	"fmt"
	"unsafe"
)

// FromSlice copies data, row-major, into a new tensor of the given shape on
// dev. An empty shape makes a scalar (0-d) tensor.
func FromSlice[T Elem](data []T, shape []int64, dev Device) (*Tensor, error) {
	return fromData(unsafe.Pointer(unsafe.SliceData(data)), len(data), shape, DTypeOf[T](), DTypeOf[T](), dev)
}

// MustFromSlice is FromSlice that panics with a *Error.
func MustFromSlice[T Elem](data []T, shape []int64, dev Device) *Tensor {
	t, err := FromSlice(data, shape, dev)
	must(err)
	return t
}

// FromBytes makes a tensor from raw little-endian elements of dtype, the
// way safetensors stores them (float16 and bfloat16 included).
func FromBytes(b []byte, shape []int64, dtype DType, dev Device) (*Tensor, error) {
	return FromBytesAs(b, shape, dtype, dtype, dev)
}

// FromBytesAs makes a tensor of dtype on dev from raw little-endian
// elements of stored dtype, converting them on the way: b is the only
// other copy, so a loader that reuses b holds no tensor's bytes twice.
func FromBytesAs(b []byte, shape []int64, stored, dtype DType, dev Device) (*Tensor, error) {
	for _, d := range []DType{stored, dtype} {
		if !d.valid() {
			return nil, &Error{Op: "FromBytes", Msg: fmt.Sprintf("unknown dtype %d", int32(d))}
		}
	}
	if len(b)%stored.Size() != 0 {
		return nil, &Error{Op: "FromBytes", Msg: fmt.Sprintf("%d bytes are not a whole number of %s elements", len(b), stored)}
	}
	return fromData(unsafe.Pointer(unsafe.SliceData(b)), len(b)/stored.Size(), shape, stored, dtype, dev)
}

func fromData(p unsafe.Pointer, n int, shape []int64, stored, dtype DType, dev Device) (*Tensor, error) {
	for i, s := range shape {
		if s < 0 {
			return nil, &Error{Op: "FromSlice", Msg: fmt.Sprintf("dimension %d of shape %v is negative", i, shape)}
		}
	}
	if want := numel(shape); want != int64(n) {
		return nil, &Error{Op: "FromSlice", Msg: fmt.Sprintf("%d values do not fill shape %v (%d elements)", n, shape, want)}
	}
	return copyFrom(p, shape, stored, dtype, dev)
}

// ToSlice copies t's elements, row-major, converted to T, into a new slice.
// A tensor on a device is copied to the host first.
func ToSlice[T Elem](t *Tensor) ([]T, error) {
	if err := needTensor("ToSlice", "self", t); err != nil {
		return nil, err
	}
	dst := make([]T, t.Numel())
	if err := copyTo(t, unsafe.Pointer(unsafe.SliceData(dst)), len(dst)*DTypeOf[T]().Size(), DTypeOf[T]()); err != nil {
		return nil, err
	}
	return dst, nil
}

// MustToSlice is ToSlice that panics with a *Error.
func MustToSlice[T Elem](t *Tensor) []T {
	s, err := ToSlice[T](t)
	must(err)
	return s
}

// Bytes copies t's elements in its own dtype as raw little-endian bytes.
func (t *Tensor) Bytes() ([]byte, error) {
	if err := needTensor("Bytes", "self", t); err != nil {
		return nil, err
	}
	dst := make([]byte, int(t.Numel())*t.dtype.Size())
	if err := copyTo(t, unsafe.Pointer(unsafe.SliceData(dst)), len(dst), t.dtype); err != nil {
		return nil, err
	}
	return dst, nil
}

// Item is the value of a one-element tensor as a float64.
func (t *Tensor) Item() (float64, error) {
	if err := needTensor("Item", "self", t); err != nil {
		return 0, err
	}
	if t.Numel() != 1 {
		return 0, &Error{Op: "Item", Args: []string{t.spec()}, Msg: fmt.Sprintf("a tensor with %d elements has no single value", t.Numel())}
	}
	v, err := ToSlice[float64](t)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// MustItem is Item that panics with a *Error.
func (t *Tensor) MustItem() float64 {
	v, err := t.Item()
	must(err)
	return v
}
