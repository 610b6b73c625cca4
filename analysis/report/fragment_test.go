package report

import (
	"regexp"
	"strings"
	"testing"
)

// secondReport is a small report unlike the sample, to share a page with it.
func secondReport() *Report {
	pat := [][]float64{{1, 0, 0, 0}, {0.5, 0.5, 0, 0}, {0.2, 0.3, 0.5, 0}, {0.1, 0.2, 0.3, 0.4}}
	return &Report{
		Title: "Second",
		Sections: []Section{{
			Views: []View{
				Histogram{Title: "Scores", XLabel: "score", Series: []HistogramSeries{
					{Name: "induction heads", Values: []float64{0.9, 0.8, 0.85, 0.7}},
					{Name: "all other heads of the model, whose scores stay below the threshold", Values: []float64{0.1, 0.2, 0.05, 0.3, 0.15, 0.1}},
					{Name: "", Values: []float64{0.5}},
				}},
				LineChart{Title: "By layer", XLabel: "layer", YLabel: "heads found", Series: []Series{{Name: "found", Y: []float64{0, 2, 1, 3}}}},
				Attention{Title: "Prompt", Tokens: []string{"<|endoftext|>", "A", " B", "\n"}, Heads: []string{"L1H4", "L1H10"}, Patterns: [][][]float64{pat, pat}},
			},
		}},
	}
}

