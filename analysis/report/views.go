package report

import (
	"errors"
	"fmt"
	"math"
)

// A View is one figure of a report: an [Attention], [Heatmap], [LineChart]
// or [BarChart]. Each also saves itself as a static PNG or SVG figure.
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

// LineChart draws one or more series against a shared x axis.
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

func (v Attention) title() string { return v.Title }
func (v Heatmap) title() string   { return v.Title }
func (v LineChart) title() string { return v.Title }
func (v BarChart) title() string  { return v.Title }

// viewSpec is a view as the page's JS reads it; kind selects the fields.
type viewSpec struct {
	Kind     string       `json:"kind"`
	XLabel   string       `json:"xlabel,omitempty"`
	YLabel   string       `json:"ylabel,omitempty"`
	XTicks   []string     `json:"xticks,omitempty"`
	YTicks   []string     `json:"yticks,omitempty"`
	Values   []nums       `json:"values,omitempty"`
	Scale    *colorScale  `json:"scale,omitempty"`
	Tokens   []string     `json:"tokens,omitempty"`
	Heads    []string     `json:"heads,omitempty"`
	Patterns [][]nums     `json:"patterns,omitempty"`
	Series   []seriesSpec `json:"series,omitempty"`
	Labels   []string     `json:"labels,omitempty"`
	Bars     nums         `json:"bars,omitempty"`
}

type seriesSpec struct {
	Name  string `json:"name"`
	Color string `json:"color"`
	X     nums   `json:"x"`
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
	return viewSpec{Kind: "attention", Tokens: v.Tokens, Heads: v.Heads, Patterns: pats, Scale: &s}, nil
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
// attention scores).
func (v Attention) colorScale() colorScale {
	var all [][]float64
	for _, p := range v.Patterns {
		all = append(all, p...)
	}
	lo, hi := finiteRange(all)
	if lo >= 0 && hi <= 1 {
		lo, hi = 0, 1
	}
	return newColorScale(ScaleAuto, lo, hi)
}

func (v Heatmap) spec() (viewSpec, error) {
	if err := v.check(); err != nil {
		return viewSpec{}, err
	}
	s := v.colorScale()
	return viewSpec{Kind: "heatmap", XLabel: v.XLabel, YLabel: v.YLabel, XTicks: v.xTicks(), YTicks: v.yTicks(),
		Values: rowsOf(v.Values), Scale: &s}, nil
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
	return newColorScale(v.Scale, lo, hi)
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
	return viewSpec{Kind: "line", XLabel: v.XLabel, YLabel: v.YLabel, Series: ss}, nil
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
	return viewSpec{Kind: "bar", XLabel: v.XLabel, YLabel: v.YLabel, Labels: v.Labels, Bars: v.Values}, nil
}

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
