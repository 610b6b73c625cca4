package report_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/golens/golens/analysis/report"
)

func ExampleReport_Save() {
	dir, err := os.MkdirTemp("", "report")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	r := report.Report{
		Title: "Name movers",
		Sections: []report.Section{{
			Title: "Direct logit attribution",
			Text:  "Heads 9.6 and 9.9 write the indirect object's name.",
			Views: []report.View{
				report.Heatmap{
					Title: "Logit difference by head", XLabel: "head", YLabel: "layer",
					Values: [][]float64{{0.1, -0.3}, {2.5, 0.2}},
				},
				report.BarChart{
					Title: "Top heads", YLabel: "logit difference",
					Labels: []string{"9.9", "9.6"}, Values: []float64{2.5, 1.9},
				},
			},
		}},
	}
	if err := r.Save(dir); err != nil {
		log.Fatal(err)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range files {
		fmt.Println(f.Name())
	}
	// Output:
	// fig01-logit-difference-by-head.png
	// fig02-top-heads.png
	// index.html
}

// A histogram of two series over shared bins, as plotly's px.histogram
// draws with barmode="overlay": here the direct logit attribution of the
// heads of two layers. Bins 0 would choose by Sturges' rule. In a report, it
// is a view like any other.
func ExampleHistogram() {
	dir, err := os.MkdirTemp("", "report")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	h := report.Histogram{
		Title: "Direct logit attribution", XLabel: "logit difference",
		Series: []report.HistogramSeries{
			{Name: "layer 9", Values: []float64{-0.2, 0.1, 0.4, 2.5, 1.9, 0.3}},
			{Name: "layer 10", Values: []float64{-1.1, -0.4, 0.2, 0.0, 0.1, -0.3}},
		},
		Bins:  8,
		Range: [2]float64{-2, 3},
	}
	if err := h.SavePNG(filepath.Join(dir, "dla.png")); err != nil {
		log.Fatal(err)
	}
	if err := h.SaveSVG(filepath.Join(dir, "dla.svg")); err != nil {
		log.Fatal(err)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range files {
		fmt.Println(f.Name())
	}
	// Output:
	// dla.png
	// dla.svg
}

// In a Go notebook (gonb), a view shows in a cell's output as HTML: the
// fragment holds its own styles, data and script and works offline, and any
// number of fragments can share the notebook's page. In a cell:
//
//	import "github.com/janpfeifer/gonb/gonbui"
//
//	frag, err := report.Fragment(view) // or r.HTMLFragment() for a whole report
//	if err != nil { ... }
//	gonbui.DisplayHTML(frag)
func ExampleFragment() {
	frag, err := report.Fragment(report.LineChart{
		Title: "Loss by layer", XLabel: "layer", YLabel: "loss",
		Series: []report.Series{{Name: "ablated", Y: []float64{3.1, 3.4, 4.2, 3.3}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(frag, `<div class="golens-report">`), strings.Contains(frag, "<body"))
	// Output: true false
}
