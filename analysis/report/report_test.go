package report

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func render(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return b.String()
}

// pageJSON returns the JSON the page embeds.
func pageJSON(t *testing.T, page string) string {
	t.Helper()
	const open = `<script type="application/json" class="golens-data">`
	i := strings.Index(page, open)
	if i < 0 {
		t.Fatal("no data script in the page")
	}
	rest := page[i+len(open):]
	return rest[:strings.Index(rest, "</script>")]
}

func TestHTMLEscapesText(t *testing.T) {
	page := render(t, sampleReport())
	// Three scripts of our own: the error recorder, the data, the renderer.
	if n := strings.Count(page, "<script"); n != 3 {
		t.Errorf("page has %d <script tags, want 3", n)
	}
	for _, bad := range []string{"<script>alert", "<b>report</b>", "<i>test</i>"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{
		"<title>Sample &lt;b&gt;report&lt;/b&gt; &amp; friends</title>",
		"<p>A token &lt;script&gt;alert(1)&lt;/script&gt; must show as text.</p>",
		`\u003cscript\u003ealert(1)\u003c/script\u003e`, // the token, inside the JSON
		"<figcaption>Logit attribution</figcaption>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	var got pageData
	if err := json.Unmarshal([]byte(pageJSON(t, render(t, r))), &got); err != nil {
		t.Fatalf("page JSON: %v", err)
	}
	if len(got.Views) != 6 {
		t.Fatalf("got %d views, want 6", len(got.Views))
	}
	att := r.Sections[0].Views[0].(Attention)
	a := got.Views[0]
	if a.Kind != "attention" || len(a.Heads) != 12 || a.Tokens[15] != att.Tokens[15] {
		t.Errorf("attention: kind %q, %d heads, last token %q", a.Kind, len(a.Heads), a.Tokens[15])
	}
	for h := range att.Patterns {
		equalMatrix(t, "pattern "+att.Heads[h], a.Patterns[h], att.Patterns[h])
	}
	hm := r.Sections[1].Views[1].(Heatmap)
	// Tick labels as tokenLabels shows them: " <script>..." is cut to 20 characters.
	if v := got.Views[2]; v.Kind != "heatmap" || v.XTicks[15] != "·<script>alert(1)</…" || v.YTicks[3] != "3" || v.XLabel != "position" {
		t.Errorf("heatmap: kind %q, xticks %q, yticks %q, xlabel %q", v.Kind, v.XTicks, v.YTicks, v.XLabel)
	}
	equalMatrix(t, "heatmap", got.Views[2].Values, hm.Values)
	if s := got.Views[1].Scale; s.Min != -s.Max || s.Stops[2] != "#ffffff" {
		t.Errorf("signed heatmap has scale %+v, want diverging about zero", s)
	}
	line := r.Sections[2].Views[0].(LineChart)
	if s := got.Views[3].Series[1]; s.Name != "<i>test</i>" || len(s.X) != 50 || s.X[49] != 49 || s.Color != seriesColors[1] {
		t.Errorf("line series: %+v", s)
	}
	equalMatrix(t, "line", []nums{got.Views[3].Series[0].Y}, [][]float64{line.Series[0].Y})
	bar := r.Sections[2].Views[1].(BarChart)
	equalMatrix(t, "bars", []nums{got.Views[4].Bars}, [][]float64{bar.Values})
}

// equalMatrix compares values read back from the page with the originals,
// which the page holds at float32 precision and NaN as null (read as 0).
func equalMatrix(t *testing.T, what string, got []nums, want [][]float64) {
	t.Helper()
	for i := range want {
		for j, w := range want[i] {
			if math.IsNaN(w) {
				w = 0
			}
			if g := got[i][j]; float32(g) != float32(w) {
				t.Fatalf("%s [%d][%d] = %v, want %v", what, i, j, g, w)
			}
		}
	}
}

func TestNumsJSON(t *testing.T) {
	b, err := json.Marshal(nums{0.1, -2, math.NaN(), math.Inf(1), 1e300, 1.5e-7})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[0.1,-2,null,null,1e+300,1.5e-07]"; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestMalformedViews(t *testing.T) {
	for _, tc := range []struct {
		view View
		want string
	}{
		{Heatmap{Title: "h", Values: [][]float64{{1, 2}, {3}}}, `heatmap "h": row 1 has 1 values, want 2`},
		{Heatmap{Title: "h", Values: [][]float64{{1, 2}}, XTicks: []string{"a"}}, `heatmap "h": 1 x ticks for 2 columns`},
		{Heatmap{Title: "h"}, `heatmap "h": no values`},
		{Attention{Title: "a", Tokens: []string{"x", "y"}, Heads: []string{"L0H0"}, Patterns: [][][]float64{{{1}}}}, `attention "a": head L0H0: 1 rows, want 2`},
		{Attention{Title: "a", Tokens: []string{"x"}, Heads: []string{"L0H0", "L0H1"}, Patterns: [][][]float64{{{1}}}}, `attention "a": 1 patterns for 2 heads`},
		{LineChart{Title: "l", Series: []Series{{Name: "s", X: []float64{1}, Y: []float64{1, 2}}}}, `line chart "l": series "s": 1 x values for 2 y values`},
		{LineChart{Title: "l", Series: []Series{{Name: "s", Y: []float64{1, math.NaN()}}}}, `line chart "l": series "s": value 1 is NaN`},
		{BarChart{Title: "b", Labels: []string{"a"}, Values: []float64{1, 2}}, `bar chart "b": 1 labels for 2 values`},
		{BarChart{Title: "b", Labels: []string{"a"}, Values: []float64{math.Inf(-1)}}, `bar chart "b": value 0 is -Inf`},
		{LineChart{Title: "l", Series: []Series{{Name: "s", Y: []float64{1, math.Inf(1)}}}}, `line chart "l": series "s": value 1 is +Inf`},
		{LineChart{Title: "l", Series: []Series{{Name: "s"}}}, `line chart "l": series "s": no values`},
		{Histogram{Title: "h"}, `histogram "h": no values`},
		{Histogram{Title: "h", Values: []float64{}}, `histogram "h": no values`},
		{Histogram{Title: "h", Series: []HistogramSeries{}}, `histogram "h": no series`},
		{Histogram{Title: "h", Values: []float64{1}, Series: []HistogramSeries{{Values: []float64{1}}}}, `histogram "h": both Values and Series are set; use one`},
		{Histogram{Title: "h", Values: []float64{1, math.NaN()}}, `histogram "h": Values: value 1 is NaN`},
		{Histogram{Title: "h", Series: []HistogramSeries{{Name: "a", Values: []float64{1}}, {Name: "b", Values: []float64{math.Inf(1)}}}}, `histogram "h": series 1 "b": value 0 is +Inf`},
		{Histogram{Title: "h", Series: []HistogramSeries{{Name: "a"}}}, `histogram "h": series 0 "a": no values`},
		{Histogram{Title: "h", Values: []float64{1}, Bins: -1}, `histogram "h": Bins is -1, want 1 to 10000 (or 0 to choose)`},
		{Histogram{Title: "h", Values: []float64{1}, Bins: 1e6}, `histogram "h": Bins is 1000000, want 1 to 10000 (or 0 to choose)`},
		{Histogram{Title: "h", Values: []float64{1}, Range: [2]float64{2, 1}}, `histogram "h": Range [2, 1] is not an interval lo < hi`},
		{Histogram{Title: "h", Values: []float64{1}, Range: [2]float64{0, math.NaN()}}, `histogram "h": Range [0, NaN] is not an interval lo < hi`},
		{Histogram{Title: "h", Values: []float64{-math.MaxFloat64, math.MaxFloat64}}, `too wide to divide into bins`},
	} {
		r := Report{Sections: []Section{{Views: []View{tc.view}}}}
		var b bytes.Buffer
		err := r.WriteHTML(&b)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("WriteHTML error %v, want one ending %q", err, tc.want)
		}
		if b.Len() != 0 {
			t.Errorf("WriteHTML wrote %d bytes for a malformed view", b.Len())
		}
		if _, err := Fragment(tc.view); err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("Fragment error %v, want one ending %q", err, tc.want)
		}
		for _, save := range []func(string) error{tc.view.SavePNG, tc.view.SaveSVG} {
			if err := save(filepath.Join(t.TempDir(), "x")); err == nil || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("save error %v, want one ending %q", err, tc.want)
			}
		}
	}
}

