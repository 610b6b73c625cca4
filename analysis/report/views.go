package report

import (
	"errors"
	"fmt"
	"math"
)

// A View is one figure of a report: an [Attention], [Heatmap], [LineChart],
// [BarChart] or [Histogram]. Each also saves itself as a static PNG or SVG
// figure.
type View interface {
	SavePNG(path string) error
	SaveSVG(path string) error
	// spec checks the view and returns the form the page's JS draws.
	spec() (viewSpec, error)
	// figure checks the view and returns its gonum drawing.
	figure() (figure, error)
	title() string
}

// Attention shows the attention patterns of several heads over one sequence,
// in the manner of circuitsvis: one thumbnail panel per head, and the head
// under the pointer (or the one clicked) enlarged with its tokens on both
// axes, query rows against key columns.
type Attention struct {
	Title    string
	Tokens   []string      // the sequence, on both axes
	Heads    []string      // a label per head, e.g. "L1H4"
	Patterns [][][]float64 // [head][query][key], usually probabilities
}

// Heatmap is a matrix of values with labelled axes, e.g. layer × head.
type Heatmap struct {
	Title          string
	XLabel, YLabel string
	XTicks, YTicks []string    // column and row labels; nil numbers them from 0
	Values         [][]float64 // [row][column]; row 0 is drawn at the top
	Scale          Scale
}

// LineChart draws one or more series against a shared x axis, with a legend
// of the named ones. An axis whose values are all whole numbers (layers,
// positions, steps) has whole-number ticks only.
type LineChart struct {
	Title          string
	XLabel, YLabel string
	Series         []Series
}

// Series is one line of a [LineChart].
type Series struct {
	Name string
	X    []float64 // nil means 0, 1, 2, ...
	Y    []float64
}

// BarChart draws one bar per label.
type BarChart struct {
	Title          string
	XLabel, YLabel string
	Labels         []string
	Values         []float64
}

// Histogram counts values into equal-width bins, as plotly's px.histogram
// and numpy's histogram do: bin i holds edge[i] ≤ x < edge[i+1], the last bin
// its upper edge too, and values outside Range are not counted. Several
// series share one set of bins and are drawn overlaid, with a legend.
type Histogram struct {
	Title          string
	XLabel, YLabel string // YLabel "" reads "count"
	// Values is the data of a single series; Series holds several instead.
	Values []float64
	Series []HistogramSeries
	// Bins is the number of bins; 0 chooses by Sturges' rule, ⌈log₂ n⌉ + 1
	// for the largest series of n values.
	Bins int
	// Range is the span [lo, hi] of the bins; the zero value spans the
	// data (±0.5 about it when every value is the same).
	Range [2]float64
}

// HistogramSeries is one series of a [Histogram].
type HistogramSeries struct {
	Name   string
	Values []float64
}

// maxBins bounds a histogram's bins: more would make pages of megabytes that
// no screen shows.
const maxBins = 10000

func (v Attention) title() string { return v.Title }
func (v Heatmap) title() string   { return v.Title }
func (v LineChart) title() string { return v.Title }
func (v BarChart) title() string  { return v.Title }
func (v Histogram) title() string { return v.Title }

// viewSpec is a view as the page's JS reads it; kind selects the fields.
// Tick labels are written by Go (tokenLabels, axis), so the page and the
// PNG figures label alike; Tokens and Labels keep the raw text for tooltips.
type viewSpec struct {
	Kind     string       `json:"kind"`
	XLabel   string       `json:"xlabel,omitempty"`
	YLabel   string       `json:"ylabel,omitempty"`
	XTicks   []string     `json:"xticks,omitempty"`
	YTicks   []string     `json:"yticks,omitempty"`
	X        *axis        `json:"x,omitempty"`
	Y        *axis        `json:"y,omitempty"`
	Values   []nums       `json:"values,omitempty"`
	Scale    *colorScale  `json:"scale,omitempty"`
	Tokens   []string     `json:"tokens,omitempty"`
	Heads    []string     `json:"heads,omitempty"`
	Patterns [][]nums     `json:"patterns,omitempty"`
	Series   []seriesSpec `json:"series,omitempty"`
	Labels   []string     `json:"labels,omitempty"`
	Bars     nums         `json:"bars,omitempty"`
	Edges    nums         `json:"edges,omitempty"`
}

