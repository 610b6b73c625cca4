package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

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

const dpi = 150

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
	f.draw(draw.New(c))
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := c.WriteTo(out); err != nil {
		out.Close()
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return out.Close()
}

func (v Heatmap) figure() (figure, error) {
	if err := v.check(); err != nil {
		return figure{}, err
	}
	s := v.colorScale()
	p := matrixPlot(v.Values, s, v.xTicks(), v.yTicks(), 1600)
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

// figure lays the heads out as small heatmaps, six or more to a row; tokens label
// the left column and the bottom tile of each column when they are few
// enough to read.
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
	labelled := len(v.Tokens) <= 24
	const tile, titleH = 2 * vg.Inch, 0.4 * vg.Inch
	for h, pat := range v.Patterns {
		p := matrixPlot(pat, s, v.Tokens, v.Tokens, int(tile/vg.Inch*dpi))
		p.Title.Text = v.Heads[h]
		if !labelled || h%cols != 0 {
			p.HideY()
		}
		if !labelled || h+cols < len(v.Heads) {
			p.HideX()
		}
		plots[h/cols][h%cols] = p
	}
	var margin vg.Length // room for the token labels
	if labelled {
		sty := plots[0][0].Y.Tick.Label
		for _, l := range tickLabels(v.Tokens) {
			margin = max(margin, sty.Width(l))
		}
		margin += 0.2 * vg.Inch
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
	p.Legend.Top = true
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
		if s.Name != "" {
			p.Legend.Add(s.Name, l)
		}
	}
	return figure{7 * vg.Inch, 4.5 * vg.Inch, p.Draw}, nil
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
	p.NominalX(tickLabels(v.Labels)...)
	p.X.Min, p.X.Max = -0.5, float64(len(v.Values))-0.5
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

func chartPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xlabel, ylabel
	p.Add(plotter.NewGrid())
	return p
}

// matrixPlot draws m as square-edged cells, row 0 at the top, with column
// and row labels as ticks (none when nil). The cells are an image of about
// px pixels a side: gonum scales images smoothly, so each cell is drawn as a
// block of pixels and only its edges blur. (plotter.HeatMap draws one
// rectangle per cell instead, which leaves seams between them.)
func matrixPlot(m [][]float64, s colorScale, xticks, yticks []string, px int) *plot.Plot {
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
	p.X.Tick.Marker = labelTicks{labels: tickLabels(xticks)}
	p.Y.Tick.Marker = labelTicks{labels: tickLabels(yticks), reversed: true}
	if slices.ContainsFunc(xticks, func(t string) bool { return utf8.RuneCountInString(t) > 3 }) {
		slant(&p.X)
	}
	return p
}

// labelTicks labels integer positions, thinned to at most 40 labels.
type labelTicks struct {
	labels   []string
	reversed bool // label i sits at len-1-i: rows count down from the top
}

func (t labelTicks) Ticks(lo, hi float64) []plot.Tick {
	n := len(t.labels)
	every := (n + 39) / 40
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
	p.HideX()
	p.X.Padding, p.Y.Padding = 0, 0
	return p
}

// tickLabels makes tokens fit as tick labels: line breaks and tabs, which a
// label would break on or drop, shown escaped; long ones shortened.
func tickLabels(tokens []string) []string {
	if tokens == nil {
		return nil
	}
	r := strings.NewReplacer("\n", `\n`, "\t", `\t`)
	out := make([]string, len(tokens))
	for i, t := range tokens {
		t = r.Replace(t)
		if rs := []rune(t); len(rs) > 20 {
			t = string(rs[:19]) + "…"
		}
		out[i] = t
	}
	return out
}

func clamp(x, lo, hi vg.Length) vg.Length { return max(lo, min(x, hi)) }