// TestEmptyInput calls every exported function on zero values and nils:
// each must return an error, not panic.
func TestEmptyInput(t *testing.T) {
	var nilReport *Report
	var nilHeatmap *Heatmap
	dir := t.TempDir()
	for _, v := range []View{Attention{}, Heatmap{}, LineChart{}, BarChart{}, Histogram{}, Heatmap{Values: [][]float64{{}}}} {
		if err := v.SavePNG(filepath.Join(dir, "x.png")); err == nil {
			t.Errorf("%T{}.SavePNG: no error", v)
		}
		if err := v.SaveSVG(filepath.Join(dir, "x.svg")); err == nil {
			t.Errorf("%T{}.SaveSVG: no error", v)
		}
		if _, err := Fragment(v); err == nil {
			t.Errorf("Fragment(%T{}): no error", v)
		}
	}
	for _, v := range []View{nil, nilHeatmap} {
		if _, err := Fragment(v); err == nil || !strings.Contains(err.Error(), "nil view") {
			t.Errorf("Fragment(%#v): error %v, want a nil view", v, err)
		}
		r := Report{Sections: []Section{{Views: []View{v}}}}
		if err := r.Save(dir); err == nil {
			t.Errorf("Save with view %#v: no error", v)
		}
	}
	if _, err := nilReport.HTMLFragment(); err == nil {
		t.Error("nil report: HTMLFragment gave no error")
	}
	if err := nilReport.WriteHTML(io.Discard); err == nil {
		t.Error("nil report: WriteHTML gave no error")
	}
	if err := nilReport.Save(dir); err == nil {
		t.Error("nil report: Save gave no error")
	}
	// An empty report is a page with nothing in it.
	if _, err := (&Report{}).HTMLFragment(); err != nil {
		t.Errorf("empty report: %v", err)
	}
}

func TestSave(t *testing.T) {
	dir := t.TempDir()
	if err := sampleReport().Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"index.html", "fig01-attention-patterns.png", "fig02-logit-attribution.png",
		"fig03-patching-by-position.png", "fig04-loss.png", "fig05-head-scores.png", "fig06-logit-difference.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

// Saving never writes into what is not a regular file: a FIFO where a
// figure goes (opened, it would block for a reader) or /dev/null as a
// figure's path are refused, naming them.
func TestSaveRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "index.html"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sampleReport().Save(dir) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "index.html: it is a named pipe (FIFO)") {
			t.Errorf("Save over a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Save blocked on a FIFO")
	}
	v := Heatmap{Title: "h", Values: [][]float64{{1, 2}}}
	if err := v.SavePNG("/dev/null"); err == nil || !strings.Contains(err.Error(), "/dev/null: it is a character device") {
		t.Errorf("SavePNG to /dev/null: %v", err)
	}
}

func TestParagraphs(t *testing.T) {
	got := paragraphs("one\ntwo\r\n\r\n\n three \n\n")
	if len(got) != 2 || got[0] != "one\ntwo" || got[1] != "three" {
		t.Errorf("got %q", got)
	}
}
