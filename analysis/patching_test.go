package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// patchingPair is a clean batch [BOS, seq, seq] and its corruption [BOS,
// seq, other]: the same first half, another second. seq and other hold
// distinct tokens from the two halves of the vocabulary, so that no token
// finds an earlier occurrence by chance and each prediction of the second
// repeat rests on the induction circuit alone. The metric is the mean
// log-probability of the clean second repeat's predictable tokens.
func patchingPair(t *testing.T, im *InductionModel) (clean, corrupted *gotch.Tensor, metric Metric) {
	t.Helper()
	const batch, seqLen = 4, 10
	v := im.Model.Cfg.DVocab
	rng := rand.New(rand.NewPCG(21, 22))
	var a, b []int64
	for range batch {
		seq, other := rng.Perm(v/2 - 1)[:seqLen], rng.Perm(v / 2)[:seqLen]
		a = append(a, im.BOS)
		b = append(b, im.BOS)
		for _, x := range seq {
			a, b = append(a, int64(x+1)), append(b, int64(x+1))
		}
		for i, x := range seq {
			a, b = append(a, int64(x+1)), append(b, int64(other[i]+v/2))
		}
	}
	shape := []int64{batch, 1 + 2*seqLen}
	clean = gotch.MustFromSlice(a, shape, gotchtest.Device(t))
	corrupted = gotch.MustFromSlice(b, shape, gotchtest.Device(t))
	t.Cleanup(clean.Free)
	t.Cleanup(corrupted.Free)
	return clean, corrupted, NextTokenLogProb(clean, seqLen+1, 0)
}

func TestActivationPatchingOnTheConstruction(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	clean, corrupted, metric := patchingPair(t, im)
	ctx := context.Background()
	patch := func(t *testing.T, sw Sweep) *PatchingResult {
		t.Helper()
		r, err := ActivationPatching(ctx, im.Model, clean, corrupted, metric, sw)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v: clean %.3f, corrupted %.3f; normalized\n%v", sw, r.Clean, r.Corrupted, r.Normalized())
		if r.Clean-r.Corrupted < 2 {
			t.Fatalf("the corruption hardly changes the metric: clean %.3f, corrupted %.3f", r.Clean, r.Corrupted)
		}
		return r
	}
	ind := im.Induction

	for _, sw := range []Sweep{HeadOut, HeadPattern} {
		t.Run(sw.String(), func(t *testing.T) {
			n := patch(t, sw).Normalized()
			if got := n.At(ind.Layer, ind.Head); math.Abs(got-1) > 0.05 {
				t.Errorf("patching the induction head restores %.3f of the metric, want 1", got)
			}
			for l := range 2 {
				for h := range 3 {
					if (HeadID{l, h}) != ind && math.Abs(n.At(l, h)) > 0.05 {
						t.Errorf("patching head %v restores %.3f, want 0", HeadID{l, h}, n.At(l, h))
					}
				}
			}
		})
	}

	t.Run("resid_pre", func(t *testing.T) {
		r := patch(t, ResidPre)
		if got := r.Patched.Shape; got[0] != 2 || got[1] != 21 {
			t.Fatalf("shape %v, want [2 21]", got)
		}
		// Each position of the second repeat carries its own prediction:
		// the restorations add up to all of it, in either layer.
		n := r.Normalized()
		for l := range 2 {
			var sum, firstHalf float64
			for p := range 21 {
				sum += n.At(l, p)
				if p <= 10 {
					firstHalf += math.Abs(n.At(l, p))
				}
			}
			if math.Abs(sum-1) > 0.1 || firstHalf > 0.02 {
				t.Errorf("layer %d: positions restore %.3f in all (want 1), %.3f in the first half (want 0)", l, sum, firstHalf)
			}
		}
	})

	t.Run("head out by pos", func(t *testing.T) {
		n := patch(t, HeadOutByPos).Normalized()
		if got := n.Shape; got[0] != 2 || got[1] != 21 || got[2] != 3 {
			t.Fatalf("shape %v, want [2 21 3]", got)
		}
		var ind1, others float64
		for i, v := range n.Data {
			idx := n.Index(i)
			if (HeadID{idx[0], idx[2]}) == ind {
				ind1 += v
			} else {
				others += math.Abs(v)
			}
		}
		if math.Abs(ind1-1) > 0.1 || others > 0.05 {
			t.Errorf("the induction head's positions restore %.3f (want 1), the other heads' %.3f (want 0)", ind1, others)
		}
	})

	t.Run("layers", func(t *testing.T) {
		n := patch(t, AttnOut).Normalized()
		var l0, l1 float64
		for p := range 21 {
			l0 += math.Abs(n.At(0, p))
			l1 += n.At(1, p)
		}
		if math.Abs(l1-1) > 0.1 || l0 > 0.05 {
			t.Errorf("attn_out restores %.3f in layer 1 (want 1) and %.3f in layer 0 (want 0)", l1, l0)
		}
	})

	// The corruption changes the second repeat's queries; its keys and
	// values, read from the first half, are the same in both runs.
	t.Run("q k v", func(t *testing.T) {
		for sw, want := range map[Sweep]float64{HeadQ: 1, HeadK: 0, HeadV: 0} {
			if got := patch(t, sw).Normalized().At(ind.Layer, ind.Head); math.Abs(got-want) > 0.05 {
				t.Errorf("%v: patching the induction head restores %.3f, want %g", sw, got, want)
			}
		}
	})

	t.Run("pattern by pos", func(t *testing.T) {
		n := patch(t, HeadPatternByPos).Normalized()
		if got := n.Shape; got[0] != 2 || got[1] != 3 || got[2] != 21 {
			t.Fatalf("shape %v, want [2 3 21]", got)
		}
		var sum, others float64
		for i, v := range n.Data {
			if idx := n.Index(i); (HeadID{idx[0], idx[1]}) == ind {
				sum += v
			} else {
				others += math.Abs(v)
			}
		}
		if math.Abs(sum-1) > 0.1 || others > 0.05 {
			t.Errorf("the induction head's rows restore %.3f (want 1), other heads' %.3f (want 0)", sum, others)
		}
	})

	t.Run("clean cache reused", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		want := patch(t, HeadOut)
		out, cache, err := im.Model.RunWithCache(ctx, hookedmodel.Tokens(clean))
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
		defer cache.Free()
		got, err := ActivationPatching(ctx, im.Model, clean, corrupted, metric, HeadOut, CleanCache(cache))
		if err != nil {
			t.Fatal(err)
		}
		gotchtest.Close(t, "patched with a given cache", got.Patched.Data, want.Patched.Data, 1e-9)
		if got.Clean != want.Clean || got.Corrupted != want.Corrupted {
			t.Errorf("clean/corrupted %g/%g, want %g/%g", got.Clean, got.Corrupted, want.Clean, want.Corrupted)
		}
	})

	t.Run("errors", func(t *testing.T) {
		short := clean.MustNarrow(1, 0, 5)
		defer short.Free()
		for _, tc := range []struct {
			name   string
			sw     Sweep
			a, b   *gotch.Tensor
			metric Metric
			want   string
		}{
			{"shapes differ", HeadOut, clean, short, metric, "same shape"},
			{"no metric", HeadOut, clean, corrupted, nil, "no metric"},
			{"no MLP", MLPOut, clean, corrupted, metric, "attention-only"},
			{"unknown sweep", Sweep(99), clean, corrupted, metric, "unknown sweep"},
		} {
			_, err := ActivationPatching(ctx, im.Model, tc.a, tc.b, tc.metric, tc.sw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
			}
		}
	})
}

