//go:build cgo

package gotch_test

// Scopes: who owns an op's result, how tensors move between scopes, and
// that Close frees exactly what a scope owns, on every path.

import (
	"errors"
	"sync"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// scoped makes a small float tensor [[1 2 3] [4 5 6]] on dev and puts it
// in s (nil: none). It panics on failure, so goroutines may call it too.
func scoped(s *gotch.Scope, dev gotch.Device) *gotch.Tensor {
	x := gotch.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, dev)
	if s != nil {
		s.Attach(x)
	}
	return x
}

func wantScope(t *testing.T, what string, x *gotch.Tensor, s *gotch.Scope) {
	t.Helper()
	if got := x.Scope(); got != s {
		t.Errorf("%s: in scope %p, want %p", what, got, s)
	}
}

// An op's result joins the newest of its operands' scopes (s2 here),
// whatever their order; a result of unscoped operands is the caller's.
func TestScopeResultsJoinNewestScope(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	s1, s2 := gotch.NewScope(), gotch.NewScope()
	defer s1.Close()
	defer s2.Close()
	free := scoped(nil, dev)
	defer free.Free()
	a, b := scoped(s1, dev), scoped(s2, dev)

	wantScope(t, "a+b", a.MustAdd(b), s2)
	wantScope(t, "b+a", b.MustAdd(a), s2)
	wantScope(t, "free+b", free.MustAdd(b), s2)
	wantScope(t, "b+free", b.MustAdd(free), s2)
	wantScope(t, "layer_norm(free, weight a)", free.MustLayerNorm([]int64{2, 3}, a, nil, 1e-5), s1)
	wantScope(t, "view of a", a.MustView([]int64{3, 2}), s1)
	vals, idx := b.MustTopk(1, 1, true, true)
	wantScope(t, "topk values", vals, s2)
	wantScope(t, "topk indices", idx, s2)
	for i, p := range a.MustSplit(1, 0) {
		wantScope(t, "split piece "+string(rune('0'+i)), p, s1)
	}
	r := free.MustNeg()
	wantScope(t, "op on unscoped", r, nil)
	r.Free()
	// An in-place op makes no new tensor and moves none.
	a.MustMulScalar_(2)
	wantScope(t, "a after in-place", a, s1)
	if got, want := s1.Len(), 1+1+1+2; got != want {
		t.Errorf("s1 owns %d tensors, want %d", got, want)
	}
	// The elements of a tensor list are operands too.
	wantScope(t, "cat(free, b, a)", gotch.MustCat([]*gotch.Tensor{free, b, a}, 0), s2)
	wantScope(t, "stack(a, b)", gotch.MustStack([]*gotch.Tensor{a, b}, 0), s2)
	wantScope(t, "einsum(free, a)", gotch.MustEinsum("ij,kj->ik", []*gotch.Tensor{free, a}), s1)
}