// seriesSpec is a line (X, Y) or a histogram's counts per bin (Y).
type seriesSpec struct {
	Name  string `json:"name"`
	Color string `json:"color"`
	X     nums   `json:"x,omitempty"`
	Y     nums   `json:"y"`
}

func (v Attention) spec() (viewSpec, error) {
	if err := v.check(); err != nil {
		return viewSpec{}, err
	}
	s := v.colorScale()
	pats := make([][]nums, len(v.Patterns))
	for h, p := range v.Patterns {
		pats[h] = rowsOf(p)
	}
	labels := tokenLabels(v.Tokens)
	return viewSpec{Kind: "attention", XTicks: labels, YTicks: labels, Tokens: v.Tokens, Heads: v.Heads, Patterns: pats, Scale: &s}, nil
}

func (v Attention) check() error {
	n := len(v.Tokens)
	switch {
	case n == 0:
		return fmt.Errorf("attention %q: no tokens", v.Title)
	case len(v.Heads) == 0:
		return fmt.Errorf("attention %q: no heads", v.Title)
	case len(v.Patterns) != len(v.Heads):
		return fmt.Errorf("attention %q: %d patterns for %d heads", v.Title, len(v.Patterns), len(v.Heads))
	}
	for h, p := range v.Patterns {
		if err := checkMatrix(p, n, n); err != nil {
			return fmt.Errorf("attention %q: head %s: %w", v.Title, v.Heads[h], err)
		}
	}
	return nil
}

// colorScale is [0, 1] for probabilities, else fitted to the values (e.g.
// attention scores); never an integer scale, even for hard 0/1 patterns.
func (v Attention) colorScale() colorScale {
	var all [][]float64
	for _, p := range v.Patterns {
		all = append(all, p...)
	}
	lo, hi := finiteRange(all)
	if lo >= 0 && hi <= 1 {
		lo, hi = 0, 1
	}
	return newColorScale(ScaleAuto, lo, hi, false)
}

func (v Heatmap) spec() (viewSpec, error) {
	if err := v.check(); err != nil {
		return viewSpec{}, err
	}
	s := v.colorScale()
	return viewSpec{Kind: "heatmap", XLabel: v.XLabel, YLabel: v.YLabel, XTicks: tokenLabels(v.xTicks()),
		YTicks: tokenLabels(v.yTicks()), Values: rowsOf(v.Values), Scale: &s}, nil
}

func (v Heatmap) check() error {
	if len(v.Values) == 0 || len(v.Values[0]) == 0 {
		return fmt.Errorf("heatmap %q: no values", v.Title)
	}
	rows, cols := len(v.Values), len(v.Values[0])
	if err := checkMatrix(v.Values, rows, cols); err != nil {
		return fmt.Errorf("heatmap %q: %w", v.Title, err)
	}
	if v.XTicks != nil && len(v.XTicks) != cols {
		return fmt.Errorf("heatmap %q: %d x ticks for %d columns", v.Title, len(v.XTicks), cols)
	}
	if v.YTicks != nil && len(v.YTicks) != rows {
		return fmt.Errorf("heatmap %q: %d y ticks for %d rows", v.Title, len(v.YTicks), rows)
	}
	return nil
}

func (v Heatmap) colorScale() colorScale {
	lo, hi := finiteRange(v.Values)
	return newColorScale(v.Scale, lo, hi, integers(v.Values...))
}

func (v Heatmap) xTicks() []string { return ticksOr(v.XTicks, len(v.Values[0])) }
func (v Heatmap) yTicks() []string { return ticksOr(v.YTicks, len(v.Values)) }

