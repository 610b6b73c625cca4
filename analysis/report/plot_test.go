package report

import (
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestFigures saves every view of the sample as PNG and SVG and checks the
// files decode. GOLENS_REPORT_OUT=dir keeps them there to look at.
func TestFigures(t *testing.T) {
	dir := os.Getenv("GOLENS_REPORT_OUT")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range sampleReport().Sections {
		for _, v := range s.Views {
			n++
			base := filepath.Join(dir, figureName(n, v.title()))
			if err := v.SavePNG(base); err != nil {
				t.Fatal(err)
			}
			checkPNG(t, base)
			if err := v.SaveSVG(base[:len(base)-3] + "svg"); err != nil {
				t.Fatal(err)
			}
			checkSVG(t, base[:len(base)-3]+"svg")
		}
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 300 {
		t.Errorf("%s is only %v", path, b.Size())
	}
}

// checkSVG checks the file is well-formed XML with an <svg> root.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q, want svg", path, root)
	}
}