func TestScopeAttachBorrowKeep(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	live := gotch.LiveHandles()

	t.Run("attach", func(t *testing.T) {
		s1, s2 := gotch.NewScope(), gotch.NewScope()
		defer s1.Close()
		defer s2.Close()
		x := scoped(nil, dev)
		if s1.Attach(x) != x || s1.Attach(x) != x || s1.Len() != 1 {
			t.Fatalf("attaching twice: s1 owns %d, want 1", s1.Len())
		}
		s2.Attach(x) // moves, never copies
		if s1.Len() != 0 || s2.Len() != 1 {
			t.Errorf("after moving: s1 owns %d, s2 %d; want 0 and 1", s1.Len(), s2.Len())
		}
		wantScope(t, "moved", x, s2)
		if s1.Attach(nil) != nil {
			t.Error("Attach(nil) is not nil")
		}
	})

	t.Run("borrow", func(t *testing.T) {
		outer, s := gotch.NewScope(), gotch.NewScope()
		defer outer.Close()
		w := scoped(outer, dev)
		b, err := s.Borrow(w)
		if err != nil {
			t.Fatal(err)
		}
		wantScope(t, "borrowed", b, s)
		wantScope(t, "lender", w, outer)
		wantScope(t, "op on the borrowed", b.MustExp(), s)
		if outer.Len() != 1 || s.Len() != 2 {
			t.Errorf("outer owns %d, s %d; want 1 and 2", outer.Len(), s.Len())
		}
		s.Close()
		if !b.Freed() || w.Freed() {
			t.Errorf("after Close: borrowed freed %v (want true), lender freed %v (want false)", b.Freed(), w.Freed())
		}
		if got := gotchtest.Values(t, w); got[5] != 6 {
			t.Errorf("lender's data changed: %v", got)
		}
		dead := scoped(nil, dev)
		dead.Free()
		if _, err := s.Borrow(dead); !errors.Is(err, gotch.ErrFreed) {
			t.Errorf("Borrow of a freed tensor: %v, want ErrFreed", err)
		}
	})

	t.Run("keep to caller", func(t *testing.T) {
		s := gotch.NewScope()
		x := scoped(s, dev)
		y := x.MustMulScalar(3)
		if s.Keep(y) != y {
			t.Fatal("Keep does not return its argument")
		}
		wantScope(t, "kept", y, nil)
		s.Close()
		if !x.Freed() || y.Freed() {
			t.Errorf("x freed %v (want true), kept y freed %v (want false)", x.Freed(), y.Freed())
		}
		if got := gotchtest.Values(t, y); got[0] != 3 {
			t.Errorf("kept value %v, want 3", got[0])
		}
		y.Free()
	})

	t.Run("keep to parent", func(t *testing.T) {
		parent := gotch.NewScope()
		child := parent.Child()
		x := scoped(child, dev)
		y := child.Keep(x.MustNeg())
		wantScope(t, "kept into parent", y, parent)
		child.Close()
		if !x.Freed() || y.Freed() || parent.Len() != 1 {
			t.Errorf("x freed %v, y freed %v, parent owns %d; want true, false, 1", x.Freed(), y.Freed(), parent.Len())
		}
		parent.Close()
		if !y.Freed() {
			t.Error("parent Close did not free the kept tensor")
		}
	})

	t.Run("keep of a stranger", func(t *testing.T) {
		s, other := gotch.NewScope(), gotch.NewScope()
		defer s.Close()
		x := scoped(other, dev)
		if s.Keep(x) != x {
			t.Fatal("Keep does not return its argument")
		}
		wantScope(t, "not s's to keep", x, other)
		other.Close()
		if !x.Freed() {
			t.Error("Keep by a scope that did not own x took it from its owner")
		}
		if s.Keep(nil) != nil {
			t.Error("Keep(nil) is not nil")
		}
	})

	t.Run("closed scope", func(t *testing.T) {
		s := gotch.NewScope()
		s.Close()
		x := scoped(nil, dev)
		s.Attach(x) // refused: a closed scope would never free it
		wantScope(t, "attached to a closed scope", x, nil)
		if s.Len() != 0 {
			t.Errorf("closed scope owns %d", s.Len())
		}
		x.Free()
	})

	if got := gotch.LiveHandles(); got != live {
		t.Errorf("%d live handles, want %d", got, live)
	}
}

func TestScopeClose(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	live := gotch.LiveHandles()
	s := gotch.NewScope()
	x := scoped(s, dev)
	y := x.MustSoftmax(-1).MustMatmul(x.MustTranspose(0, 1))
	early := x.MustAbs()
	early.Free() // freeing by hand first is fine: Close skips it
	if got := gotch.LiveHandles(); got != live+4 {
		t.Fatalf("%d live handles, want %d", got, live+4)
	}
	s.Close()
	s.Close() // idempotent
	for _, z := range []*gotch.Tensor{x, y, early} {
		if !z.Freed() || z.Scope() != nil {
			t.Errorf("%v: freed %v, scope %p after Close", z, z.Freed(), z.Scope())
		}
	}
	if got := gotch.LiveHandles(); got != live {
		t.Errorf("%d live handles after Close, want %d", got, live)
	}
	if _, err := y.Add(x); !errors.Is(err, gotch.ErrFreed) {
		t.Errorf("op on a tensor freed by Close: %v, want ErrFreed", err)
	}
	if s.Len() != 0 {
		t.Errorf("closed scope owns %d", s.Len())
	}
}

