package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/golens/golens/hookedmodel/safefile"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
)

// Report is a titled page of sections.
type Report struct {
	Title    string
	Sections []Section
}

// Section is a heading, text and views. Text is plain text, escaped on
// output; a blank line starts a new paragraph.
type Section struct {
	Title string
	Text  string
	Views []View
}

var (
	//go:embed assets/page.html
	pageHTML string
	//go:embed assets/fragment.html
	fragmentHTML string
	//go:embed assets/errors.js
	errorsJS string
	//go:embed assets/report.js
	reportJS string
	//go:embed assets/report.css
	reportCSS string

	page     = template.Must(template.New("page").Parse(pageHTML))
	fragment = template.Must(template.New("fragment").Parse(fragmentHTML))
)

// pageData is what a fragment's JSON holds: views[i] is drawn into the
// figure with data-view="i" of the same fragment.
type pageData struct {
	Views []viewSpec `json:"views"`
}

type pageSection struct {
	Title      string
	Paragraphs []string
	Views      []pageView
}

type pageView struct {
	Index int
	Title string
}

// WriteHTML writes the report as one self-contained HTML page that works
// offline: its [Report.HTMLFragment] as the body of a document. It checks
// every view first and writes nothing when one is malformed.
func (r *Report) WriteHTML(w io.Writer) error {
	frag, err := r.HTMLFragment()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	err = page.Execute(&buf, map[string]any{
		"Title":    r.Title,
		"ErrorsJS": template.JS(errorsJS),
		"Report":   template.HTML(frag),
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// HTMLFragment returns the report as a piece of HTML to place in a page or
// show in a notebook: one <div class="golens-report"> that holds its own
// styles, data and script, so it works offline. Fragments share a page
// without clashing, the same one included twice too: they set no element
// ids and no global names, and each is drawn from the data inside its own
// div.
func (r *Report) HTMLFragment() (string, error) {
	if r == nil {
		return "", errors.New("report: nil report")
	}
	var data pageData
	sections := make([]pageSection, len(r.Sections))
	for i, s := range r.Sections {
		sections[i] = pageSection{Title: s.Title, Paragraphs: paragraphs(s.Text)}
		for j, v := range s.Views {
			if isNil(v) {
				return "", fmt.Errorf("report: section %d, view %d: nil view", i, j)
			}
			spec, err := v.spec()
			if err != nil {
				return "", fmt.Errorf("report: section %d, view %d: %w", i, j, err)
			}
			sections[i].Views = append(sections[i].Views, pageView{Index: len(data.Views), Title: v.title()})
			data.Views = append(data.Views, spec)
		}
	}
	// encoding/json escapes <, > and &, so no string can close the script
	// element that holds the data.
	js, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	var buf strings.Builder
	err = fragment.Execute(&buf, map[string]any{
		"Title":    r.Title,
		"Sections": sections,
		"Data":     template.JS(js),
		"JS":       template.JS(reportJS),
		"CSS":      template.CSS(reportCSS),
	})
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return buf.String(), nil
}

// Fragment returns one view as an HTML fragment, as [Report.HTMLFragment]
// does for a report: for a notebook cell, e.g. gonb's
// gonbui.DisplayHTML(fragment).
func Fragment(v View) (string, error) {
	r := Report{Sections: []Section{{Views: []View{v}}}}
	return r.HTMLFragment()
}

// isNil reports whether v is nil or a nil pointer (*Heatmap implements View
// too).
func isNil(v View) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// Save writes the report into dir (created if missing) as index.html, and
// every view as a PNG figure named after its position and title, e.g.
// fig02-logit-attribution.png.
func (r *Report) Save(dir string) error {
	if r == nil {
		return errors.New("report: nil report")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var page bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		return err
	}
	err := safefile.Write(filepath.Join(dir, "index.html"), 0o644, func(w io.Writer) error {
		_, err := w.Write(page.Bytes())
		return err
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	n := 0
	for _, s := range r.Sections {
		for _, v := range s.Views {
			n++
			if err := v.SavePNG(filepath.Join(dir, figureName(n, v.title()))); err != nil {
				return err
			}
		}
	}
	return nil
}

func paragraphs(text string) []string {
	var ps []string
	for p := range strings.SplitSeq(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			ps = append(ps, p)
		}
	}
	return ps
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

func figureName(n int, title string) string {
	slug := strings.Trim(nonWord.ReplaceAllString(strings.ToLower(title), "-"), "-")
	if len(slug) > 40 {
		slug = strings.TrimRight(slug[:40], "-")
	}
	if slug == "" {
		return fmt.Sprintf("fig%02d.png", n)
	}
	return fmt.Sprintf("fig%02d-%s.png", n, slug)
}