func TestAttributionPatchingAgreesWithPatching(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	clean, corrupted, metric := patchingPair(t, im)
	ctx := context.Background()
	sweepList := []Sweep{HeadOut, HeadPattern, HeadOutByPos, ResidPre, AttnOut}
	attr, err := AttributionPatching(ctx, im.Model, clean, corrupted, metric, sweepList)
	if err != nil {
		t.Fatal(err)
	}
	for _, sw := range sweepList {
		exact, err := ActivationPatching(ctx, im.Model, clean, corrupted, metric, sw)
		if err != nil {
			t.Fatal(err)
		}
		// Patching's clean and corrupted runs observe no pattern and take the
		// fused attention kernel; attribution's observe everything and take
		// the explicit path. They agree as hookedmodel's fusable says: bit for
		// bit on libtorch 1.13, within float32 rounding on 2.x.
		t.Logf("%v: clean/corrupted metric %.9g/%.9g, attribution's %.9g/%.9g", sw, exact.Clean, exact.Corrupted, attr.Clean, attr.Corrupted)
		gotchtest.Close(t, sw.String()+": clean/corrupted metric of patching vs attribution",
			[]float64{exact.Clean, exact.Corrupted}, []float64{attr.Clean, attr.Corrupted}, 1e-5)
		change := exact.Patched.Map(func(v float64) float64 { return v - exact.Corrupted })
		est := attr.Tables[sw]
		r := Correlation(est.Data, change.Data)
		t.Logf("%v: correlation of attribution with exact patching %.3f", sw, r)
		switch sw {
		case HeadOut, HeadPattern, HeadOutByPos:
			// The head-level picture agrees: the induction head dominates.
			if r < 0.9 {
				t.Errorf("%v: correlation %.3f, want > 0.9", sw, r)
			}
			if sw != HeadOutByPos {
				if got := est.Argmax(); got[0] != im.Induction.Layer || got[1] != im.Induction.Head {
					t.Errorf("%v: the largest attribution is at %v, want the induction head", sw, got)
				}
			}
		}
	}
}
