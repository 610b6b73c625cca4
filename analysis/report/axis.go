package report

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// axis is a numeric axis: the range it shows and its ticks. Both renderers
// draw the ticks computed here, so a PNG and the page label a chart alike.
type axis struct {
	Min    float64  `json:"min"`
	Max    float64  `json:"max"`
	Ticks  nums     `json:"ticks"`
	Labels []string `json:"labels"` // Labels[i] names Ticks[i]
}

// newAxis spans [lo, hi] with about n ticks; an integer axis (layers,
// heads, positions, steps, counts) has only whole-number ticks.
func newAxis(lo, hi float64, n int, integer bool) axis {
	a := axis{Min: lo, Max: hi}
	if !(lo < hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return a // nothing to tick; callers give a finite, non-empty range
	}
	step := tickStep(lo, hi, n, integer)
	first, last := math.Ceil(lo/step-1e-9), math.Floor(hi/step+1e-9)
	if !(last-first <= float64(10*n)) { // a range too narrow for float64 ticks
		return a
	}
	for i := range int(last-first) + 1 {
		t := (first + float64(i)) * step
		if t == 0 {
			t = 0 // not -0
		}
		label := tickLabel(t, step)
		t, _ = strconv.ParseFloat(label, 64) // the tick is where its label says: 0.3, not 0.30000000000000004
		a.Ticks = append(a.Ticks, t)
		a.Labels = append(a.Labels, label)
	}
	return a
}

// tickStep is 1, 2 or 5 times a power of ten, the smallest such that [lo, hi]
// holds at most about n steps; at least 1 on an integer axis.
func tickStep(lo, hi float64, n int, integer bool) float64 {
	n = max(n, 1)
	raw := hi/float64(n) - lo/float64(n) // (hi-lo)/n, which could overflow
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			step = m * mag
			break
		}
	}
	if integer {
		step = math.Max(step, 1) // 1, 2, 5, 10, ...: every multiple is whole
	}
	return step
}

// tickLabel writes t with as many decimals as the step needs.
func tickLabel(t, step float64) string {
	a := math.Abs(t)
	if t != 0 && (a >= 1e6 || step < 1e-4) {
		digits := max(0, int(math.Floor(math.Log10(a))-math.Floor(math.Log10(step))))
		return strconv.FormatFloat(t, 'e', digits, 64)
	}
	return strconv.FormatFloat(t, 'f', max(0, int(-math.Floor(math.Log10(step)+1e-9))), 64)
}

// dataAxis spans the values, widened by pad of the range on either side;
// constant data is given a range of ±1. The axis is integer when every value
// is.
func dataAxis(pad float64, n int, vs ...[]float64) axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		for _, x := range v {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	switch {
	case lo > hi: // no values
		lo, hi = 0, 1
	case lo == hi:
		lo, hi = lo-1, hi+1
	}
	d := pad*hi - pad*lo // pad*(hi-lo), which could overflow
	return newAxis(math.Max(lo-d, -math.MaxFloat64), math.Min(hi+d, math.MaxFloat64), n, integers(vs...))
}

// integers reports whether every finite value is a whole number.
func integers(vs ...[]float64) bool {
	for _, v := range vs {
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				continue // shown as missing, not on the axis
			}
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return false
			}
		}
	}
	return true
}

// set makes a gonum axis show a's range and ticks.
func (a axis) set(p *plot.Axis) {
	p.Min, p.Max = a.Min, a.Max
	ts := make(plot.ConstantTicks, len(a.Ticks))
	for i, t := range a.Ticks {
		ts[i] = plot.Tick{Value: t, Label: a.Labels[i]}
	}
	p.Tick.Marker = ts
}
