package hookedmodel

import (
	"context"
	"github.com/golens/golens/hookedmodel/hftest"
	"testing"

	"github.com/golens/golens/backend"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// A model loaded in a 16-bit dtype computes the same log-probabilities as
// in float32, to that dtype's precision, wherever the device supports it:
// GPT-2, and Gemma 2 (soft caps, sliding window, post-norms, (1 + w) in
// float32 before the cast back).
func TestLowPrecisionDTypes(t *testing.T) {
	dev := gotchtest.Device(t)
	b, err := backend.Resolve(dev.String())
	if err != nil {
		t.Fatal(err)
	}
	gemma2 := hftest.Write(t, "gemma2", hftest.Opts{Seed: 28}).Dir
	for _, tc := range []struct {
		model string
		dtype gotch.DType
		tol   float64
	}{
		{"testdata/gpt2-tiny-bin", gotch.BFloat16, 3e-2}, {"testdata/gpt2-tiny-bin", gotch.Half, 5e-3}, {"testdata/gpt2-tiny-bin", gotch.Double, 1e-6},
		{gemma2, gotch.BFloat16, 3e-2}, {gemma2, gotch.Half, 5e-3}, {gemma2, gotch.Double, 1e-6},
	} {
		name := tc.dtype.String()
		if tc.model == gemma2 {
			name = "gemma2 " + name
		}
		t.Run(name, func(t *testing.T) {
			if err := b.Supports(tc.dtype); err != nil {
				t.Skipf("%s: %v", dev, err)
			}
			gotchtest.CheckLeaks(t)
			ref, err := Load(context.Background(), tc.model, OnDevice(dev))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Free()
			low, err := Load(context.Background(), tc.model, OnDevice(dev), WithDType(tc.dtype))
			if err != nil {
				t.Fatal(err)
			}
			defer low.Free()
			if low.DType() != tc.dtype {
				t.Fatalf("model dtype %s, want %s", low.DType(), tc.dtype)
			}
			_, tok := randomTokens(t, 2, 8, ref.Cfg.DVocab, 31)
			defer tok.Free()
			// The explicit attention and LayerNorm paths too: caching patterns
			// and scales makes the pass take them.
			out, cache, err := low.RunWithCache(context.Background(), Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			defer cache.Free()
			// As in TransformerLens, 16-bit models compute scores and patterns
			// in float32, and hooks see them so.
			want := tc.dtype
			if tc.dtype != gotch.Double {
				want = gotch.Float
			}
			if got := cache.MustGet("pattern", 0).DType(); got != want {
				t.Errorf("pattern dtype %s, want %s", got, want)
			}
			if got := cache.MustGet("resid_pre", 1).DType(); got != tc.dtype {
				t.Errorf("resid_pre dtype %s, want the model's %s", got, tc.dtype)
			}
			s := gotch.NewScope() // ops on the output's logits are the test's
			defer s.Close()
			lp := borrow(s, out.Logits).MustTo(gotch.Float).MustLogSoftmax(-1)
			gotchtest.Close(t, "log-probs", gotchtest.Values(t, lp), logProbs(t, ref, tok), tc.tol)
			gotchtest.Close(t, "fused path log-probs", logProbs(t, low, tok), logProbs(t, ref, tok), tc.tol)
		})
	}
}