func (v LineChart) spec() (viewSpec, error) {
	if err := v.check(); err != nil {
		return viewSpec{}, err
	}
	ss := make([]seriesSpec, len(v.Series))
	for i, s := range v.Series {
		ss[i] = seriesSpec{Name: s.Name, Color: seriesColor(i), X: s.xs(), Y: s.Y}
	}
	x, y := v.axes()
	return viewSpec{Kind: "line", XLabel: v.XLabel, YLabel: v.YLabel, X: &x, Y: &y, Series: ss}, nil
}

// axes fit the data: x exactly, y with a margin.
func (v LineChart) axes() (x, y axis) {
	var xs, ys [][]float64
	for _, s := range v.Series {
		xs, ys = append(xs, s.xs()), append(ys, s.Y)
	}
	return dataAxis(0, 8, xs...), dataAxis(0.05, 6, ys...)
}

func (v LineChart) check() error {
	if len(v.Series) == 0 {
		return fmt.Errorf("line chart %q: no series", v.Title)
	}
	for _, s := range v.Series {
		var err error
		switch {
		case len(s.Y) == 0:
			err = errors.New("no values")
		case s.X != nil && len(s.X) != len(s.Y):
			err = fmt.Errorf("%d x values for %d y values", len(s.X), len(s.Y))
		default:
			err = checkFinite(s.X, s.Y)
		}
		if err != nil {
			return fmt.Errorf("line chart %q: series %q: %w", v.Title, s.Name, err)
		}
	}
	return nil
}

func (s Series) xs() []float64 {
	if s.X != nil {
		return s.X
	}
	x := make([]float64, len(s.Y))
	for i := range x {
		x[i] = float64(i)
	}
	return x
}

func (v BarChart) spec() (viewSpec, error) {
	if err := v.check(); err != nil {
		return viewSpec{}, err
	}
	y := v.yAxis()
	return viewSpec{Kind: "bar", XLabel: v.XLabel, YLabel: v.YLabel, XTicks: tokenLabels(v.Labels), Y: &y,
		Labels: v.Labels, Bars: v.Values}, nil
}

// yAxis spans the bars and zero, where they stand.
func (v BarChart) yAxis() axis { return dataAxis(0.05, 6, v.Values, []float64{0}) }

func (v BarChart) check() error {
	switch {
	case len(v.Values) == 0:
		return fmt.Errorf("bar chart %q: no values", v.Title)
	case len(v.Labels) != len(v.Values):
		return fmt.Errorf("bar chart %q: %d labels for %d values", v.Title, len(v.Labels), len(v.Values))
	}
	if err := checkFinite(v.Values); err != nil {
		return fmt.Errorf("bar chart %q: %w", v.Title, err)
	}
	return nil
}

func (v Histogram) spec() (viewSpec, error) {
	h, err := v.binned()
	if err != nil {
		return viewSpec{}, err
	}
	ss := make([]seriesSpec, len(h.series))
	for i, s := range h.series {
		ss[i] = seriesSpec{Name: s.Name, Color: seriesColor(i), Y: h.counts[i]}
	}
	return viewSpec{Kind: "histogram", XLabel: v.XLabel, YLabel: v.yLabel(), X: &h.x, Y: &h.y, Edges: h.edges, Series: ss}, nil
}

func (v Histogram) yLabel() string {
	if v.YLabel == "" {
		return "count"
	}
	return v.YLabel
}

// histogram is a checked [Histogram] counted into its bins.
type histogram struct {
	series []HistogramSeries
	edges  []float64   // [bins+1], evenly spaced
	counts [][]float64 // [series][bins]
	x, y   axis
}

