//go:build cgo

package gotch_test

// Autograd: SetRequiresGrad_, Backward, Grad, RetainGrad, ZeroGrad and
// NoGrad, with gradients checked against derivatives worked out by hand.

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// grad reads x's gradient, failing the test when there is none.
func (e *env) grad(x *gotch.Tensor) []float64 {
	e.t.Helper()
	g, err := x.Grad()
	if err != nil {
		e.t.Fatalf("Grad: %v", err)
	}
	if g == nil {
		e.t.Fatalf("Grad of %s: got nil, want a gradient", x)
	}
	return e.vals(g)
}

func TestBackwardAccumulateZero(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	xv, wv := []float32{1, -2, 3}, []float32{0.5, 2, -1}
	x, w := from(e, xv, 3), from(e, wv, 3)
	if x.RequiresGrad() {
		t.Fatal("a new tensor requires grad")
	}
	if err := x.SetRequiresGrad_(true); err != nil {
		t.Fatal(err)
	}
	if !x.RequiresGrad() {
		t.Fatal("SetRequiresGrad_(true): RequiresGrad() is still false")
	}
	if g, err := x.Grad(); g != nil || err != nil {
		t.Errorf("Grad before Backward: got %v, %v; want nil, nil", g, err)
	}

	// y = Σ w x², dy/dx = 2 w x.
	forward := func() *gotch.Tensor { return x.MustMul(x).MustMul(w).MustSum() }
	y := forward()
	if !y.RequiresGrad() || w.RequiresGrad() {
		t.Errorf("RequiresGrad: y %v, w %v; want true, false", y.RequiresGrad(), w.RequiresGrad())
	}
	want := []float64{2 * 0.5 * 1, 2 * 2 * -2, 2 * -1 * 3}
	y.MustBackward(nil, false)
	gotchtest.Close(t, "dy/dx", e.grad(x), want, tol)
	if g := w.MustGrad(); g != nil {
		t.Errorf("w.Grad(): got %s, want nil (w does not require grad)", g)
	}

	// A second backward pass accumulates.
	forward().MustBackward(nil, false)
	gotchtest.Close(t, "dy/dx accumulated twice", e.grad(x), mapf(want, func(v float64) float64 { return 2 * v }), tol)

	// ZeroGrad drops it; the next pass starts from zero.
	x.MustZeroGrad()
	if g := x.MustGrad(); g != nil {
		t.Errorf("Grad after ZeroGrad: got %s, want nil", g)
	}
	forward().MustBackward(nil, false)
	gotchtest.Close(t, "dy/dx after ZeroGrad", e.grad(x), want, tol)

	// The gradient is a tensor of x's shape, dtype and device.
	g := x.MustGrad()
	if g.DType() != gotch.Float || !slices.Equal(g.Shape(), []int64{3}) || g.Device() != e.dev || g.Scope() != e.s {
		t.Errorf("Grad: got %s in scope %p, want float32[3] on %s in the test's scope", g, g.Scope(), e.dev)
	}

	// SetRequiresGrad_(false) stops recording.
	x.MustSetRequiresGrad_(false)
	if x.RequiresGrad() || x.MustMulScalar(2).RequiresGrad() {
		t.Error("SetRequiresGrad_(false): x or a result still requires grad")
	}
	if err := from(e, []int64{1, 2}, 2).SetRequiresGrad_(true); err == nil {
		t.Error("SetRequiresGrad_(true) on int64: got no error")
	}
}

func TestBackwardWithGrad(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	// y = A B with upstream gradient G: dA = G Bᵀ, dB = Aᵀ G.
	av, bv, gv := randf(200, 2*3, -1, 1), randf(201, 3*4, -1, 1), randf(202, 2*4, -1, 1)
	a, b := from(e, av, 2, 3), from(e, bv, 3, 4)
	a.MustSetRequiresGrad_(true)
	b.MustSetRequiresGrad_(true)
	y := a.MustMatmul(b)
	if err := y.Backward(nil, false); err == nil {
		t.Error("Backward of a non-scalar without a gradient: got no error")
	}
	y.MustBackward(from(e, gv, 2, 4), false)
	gotchtest.Close(t, "dA = G Bᵀ", e.grad(a), matmul(f64(gv), transpose2(f64(bv), 3, 4), 2, 4, 3), tol)
	gotchtest.Close(t, "dB = Aᵀ G", e.grad(b), matmul(transpose2(f64(av), 2, 3), f64(gv), 3, 2, 4), tol)
}

func TestBackwardRetainGraph(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, 2, 3}, 3)
	x.MustSetRequiresGrad_(true)
	y := x.MustExp().MustSum() // exp saves its result for backward
	y.MustBackward(nil, true)
	y.MustBackward(nil, false)
	want := mapf([]float64{1, 2, 3}, func(v float64) float64 { return 2 * math.Exp(v) })
	gotchtest.Close(t, "d Σ exp(x) twice", e.grad(x), want, tol)
	// The graph is gone now.
	var ge *gotch.Error
	if err := y.Backward(nil, false); !errors.As(err, &ge) || ge.Op != "Backward" {
		t.Errorf("a third Backward without retainGraph: got %v, want a *gotch.Error from Backward", err)
	}
}

func TestRetainGrad(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, -2, 0.5}, 3)
	x.MustSetRequiresGrad_(true)
	h := x.MustMulScalar(3) // a non-leaf
	h.MustRetainGrad()
	y := h.MustMul(h).MustSum() // y = Σ h², dy/dh = 2h, dy/dx = 6h = 18x
	y.MustBackward(nil, false)
	gotchtest.Close(t, "dy/dh (retained)", e.grad(h), []float64{6, -12, 3}, tol)
	gotchtest.Close(t, "dy/dx", e.grad(x), []float64{18, -36, 9}, tol)
}

