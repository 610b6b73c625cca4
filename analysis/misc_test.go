package analysis

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

func TestRepeatedTokens(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	ids := func(seed uint64, opts ...Option) []float64 {
		tok, err := RepeatedTokens(im.Model, append([]Option{SeqLen(6), BatchSize(3), BOS(0), TokenRange(10, 20), WithSeed(seed)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Free()
		if got := tok.Shape(); !slices.Equal(got, []int64{3, 13}) || tok.DType() != gotch.Int64 || tok.Device() != gotchtest.Device(t) {
			t.Fatalf("tokens %v, want int64[3 13] on the test device", tok)
		}
		return gotchtest.Values(t, tok)
	}
	a := ids(1)
	for r := range 3 {
		row := a[r*13 : (r+1)*13]
		if row[0] != 0 || !slices.Equal(row[1:7], row[7:]) {
			t.Errorf("row %d is %v, want [BOS, seq, seq]", r, row)
		}
		for _, x := range row[1:] {
			if x < 10 || x >= 20 {
				t.Errorf("row %d has token %g outside [10, 20)", r, x)
			}
		}
	}
	if !slices.Equal(a, ids(1)) || slices.Equal(a, ids(2)) {
		t.Errorf("the seed does not fix the tokens")
	}
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{[]Option{SeqLen(16)}, "n_ctx=32"},
		{[]Option{TokenRange(5, 5)}, "token range"},
		{[]Option{TokenRange(0, 65)}, "token range"},
		{[]Option{BOS(64)}, "BOS 64"},
		{[]Option{BatchSize(0)}, "batch 0"},
	} {
		if _, err := RepeatedTokens(im.Model, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one saying %q", tc.opts, err, tc.want)
		}
	}
	if _, err := InductionOn(context.Background(), im.Model, im.Model.WE, 3); err == nil || !strings.Contains(err.Error(), "[batch 7]") {
		t.Errorf("InductionOn with a bad tensor gave %v", err)
	}
}

func TestProgressAndCancellation(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	tok := repeated(t, im, 51)
	var buf bytes.Buffer
	if _, err := AblationTable(context.Background(), im.Model, tok, ZeroAblation, WithProgress(&buf)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "6/6") {
		t.Errorf("the progress bar says %q, want it to reach 6/6", buf.String())
	}

	// Cancelled before: nothing runs.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	metric := NextTokenLogProb(tok, 11, 0)
	if _, err := ActivationPatching(ctx, im.Model, tok, tok, metric, HeadOut); !errors.Is(err, context.Canceled) {
		t.Errorf("patching with a cancelled context gave %v", err)
	}
	// Cancelled during a sweep: it stops with the context's error.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	counting := func(logits *gotch.Tensor) (*gotch.Tensor, error) {
		if calls++; calls == 4 {
			cancel()
		}
		return metric(logits)
	}
	buf.Reset()
	_, err := ActivationPatching(ctx, im.Model, tok, tok, counting, ResidPre, WithProgress(&buf))
	if !errors.Is(err, context.Canceled) || calls > 5 {
		t.Errorf("patching cancelled after %d metric calls gave %v", calls, err)
	}
	for _, f := range []func() error{
		func() error { _, err := DetectHead(ctx, im.Model, tok, PreviousTokenHead); return err },
		func() error { _, err := LogitLens(ctx, im.Model, tok); return err },
		func() error { _, err := CompositionScores(ctx, im.Model); return err },
		func() error {
			_, err := AttributionPatching(ctx, im.Model, tok, tok, metric, []Sweep{HeadOut})
			return err
		},
	} {
		if err := f(); !errors.Is(err, context.Canceled) {
			t.Errorf("a cancelled analysis gave %v", err)
		}
	}
}

func TestTable(t *testing.T) {
	tab := NewTable([]string{"layer", "head"}, 2, 3)
	tab.Set(5, 1, 2)
	tab.Set(math.NaN(), 0, 0)
	tab.Set(-1, 0, 1)
	if tab.At(1, 2) != 5 || tab.Data[5] != 5 || !slices.Equal(tab.Index(5), []int{1, 2}) || !slices.Equal(tab.Argmax(), []int{1, 2}) {
		t.Errorf("indexing is off: %v", tab.Data)
	}
	if s := tab.String(); !strings.Contains(s, "[layer head] [2 3]") || !strings.Contains(s, "5.0000") {
		t.Errorf("String() = %q", s)
	}
	if got := tab.Map(func(v float64) float64 { return 2 * v }).At(1, 2); got != 10 {
		t.Errorf("Map: %g", got)
	}
	if c := Correlation([]float64{1, 2, 3}, []float64{2, 4, 7}); c < 0.98 || c > 1 {
		t.Errorf("correlation %g", c)
	}
	if c := Correlation([]float64{1, 1}, []float64{2, 4}); !math.IsNaN(c) {
		t.Errorf("correlation with a constant series %g, want NaN", c)
	}
	if HeadLabel(3, 7) != "L3H7" || (HeadID{1, 2}).String() != "L1H2" {
		t.Errorf("labels")
	}
}

func TestAnalysisInputErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	tok := repeated(t, im, 61)
	ctx := context.Background()
	four := []int64{1, 2, 3, 4}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"attribution, position", func() error {
			_, err := LogitAttribution(ctx, im.Model, tok, four, nil, AtPosition(21))
			return err
		}(), "position 21"},
		{"attribution, answers", func() error { _, err := LogitAttribution(ctx, im.Model, tok, four[:3], nil); return err }(), "batch of 4"},
		{"attribution, vocabulary", func() error {
			_, err := LogitAttribution(ctx, im.Model, tok, []int64{1, 2, 3, 64}, nil)
			return err
		}(), "answer token 64"},
		{"lens, top-k", func() error { _, err := LogitLens(ctx, im.Model, tok, TopK(0)); return err }(), "top-k 0"},
		{"composition, samples", func() error { _, err := CompositionScores(ctx, im.Model, BaselineSamples(0)); return err }(), "0 baseline"},
		{"metric, positions", func() error {
			_, err := ActivationPatching(ctx, im.Model, tok, tok, NextTokenLogProb(tok, 15, 12), HeadOut)
			return err
		}(), "[15, 12)"},
		{"metric, answers", func() error {
			_, err := ActivationPatching(ctx, im.Model, tok, tok, LogitDiff(-1, four[:2], nil), HeadOut)
			return err
		}(), "2 answer tokens for a batch of 4"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, tc.err, tc.want)
		}
	}
}