func fragmentOf(t *testing.T, r *Report) string {
	t.Helper()
	f, err := r.HTMLFragment()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFragment checks a fragment is one self-contained element, fit to put
// in a page beside others: no document tags, no ids, nothing fetched.
func TestFragment(t *testing.T) {
	frag := fragmentOf(t, sampleReport())
	if !strings.HasPrefix(frag, `<div class="golens-report">`) || !strings.HasSuffix(strings.TrimSpace(frag), "</div>") {
		t.Errorf("fragment is not one div: %.60q ... %.20q", frag, frag[len(frag)-20:])
	}
	for _, tag := range []string{"<!DOCTYPE", "<html", "<head", "<body", "<link", "<meta"} {
		if strings.Contains(frag, tag) {
			t.Errorf("fragment has %s", tag)
		}
	}
	if n, m := strings.Count(frag, "<div"), strings.Count(frag, "</div>"); n != m {
		t.Errorf("%d <div and %d </div>", n, m)
	}
	for _, want := range []string{"<style>", `<script type="application/json" class="golens-data">`, "<script>"} {
		if n := strings.Count(frag, want); n != 1 {
			t.Errorf("fragment has %d %s, want 1", n, want)
		}
	}
	// Offline: nothing to fetch. The one URL is the SVG namespace.
	if m := regexp.MustCompile(`\ssrc=|\shref=|https?://[^"]*`).FindAllString(frag, -1); len(m) != 1 || m[0] != "http://www.w3.org/2000/svg" {
		t.Errorf("fragment refers out: %q", m)
	}
	// The page is the fragment in a document.
	if page := render(t, sampleReport()); !strings.Contains(page, frag) {
		t.Error("WriteHTML's page does not hold HTMLFragment's fragment")
	}
	// A view alone is a report of one section of one view.
	v := sampleReport().Sections[2].Views[2]
	one, err := Fragment(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := fragmentOf(t, &Report{Sections: []Section{{Views: []View{v}}}}); one != want {
		t.Error("Fragment(v) differs from the fragment of a report of v")
	}
}

// TestFragmentsShareAPage puts two reports (one twice) in one document and
// checks nothing in them is addressed page-wide: no element ids, and the
// script finds its data and figures only within its own report.
func TestFragmentsShareAPage(t *testing.T) {
	a, b := fragmentOf(t, sampleReport()), fragmentOf(t, secondReport())
	page := a + b + b
	if ids := regexp.MustCompile(`\sid=`).FindAllString(page, -1); len(ids) > 0 {
		t.Errorf("the fragments set %d element ids", len(ids))
	}
	for _, global := range []string{"getElementById", `querySelector("#`, "window.", "globalThis", "document.body"} {
		if strings.Contains(reportJS, global) {
			t.Errorf("report.js uses %s: page-wide state that reports on one page would share", global)
		}
	}
	// Its data and figures are looked up from the report's own div.
	for _, want := range []string{`root.querySelector(":scope > script.golens-data")`, `root.querySelectorAll("figure[data-view]")`} {
		if !strings.Contains(reportJS, want) {
			t.Errorf("report.js does not find its elements as %s", want)
		}
	}
	// Every rule of the style is scoped to a report.
	for _, rule := range regexp.MustCompile(`(?m)^[^/*\s][^{]*\{`).FindAllString(reportCSS, -1) {
		for _, sel := range strings.Split(strings.TrimSuffix(rule, "{"), ",") {
			if !strings.HasPrefix(strings.TrimSpace(sel), ".golens-report") {
				t.Errorf("CSS selector %q is not scoped to .golens-report", sel)
			}
		}
	}
}

// TestBrowserFragments loads two reports, one of them twice, on one page in
// headless Chromium and checks each drew its own views, and only those. The
// last copy's script runs out of place, as where a notebook evaluates
// scripts apart from their HTML.
func TestBrowserFragments(t *testing.T) {
	a, b := fragmentOf(t, sampleReport()), fragmentOf(t, secondReport())
	script := "<script>" + reportJS + "</script>"
	if !strings.Contains(b, script) {
		t.Fatal("no script in the fragment")
	}
	page := `<!DOCTYPE html><html lang="en" data-errors=""><head><meta charset="utf-8"><script>` + errorsJS +
		`</script></head><body>` + a + b + strings.Replace(b, script, "", 1) + script + `</body></html>`
	dom := browse(t, "fragments", page)
	roots := reportRoots(dom)
	if len(roots) != 3 {
		t.Fatalf("%d reports on the page, want 3", len(roots))
	}
	// A bar per non-empty bin of each series.
	bars := func(v View) int {
		h, err := v.(Histogram).binned()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range h.counts {
			for _, x := range c {
				if x > 0 {
					n++
				}
			}
		}
		return n
	}
	sampleBins, secondBins := bars(sampleReport().Sections[2].Views[2]), bars(secondReport().Sections[0].Views[0])
	for i, c := range []struct{ panels, matrices, charts, lines, legend, bins int }{
		{12, 3, 3, 2, 4, sampleBins},
		{2, 1, 2, 1, 3, secondBins}, // two named histogram series (the third has no name) and a line
		{2, 1, 2, 1, 3, secondBins},
	} {
		r := roots[i]
		got := [...]int{countClass(r, "head-panel"), countClass(r, "matrix"), countClass(r, "chart"), countClass(r, "line"), countClass(r, "legend-entry"), countClass(r, "bin")}
		if want := [...]int{c.panels, c.matrices, c.charts, c.lines, c.legend, c.bins}; got != want {
			t.Errorf("report %d has [head panels, matrices, charts, lines, legend entries, bins] %v, want %v", i, got, want)
		}
	}
	// The layer axis of the second report's line chart: whole numbers only.
	figs := strings.Split(roots[1], `<figure class="view" data-view="`)
	line := figs[2]
	var ticks []string
	for _, m := range regexp.MustCompile(`class="xtick-h">([^<]*)<`).FindAllStringSubmatch(line, -1) {
		ticks = append(ticks, m[1])
	}
	if strings.Join(ticks, " ") != "0 1 2 3" {
		t.Errorf("layer ticks %q, want 0 1 2 3", ticks)
	}
	if !strings.Contains(line, `class="ytick">3<`) || strings.Contains(line, `class="ytick">0.5<`) {
		t.Error("the count axis of the line chart is not in whole numbers")
	}
}
