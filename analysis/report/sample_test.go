package report

import (
	"fmt"
	"math"
	"math/rand/v2"
)

var sampleTokens = []string{"<|endoftext|>", "When", " Mary", " and", " John", " went", " to", " the", " store", ",", " John", " gave", " a", " drink", " to", " <script>alert(1)</script>"}

// sampleReport has every kind of view, with made-up but typical data: four
// layers of three heads whose patterns attend to the first token, the
// previous token, the same token earlier, or evenly; and a histogram of two
// series, one with a long name.
func sampleReport() *Report {
	n := len(sampleTokens)
	var heads []string
	var pats [][][]float64
	for l := range 4 {
		for h := range 3 {
			heads = append(heads, fmt.Sprintf("L%dH%d", l, h))
			pats = append(pats, samplePattern(n, (l*3+h)%4))
		}
	}
	dla := make([][]float64, 4)
	for l := range dla {
		dla[l] = make([]float64, 3)
		for h := range dla[l] {
			dla[l][h] = math.Sin(float64(3*l+h+1)) * float64(l+1)
		}
	}
	pos := make([][]float64, 4)
	for l := range pos {
		pos[l] = make([]float64, n)
		for p := range pos[l] {
			pos[l][p] = math.Exp(-math.Abs(float64(p-3*l))) * float64(l+1)
		}
	}
	pos[2][5] = math.NaN()
	rng := rand.New(rand.NewPCG(1, 2))
	clean, ablated := make([]float64, 300), make([]float64, 200)
	for i := range clean {
		clean[i] = 3 + rng.NormFloat64()
	}
	for i := range ablated {
		ablated[i] = 0.5 + 1.5*rng.NormFloat64()
	}
	loss, acc := make([]float64, 50), make([]float64, 50)
	for i := range loss {
		loss[i] = 5*math.Exp(-float64(i)/12) + 0.6
		acc[i] = 4 - 3*math.Exp(-float64(i)/20)
	}
	return &Report{
		Title: "Sample <b>report</b> & friends",
		Sections: []Section{{
			Title: "Attention",
			Text:  "Patterns of every head.\n\nA token <script>alert(1)</script> must show as text.",
			Views: []View{Attention{Title: "Attention patterns", Tokens: sampleTokens, Heads: heads, Patterns: pats}},
		}, {
			Title: "Attribution",
			Text:  "Direct logit attribution per head, and a signal by position.",
			Views: []View{
				Heatmap{Title: "Logit attribution", XLabel: "head", YLabel: "layer", Values: dla},
				Heatmap{Title: "Patching by position", XLabel: "position", YLabel: "layer", XTicks: sampleTokens, Values: pos},
			},
		}, {
			Title: "Training",
			Views: []View{
				LineChart{Title: "Loss", XLabel: "step", YLabel: "loss", Series: []Series{{Name: "train", Y: loss}, {Name: "<i>test</i>", Y: acc}}},
				BarChart{Title: "Head scores", XLabel: "head", YLabel: "score", Labels: heads[:8], Values: []float64{0.9, -0.2, 0.4, 0.05, -0.6, 0.3, 0.7, 0.1}},
				Histogram{Title: "Logit difference", XLabel: "logit difference", Series: []HistogramSeries{
					{Name: "clean", Values: clean},
					{Name: "corrupted, with the name mover heads 9.6 and 9.9 mean-ablated", Values: ablated},
				}},
			},
		}},
	}
}

// samplePattern is a causal attention pattern of one of four kinds.
func samplePattern(n, kind int) [][]float64 {
	p := make([][]float64, n)
	for q := range p {
		p[q] = make([]float64, n)
		switch {
		case kind == 0 || q == 0:
			p[q][0] = 1
		case kind == 1:
			p[q][q-1] = 1
		case kind == 2:
			p[q][q] = 0.4
			p[q][0] = 0.6
			for k := 1; k < q; k++ {
				if sampleTokens[k] == sampleTokens[q] {
					p[q][k+1], p[q][0] = 0.6, 0
				}
			}
		default:
			for k := 0; k <= q; k++ {
				p[q][k] = 1 / float64(q+1)
			}
		}
	}
	return p
}
