// Package report draws the pictures of an analysis: attention patterns,
// heatmaps, line and bar charts, histograms.
//
// A [Report] is plain Go data (a title and sections of text and views) and
// knows nothing of models or tensors. [Report.WriteHTML] writes it as one
// self-contained HTML page that works offline: the data is embedded as JSON
// and drawn by a few hundred lines of the package's own JavaScript, with
// values on hover and a head selector for attention patterns.
// [Report.HTMLFragment] and [Fragment] (for one view) give the same as a
// piece of HTML for a notebook cell or a page of your own; several can share
// a page. Every view can also be saved as a static PNG or SVG figure (drawn
// with gonum.org/v1/plot) for papers and terminals; [Report.Save] writes the
// page and one PNG per view into a folder.
//
// The page and the figures show the same ticks, whole numbers only on an
// axis of whole numbers (layers, positions, counts), the same token labels
// (" the" as "·the", a line break as \n), and legends beside the plot that
// show every name whole.
//
//	r := report.Report{Title: "Induction heads"}
//	r.Sections = append(r.Sections, report.Section{
//		Title: "Layer 1",
//		Text:  "Heads 1.4 and 1.10 attend to the token after the earlier copy.",
//		Views: []report.View{report.Attention{Tokens: toks, Heads: names, Patterns: pats}},
//	})
//	err := r.Save("out")
//
// Values are stored in the page at float32 precision; NaN and infinities
// become JSON null and show as grey cells.
package report