// TestMetricsLandWhereAnOpWould: LogitDiff's and NextTokenLogProb's result
// joins logits' scope, or is the caller's when logits has none, and
// nothing else they make is left.
func TestMetricsLandWhereAnOpWould(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	tokens := gotch.MustFromSlice([]int64{1, 2, 3, 4, 3, 2}, []int64{2, 3}, dev)
	defer tokens.Free()
	vals := make([]float32, 2*3*5)
	for i := range vals {
		vals[i] = float32(i%7) - 3
	}
	logits := gotch.MustFromSlice(vals, []int64{2, 3, 5}, dev)
	defer logits.Free()
	for name, mt := range map[string]Metric{
		"LogitDiff":        LogitDiff(-1, []int64{1, 2}, []int64{3, 4}),
		"NextTokenLogProb": NextTokenLogProb(tokens, 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			live := gotch.LiveHandles()
			v, err := mt(logits) // unscoped logits: the result is ours
			if err != nil {
				t.Fatal(err)
			}
			if v.Scope() != nil || gotch.LiveHandles() != live+1 {
				t.Errorf("on unscoped logits: result in %p, %d handles left, want the result alone, unscoped", v.Scope(), gotch.LiveHandles()-live)
			}
			v.Free()

			s := gotch.NewScope()
			lg, err := s.Borrow(logits)
			if err != nil {
				t.Fatal(err)
			}
			if v, err = mt(lg); err != nil {
				t.Fatal(err)
			}
			if v.Scope() != s || s.Len() != 2 {
				t.Errorf("on logits of a scope: result in %p, want %p; the scope holds %d, want logits and the result", v.Scope(), s, s.Len())
			}
			s.Close()
			if n := gotch.LiveHandles() - live; n != 0 {
				t.Errorf("%d handles left after the scope closed", n)
			}
		})
	}
}
