//go:build cgo

package gotch

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildsWithoutCgo checks that every package of the module builds
// with CGO_ENABLED=0 and that the tests for that build pass: gotch's
// (nocgo_test.go: the entry points fail with ErrNoCgo) and hookedmodel's
// for Load and New. cmd/golens checks its own binary (TestNoCgoBinary).
func TestBuildsWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module without cgo; skipped with -short")
	}
	goCmd := sourceGo(t)
	for _, args := range [][]string{
		{"build", "./..."},
		{"vet", "./gotch/"},
		{"test", "./gotch/"},
		{"test", "-run", "NoCgo", "./hookedmodel/"},
	} {
		cmd := exec.Command(goCmd, args...)
		cmd.Dir = ".." // the module's root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("CGO_ENABLED=0 go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
