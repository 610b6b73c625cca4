package gotch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOpsInSync checks that the files generated from ops.txt are those
// checked in: it runs the generator into a temporary directory and compares
// them byte for byte.
func TestOpsInSync(t *testing.T) {
	goCmd := sourceGo(t)
	dir := t.TempDir()
	cmd := exec.Command(goCmd, "run", "./internal/opgen", "-o", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/opgen: %v\n%s", err, out)
	}
	var names []string
	for _, pattern := range []string{"*", "csrc/*"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				rel, _ := filepath.Rel(dir, p)
				names = append(names, rel)
			}
		}
	}
	if len(names) < 5 {
		t.Fatalf("the generator wrote %v, want at least the C header, the C++ and three Go files", names)
	}
	for _, name := range names {
		fresh, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		checked, err := os.ReadFile(filepath.FromSlash(name))
		if err != nil || !bytes.Equal(fresh, checked) {
			t.Errorf("gotch/%s is not what ops.txt and internal/opgen generate: run go generate ./gotch", filepath.ToSlash(name))
		}
	}
}

// sourceGo is the go command, for a test that reads or builds this
// package's source; it skips the test where either is missing, as in the
// GPU bundle, whose test binaries run without their source and without Go.
// (gotchtest.SourceGo is the same for other packages' tests.)
func sourceGo(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	if m, _ := filepath.Glob("*.go"); len(m) == 0 {
		t.Skip("the package's source is not here (a test binary run elsewhere, as in the GPU bundle)")
	}
	return goCmd
}