// binned checks the histogram and counts each series into the shared bins.
func (v Histogram) binned() (histogram, error) {
	ss, err := v.check()
	if err != nil {
		return histogram{}, err
	}
	var all [][]float64
	n := 0
	for _, s := range ss {
		all = append(all, s.Values)
		n = max(n, len(s.Values))
	}
	lo, hi := v.Range[0], v.Range[1]
	if v.Range == [2]float64{} {
		lo, hi = finiteRange(all)
		if lo == hi {
			lo, hi = lo-0.5, hi+0.5
		}
	}
	if math.IsInf(hi-lo, 0) {
		return histogram{}, fmt.Errorf("histogram %q: the values span [%v, %v], too wide to divide into bins", v.Title, lo, hi)
	}
	bins := v.Bins
	if bins == 0 {
		bins = int(math.Ceil(math.Log2(float64(n)))) + 1 // Sturges
	}
	h := histogram{series: ss, edges: make([]float64, bins+1), counts: make([][]float64, len(ss))}
	for i := range h.edges {
		h.edges[i] = lo + (hi-lo)*float64(i)/float64(bins)
	}
	h.edges[bins] = hi // exact, whatever the rounding above
	top := 0.0
	for k, s := range ss {
		h.counts[k] = make([]float64, bins)
		for _, x := range s.Values {
			if i := h.bin(x); i >= 0 {
				h.counts[k][i]++
				top = max(top, h.counts[k][i])
			}
		}
	}
	h.x = newAxis(lo, hi, 8, integers(all...))
	h.y = newAxis(0, max(1, top*1.05), 6, true)
	return h, nil
}

// bin returns the index of the bin holding x, or -1 outside the bins.
func (h histogram) bin(x float64) int {
	e := h.edges
	bins := len(e) - 1
	lo, hi := e[0], e[bins]
	if x < lo || x > hi {
		return -1
	}
	i := min(int((x-lo)/(hi-lo)*float64(bins)), bins-1)
	// The division can round across an edge; the edges decide.
	if x < e[i] {
		i--
	} else if i < bins-1 && x >= e[i+1] {
		i++
	}
	return i
}

// check returns the histogram's series, or an error naming the field at
// fault.
func (v Histogram) check() ([]HistogramSeries, error) {
	fail := func(format string, args ...any) ([]HistogramSeries, error) {
		return nil, fmt.Errorf("histogram %q: "+format, append([]any{v.Title}, args...)...)
	}
	ss := v.Series
	switch {
	case v.Values != nil && v.Series != nil:
		return fail("both Values and Series are set; use one")
	case v.Series == nil:
		if len(v.Values) == 0 {
			return fail("no values")
		}
		if err := checkFinite(v.Values); err != nil {
			return fail("Values: %w", err)
		}
		ss = []HistogramSeries{{Values: v.Values}}
	case len(v.Series) == 0:
		return fail("no series")
	}
	for i, s := range v.Series {
		if len(s.Values) == 0 {
			return fail("series %d %q: no values", i, s.Name)
		}
		if err := checkFinite(s.Values); err != nil {
			return fail("series %d %q: %w", i, s.Name, err)
		}
	}
	switch lo, hi := v.Range[0], v.Range[1]; {
	case v.Bins < 0 || v.Bins > maxBins:
		return fail("Bins is %d, want 1 to %d (or 0 to choose)", v.Bins, maxBins)
	case v.Range == [2]float64{}:
	case checkFinite(v.Range[:]) != nil || !(lo < hi):
		return fail("Range [%v, %v] is not an interval lo < hi", lo, hi)
	}
	return ss, nil
}

func checkMatrix(m [][]float64, rows, cols int) error {
	if len(m) != rows {
		return fmt.Errorf("%d rows, want %d", len(m), rows)
	}
	for i, r := range m {
		if len(r) != cols {
			return fmt.Errorf("row %d has %d values, want %d", i, len(r), cols)
		}
	}
	return nil
}

// checkFinite rejects NaN and infinities where a line or bar cannot show them.
func checkFinite(vs ...[]float64) error {
	for _, v := range vs {
		for i, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("value %d is %v", i, x)
			}
		}
	}
	return nil
}

func ticksOr(ticks []string, n int) []string {
	if ticks != nil {
		return ticks
	}
	t := make([]string, n)
	for i := range t {
		t[i] = fmt.Sprint(i)
	}
	return t
}

func seriesColor(i int) string { return seriesColors[i%len(seriesColors)] }

func rowsOf(m [][]float64) []nums {
	r := make([]nums, len(m))
	for i, row := range m {
		r[i] = row
	}
	return r
}
