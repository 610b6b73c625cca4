package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
)

// svgText is a text of an SVG figure, with its box in the figure's
// coordinates (y down) measured with the font's own metrics.
type svgText struct {
	text                   string
	minX, minY, maxX, maxY float64
}

// affine is an SVG transform matrix: x' = a x + c y + e, y' = b x + d y + f.
type affine [6]float64

var identity = affine{1, 0, 0, 1, 0, 0}

func (m affine) then(n affine) affine { // m × n: n applies first
	return affine{
		m[0]*n[0] + m[2]*n[1], m[1]*n[0] + m[3]*n[1],
		m[0]*n[2] + m[2]*n[3], m[1]*n[2] + m[3]*n[3],
		m[0]*n[4] + m[2]*n[5] + m[4], m[1]*n[4] + m[3]*n[5] + m[5],
	}
}

func (m affine) apply(x, y float64) (float64, float64) {
	return m[0]*x + m[2]*y + m[4], m[1]*x + m[3]*y + m[5]
}

var transformFunc = regexp.MustCompile(`(\w+)\(([^)]*)\)`)

// parseTransform reads the scale, translate and rotate that gonum's SVG
// canvas writes.
func parseTransform(t *testing.T, s string) affine {
	t.Helper()
	m := identity
	for _, f := range transformFunc.FindAllStringSubmatch(s, -1) {
		var a []float64
		for _, n := range strings.FieldsFunc(f[2], func(r rune) bool { return r == ',' || r == ' ' }) {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil {
				t.Fatalf("transform %q: %v", s, err)
			}
			a = append(a, v)
		}
		switch {
		case f[1] == "scale" && len(a) == 2:
			m = m.then(affine{a[0], 0, 0, a[1], 0, 0})
		case f[1] == "translate" && len(a) == 2:
			m = m.then(affine{1, 0, 0, 1, a[0], a[1]})
		case f[1] == "rotate" && len(a) == 1:
			sin, cos := math.Sincos(a[0] * math.Pi / 180)
			m = m.then(affine{cos, sin, -sin, cos, 0, 0})
		default:
			t.Fatalf("transform %q: cannot read %s", s, f[0])
		}
	}
	return m
}

var fontSize = regexp.MustCompile(`font-family:Liberation Serif;.*font-size:([0-9.]+)px`)

// svgTexts reads every text of an SVG written by gonum, with the canvas's
// width and height.
func svgTexts(t *testing.T, path string) (texts []svgText, w, h float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	stack := []affine{identity}
	var cur *svgText
	var size float64
	attr := func(se xml.StartElement, name string) string {
		for _, a := range se.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return v
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			m := stack[len(stack)-1].then(parseTransform(t, attr(tok, "transform")))
			stack = append(stack, m)
			switch tok.Name.Local {
			case "svg":
				var x0, y0 float64
				if _, err := fmt.Sscanf(attr(tok, "viewBox"), "%g %g %g %g", &x0, &y0, &w, &h); err != nil {
					t.Fatalf("%s: viewBox: %v", path, err)
				}
			case "text":
				sm := fontSize.FindStringSubmatch(attr(tok, "style"))
				if sm == nil {
					t.Fatalf("%s: a text not in the default font: %s", path, attr(tok, "style"))
				}
				size = num(sm[1])
				x, y := num(attr(tok, "x")), num(attr(tok, "y"))
				cur = &svgText{minX: x, minY: y}
			}
		case xml.CharData:
			if cur != nil {
				cur.text += string(tok)
			}
		case xml.EndElement:
			m := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if tok.Name.Local != "text" {
				continue
			}
			face := font.DefaultCache.Lookup(plot.DefaultFont, font.Length(size))
			ext := face.Extents()
			// The glyphs' box about the baseline point (x, y), in the text's
			// own coordinates, y down; then its corners in the figure's.
			x0, x1 := cur.minX, cur.minX+face.Width(cur.text).Points()
			y0, y1 := cur.minY-ext.Ascent.Points(), cur.minY+ext.Descent.Points()
			cur.minX, cur.minY, cur.maxX, cur.maxY = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
			for _, p := range [][2]float64{{x0, y0}, {x1, y0}, {x0, y1}, {x1, y1}} {
				x, y := m.apply(p[0], p[1])
				cur.minX, cur.maxX = min(cur.minX, x), max(cur.maxX, x)
				cur.minY, cur.maxY = min(cur.minY, y), max(cur.maxY, y)
			}
			texts = append(texts, *cur)
			cur = nil
		}
	}
	return texts, w, h
}

// checkTextsInside fails for every text of the SVG drawn past its edges.
func checkTextsInside(t *testing.T, path string) []svgText {
	t.Helper()
	texts, w, h := svgTexts(t, path)
	const eps = 0.5 // points
	for _, tx := range texts {
		if tx.minX < -eps || tx.minY < -eps || tx.maxX > w+eps || tx.maxY > h+eps {
			t.Errorf("%s: %q spans x [%.1f, %.1f], y [%.1f, %.1f], outside the %.0f × %.0f canvas",
				filepath.Base(path), tx.text, tx.minX, tx.maxX, tx.minY, tx.maxY, w, h)
		}
	}
	return texts
}

