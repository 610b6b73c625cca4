package report

import (
	"fmt"
	"image/color"
	"math"
)

// Scale chooses how a heatmap's values map to colours.
type Scale int

const (
	// ScaleAuto is diverging when any value is negative, else sequential.
	ScaleAuto Scale = iota
	// ScaleSequential runs from white at the smallest value to dark blue.
	ScaleSequential
	// ScaleDiverging is white at zero, red for positive and blue for
	// negative values, symmetric about zero: for signed data such as logit
	// attributions or patching effects.
	ScaleDiverging
)

// The page's JS and the gonum figures interpolate the same stops, so a PNG
// and the HTML view of one heatmap have the same colours.
var (
	sequentialStops = []string{"#ffffff", "#d3e4f3", "#8dbbe0", "#4285c6", "#0d3f86"}
	divergingStops  = []string{"#2a5ca8", "#93bde0", "#ffffff", "#f2a487", "#b3222c"}
	seriesColors    = []string{"#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"}
)

// colorScale maps [Min, Max] linearly onto colours between evenly spaced
// Stops; its axis is the colour bar's.
type colorScale struct {
	axis
	Stops []string `json:"stops"`
}

// newColorScale fits a scale to values in [lo, hi]; integer values get
// whole-number ticks on the colour bar.
func newColorScale(s Scale, lo, hi float64, integer bool) colorScale {
	if s == ScaleAuto {
		s = ScaleSequential
		if lo < 0 {
			s = ScaleDiverging
		}
	}
	stops := sequentialStops
	if s == ScaleDiverging {
		a := math.Max(math.Abs(lo), math.Abs(hi))
		if a == 0 {
			a = 1
		}
		lo, hi, stops = -a, a, divergingStops
	}
	if hi <= lo { // constant data still needs a range to divide by
		hi = lo + 1
	}
	return colorScale{axis: newAxis(lo, hi, 5, integer), Stops: stops}
}

// finiteRange returns the smallest and largest finite values, or 0, 0 when
// there are none.
func finiteRange(rows [][]float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		for _, v := range r {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if lo > hi {
		return 0, 0
	}
	return lo, hi
}

// at returns the colour of v, clamped to the scale's range.
func (s colorScale) at(v float64) color.NRGBA {
	t := math.Min(math.Max((v-s.Min)/(s.Max-s.Min), 0), 1) * float64(len(s.Stops)-1)
	i := min(int(t), len(s.Stops)-2)
	a, b := hexColor(s.Stops[i]), hexColor(s.Stops[i+1])
	f := t - float64(i)
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + f*(float64(y)-float64(x)))) }
	return color.NRGBA{R: mix(a.R, b.R), G: mix(a.G, b.G), B: mix(a.B, b.B), A: 255}
}

func hexColor(h string) color.NRGBA {
	var c color.NRGBA
	if _, err := fmt.Sscanf(h, "#%02x%02x%02x", &c.R, &c.G, &c.B); err != nil {
		panic("report: bad colour " + h) // the stops are constants above
	}
	c.A = 255
	return c
}
