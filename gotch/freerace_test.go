//go:build cgo

package gotch_test

// Free racing with ops: a tensor (or generator) freed by one goroutine
// while others run ops on it never crashes the process. Each op either
// runs to the end on the tensor, with the right values, or fails with
// ErrFreed, and the handle goes when the last op holding it returns. Run
// with -race.

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// side is that of the shared all-ones matrix: a [side side] matmul is
// long enough in libtorch for a Free to land in the middle of it.
const side = 64

// useShared runs op k (of 5, each reaching the shim another way: one
// operand twice, a list, a copy out, a generator, a new handle) on x, all
// ones [side side], and checks the result against its closed form.
func useShared(x *gotch.Tensor, g *gotch.Generator, k int) error {
	var r *gotch.Tensor
	var err error
	var want float64 // the sum of r's elements
	switch k % 5 {
	case 0: // ones @ ones is side everywhere
		r, err = x.Matmul(x)
		want = side * side * side
	case 1:
		r, err = gotch.Cat([]*gotch.Tensor{x, x}, 0)
		want = 2 * side * side
	case 2:
		v, err := gotch.ToSlice[float32](x)
		if err != nil {
			return err
		}
		for i, e := range v {
			if e != 1 {
				return fmt.Errorf("ToSlice: element %d is %v, want 1", i, e)
			}
		}
		return nil
	case 3: // draws from g; nothing to check but the shape
		r, err = gotch.Randn([]int64{side}, g, gotch.Float, x.Device())
		if err == nil && r.Numel() != side {
			err = fmt.Errorf("Randn gave %v, want [%d]", r.Shape(), side)
		}
		r.Free()
		return err
	case 4: // an alias outlives x's Free: it is a handle of its own
		r, err = x.Alias()
		want = side * side
	}
	if err != nil {
		return err
	}
	defer r.Free()
	got, err := sumOf(r)
	if err == nil && got != want {
		err = fmt.Errorf("op %d: sum %v, want %v", k%5, got, want)
	}
	return err
}

func sumOf(t *gotch.Tensor) (float64, error) {
	s, err := t.Sum()
	if err != nil {
		return 0, err
	}
	defer s.Free()
	return s.Item()
}

// TestFreeRacesOps frees a tensor and a generator while three goroutines
// run ops on them, at a different moment each round: after 0 to 7 ops.
func TestFreeRacesOps(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	var ran, freed atomic.Int64
	for round := range rounds {
		x := gotch.MustOnes([]int64{side, side}, gotch.Float, dev)
		g := gotch.MustNewGenerator(uint64(round))
		var ok atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				defer ok.Add(tooMany) // let the Free go, should this end early
				<-start
				for k := w; ; k++ {
					err := useShared(x, g, k)
					switch {
					case err == nil:
						ok.Add(1)
						ran.Add(1)
					case errors.Is(err, gotch.ErrFreed):
						freed.Add(1)
						return
					default:
						t.Errorf("round %d: %v", round, err)
						return
					}
				}
			})
		}
		wg.Go(func() {
			<-start
			waitOps(&ok, round%8)
			x.Free()
			g.Free()
		})
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	t.Logf("%d ops ran, %d failed with ErrFreed", ran.Load(), freed.Load())
}

// waitOps waits until the workers of a round have run k ops.
func waitOps(ok *atomic.Int64, k int) {
	for ok.Load() < int64(k) {
		runtime.Gosched()
	}
}

// tooMany is what a worker adds to the count of ops when it stops, so that
// waitOps cannot wait for ever.
const tooMany = 1 << 20

// TestScopeCloseRacesOps closes a scope while goroutines run ops on its
// tensors and on handles borrowed into scopes of their own: each op
// succeeds or fails with ErrFreed, a borrowed handle outlives the Close,
// and every result is freed by one scope or the other, or by hand.
func TestScopeCloseRacesOps(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	rounds := 100
	if testing.Short() {
		rounds = 20
	}
	for round := range rounds {
		s := gotch.NewScope()
		x := s.Attach(gotch.MustOnes([]int64{side, side}, gotch.Float, dev))
		y := x.MustMulScalar(2) // in s too
		var ok atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				defer ok.Add(tooMany)
				<-start
				for i := 0; ; i++ {
					if err := useScoped(x, y, w+i); err != nil {
						if !errors.Is(err, gotch.ErrFreed) {
							t.Errorf("round %d: %v", round, err)
						}
						return
					}
					ok.Add(1)
				}
			})
		}
		wg.Go(func() {
			<-start
			waitOps(&ok, round%8)
			s.Close()
		})
		close(start)
		wg.Wait()
		if !x.Freed() || !y.Freed() {
			t.Fatal("Close left its tensors alive")
		}
		if t.Failed() {
			return
		}
	}
}

// useScoped is one op on x and y = 2x (a result in their scope, or in none
// once the scope is closed, freed here either way), or, every other time,
// a borrow of x into a scope of its own, used after its source may be gone.
func useScoped(x, y *gotch.Tensor, k int) error {
	if k%2 == 0 {
		r, err := x.Matmul(y) // 2·side everywhere
		if err != nil {
			return err
		}
		defer r.Free()
		got, err := sumOf(r)
		if err == nil && got != 2*side*side*side {
			err = fmt.Errorf("x @ y sums to %v, want %v", got, 2*side*side*side)
		}
		return err
	}
	mine := gotch.NewScope()
	defer mine.Close()
	b, err := mine.Borrow(x)
	if err != nil {
		return err
	}
	time.Sleep(10 * time.Microsecond) // let the Close come, to free x
	got, err := sumOf(b)
	if err == nil && got != side*side {
		err = fmt.Errorf("borrowed x sums to %v, want %v", got, side*side)
	}
	if err != nil {
		return fmt.Errorf("a borrowed handle must outlive its source: %w", err)
	}
	return nil
}