// TestScopeCloseAfterPanic is the pattern every forward pass uses: the
// deferred Close frees what was made before a Must op panicked.
func TestScopeCloseAfterPanic(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	var made []*gotch.Tensor
	err := gotch.Try(func() {
		s := gotch.NewScope()
		defer s.Close()
		child := s.Child()
		defer child.Close()
		x := scoped(s, dev)
		h := child.Attach(x.MustRelu()).MustMulScalar(2)
		made = append(made, x, h, child.Keep(h.MustExp())) // into s
		made = append(made, h.MustMatmul(h))               // [2 3]x[2 3]: panics
		t.Error("unreachable")
	})
	var ge *gotch.Error
	if !errors.As(err, &ge) || ge.Op != "Matmul" {
		t.Fatalf("got %v, want the Matmul error", err)
	}
	for _, x := range made {
		if !x.Freed() {
			t.Errorf("%v survived the panic", x)
		}
	}
}

// TestScopeConcurrent shares one scope and one scoped tensor among
// goroutines that run ops, attach, keep, borrow and close children at
// once; run with -race.
func TestScopeConcurrent(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	s := gotch.NewScope()
	defer s.Close()
	shared := scoped(s, dev)
	const workers, iters = 8, 100
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range iters {
				if r := shared.MustAdd(shared); r.Scope() != s { // 1 owned
					t.Error("result left the shared scope")
				}
				s.Attach(scoped(nil, dev))             // 2
				s.Keep(shared.MustMulScalar(2)).Free() // kept and freed
				child := s.Child()
				c := child.Attach(scoped(nil, dev))
				child.Keep(c.MustNeg()) // 3, into s
				child.Close()
				if !c.Freed() {
					t.Error("child Close left a tensor alive")
				}
				b, err := s.Borrow(shared) // 4
				if err != nil {
					t.Error(err)
					return
				}
				b.MustSigmoid() // 5
				_ = s.Len()
			}
		})
	}
	wg.Wait()
	if got, want := s.Len(), 1+workers*iters*5; got != want {
		t.Errorf("scope owns %d tensors, want %d", got, want)
	}
}

// TestScopeMoveRace moves one tensor between two scopes from many
// goroutines while others run ops on it: it must end up owned exactly once
// (owned twice would free twice, owned by none would leak).
func TestScopeMoveRace(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	s1, s2 := gotch.NewScope(), gotch.NewScope()
	x := scoped(s1, dev)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 300 {
				switch (g + i) % 3 {
				case 0:
					s1.Attach(x)
				case 1:
					s2.Attach(x)
				case 2:
					r := x.MustNeg()
					if sc := r.Scope(); sc != nil {
						sc.Keep(r)
					}
					r.Free()
				}
			}
		})
	}
	// A reader that takes no lock at all, so -race sees any unsynchronised
	// write of a tensor's owner.
	wg.Go(func() {
		for range 3000 {
			if sc := x.Scope(); sc != nil && sc != s1 && sc != s2 {
				t.Error("x is in a third scope")
			}
		}
	})
	wg.Wait()
	if n := s1.Len() + s2.Len(); n != 1 {
		t.Errorf("x is owned %d times, want once", n)
	}
	s1.Close()
	s2.Close()
	if !x.Freed() {
		t.Error("x survived both Closes")
	}

	// Two goroutines keeping the same tensor into the parent move it once.
	parent := gotch.NewScope()
	defer parent.Close()
	for range 100 {
		child := parent.Child()
		y := scoped(child, dev)
		var kw sync.WaitGroup
		for range 2 {
			kw.Go(func() { child.Keep(y) })
		}
		kw.Wait()
		child.Close()
		if y.Freed() || y.Scope() != parent {
			t.Fatalf("kept tensor: freed %v, in parent %v", y.Freed(), y.Scope() == parent)
		}
	}
	if parent.Len() != 100 {
		t.Errorf("parent owns %d, want 100", parent.Len())
	}
}
