// Package gotchtest holds the test helpers every golens package shares: the
// device under test, the live-handle leak check and tolerance comparisons
// (which bench's result checks use too). It builds on gotch only.
package gotchtest

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
)

// DeviceEnv names the environment variable that picks the device under
// test: "cpu" (the default), "cuda", "cuda:N" or "mps".
const DeviceEnv = "GOLENS_TEST_DEVICE"

// Device is the device the suite runs on. A device that was asked for but
// is not there fails the test rather than skipping it, so a GPU run cannot
// pass by testing nothing.
func Device(tb testing.TB) gotch.Device {
	tb.Helper()
	s := os.Getenv(DeviceEnv)
	if s == "" {
		return gotch.CPU
	}
	d, err := gotch.ParseDevice(s)
	if err != nil {
		tb.Fatalf("%s: %v", DeviceEnv, err)
	}
	if !gotch.HasDevice(d.Type) {
		tb.Fatalf("%s=%s, but this libtorch cannot use %s", DeviceEnv, s, d)
	}
	return d
}

// SourceGo is the go command, for a test that reads or builds its
// package's source; it skips the test where either is missing, as in the
// GPU bundle, whose test binaries run without their source and without Go.
func SourceGo(tb testing.TB) string {
	tb.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("no go command:", err)
	}
	if m, _ := filepath.Glob("*.go"); len(m) == 0 {
		tb.Skip("the package's source is not here (a test binary run elsewhere, as in the GPU bundle)")
	}
	return goCmd
}

// CheckLeaks records the live-handle count now and, when the test ends,
// fails it if the count differs or if any tensor was reclaimed by the
// garbage collector instead of being freed. Call it first in a test.
func CheckLeaks(tb testing.TB) {
	tb.Helper()
	live, gc := gotch.LiveHandles(), gotch.GCFreed()
	tb.Cleanup(func() {
		if got := gotch.LiveHandles(); got != live {
			tb.Errorf("leak: %d live handles at the end, %d at the start", got, live)
		}
		if got := gotch.GCFreed(); got != gc {
			tb.Errorf("leak: %d tensors were never freed and were reclaimed by the GC", got-gc)
		}
	})
}

// RelErr is the normalised error ‖got − want‖ / ‖want‖ (the absolute norm
// when want is all zeros); NaN anywhere or a length mismatch makes it +Inf.
func RelErr(got, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range got {
		if math.IsNaN(got[i]) || math.IsNaN(want[i]) {
			return math.Inf(1)
		}
		d := got[i] - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// Close fails the test when got and want differ by more than tol relative
// (RelErr), saying by how much and where the largest difference is.
func Close(tb testing.TB, name string, got, want []float64, tol float64) {
	tb.Helper()
	if e := RelErr(got, want); e > tol || math.IsNaN(e) {
		tb.Errorf("%s: relative error %.3g > %.3g; %s", name, e, tol, worst(got, want))
	}
}

func worst(got, want []float64) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d values, want %d", len(got), len(want))
	}
	at, d := 0, -1.0
	for i := range got {
		if x := math.Abs(got[i] - want[i]); x > d || math.IsNaN(x) {
			at, d = i, x
		}
	}
	return fmt.Sprintf("largest difference at [%d]: got %g, want %g", at, got[at], want[at])
}

// TensorClose fails the test unless got and want have the same shape and
// dtype and every element satisfies |got − want| ≤ atol + rtol·|want|
// (torch.testing.assert_close's rule; a NaN matches nothing). The failure
// says how many elements differ and where the greatest absolute and
// relative differences are, with both values there (see Mismatch).
func TensorClose(tb testing.TB, name string, got, want *gotch.Tensor, rtol, atol float64) {
	tb.Helper()
	msg, err := Mismatch(got, want, rtol, atol)
	if err != nil {
		tb.Errorf("%s: %v", name, err)
		return
	}
	if msg != "" {
		tb.Errorf("%s: %s", name, msg)
	}
}

// Mismatch is TensorClose's check: "" when got is close to want, else what
// differs, e.g. "2 of 6 elements differ beyond rtol 1e-05, atol 1e-08:
// greatest absolute difference 0.5 at [1 2] (got 3.5, want 3), greatest
// relative difference 1 at [0 1] (got 0.2, want 0.1)". Shapes or dtypes
// that differ are a mismatch that names both. It reads both tensors to the
// host; the error is that of reading them.
func Mismatch(got, want *gotch.Tensor, rtol, atol float64) (string, error) {
	if got == nil || want == nil {
		return "", fmt.Errorf("got %s, want %s: a nil tensor", got.Spec(), want.Spec())
	}
	if !slices.Equal(got.Shape(), want.Shape()) {
		return fmt.Sprintf("shape %v, want %v", got.Shape(), want.Shape()), nil
	}
	if got.DType() != want.DType() {
		return fmt.Sprintf("dtype %s, want %s", got.DType(), want.DType()), nil
	}
	g, err := gotch.ToSlice[float64](got)
	if err != nil {
		return "", err
	}
	w, err := gotch.ToSlice[float64](want)
	if err != nil {
		return "", err
	}
	bad, absAt, relAt := 0, -1, -1
	var absMax, relMax float64
	for i := range g {
		d := math.Abs(g[i] - w[i])
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d <= atol+rtol*math.Abs(w[i]) {
			continue
		}
		bad++
		r := d / math.Abs(w[i]) // +Inf where want is 0
		if absAt < 0 || d > absMax {
			absAt, absMax = i, d
		}
		if relAt < 0 || r > relMax {
			relAt, relMax = i, r
		}
	}
	if bad == 0 {
		return "", nil
	}
	shape := got.Shape()
	where := func(i int) string {
		return fmt.Sprintf("at %v (got %g, want %g)", unravel(shape, i), g[i], w[i])
	}
	return fmt.Sprintf("%d of %d elements differ beyond rtol %g, atol %g: greatest absolute difference %g %s, greatest relative difference %g %s",
		bad, len(g), rtol, atol, absMax, where(absAt), relMax, where(relAt)), nil
}

// unravel is the multi-index of row-major flat index i in shape.
func unravel(shape []int64, i int) []int64 {
	idx := make([]int64, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = int64(i) % shape[d]
			i /= int(shape[d])
		}
	}
	return idx
}

// Values reads a tensor as float64s, failing the test on error.
func Values(tb testing.TB, t *gotch.Tensor) []float64 {
	tb.Helper()
	v, err := gotch.ToSlice[float64](t)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// NeedDistBackend skips a test that needs the c10d backend ("gloo",
// "nccl") when this build has none (the shim finds Gloo's headers,
// Debian's libgloo-dev, and NCCL's when it is built), and fails it instead
// when GOLENS_REQUIRE_GLOO is set for Gloo: ./build.sh test installs
// libgloo-dev and sets it, so CI cannot pass by skipping.
func NeedDistBackend(tb testing.TB, backend string) {
	tb.Helper()
	if gotch.HasDistBackend(backend) {
		return
	}
	msg := "this shim has no " + backend + " (for Gloo: libtorch's Gloo headers, Debian's libgloo-dev, were missing when it was built)"
	if backend == gotch.BackendGloo && os.Getenv("GOLENS_REQUIRE_GLOO") != "" {
		tb.Fatal(msg + "; GOLENS_REQUIRE_GLOO is set")
	}
	tb.Skip(msg)
}
