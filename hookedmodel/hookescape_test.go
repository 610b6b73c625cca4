package hookedmodel

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestHookActOutlivesPass: hooks hand act itself (not an alias of it) to
// goroutines that keep running ops on it while the pass goes on, frees it
// and returns. Every op succeeds or fails with ErrFreed; nothing crashes,
// and no handle outlives the goroutines. Meant for -race.
func TestHookActOutlivesPass(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 71)
	defer m.Free()
	_, tok := randomTokens(t, 2, 6, cfg.DVocab, 72)
	defer tok.Free()

	var wg sync.WaitGroup
	var ran, freed atomic.Int64
	keepUsing := func(act *gotch.Tensor, name string) (*gotch.Tensor, error) {
		wg.Go(func() {
			for {
				err := sumTwice(act)
				if err == nil {
					ran.Add(1)
					continue
				}
				if !errors.Is(err, gotch.ErrFreed) {
					t.Errorf("%s: an op on act, handed to a goroutine: %v", name, err)
				}
				freed.Add(1)
				return
			}
		})
		return nil, nil
	}
	hooks := []Hook{
		FwdHook(Names("hook_embed", "blocks.0.hook_resid_mid", "blocks.1.attn.hook_pattern", "ln_final.hook_normalized"), keepUsing),
	}
	for range 10 {
		out, err := m.RunWithHooks(context.Background(), Tokens(tok), hooks)
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
	}
	wg.Wait()
	if freed.Load() != 40 {
		t.Errorf("%d goroutines saw act freed, want all 40", freed.Load())
	}
	t.Logf("%d ops on act ran before the pass freed it", ran.Load())
}

// sumTwice reads act through a new tensor: (2·act).sum().
func sumTwice(act *gotch.Tensor) error {
	r, err := act.MulScalar(2)
	if err != nil {
		return err
	}
	defer r.Free() // joins the pass's scope while it is open, which may free it first
	s, err := r.Sum()
	if err != nil {
		return err
	}
	defer s.Free()
	_, err = s.Item()
	return err
}
