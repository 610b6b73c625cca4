package tunedmalloc_test

import (
	"os"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	_ "github.com/golens/golens/gotch/tunedmalloc"
)

// The heap is tuned before the test starts, unless GOLENS_MALLOC=system or
// there is no glibc heap to tune.
func TestTunedAtLoad(t *testing.T) {
	got := gotch.MallocTuning()
	want := "glibc: one arena"
	switch {
	case strings.Contains(got, "not glibc") || strings.Contains(got, "no C heap"):
		t.Skipf("malloc: %s", got)
	case os.Getenv(gotch.MallocEnv) == "system":
		want = gotch.MallocEnv + "=system"
	}
	if !strings.Contains(got, want) {
		t.Errorf("MallocTuning() = %q, want %q", got, want)
	}
}
