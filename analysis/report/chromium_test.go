package report

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// headless runs Chromium headless on a page with extra flags and returns its
// stdout.
func headless(t *testing.T, bin, page string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+page)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(flags, " "), err, stderr.String())
	}
	return stdout.String()
}

// checkLayout runs after the reports' scripts: it records in <body
// data-overflow> every text drawn outside its SVG (a cut tick label, axis
// title or legend) and every legend entry wider than its box.
const checkLayout = `<script>
(function () {
  const bad = [], out = (r, b) => r.left < b.left - 1 || r.right > b.right + 1 || r.top < b.top - 1 || r.bottom > b.bottom + 1;
  for (const s of document.querySelectorAll(".golens-report svg")) {
    const box = s.getBoundingClientRect();
    for (const t of s.querySelectorAll("text")) {
      if (out(t.getBoundingClientRect(), box)) bad.push(JSON.stringify(t.textContent));
    }
  }
  for (const e of document.querySelectorAll(".golens-report .legend-entry")) {
    if (e.scrollWidth > e.clientWidth + 1) bad.push("legend " + JSON.stringify(e.textContent));
  }
  document.body.dataset.overflow = bad.join(" | ");
})();
</script>
`

// browse writes page into dir, loads it in headless Chromium and returns
// the DOM the scripts leave, after checking that no script failed, that
// every report was drawn, that no text is cut and that no element id was
// set; GOLENS_REPORT_OUT=dir keeps the page and a screenshot there.
func browse(t *testing.T, name, page string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; ./build.sh test does so as root)")
	}
	dir := os.Getenv("GOLENS_REPORT_OUT")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".html")
	page = strings.Replace(page, "</body>", checkLayout+"</body>", 1)
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := headless(t, bin, path, "--dump-dom", "--window-size=1200,2400")
	root := regexp.MustCompile(`<html[^>]*>`).FindString(dom)
	if m := regexp.MustCompile(`data-errors="([^"]*)"`).FindStringSubmatch(root); m == nil || m[1] != "" {
		t.Errorf("script errors: %s", root)
	}
	for i, r := range reportRoots(dom) {
		div := regexp.MustCompile(`^<div[^>]*>`).FindString(r)
		if !strings.Contains(div, `data-ready="1"`) || strings.Contains(div, "data-errors") {
			t.Errorf("report %d was not drawn cleanly: %s", i, div)
		}
	}
	if m := regexp.MustCompile(`<body[^>]*data-overflow="([^"]*)"`).FindStringSubmatch(dom); m == nil || m[1] != "" {
		t.Errorf("text drawn outside its figure: %v", m)
	}
	if ids := regexp.MustCompile(`\sid="[^"]*"`).FindAllString(dom, -1); len(ids) > 0 {
		t.Errorf("the reports set element ids, which would clash between reports on a page: %q", ids)
	}
	shot := filepath.Join(dir, name+".png")
	headless(t, bin, path, "--screenshot="+shot, "--window-size=1200,2400", "--hide-scrollbars")
	checkPNG(t, shot)
	return dom
}

// reportRoots splits a DOM dump into its reports, each from its opening
// <div class="golens-report"> to the next.
func reportRoots(dom string) []string {
	parts := strings.Split(dom, `<div class="golens-report"`)
	for i := range parts[1:] {
		parts[i+1] = "<div" + parts[i+1]
	}
	return parts[1:]
}

// countClass counts the elements of class class (first of their classes).
func countClass(html, class string) int {
	return len(regexp.MustCompile(`class="`+class+`[ "]`).FindAllString(html, -1))
}

// TestBrowser renders the sample report in headless Chromium and checks, in
// the DOM the page's script leaves, that it drew every view.
func TestBrowser(t *testing.T) {
	dom := browse(t, "index", render(t, sampleReport()))
	if n := len(reportRoots(dom)); n != 1 {
		t.Fatalf("%d reports on the page, want 1", n)
	}
	for _, c := range []struct {
		class string
		want  int
	}{
		{"head-panel", 12}, // one per head
		{"head-panel selected", 1},
		{"matrix", 3}, // the selected head and two heatmaps
		{"colorbar", 3},
		{"chart", 3},
		{"line", 2}, // two series
		{"bar", 8},
		{"legend-entry", 4}, // two lines, two histogram series
	} {
		if n := countClass(dom, c.class); n != c.want {
			t.Errorf("%d elements of class %q, want %d", n, c.class, c.want)
		}
	}
	// The script sets tokens as text: the one that looks like a script
	// element must be escaped text in the DOM, never an element.
	if strings.Contains(dom, "<script>alert") {
		t.Error("a token became markup")
	}
	if !strings.Contains(dom, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the <script> token is not shown as text")
	}
}