func TestCrossEntropyGrad(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	// d mean CE / d logits = (softmax - onehot) / N.
	const N, C = 3, 5
	lv := randf(210, N*C, -2, 2)
	logits := from(e, lv, N, C)
	logits.MustSetRequiresGrad_(true)
	targets := []int64{4, 0, 2}
	loss := logits.MustCrossEntropy(from(e, targets, N), gotch.ReductionMean, -100)
	loss.MustBackward(nil, false)
	want := along([]int64{N, C}, 1, f64(lv), softmax)
	for n, c := range targets {
		want[n*C+int(c)] -= 1
	}
	gotchtest.Close(t, "d CE / d logits", e.grad(logits), mapf(want, func(v float64) float64 { return v / N }), tol)
}

// One row through Linear (a matrix-vector product on the CPU): d sum(x W^T
// + b) / dW has x in every row, / db is ones, / dx is W's column sums.
func TestLinearOneRowGrad(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	xv, wv := randf(220, 3, -1, 1), randf(221, 4*3, -1, 1)
	x, w, b := from(e, xv, 1, 1, 3), from(e, wv, 4, 3), from(e, []float32{0, 0, 0, 0}, 4)
	for _, p := range []*gotch.Tensor{x, w, b} {
		p.MustSetRequiresGrad_(true)
	}
	x.MustLinear(w, b).MustSum().MustBackward(nil, false)
	gotchtest.Close(t, "d/dW", e.grad(w), slices.Concat(f64(xv), f64(xv), f64(xv), f64(xv)), tol)
	gotchtest.Close(t, "d/db", e.grad(b), []float64{1, 1, 1, 1}, tol)
	colSums := make([]float64, 3)
	for i, v := range wv {
		colSums[i%3] += float64(v)
	}
	gotchtest.Close(t, "d/dx", e.grad(x), colSums, tol)
}

func TestLayerNormSoftmaxGrad(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	// y = Σ softmax(x) ⊙ c: dy/dx_i = p_i (c_i - Σ_j p_j c_j).
	xv, cv := randf(220, 4, -1, 1), []float32{1, -2, 0.5, 3}
	x := from(e, xv, 4)
	x.MustSetRequiresGrad_(true)
	x.MustSoftmax(0).MustMul(from(e, cv, 4)).MustSum().MustBackward(nil, false)
	p := softmax(f64(xv))
	var pc float64
	for i := range p {
		pc += p[i] * float64(cv[i])
	}
	want := make([]float64, 4)
	for i := range p {
		want[i] = p[i] * (float64(cv[i]) - pc)
	}
	gotchtest.Close(t, "d Σ softmax(x) c / dx", e.grad(x), want, tol)

	// LayerNorm's output is invariant to adding a constant to a row, so
	// the gradient of any loss sums to zero along the row; and the bias's
	// gradient is the upstream gradient summed over rows.
	zv := randf(221, 2*4, -1, 1)
	z, bias := from(e, zv, 2, 4), from(e, []float32{0, 0, 0, 0}, 4)
	z.MustSetRequiresGrad_(true)
	bias.MustSetRequiresGrad_(true)
	gv := randf(222, 2*4, -1, 1)
	z.MustLayerNorm([]int64{4}, nil, bias, 1e-5).MustBackward(from(e, gv, 2, 4), false)
	gz := e.grad(z)
	for r := range 2 {
		if s := sum(gz[4*r : 4*r+4]); s > 1e-5 || s < -1e-5 {
			t.Errorf("LayerNorm grad row %d sums to %g, want 0", r, s)
		}
	}
	gotchtest.Close(t, "d LayerNorm / d bias", e.grad(bias), reduce([]int64{2, 4}, []int{0}, f64(gv), sum), tol)
}

func TestNoGrad(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, 2}, 2)
	x.MustSetRequiresGrad_(true)
	var inside, enabled, reenabled *gotch.Tensor
	var wasOn bool
	err := gotch.NoGrad(func() error {
		wasOn = gotch.IsGradEnabled()
		inside = x.MustMulScalar(2)
		return gotch.EnableGrad(func() error {
			reenabled = x.MustMulScalar(2)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if wasOn {
		t.Error("IsGradEnabled inside NoGrad: got true")
	}
	if inside.RequiresGrad() {
		t.Error("a result made inside NoGrad requires grad")
	}
	if !reenabled.RequiresGrad() {
		t.Error("a result made inside EnableGrad (inside NoGrad) does not require grad")
	}
	enabled = x.MustMulScalar(2)
	if !enabled.RequiresGrad() {
		t.Error("a result made after NoGrad returned does not require grad")
	}
	e.expect("NoGrad result", inside, gotch.Float, []int64{2}, []float64{2, 4})
	if err := inside.Backward(from(e, []float32{1, 1}, 2), false); err == nil {
		t.Error("Backward of a NoGrad result: got no error")
	}
	// NoGrad returns fn's error.
	sentinel := errors.New("stop")
	if err := gotch.NoGrad(func() error { return sentinel }); err != sentinel {
		t.Errorf("NoGrad: got %v, want fn's error", err)
	}
	// Detach is the per-tensor way out of the graph.
	if x.MustDetach().RequiresGrad() {
		t.Error("Detach: the result requires grad")
	}
}
