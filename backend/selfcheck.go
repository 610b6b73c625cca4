package backend

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/golens/golens/gotch"
)

// selfCheckTol is the largest relative error SelfCheck accepts in float32:
// well above rounding differences between kernels, far below a wrong result.
const selfCheckTol = 1e-4

// checkInputs are the self-check's fixed float32 operands.
type checkInputs struct {
	x           *gotch.Tensor // [2 4 8]
	w           *gotch.Tensor // [6 8], used transposed
	gamma, beta *gotch.Tensor // [8]
}

// checks are the ops SelfCheck compares, each computed from checkInputs
// with the Must forms inside gotch.Try.
var checks = []struct {
	name string
	run  func(in checkInputs) *gotch.Tensor
}{
	// A transposed, non-contiguous operand: the case torch 2.8 got wrong
	// on MPS.
	{"matmul", func(in checkInputs) *gotch.Tensor { return in.x.MustMatmul(in.w.MustTranspose(0, 1)) }},
	{"softmax", func(in checkInputs) *gotch.Tensor { return in.x.MustSoftmax(-1) }},
	{"layer_norm", func(in checkInputs) *gotch.Tensor {
		return in.x.MustLayerNorm([]int64{8}, in.gamma, in.beta, 1e-5)
	}},
}

// testHookCorrupt, when set by a test, alters the values SelfCheck reads
// back from the device, standing in for a device that computes wrongly.
var testHookCorrupt func(d gotch.Device, op string, vals []float64)

// SelfCheck computes a small matmul, softmax and layer_norm from fixed
// float32 inputs on the device and on the CPU, and returns an error naming
// each op whose results differ by more than a relative 1e-4. It catches a
// device or torch build that computes wrong numbers without raising an
// error, as MPS has done.
func (b *Backend) SelfCheck(ctx context.Context) error {
	want, err := runChecks(ctx, gotch.CPU)
	if err != nil {
		return fmt.Errorf("backend: self-check on cpu: %w", err)
	}
	got, err := runChecks(ctx, b.dev)
	if err != nil {
		return fmt.Errorf("backend: self-check on %s: %w", b.dev, err)
	}
	var errs []error
	for i, c := range checks {
		if testHookCorrupt != nil {
			testHookCorrupt(b.dev, c.name, got[i])
		}
		if e := relErr(got[i], want[i]); !(e <= selfCheckTol) {
			errs = append(errs, fmt.Errorf("%s differs from the cpu by %.3g (relative; at most %g allowed)", c.name, e, selfCheckTol))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("backend: self-check on %s failed: %w", b.dev, errors.Join(errs...))
	}
	return nil
}

// runChecks computes every check on d and reads the results back.
func runChecks(ctx context.Context, d gotch.Device) ([][]float64, error) {
	s := gotch.NewScope()
	defer s.Close()
	var in checkInputs
	err := gotch.Try(func() {
		in = checkInputs{
			x:     s.Attach(gotch.MustFromSlice(waves(2*4*8, 0), []int64{2, 4, 8}, d)),
			w:     s.Attach(gotch.MustFromSlice(waves(6*8, 1), []int64{6, 8}, d)),
			gamma: s.Attach(gotch.MustFromSlice(waves(8, 2), []int64{8}, d)),
			beta:  s.Attach(gotch.MustFromSlice(waves(8, 3), []int64{8}, d)),
		}
	})
	if err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	out := make([][]float64, len(checks))
	for i, c := range checks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := gotch.Try(func() { out[i] = gotch.MustToSlice[float64](c.run(in)) }); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return out, nil
}

// waves are n smooth, varied values in [-2, 2]: every row of x differs, so
// a wrong softmax or layer_norm cannot look right by symmetry.
func waves(n int, phase float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2 * math.Sin(0.37*float64(i)+phase))
	}
	return v
}

// relErr is ‖got − want‖ / ‖want‖; NaN when either holds a NaN.
func relErr(got, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range got {
		d := got[i] - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}
