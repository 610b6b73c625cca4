package report

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestNewAxis(t *testing.T) {
	for _, tc := range []struct {
		lo, hi  float64
		n       int
		integer bool
		ticks   []float64
		labels  []string
	}{
		{0, 1, 6, true, []float64{0, 1}, []string{"0", "1"}},
		{-0.05, 1.05, 6, true, []float64{0, 1}, []string{"0", "1"}}, // two layers, padded
		{0, 1, 5, false, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 0.3, 3, false, []float64{0, 0.1, 0.2, 0.3}, []string{"0.0", "0.1", "0.2", "0.3"}}, // not 0.30000000000000004
		{0, 49, 8, true, []float64{0, 10, 20, 30, 40}, []string{"0", "10", "20", "30", "40"}},
		{-3, 3, 6, false, []float64{-3, -2, -1, 0, 1, 2, 3}, []string{"-3", "-2", "-1", "0", "1", "2", "3"}},
		{0.2, 0.8, 6, true, nil, nil}, // no whole number inside
		{0, 3e6, 3, false, []float64{0, 1e6, 2e6, 3e6}, []string{"0", "1e+06", "2e+06", "3e+06"}},
		{1, 1, 6, false, nil, nil},
		{math.NaN(), 1, 6, false, nil, nil},
		{0, math.Inf(1), 6, false, nil, nil},
		{1e20, 1e20 + 1e5, 6, false, nil, nil}, // steps finer than float64 has there: it must still return
	} {
		a := newAxis(tc.lo, tc.hi, tc.n, tc.integer)
		if tc.lo == 1e20 {
			continue // only that it returns
		}
		if !slices.Equal(a.Ticks, tc.ticks) || !slices.Equal(a.Labels, tc.labels) {
			t.Errorf("newAxis(%v, %v, %d, %v) ticks %v %q, want %v %q", tc.lo, tc.hi, tc.n, tc.integer, a.Ticks, a.Labels, tc.ticks, tc.labels)
		}
	}
}

// TestNewAxisProperties checks random ranges: ticks lie in the range, are a
// whole number of steps of 1, 2 or 5 times a power of ten apart, number at
// most about n, and on an integer axis are whole.
func TestNewAxisProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		lo := (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(8)-3))
		hi := lo + rng.Float64()*math.Pow(10, float64(rng.IntN(8)-3))
		n, integer := 2+rng.IntN(10), rng.IntN(2) == 0
		if hi <= lo {
			continue
		}
		a := newAxis(lo, hi, n, integer)
		if len(a.Ticks) > n+1 {
			t.Fatalf("newAxis(%v, %v, %d, %v): %d ticks", lo, hi, n, integer, len(a.Ticks))
		}
		for i, x := range a.Ticks {
			span := hi - lo
			if x < lo-1e-9*span || x > hi+1e-9*span {
				t.Fatalf("newAxis(%v, %v, %d, %v): tick %v outside", lo, hi, n, integer, x)
			}
			if integer && x != math.Trunc(x) {
				t.Fatalf("newAxis(%v, %v, %d, %v): tick %v on an integer axis", lo, hi, n, integer, x)
			}
			if i == 0 {
				continue
			}
			step := x - a.Ticks[i-1]
			mant := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9))
			if !slices.ContainsFunc([]float64{1, 2, 5, 10}, func(m float64) bool { return math.Abs(mant-m) < 1e-6 }) {
				t.Fatalf("newAxis(%v, %v, %d, %v): step %v between %v", lo, hi, n, integer, step, a.Ticks)
			}
		}
	}
}

// TestViewAxesInteger checks which axes of the views' page data are
// integer: whole-number data gets whole-number ticks, in the page's JSON as
// in the figures (which draw the same axis).
func TestViewAxesInteger(t *testing.T) {
	whole := func(a *axis) bool {
		for _, x := range a.Ticks {
			if x != math.Trunc(x) {
				return false
			}
		}
		return len(a.Ticks) > 0
	}
	layers, err := LineChart{Series: []Series{{Y: []float64{0.1, 0.7}}}}.spec()
	if err != nil {
		t.Fatal(err)
	}
	if !whole(layers.X) || !slices.Equal(layers.X.Labels, []string{"0", "1"}) {
		t.Errorf("x = layers 0, 1: ticks %v %q", layers.X.Ticks, layers.X.Labels)
	}
	if whole(layers.Y) {
		t.Errorf("y in [0.1, 0.7] has whole-number ticks only: %v", layers.Y.Ticks)
	}
	h, err := Histogram{Values: []float64{0.5, 0.6, 0.61}}.spec()
	if err != nil {
		t.Fatal(err)
	}
	if !whole(h.Y) || h.Y.Ticks[0] != 0 {
		t.Errorf("histogram counts: ticks %v", h.Y.Ticks)
	}
	hm, err := Heatmap{Values: [][]float64{{0, 1}, {2, math.NaN()}}}.spec()
	if err != nil {
		t.Fatal(err)
	}
	if !whole(&hm.Scale.axis) {
		t.Errorf("heatmap of counts: colour bar ticks %v", hm.Scale.Ticks)
	}
}
