package report

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// countIn counts the values in [lo, hi), or [lo, hi] for the last bin, by
// looking at every one: the reference for the histogram's binning.
func countIn(values []float64, lo, hi float64, last bool) float64 {
	n := 0.0
	for _, x := range values {
		if x >= lo && (x < hi || last && x == hi) {
			n++
		}
	}
	return n
}

func TestHistogramNumpyExample(t *testing.T) {
	// numpy.histogram([1, 2, 1], bins=[0, 1, 2, 3]) is ([0, 2, 1], [0, 1, 2, 3]).
	h, err := Histogram{Values: []float64{1, 2, 1}, Bins: 3, Range: [2]float64{0, 3}}.binned()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.edges, []float64{0, 1, 2, 3}) || !slices.Equal(h.counts[0], []float64{0, 2, 1}) {
		t.Errorf("edges %v counts %v, want [0 1 2 3] [0 2 1]", h.edges, h.counts[0])
	}
}

// TestHistogramCounts bins random data, with values on the bin edges and
// outside the range, and compares every count with countIn's.
func TestHistogramCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		bins := 1 + rng.IntN(40)
		var rg [2]float64
		if trial%2 == 0 {
			rg[0] = rng.NormFloat64()
			rg[1] = rg[0] + 0.1 + 3*rng.Float64()
		}
		var series []HistogramSeries
		for k := range 1 + rng.IntN(3) {
			vs := make([]float64, 1+rng.IntN(300))
			for i := range vs {
				vs[i] = 2 * rng.NormFloat64()
			}
			series = append(series, HistogramSeries{Name: string(rune('a' + k)), Values: vs})
		}
		v := Histogram{Series: series, Bins: bins, Range: rg}
		lo, hi := rg[0], rg[1]
		if rg == [2]float64{} {
			lo, hi = math.Inf(1), math.Inf(-1)
			for _, s := range series {
				lo, hi = math.Min(lo, slices.Min(s.Values)), math.Max(hi, slices.Max(s.Values))
			}
			if lo == hi {
				lo, hi = lo-0.5, hi+0.5
			}
		}
		// Values exactly on interior edges, which belong to the bin above.
		for i := 1; i < bins; i++ {
			series[0].Values = append(series[0].Values, lo+(hi-lo)*float64(i)/float64(bins))
		}
		h, err := v.binned()
		if err != nil {
			t.Fatal(err)
		}
		if len(h.edges) != bins+1 || h.edges[0] != lo || h.edges[bins] != hi {
			t.Fatalf("trial %d: %d edges from %v to %v, want %d from %v to %v", trial, len(h.edges), h.edges[0], h.edges[len(h.edges)-1], bins+1, lo, hi)
		}
		for i := 1; i < bins; i++ {
			if w := lo + (hi-lo)*float64(i)/float64(bins); math.Abs(h.edges[i]-w) > 1e-12*(hi-lo) {
				t.Fatalf("trial %d: edge %d is %v, want %v", trial, i, h.edges[i], w)
			}
		}
		for k, s := range series {
			total := 0.0
			for i := range bins {
				want := countIn(s.Values, h.edges[i], h.edges[i+1], i == bins-1)
				if h.counts[k][i] != want {
					t.Fatalf("trial %d, series %d, bin %d [%v, %v): count %v, want %v", trial, k, i, h.edges[i], h.edges[i+1], h.counts[k][i], want)
				}
				total += want
			}
			if rg == [2]float64{} && total != float64(len(s.Values)) {
				t.Fatalf("trial %d: %v of %d values counted over the data's own range", trial, total, len(s.Values))
			}
		}
	}
}

func TestHistogramDefaults(t *testing.T) {
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i)
		}
		return v
	}
	for _, tc := range []struct {
		name  string
		v     Histogram
		bins  int
		lo    float64
		hi    float64
		label string
	}{
		// Sturges: ⌈log₂ n⌉ + 1.
		{"100 values", Histogram{Values: seq(100)}, 8, 0, 99, "count"},
		{"one value", Histogram{Values: []float64{4}}, 1, 3.5, 4.5, "count"},
		{"constant", Histogram{Values: []float64{2, 2, 2, 2}}, 3, 1.5, 2.5, "count"},
		{"largest series decides", Histogram{Series: []HistogramSeries{{Values: seq(10)}, {Values: seq(1000)}}}, 11, 0, 999, "count"},
		{"given", Histogram{Values: seq(100), Bins: 30, Range: [2]float64{-10, 10}, YLabel: "heads"}, 30, -10, 10, "heads"},
	} {
		h, err := tc.v.binned()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(h.counts[0]) != tc.bins || h.edges[0] != tc.lo || h.edges[len(h.edges)-1] != tc.hi || tc.v.yLabel() != tc.label {
			t.Errorf("%s: %d bins over [%v, %v], y label %q; want %d over [%v, %v], %q", tc.name,
				len(h.counts[0]), h.edges[0], h.edges[len(h.edges)-1], tc.v.yLabel(), tc.bins, tc.lo, tc.hi, tc.label)
		}
	}
}

// TestHistogramJSON checks the page gets the bins and counts.
func TestHistogramJSON(t *testing.T) {
	v := Histogram{Title: "h", XLabel: "x", Series: []HistogramSeries{
		{Name: "a", Values: []float64{0, 0.1, 0.9, 1}},
		{Name: "b", Values: []float64{0.5, 0.5, 2}},
	}, Bins: 2, Range: [2]float64{0, 1}}
	r := Report{Sections: []Section{{Views: []View{v}}}}
	var got pageData
	if err := json.Unmarshal([]byte(pageJSON(t, render(t, &r))), &got); err != nil {
		t.Fatal(err)
	}
	s := got.Views[0]
	if s.Kind != "histogram" || s.YLabel != "count" || !slices.Equal(s.Edges, nums{0, 0.5, 1}) || len(s.Series) != 2 {
		t.Fatalf("spec %+v", s)
	}
	if !slices.Equal(s.Series[0].Y, nums{2, 2}) || !slices.Equal(s.Series[1].Y, nums{0, 2}) || s.Series[1].Name != "b" {
		t.Errorf("counts %v %v, want [2 2] [0 2] (2 is outside the range)", s.Series[0].Y, s.Series[1].Y)
	}
	if s.Series[0].Color == s.Series[1].Color {
		t.Error("overlaid series share a colour")
	}
}
