package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestNoCgoBinary builds golens with CGO_ENABLED=0 and checks that a
// command needing libtorch prints gotch.ErrNoCgo's line, which says how to
// get a build that works, and exits 1, while help still works.
func TestNoCgoBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds golens without cgo; skipped with -short")
	}
	goCmd := gotchtest.SourceGo(t)
	bin := filepath.Join(t.TempDir(), "golens")
	build := exec.Command(goCmd, "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "help").CombinedOutput(); err != nil {
		t.Errorf("golens help without cgo: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"version"}, {"run", "--model", "gpt2", "--prompt", "hello"}} {
		cmd := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("golens %v without cgo: %v, want exit status 1", args, err)
		}
		if want := gotch.ErrNoCgo.Error() + "\n"; stderr.String() != want || stdout.Len() != 0 {
			t.Errorf("golens %v without cgo printed\n%q on stdout and\n%q on stderr, want only\n%q on stderr", args, stdout.String(), stderr.String(), want)
		}
	}
}
