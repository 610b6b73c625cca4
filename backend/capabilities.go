package backend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golens/golens/cuda"
	"github.com/golens/golens/gotch"
)

// ErrNotSupported is wrapped by the error of a check for something the
// backend cannot do; fall back to another dtype or device on it.
var ErrNotSupported = errors.New("not supported on this backend: choose another dtype or device")

// Capabilities is what a backend can do, as plain data.
type Capabilities struct {
	Torch string // the libtorch version, e.g. "1.13.0"

	// DTypes has one entry per floating-point dtype (float32, float64,
	// float16, bfloat16), measured by running each op on the device.
	DTypes []DTypeSupport

	// FusedAttention: ScaledDotProductAttention has a fused CUDA kernel
	// here; elsewhere it computes the same result unfused.
	FusedAttention bool
	// BF16Matmul: bfloat16 matmul runs, natively (compute capability ≥ 8.0)
	// on CUDA.
	BF16Matmul bool
	// TF32: the GPU has TF32 tensor cores (compute capability ≥ 8.0), so
	// float32 matmul may trade precision for speed where torch allows it.
	TF32 bool
	// TotalMemory is the device's memory in bytes; 0 where unknown (CPU,
	// MPS, a shim without CUDA runtime statistics).
	TotalMemory int64
}

// DTypeSupport says what runs in one dtype on a device.
type DTypeSupport struct {
	DType gotch.DType
	// Storage: tensors of the dtype can be made, read and converted, so
	// weights can at least be loaded in it.
	Storage bool
	// The core ops of a transformer forward pass.
	Matmul, Softmax, LayerNorm bool
}

// Full reports whether a forward pass can compute in the dtype.
func (s DTypeSupport) Full() bool { return s.Storage && s.Matmul && s.Softmax && s.LayerNorm }

// missing names what does not run.
func (s DTypeSupport) missing() []string {
	if !s.Storage {
		return []string{"tensors"}
	}
	var m []string
	for _, op := range []struct {
		name string
		ok   bool
	}{{"matmul", s.Matmul}, {"softmax", s.Softmax}, {"layer_norm", s.LayerNorm}} {
		if !op.ok {
			m = append(m, op.name)
		}
	}
	return m
}

// DType is the entry for dt; false for a dtype that is not floating-point.
func (c Capabilities) DType(dt gotch.DType) (DTypeSupport, bool) {
	for _, s := range c.DTypes {
		if s.DType == dt {
			return s, true
		}
	}
	return DTypeSupport{}, false
}

// Supports returns nil when a forward pass can compute in dt on the
// device, and otherwise an error wrapping ErrNotSupported that says what
// is missing.
func (b *Backend) Supports(dt gotch.DType) error {
	s, ok := b.caps.DType(dt)
	switch {
	case !ok:
		return fmt.Errorf("backend: %s on %s: not a floating-point dtype: %w", dt, b.dev, ErrNotSupported)
	case !s.Full():
		return fmt.Errorf("backend: %s on %s (torch %s): no %s: %w", dt, b.dev, b.caps.Torch, strings.Join(s.missing(), ", "), ErrNotSupported)
	}
	return nil
}

var floatDTypes = []gotch.DType{gotch.Float, gotch.Double, gotch.Half, gotch.BFloat16}

// measure finds the capabilities of d, whose CUDA properties are props.
func measure(d gotch.Device, props cuda.Props) Capabilities {
	c := Capabilities{Torch: gotch.TorchVersion(), TotalMemory: props.TotalMemory}
	for _, dt := range floatDTypes {
		c.DTypes = append(c.DTypes, probe(d, dt))
	}
	ampere := d.Type == gotch.CUDAType && props.Major >= 8
	bf16, _ := c.DType(gotch.BFloat16)
	c.BF16Matmul = bf16.Matmul && (d.Type != gotch.CUDAType || ampere)
	c.TF32 = ampere
	c.FusedAttention = d.Type == gotch.CUDAType && gotch.HasFusedAttention()
	return c
}

// probe runs each core op once on a tiny tensor of dtype dt on d. Which
// dtypes an op has a kernel for depends on the device and the torch
// version (libtorch 1.13 has no float16 matmul on the CPU), so it is
// measured rather than written down.
func probe(d gotch.Device, dt gotch.DType) DTypeSupport {
	s := DTypeSupport{DType: dt}
	scope := gotch.NewScope()
	defer scope.Close()
	x, err := gotch.Ones([]int64{2, 4}, dt, d)
	if err != nil {
		return s
	}
	scope.Attach(x)
	if _, err := x.To(gotch.Float); err != nil {
		return s
	}
	s.Storage = true
	if xt, err := x.Transpose(0, 1); err == nil {
		_, err = x.Matmul(xt)
		s.Matmul = err == nil
	}
	_, err = x.Softmax(-1)
	s.Softmax = err == nil
	_, err = x.LayerNorm([]int64{4}, nil, nil, 1e-5)
	s.LayerNorm = err == nil
	return s
}
