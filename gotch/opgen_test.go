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
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to run the generator:", err)
	}
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
