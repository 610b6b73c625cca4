//go:build !cgo

package gotch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
)

// checkNoCgo fails unless err wraps ErrNoCgo and says how to get a build
// that works.
func checkNoCgo(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, gotch.ErrNoCgo) {
		t.Errorf("%s: error %v, want one wrapping ErrNoCgo", what, err)
		return
	}
	for _, want := range []string{"cgo and libtorch", "CGO_ENABLED=1", "apt-get install libtorch-dev", "go run github.com/golens/golens/cmd/golens-env"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not say %q", what, err, want)
		}
	}
}

// TestNoCgoEntryPoints checks that, built without cgo, the ways into
// golens fail with ErrNoCgo instead of failing to link or panicking.
func TestNoCgoEntryPoints(t *testing.T) {
	checkNoCgo(t, "Available", gotch.Available())

	_, err := gotch.Zeros([]int64{2}, gotch.Float, gotch.CPU)
	checkNoCgo(t, "Zeros", err)
	_, err = gotch.FromSlice([]float32{1, 2}, []int64{2}, gotch.CPU)
	checkNoCgo(t, "FromSlice", err)
	_, err = gotch.FromBytes(make([]byte, 8), []int64{2}, gotch.Float, gotch.CPU)
	checkNoCgo(t, "FromBytes", err)
	_, err = gotch.FromBytesAs(make([]byte, 4), []int64{2}, gotch.BFloat16, gotch.Float, gotch.CPU)
	checkNoCgo(t, "FromBytesAs", err)
	_, err = gotch.NewGenerator(1)
	checkNoCgo(t, "NewGenerator", err)
	checkNoCgo(t, "ManualSeed", gotch.ManualSeed(1))
	checkNoCgo(t, "SetNumThreads", gotch.SetNumThreads(1))
	_, err = gotch.CUDAProperties(0)
	checkNoCgo(t, "CUDAProperties", err)
	checkNoCgo(t, "MPSSynchronize", gotch.MPSSynchronize())

	// An op on a tensor no build could have made fails the same way.
	var x gotch.Tensor
	_, err = x.Matmul(&x)
	checkNoCgo(t, "Matmul", err)

	ran := false
	checkNoCgo(t, "NoGrad", gotch.NoGrad(func() error { ran = true; return nil }))
	if ran {
		t.Error("NoGrad ran its function without libtorch")
	}

	// The Must forms panic with the error, which Try returns.
	checkNoCgo(t, "Try(MustOnes)", gotch.Try(func() { gotch.MustOnes([]int64{1}, gotch.Float, gotch.CPU) }))

	// What cannot fail reports nothing there.
	if v, n, d := gotch.TorchVersion(), gotch.LiveHandles(), gotch.HasDevice(gotch.CPUType); v != "" || n != 0 || d {
		t.Errorf("TorchVersion() = %q, LiveHandles() = %d, HasDevice(CPU) = %v; want \"\", 0, false", v, n, d)
	}
}
