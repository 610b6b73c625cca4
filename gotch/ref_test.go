package gotch

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// TestRefFreesOnceAfterLastPin drives ref by hand: the handle is freed by
// the release when nothing pins it, else by the last unpin, exactly once,
// and a pin after the release fails without freeing again.
func TestRefFreesOnceAfterLastPin(t *testing.T) {
	var frees int
	free := func(unsafe.Pointer) { frees++ }

	var none ref // a zero Tensor's: no handle, nothing to free
	if none.pin(free) || none.release() || !none.released() {
		t.Fatal("a ref without a handle can be pinned or released, or is not released")
	}

	r := ref{p: unsafe.Pointer(&frees)}
	if !r.pin(free) || !r.pin(free) {
		t.Fatal("pin of a live handle failed")
	}
	if !r.release() || r.release() {
		t.Fatal("release: want true the first time only")
	}
	r.drop(free)
	if frees != 0 || !r.released() {
		t.Fatalf("released with two pins: %d frees, released %v; want 0, true", frees, r.released())
	}
	if r.pin(free) {
		t.Fatal("pin after release succeeded")
	}
	r.unpin(free)
	if frees != 0 {
		t.Fatal("freed with a pin left")
	}
	r.unpin(free)
	if frees != 1 {
		t.Fatalf("last unpin: %d frees, want 1", frees)
	}
	if r.pin(free); frees != 1 {
		t.Fatalf("a failed pin after the free freed again: %d frees", frees)
	}

	unpinned := ref{p: unsafe.Pointer(&frees)}
	unpinned.release()
	unpinned.drop(free)
	if frees != 2 {
		t.Fatalf("release with no pins: %d frees, want 2", frees)
	}
}

// TestRefConcurrent pins, unpins and releases one handle from many
// goroutines at once (meant for -race): the handle is freed exactly once,
// never while a pin holds it, and every pin after the release fails.
func TestRefConcurrent(t *testing.T) {
	for range 200 {
		var frees, inside atomic.Int64
		r := ref{p: unsafe.Pointer(&frees)}
		free := func(unsafe.Pointer) {
			if inside.Load() != 0 {
				t.Error("freed while pinned")
			}
			frees.Add(1)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				<-start
				for r.pin(free) {
					inside.Add(1)
					inside.Add(-1)
					r.unpin(free)
				}
			})
		}
		for range 2 { // two Frees: one of them releases
			wg.Go(func() {
				<-start
				if r.release() {
					r.drop(free)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := frees.Load(); n != 1 {
			t.Fatalf("%d frees, want 1", n)
		}
	}
}

// TestFreeWhilePinned frees a real tensor and generator while an op holds
// them: their handles stay until the op ends, new ops fail with ErrFreed,
// and the end of the op frees them.
func TestFreeWhilePinned(t *testing.T) {
	if !cgoEnabled {
		t.Skip("no libtorch in a build without cgo")
	}
	live := liveHandles()
	x, err := Ones([]int64{3}, Float, CPU)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGenerator(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := pinTensor("Test", "self", x); err != nil {
		t.Fatal(err)
	}
	if err := pinGenerator("Test", g); err != nil {
		t.Fatal(err)
	}
	x.Free()
	g.Free()
	if got := liveHandles(); got != live+2 || !x.Freed() {
		t.Fatalf("freed while pinned: %d live handles, want %d; Freed %v", got, live+2, x.Freed())
	}
	if _, err := x.Neg(); !errors.Is(err, ErrFreed) {
		t.Errorf("op after Free: %v, want ErrFreed", err)
	}
	if _, err := Randn([]int64{2}, g, Float, CPU); !errors.Is(err, ErrFreed) {
		t.Errorf("random op after Free: %v, want ErrFreed", err)
	}
	x.unpin()
	g.unpin()
	if got := liveHandles(); got != live {
		t.Errorf("after the last unpin: %d live handles, want %d", got, live)
	}
}

// BenchmarkPin is what the guard against Free adds to an op per tensor
// operand: a pin and an unpin, from one goroutine (serial) and from all of
// them on one tensor at once (shared: a weight every concurrent pass uses).
func BenchmarkPin(b *testing.B) {
	free := func(unsafe.Pointer) { b.Fatal("freed") }
	var handle int
	b.Run("serial", func(b *testing.B) {
		r := ref{p: unsafe.Pointer(&handle)}
		for b.Loop() {
			r.pin(free)
			r.unpin(free)
		}
	})
	b.Run("shared", func(b *testing.B) {
		r := ref{p: unsafe.Pointer(&handle)}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.pin(free)
				r.unpin(free)
			}
		})
	})
}
