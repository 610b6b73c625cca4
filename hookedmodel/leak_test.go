package hookedmodel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestNoLeaksOverManyCalls mixes every kind of call, successful and
// failing, and ends at the live-handle count it started from.
func TestNoLeaksOverManyCalls(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 81)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, cfg.DVocab, 82)
	defer tok.Free()
	dev := gotchtest.Device(t)
	outOfRange := gotch.MustFromSlice([]int64{1, 2, int64(cfg.DVocab)}, []int64{1, 3}, dev)
	defer outOfRange.Free()
	floats := gotch.MustZeros([]int64{1, 3}, gotch.Float, dev)
	defer floats.Free()
	mask := gotch.MustFromSlice([]int64{0, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []int64{2, 5}, dev)
	defer mask.Free()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	boom := errors.New("boom")

	// A registered hook that only observes, present for a part of the calls.
	observer := FwdHook(Name("blocks.0.hook_resid_mid"), func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil })
	var handle HookHandle
	panicky := FwdHook(Name("blocks.1.hook_mlp_out"), func(*gotch.Tensor, string) (*gotch.Tensor, error) { panic("in a hook") })

	n := 1000
	if testing.Short() {
		n = 100
	}
	start := time.Now()
	for i := range n {
		var err error
		wantErr := ""
		switch i % 12 {
		case 0:
			var out *Output
			if out, err = m.Forward(ctx, Tokens(tok)); err == nil {
				out.Free()
			}
		case 1:
			var out *Output
			var c *ActivationCache
			if out, c, err = m.RunWithCache(ctx, Tokens(tok), AttentionMask(mask)); err == nil {
				c.Free()
				out.Free()
			}
		case 2:
			var out *Output
			hooks := []Hook{FwdHook(Name("blocks.1.attn.hook_z"), zeroHead(int64(i%4)))}
			if out, err = m.RunWithHooks(ctx, Tokens(tok), hooks, Return(ReturnBoth)); err == nil {
				out.Free()
			}
		case 3:
			_, err = m.RunWithHooks(ctx, Tokens(tok), []Hook{FwdHook(Name("blocks.0.attn.hook_pattern"),
				func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { return act.MustTo(gotch.Double), boom })})
			wantErr = "boom"
		case 4:
			var h HookHandle
			if h, err = m.AddHook(panicky); err != nil {
				t.Fatal(err)
			}
			_, _, err = m.RunWithCache(ctx, Tokens(tok))
			h.Remove()
			wantErr = "hook at blocks.1.hook_mlp_out: panic: in a hook"
		case 5:
			_, err = m.Forward(ctx, Tokens(outOfRange))
			wantErr = "d_vocab"
		case 6:
			_, err = m.Forward(ctx, Tokens(floats))
			wantErr = "int64 or int32"
		case 7:
			_, _, err = m.RunWithCache(ctx, Tokens(tok), StopAtLayer(5))
			wantErr = "stop_at_layer"
		case 8:
			_, err = m.RunWithHooks(cancelled, Tokens(tok), []Hook{FwdHook(Name("blocks.0.attn.hook_z"), zeroHead(1))})
			wantErr = context.Canceled.Error()
		case 9:
			var out *Output
			var c *ActivationCache
			if out, c, err = m.RunWithCache(ctx, Tokens(tok), InclBwd(), Return(ReturnLoss)); err == nil {
				err = out.Backward()
				out.Free()
				c.Free()
			}
		case 10:
			var out *Output
			var c *ActivationCache
			if out, c, err = m.RunWithCache(ctx, Tokens(tok), StopAtLayer(1), RemoveBatchDim()); err == nil {
				out.Free()
				c.Free()
			}
			wantErr = "batch of 1"
		case 11:
			if i%24 == 11 {
				handle, err = m.AddHook(observer)
			} else {
				handle.Remove()
			}
		}
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("call %d: %v", i, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Fatalf("call %d: error %v, want one saying %q", i, err, wantErr)
		}
	}
	handle.Remove()
	t.Logf("%d calls in %v", n, time.Since(start))
}
