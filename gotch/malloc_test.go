package gotch

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestMallocTuning checks that gotch tuned glibc's malloc at start-up
// (malloc_linux.go) unless GOLENS_MALLOC=system, and logs what it did
// (bench/run.sh reads the line).
func TestMallocTuning(t *testing.T) {
	got := MallocTuning()
	t.Logf("malloc: %s", got)
	if !cgoEnabled || runtime.GOOS != "linux" || strings.Contains(got, "not glibc") {
		return
	}
	if os.Getenv(MallocEnv) == "system" {
		if !strings.Contains(got, MallocEnv+"=system") {
			t.Errorf("with %s=system, MallocTuning() = %q", MallocEnv, got)
		}
		return
	}
	if !strings.HasPrefix(got, "glibc: one arena") {
		t.Errorf("MallocTuning() = %q, want glibc tuned", got)
	}
}
