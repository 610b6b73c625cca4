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

// TestBrowser renders the sample report in headless Chromium and checks, in
// the DOM the page's script leaves, that the script ran to the end without an
// error and drew every view. GOLENS_REPORT_OUT=dir keeps the page and a
// screenshot there to look at.
func TestBrowser(t *testing.T) {
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
	page := filepath.Join(dir, "index.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := sampleReport().WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	dom := headless(t, bin, page, "--dump-dom")
	root := regexp.MustCompile(`<html[^>]*>`).FindString(dom)
	if !strings.Contains(root, `data-ready="1"`) {
		t.Errorf("the page's script did not finish: %s", root)
	}
	if m := regexp.MustCompile(`data-errors="([^"]*)"`).FindStringSubmatch(root); m == nil || m[1] != "" {
		t.Errorf("script errors: %s", root)
	}
	for _, c := range []struct {
		class string
		want  int
	}{
		{"head-panel", 12}, // one per head
		{"head-panel selected", 1},
		{"matrix", 3}, // the selected head and two heatmaps
		{"colorbar", 3},
		{"chart", 2},
		{"line", 4}, // two series and their legend keys
		{"bar", 8},
	} {
		n := len(regexp.MustCompile(`class="`+c.class+`[ "]`).FindAllString(dom, -1))
		if n != c.want {
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

	shot := filepath.Join(dir, "screenshot.png")
	headless(t, bin, page, "--screenshot="+shot, "--window-size=1200,2400", "--hide-scrollbars")
	checkPNG(t, shot)
}
