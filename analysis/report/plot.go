package report

import (
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/golens/golens/hookedmodel/safefile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// figure is a view as gonum draws it, on a canvas of w × h.
type figure struct {
	w, h vg.Length
	draw func(draw.Canvas)
}

const (
	dpi    = 150
	margin = 3 // points
)

// SavePNG writes the attention patterns as a grid of per-head heatmaps.
func (v Attention) SavePNG(path string) error { return save(v, path, false) }

// SaveSVG writes the attention patterns as a grid of per-head heatmaps.
func (v Attention) SaveSVG(path string) error { return save(v, path, true) }

// SavePNG writes the heatmap with its colour bar.
func (v Heatmap) SavePNG(path string) error { return save(v, path, false) }

// SaveSVG writes the heatmap with its colour bar.
func (v Heatmap) SaveSVG(path string) error { return save(v, path, true) }

// SavePNG writes the line chart.
func (v LineChart) SavePNG(path string) error { return save(v, path, false) }

// SaveSVG writes the line chart.
func (v LineChart) SaveSVG(path string) error { return save(v, path, true) }

// SavePNG writes the bar chart.
func (v BarChart) SavePNG(path string) error { return save(v, path, false) }

// SaveSVG writes the bar chart.
func (v BarChart) SaveSVG(path string) error { return save(v, path, true) }

// SavePNG writes the histogram.
func (v Histogram) SavePNG(path string) error { return save(v, path, false) }

// SaveSVG writes the histogram.
func (v Histogram) SaveSVG(path string) error { return save(v, path, true) }

func save(v View, path string, asSVG bool) error {
	f, err := v.figure()
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var c vg.CanvasWriterTo
	if asSVG {
		c = vgsvg.New(f.w, f.h)
	} else {
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.w, f.h), vgimg.UseDPI(dpi))}
	}
	// A margin, so that no text (whose font may reach above its line) touches
	// the edge.
	f.draw(draw.Crop(draw.New(c), margin, -margin, margin, -margin))
	err = safefile.Write(path, 0o644, func(w io.Writer) error {
		_, err := c.WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func (v Heatmap) figure() (figure, error) {
	if err := v.check(); err != nil {
		return figure{}, err
	}
	s := v.colorScale()
	p := matrixPlot(v.Values, s, tokenLabels(v.xTicks()), tokenLabels(v.yTicks()), 1600, 40)
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = v.Title, v.XLabel, v.YLabel
	rows, cols := len(v.Values), len(v.Values[0])
	const barW = 0.9 * vg.Inch
	w := clamp(vg.Length(cols)*0.3*vg.Inch+2.5*vg.Inch, 5*vg.Inch, 14*vg.Inch)
	h := clamp(vg.Length(rows)*0.3*vg.Inch+2*vg.Inch, 4*vg.Inch, 14*vg.Inch)
	return figure{w, h, func(dc draw.Canvas) {
		main := draw.Crop(dc, 0, -barW, 0, 0)
		p.Draw(main)
		// The bar spans the heatmap's cells vertically.
		data := p.DataCanvas(main)
		bar := dc
		bar.Min = vg.Point{X: dc.Max.X - barW + 0.3*vg.Inch, Y: data.Min.Y}
		bar.Max = vg.Point{X: dc.Max.X - 0.1*vg.Inch, Y: data.Max.Y}
		colorBar(s).Draw(bar)
	}}, nil
}

// figure lays the heads out as small heatmaps, six or more to a row, query
// rows against key columns. The tokens label the rows of the left column and
// the columns of the bottom tiles; tiles grow with the sequence up to 4 inches
// (less when there are many heads), and beyond that every k-th token is
// labelled.
func (v Attention) figure() (figure, error) {
	if err := v.check(); err != nil {
		return figure{}, err
	}
	s := v.colorScale()
	cols := min(len(v.Heads), max(6, int(math.Ceil(math.Sqrt(float64(len(v.Heads)))))))
	rows := (len(v.Heads) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	const perToken, titleH = 0.16 * vg.Inch, 0.4 * vg.Inch
	tile := clamp(vg.Length(len(v.Tokens))*perToken, 2*vg.Inch, 4*vg.Inch)
	tile = min(tile, max(2*vg.Inch, 24*vg.Inch/vg.Length(cols))) // many heads: a figure of bounded width
	labels := tokenLabels(v.Tokens)
	for h, pat := range v.Patterns {
		p := matrixPlot(pat, s, labels, labels, int(tile/vg.Inch*dpi), int(tile/perToken))
		p.Title.Text = v.Heads[h]
		if h%cols == 0 {
			p.Y.Label.Text = "query"
		} else {
			p.HideY()
		}
		if h+cols >= len(v.Heads) {
			p.X.Label.Text = "key"
		} else {
			p.HideX()
		}
		plots[h/cols][h%cols] = p
	}
	// Room for the token labels and the axis titles.
	margin := 0.45 * vg.Inch
	sty := plots[0][0].Y.Tick.Label
	for _, l := range labels {
		margin = max(margin, sty.Width(l)+0.45*vg.Inch)
	}
	w, h := vg.Length(cols)*tile+margin, vg.Length(rows)*tile+titleH+margin
	return figure{w, h, func(dc draw.Canvas) {
		sty := plot.New().Title.TextStyle
		dc.FillText(sty, vg.Point{X: dc.Center().X, Y: dc.Max.Y - 0.05*vg.Inch}, v.Title)
		grid := draw.Tiles{Rows: rows, Cols: cols, PadX: 0.1 * vg.Inch, PadY: 0.1 * vg.Inch, PadTop: titleH}
		for i, row := range plot.Align(plots, grid, dc) {
			for j, c := range row {
				if p := plots[i][j]; p != nil {
					p.Draw(c)
				}
			}
		}
	}}, nil
}

func (v LineChart) figure() (figure, error) {
	if err := v.check(); err != nil {
		return figure{}, err
	}
	p := chartPlot(v.Title, v.XLabel, v.YLabel)
	var key legend
	for i, s := range v.Series {
		xy := make(plotter.XYs, len(s.Y))
		for k, x := range s.xs() {
			xy[k] = plotter.XY{X: x, Y: s.Y[k]}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return figure{}, fmt.Errorf("line chart %q: series %q: %w", v.Title, s.Name, err)
		}
		l.Color = hexColor(seriesColor(i))
		l.Width = 1.5
		p.Add(l)
		key.add(s.Name, l)
	}
	x, y := v.axes()
	x.set(&p.X)
	y.set(&p.Y)
	return key.beside(p, 7*vg.Inch, 4.5*vg.Inch), nil
}

func (v BarChart) figure() (figure, error) {
	if err := v.check(); err != nil {
		return figure{}, err
	}
	p := chartPlot(v.Title, v.XLabel, v.YLabel)
	bars, err := plotter.NewBarChart(plotter.Values(v.Values), 1)
	if err != nil {
		return figure{}, fmt.Errorf("bar chart %q: %w", v.Title, err)
	}
	bars.Color = hexColor(seriesColors[0])
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(tokenLabels(v.Labels)...)
	p.X.Min, p.X.Max = -0.5, float64(len(v.Values))-0.5
	v.yAxis().set(&p.Y)
	if len(v.Labels) > 8 {
		slant(&p.X)
	}
	w := clamp(vg.Length(len(v.Values))*0.35*vg.Inch+1.5*vg.Inch, 5*vg.Inch, 14*vg.Inch)
	return figure{w, 4.5 * vg.Inch, func(dc draw.Canvas) {
		// Bar widths are lengths, not data: fit them to the drawn axis.
		bars.Width = 0.8 * p.DataCanvas(dc).Size().X / vg.Length(len(v.Values))
		p.Draw(dc)
	}}, nil
}

// figure overlays the series' bars, translucent where there are several.
func (v Histogram) figure() (figure, error) {
	h, err := v.binned()
	if err != nil {
		return figure{}, err
	}
	p := chartPlot(v.Title, v.XLabel, v.yLabel())
	var key legend
	for k, s := range h.series {
		fill := hexColor(seriesColor(k))
		if len(h.series) > 1 {
			fill.A = 150
		}
		bars := &plotter.Histogram{Bins: make([]plotter.HistogramBin, len(h.counts[k])), FillColor: fill}
		bars.LineStyle.Width = 0
		for i, c := range h.counts[k] {
			bars.Bins[i] = plotter.HistogramBin{Min: h.edges[i], Max: h.edges[i+1], Weight: c}
		}
		p.Add(bars)
		key.add(s.Name, swatch{fill})
	}
	h.x.set(&p.X)
	h.y.set(&p.Y)
	return key.beside(p, 7*vg.Inch, 4.5*vg.Inch), nil
}

// legend is the key to a chart's named series. It is drawn beside the plot,
// never over the data, and the figure widens to fit it; long names wrap.
type legend struct {
	names  []string
	thumbs []plot.Thumbnailer
}

// legendRunes is the longest line of a name in a legend.
const legendRunes = 28

func (l *legend) add(name string, t plot.Thumbnailer) {
	if name != "" {
		l.names = append(l.names, name)
		l.thumbs = append(l.thumbs, t)
	}
}

// beside returns p as a figure of w × h with the legend to its right, the
// figure widened (and made taller if need be) to hold every name.
func (l legend) beside(p *plot.Plot, w, h vg.Length) figure {
	if len(l.names) == 0 {
		return figure{w, h, p.Draw}
	}
	key := plot.NewLegend()
	key.Top, key.Left, key.Padding = true, true, 0.06*vg.Inch
	for i, name := range l.names {
		key.Add(wrapName(name, legendRunes), l.thumbs[i])
	}
	const pad = 0.15 * vg.Inch
	size := key.Rectangle(draw.Canvas{}).Size()
	kw := size.X + 2*pad
	h = max(h, size.Y+0.6*vg.Inch) // the title above, a margin below
	return figure{w + kw, h, func(dc draw.Canvas) {
		main := draw.Crop(dc, 0, -kw, 0, 0)
		p.Draw(main)
		c := dc
		c.Min.X, c.Max.X = dc.Max.X-kw+pad, dc.Max.X-pad
		c.Max.Y = p.DataCanvas(main).Max.Y // level with the top of the data
		key.Draw(c)
	}}
}

// swatch is the legend key of a bar: a box of its colour, as tall as a line
// of text, at the middle of the entry.
type swatch struct{ color color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	const h = 9 // points
	mid := (c.Min.Y + c.Max.Y) / 2
	c.FillPolygon(s.color, []vg.Point{{X: c.Min.X, Y: mid - h/2}, {X: c.Max.X, Y: mid - h/2}, {X: c.Max.X, Y: mid + h/2}, {X: c.Min.X, Y: mid + h/2}})
}

// wrapName breaks name into lines of at most n runes, at spaces where it
// can.
func wrapName(name string, n int) string {
	var lines []string
	var line []rune
	flush := func() {
		if len(line) > 0 {
			lines, line = append(lines, string(line)), nil
		}
	}
	for _, word := range strings.Fields(name) {
		w := []rune(word)
		for len(w) > n { // longer than a line: lines of its own
			flush()
			lines, w = append(lines, string(w[:n])), w[n:]
		}
		if len(line) > 0 && len(line)+1+len(w) > n {
			flush()
		}
		if len(line) > 0 {
			line = append(line, ' ')
		}
		line = append(line, w...)
	}
	flush()
	return strings.Join(lines, "\n")
}

func chartPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xlabel, ylabel
	p.Add(plotter.NewGrid())
	return p
}

// matrixPlot draws m as square-edged cells, row 0 at the top, with column
// and row labels as ticks, at most fit of them a side. The cells are an
// image of about px pixels a side: gonum scales images smoothly, so each cell
// is drawn as a block of pixels and only its edges blur. (plotter.HeatMap
// draws one rectangle per cell instead, which leaves seams between them.)
func matrixPlot(m [][]float64, s colorScale, xticks, yticks []string, px, fit int) *plot.Plot {
	rows, cols := len(m), len(m[0])
	k := max(1, px/max(rows, cols))
	img := image.NewNRGBA(image.Rect(0, 0, cols*k, rows*k))
	for i, row := range m {
		for j, v := range row {
			c := color.NRGBA{R: 200, G: 200, B: 200, A: 255} // as the page shows NaN and ±Inf
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				c = s.at(v)
			}
			for y := i * k; y < (i+1)*k; y++ {
				for x := j * k; x < (j+1)*k; x++ {
					img.SetNRGBA(x, y, c)
				}
			}
		}
	}
	p := plot.New()
	p.Add(plotter.NewImage(img, -0.5, -0.5, float64(cols)-0.5, float64(rows)-0.5))
	p.X.Tick.Marker = labelTicks{labels: xticks, fit: fit}
	p.Y.Tick.Marker = labelTicks{labels: yticks, fit: fit, reversed: true}
	if slices.ContainsFunc(xticks, func(t string) bool { return utf8.RuneCountInString(t) > 3 }) {
		slant(&p.X)
	}
	return p
}

// labelTicks labels integer positions, every k-th so that at most fit are
// labelled.
type labelTicks struct {
	labels   []string
	fit      int
	reversed bool // label i sits at len-1-i: rows count down from the top
}

func (t labelTicks) Ticks(lo, hi float64) []plot.Tick {
	n := len(t.labels)
	fit := max(t.fit, 1)
	every := max(1, (n+fit-1)/fit)
	var ticks []plot.Tick
	for i := 0; i < n; i += every {
		at := float64(i)
		if t.reversed {
			at = float64(n - 1 - i)
		}
		ticks = append(ticks, plot.Tick{Value: at, Label: t.labels[i]})
	}
	return ticks
}

// slant stands an axis's tick labels on end, reading up to the axis, so
// long tokens fit.
func slant(a *plot.Axis) {
	a.Tick.Label.Rotation = math.Pi / 2
	a.Tick.Label.XAlign = draw.XRight
	a.Tick.Label.YAlign = draw.YCenter
}

// colorBar is a plot of the scale as a vertical bar with its values.
func colorBar(s colorScale) *plot.Plot {
	const steps = 256
	img := image.NewNRGBA(image.Rect(0, 0, 1, steps))
	for i := range steps {
		img.SetNRGBA(0, steps-1-i, s.at(s.Min+(float64(i)+0.5)/steps*(s.Max-s.Min)))
	}
	p := plot.New()
	p.Add(plotter.NewImage(img, 0, s.Min, 1, s.Max))
	s.axis.set(&p.Y)
	p.HideX()
	p.X.Padding, p.Y.Padding = 0, 0
	return p
}

// tokenLabels shows tokens (or any labels) as tick labels, in the page and in
// the figures alike: spaces at either end as '·' (so " the" and "the"
// differ), line breaks, tabs and other unprintable characters escaped as Go
// writes them ("\n"), and labels of more than 20 characters shortened.
func tokenLabels(tokens []string) []string {
	if tokens == nil {
		return nil
	}
	out := make([]string, len(tokens))
	for i, t := range tokens {
		core := strings.TrimLeft(t, " ")
		lead := len(t) - len(core)
		core = strings.TrimRight(core, " ")
		trail := len(t) - lead - len(core)
		var b strings.Builder
		b.WriteString(strings.Repeat("·", lead))
		for _, r := range core {
			if strconv.IsPrint(r) || r == ' ' {
				b.WriteRune(r)
			} else {
				q := strconv.QuoteRune(r)
				b.WriteString(q[1 : len(q)-1])
			}
		}
		b.WriteString(strings.Repeat("·", trail))
		label := []rune(b.String())
		if len(label) > 20 {
			label = append(label[:19], '…')
		}
		out[i] = string(label)
	}
	return out
}

func clamp(x, lo, hi vg.Length) vg.Length { return max(lo, min(x, hi)) }
