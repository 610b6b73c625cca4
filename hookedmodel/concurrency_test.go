package hookedmodel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestConcurrentRunsWithHooks runs one model from 8 goroutines at once,
// each zero-ablating its own head (or none): every pass must see only its
// own hooks, so each result equals the sequential one. Meant for -race.
func TestConcurrentRunsWithHooks(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 71)
	defer m.Free()
	_, tok := randomTokens(t, 2, 6, cfg.DVocab, 72)
	defer tok.Free()
	ctx := context.Background()

	type ablation struct{ layer, head int } // layer -1: none
	ablations := []ablation{{-1, 0}, {0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 0}, {1, 1}, {1, 2}}
	hooksFor := func(a ablation) []Hook {
		if a.layer < 0 {
			return nil
		}
		return []Hook{FwdHook(Name(fmt.Sprintf("blocks.%d.attn.hook_z", a.layer)), zeroHead(int64(a.head)))}
	}
	want := make([][]float64, len(ablations))
	for i, a := range ablations {
		want[i] = forwardValues(t, m, Tokens(tok), hooksFor(a))
		if i > 0 && gotchtest.RelErr(want[i], want[0]) < 1e-4 {
			t.Fatalf("ablation %v hardly changes the logits: the test proves nothing", a)
		}
	}

	iters := 12
	if testing.Short() {
		iters = 3
	}
	var observed atomic.Int64
	done := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(1)
	go func() { // registers and removes a hook that only observes, all along
		defer churn.Done()
		observe := func(*gotch.Tensor, string) (*gotch.Tensor, error) { observed.Add(1); return nil, nil }
		for {
			select {
			case <-done:
				return
			default:
			}
			h, err := m.AddHook(FwdHook(Name("blocks.1.hook_resid_pre"), observe), WithLabel("observer"))
			if err != nil {
				t.Error(err)
				return
			}
			_ = m.ListHooks()
			remove, err := m.Hooks(FwdHook(Name("hook_embed"), observe))
			if err != nil {
				t.Error(err)
				return
			}
			h.Remove()
			remove()
		}
	}()

	var wg sync.WaitGroup
	for i, a := range ablations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range iters {
				out, err := m.RunWithHooks(ctx, Tokens(tok), hooksFor(a))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := gotch.ToSlice[float64](out.Logits)
				out.Free()
				if err != nil {
					t.Error(err)
					return
				}
				if e := gotchtest.RelErr(got, want[i]); e > 1e-6 {
					t.Errorf("ablation %v, iteration %d: relative error %.3g against the sequential result", a, it, e)
					return
				}
			}
		}()
	}
	// A cache run and a backward pass alongside.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range iters {
			out, cache, err := m.RunWithCache(ctx, Tokens(tok), InclBwd(), Return(ReturnLoss), NamesFilter(Names("blocks.0.hook_resid_post")))
			if err != nil {
				t.Error(err)
				return
			}
			err = out.Backward()
			if _, gerr := cache.Get("blocks.0.hook_resid_post_grad"); err == nil && gerr != nil {
				err = gerr
			}
			out.Free()
			cache.Free()
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	churn.Wait()
	if l := m.ListHooks(); len(l) != 0 {
		t.Errorf("hooks left registered: %+v", l)
	}
	t.Logf("the observer ran %d times", observed.Load())
}
