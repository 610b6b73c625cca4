//go:build cgo

package gotch_test

// Grad mode: libtorch keeps it per OS thread and goroutines hop between
// threads, so NoGrad and EnableGrad must hold for exactly the goroutine
// that calls them, for exactly as long as fn runs.

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// gradLeaf is a tensor that records gradients; the caller frees it.
func gradLeaf(t *testing.T) *gotch.Tensor {
	t.Helper()
	x := gotch.MustFromSlice([]float32{1, 2, 3}, []int64{3}, gotchtest.Device(t))
	x.MustSetRequiresGrad_(true)
	if !x.RequiresGrad() {
		t.Fatal("SetRequiresGrad_(true) did not take")
	}
	return x
}

// recordsGrad runs a few ops on w and reports whether their results
// require grad, failing when they disagree among themselves. Gosched
// between the ops invites the scheduler to move the goroutine to another
// thread.
func recordsGrad(w *gotch.Tensor) (bool, error) {
	s := gotch.NewScope()
	defer s.Close()
	b, err := s.Borrow(w)
	if err != nil {
		return false, err
	}
	var got []bool
	for _, op := range []func(*gotch.Tensor) *gotch.Tensor{
		func(x *gotch.Tensor) *gotch.Tensor { return x.MustMulScalar(2) },
		func(x *gotch.Tensor) *gotch.Tensor { return x.MustExp() },
		func(x *gotch.Tensor) *gotch.Tensor { return x.MustSoftmax(0) },
	} {
		runtime.Gosched()
		got = append(got, op(b).RequiresGrad())
	}
	if got[0] != got[1] || got[1] != got[2] {
		return false, fmt.Errorf("grad mode changed between ops: %v", got)
	}
	return got[0], nil
}

// TestNoGradConcurrent runs goroutines inside NoGrad beside goroutines
// outside it, with more Ps than cores so that goroutines migrate; each
// checks the grad mode it sees. Run with -race.
func TestNoGradConcurrent(t *testing.T) {
	gotchtest.CheckLeaks(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	w := gradLeaf(t)
	defer w.Free()
	const workers, iters = 16, 150
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		inside := g%2 == 0
		wg.Go(func() {
			for i := range iters {
				var rec bool
				var err error
				if inside {
					err = gotch.NoGrad(func() error {
						rec, err = recordsGrad(w)
						return err
					})
				} else {
					rec, err = recordsGrad(w)
				}
				if err == nil && rec == inside {
					err = fmt.Errorf("inside NoGrad %v: results require grad %v", inside, rec)
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d, iteration %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNoGradNesting(t *testing.T) {
	gotchtest.CheckLeaks(t)
	runtime.LockOSThread() // so that IsGradEnabled reads one thread throughout
	defer runtime.UnlockOSThread()
	w := gradLeaf(t)
	defer w.Free()
	if !gotch.IsGradEnabled() {
		t.Fatal("grad mode is off to begin with")
	}
	var trace []bool
	note := func() error {
		rec, err := recordsGrad(w)
		if err == nil && rec != gotch.IsGradEnabled() {
			err = fmt.Errorf("IsGradEnabled %v but results require grad %v", gotch.IsGradEnabled(), rec)
		}
		trace = append(trace, rec)
		return err
	}
	err := gotch.NoGrad(func() error {
		mustOK(t, note()) // off
		mustOK(t, gotch.EnableGrad(func() error {
			mustOK(t, note())             // on
			mustOK(t, gotch.NoGrad(note)) // off
			return note()                 // on again
		}))
		mustOK(t, gotch.NoGrad(note)) // off
		return note()                 // still off
	})
	mustOK(t, err)
	mustOK(t, note()) // on: the mode before NoGrad
	want := []bool{false, true, false, true, false, false, true}
	if fmt.Sprint(trace) != fmt.Sprint(want) {
		t.Errorf("grad recorded %v, want %v", trace, want)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNoGradErrorsAndPanics(t *testing.T) {
	gotchtest.CheckLeaks(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	sentinel := errors.New("from fn")
	if err := gotch.NoGrad(func() error { return sentinel }); err != sentinel {
		t.Errorf("NoGrad returned %v, want fn's error", err)
	}
	if !gotch.IsGradEnabled() {
		t.Error("grad mode stayed off after fn returned an error")
	}

	err := gotch.Try(func() {
		_ = gotch.NoGrad(func() error { panic("inside NoGrad") })
	})
	if err == nil || !gotch.IsGradEnabled() {
		t.Errorf("after a panic inside NoGrad: err %v, grad mode %v; want an error and on", err, gotch.IsGradEnabled())
	}
	err = gotch.Try(func() {
		_ = gotch.NoGrad(func() error {
			return gotch.EnableGrad(func() error { panic("inside EnableGrad") })
		})
	})
	if err == nil || !gotch.IsGradEnabled() {
		t.Errorf("after a nested panic: err %v, grad mode %v; want an error and on", err, gotch.IsGradEnabled())
	}
}

// TestNoGradSpawned: a goroutine started inside NoGrad runs on its own
// thread and records gradients as usual.
func TestNoGradSpawned(t *testing.T) {
	gotchtest.CheckLeaks(t)
	w := gradLeaf(t)
	defer w.Free()
	var spawned bool
	var spawnErr error
	err := gotch.NoGrad(func() error {
		done := make(chan struct{})
		go func() {
			defer close(done)
			spawned, spawnErr = recordsGrad(w)
		}()
		<-done
		rec, err := recordsGrad(w)
		if err == nil && rec {
			err = errors.New("results inside NoGrad require grad")
		}
		return err
	})
	mustOK(t, err)
	mustOK(t, spawnErr)
	if !spawned {
		t.Error("a goroutine started inside NoGrad did not record gradients")
	}
}

// TestNoGradInPlaceOnLeaf is the optimiser step: an in-place update of a
// leaf that requires grad is an error outside NoGrad and fine inside.
func TestNoGradInPlaceOnLeaf(t *testing.T) {
	gotchtest.CheckLeaks(t)
	w := gradLeaf(t)
	defer w.Free()
	d := gotch.MustFromSlice([]float32{1, 1, 1}, []int64{3}, w.Device())
	defer d.Free()
	if err := w.AddScaled_(d, -0.5); err == nil {
		t.Error("in-place update of a leaf that requires grad succeeded outside NoGrad")
	} else {
		checkMsg(t, err, "AddScaled_", "leaf Variable that requires grad")
	}
	mustOK(t, gotch.NoGrad(func() error { return w.AddScaled_(d, -0.5) }))
	if got := gotchtest.Values(t, w); got[0] != 0.5 || !w.RequiresGrad() {
		t.Errorf("after the update: %v, requires grad %v; want 0.5 first and true", got, w.RequiresGrad())
	}
}