// TestFigureTextsInside checks that no text of any sample figure (titles,
// tick labels, tokens, legends) is cut by the canvas edge.
func TestFigureTextsInside(t *testing.T) {
	dir := t.TempDir()
	n := 0
	for _, s := range sampleReport().Sections {
		for _, v := range s.Views {
			n++
			path := filepath.Join(dir, fmt.Sprintf("fig%d.svg", n))
			if err := v.SaveSVG(path); err != nil {
				t.Fatal(err)
			}
			if texts := checkTextsInside(t, path); len(texts) == 0 {
				t.Errorf("%s: no texts read", v.title())
			}
		}
	}
}

// TestLegendFits draws charts whose series have long names and checks, in
// the SVG, that every name is shown whole (wrapped, not shortened), within
// the canvas and to the right of the data.
func TestLegendFits(t *testing.T) {
	long := "residual stream norm after the attention layer of block 11, with heads 9.6, 9.9 and 10.0 ablated to their mean over the dataset"
	word := strings.Repeat("x", 70) // longer than a line: broken
	for _, v := range []View{
		LineChart{Title: "Norms", Series: []Series{{Name: long, Y: []float64{1, 3, 2}}, {Name: word, Y: []float64{2, 2, 1}}, {Name: "clean", Y: []float64{0, 1, 2}}}},
		Histogram{Title: "Norms", Series: []HistogramSeries{{Name: long, Values: []float64{1, 2, 2, 3}}, {Name: word, Values: []float64{2, 3, 3}}}},
	} {
		path := filepath.Join(t.TempDir(), "legend.svg")
		if err := v.SaveSVG(path); err != nil {
			t.Fatal(err)
		}
		texts := checkTextsInside(t, path)
		var lines []string
		dataRight := math.Inf(-1) // the right end of the x axis's tick labels
		for _, tx := range texts {
			if strings.Contains(long+word, tx.text) && len(tx.text) > 3 {
				lines = append(lines, tx.text)
			} else if _, err := strconv.ParseFloat(tx.text, 64); err == nil {
				dataRight = max(dataRight, tx.maxX)
			}
		}
		joined := strings.Join(lines, " ")
		if want := long + " " + word; strings.ReplaceAll(joined, " ", "") != strings.ReplaceAll(want, " ", "") {
			t.Errorf("%T legend shows %q, want all of %q", v, joined, want)
		}
		for _, tx := range texts {
			if slicesContain(lines, tx.text) && tx.minX < dataRight {
				t.Errorf("%T legend line %q starts at x %.1f, over the plot (which ends at %.1f)", v, tx.text, tx.minX, dataRight)
			}
		}
	}
}

func slicesContain(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestIntegerTicksInFigures checks that axes of whole numbers (layers,
// positions, counts) have whole-number ticks in the SVG figures.
func TestIntegerTicksInFigures(t *testing.T) {
	for _, tc := range []struct {
		name string
		view View
		want []string // ticks that must be there
	}{
		{"two layers", LineChart{Series: []Series{{Y: []float64{0, 1}}}}, []string{"0", "1"}},
		{"three positions", LineChart{Series: []Series{{X: []float64{0, 1, 2}, Y: []float64{2, 3, 2}}}}, []string{"0", "1", "2", "3"}},
		{"histogram", Histogram{Values: []float64{0, 1, 1, 2, 2, 2}, Bins: 3}, []string{"0", "1", "2", "3"}},
		{"bar counts", BarChart{Labels: []string{"a", "b"}, Values: []float64{1, 2}}, []string{"0", "1", "2"}},
		{"heatmap counts", Heatmap{Values: [][]float64{{0, 1}, {2, 1}}}, []string{"0", "1", "2"}},
	} {
		path := filepath.Join(t.TempDir(), "ticks.svg")
		if err := tc.view.SaveSVG(path); err != nil {
			t.Fatal(err)
		}
		texts, _, _ := svgTexts(t, path)
		var labels []string
		for _, tx := range texts {
			labels = append(labels, tx.text)
			v, err := strconv.ParseFloat(tx.text, 64)
			if err == nil && v != math.Trunc(v) {
				t.Errorf("%s: tick %q on an integer axis", tc.name, tx.text)
			}
		}
		for _, w := range tc.want {
			if !slicesContain(labels, w) {
				t.Errorf("%s: no tick %q among %q", tc.name, w, labels)
			}
		}
	}
}

// TestAttentionTokenLabels checks that the figure of an attention pattern
// labels query rows and key columns with its tokens, whitespace made
// visible.
func TestAttentionTokenLabels(t *testing.T) {
	tokens := []string{"<|endoftext|>", " the", "\n", "cat\t", " a very long token that goes on", "x y", "  "}
	n := len(tokens)
	pat := make([][]float64, n)
	for i := range pat {
		pat[i] = make([]float64, n)
		pat[i][0] = 1
	}
	v := Attention{Title: "tokens", Tokens: tokens, Heads: []string{"L0H0", "L0H1"}, Patterns: [][][]float64{pat, pat}}
	path := filepath.Join(t.TempDir(), "attn.svg")
	if err := v.SaveSVG(path); err != nil {
		t.Fatal(err)
	}
	texts := checkTextsInside(t, path)
	count := map[string]int{}
	for _, tx := range texts {
		count[tx.text]++
	}
	// Each label once on the query axis and once on each head's key axis.
	for _, want := range []string{"<|endoftext|>", "·the", `\n`, `cat\t`, "·a very long token …", "x y", "··"} {
		if count[want] != 3 {
			t.Errorf("token label %q appears %d times, want 3 (query axis, two key axes); texts: %v", want, count[want], count)
		}
	}
	for _, want := range []string{"query", "key"} {
		if count[want] == 0 {
			t.Errorf("no %q axis title", want)
		}
	}
}
