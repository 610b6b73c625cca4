package report_test

import (
	"fmt"
	"log"
	"os"

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
