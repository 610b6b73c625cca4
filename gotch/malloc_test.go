package gotch

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestMallocTuning checks that the C heap is left alone until the program
// asks (importing gotch changes nothing process-wide), that GOLENS_MALLOC
// asks at start-up, and that TuneMalloc tunes it unless
// GOLENS_MALLOC=system. It logs the final state (bench/run.sh reads the
// line).
func TestMallocTuning(t *testing.T) {
	if !cgoEnabled || runtime.GOOS != "linux" || strings.Contains(MallocTuning(), "not glibc") {
		t.Skipf("malloc: %s", MallocTuning())
	}
	if os.Getenv("GOTCH_MALLOC_CHILD") == "" {
		for env, want := range map[string]string{
			"":       "not tuned",
			"tuned":  "glibc: one arena",
			"system": "not tuned",
		} {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMallocTuning$", "-test.v")
			cmd.Env = append(os.Environ(), "GOTCH_MALLOC_CHILD=1", MallocEnv+"="+env)
			out, err := cmd.CombinedOutput()
			_, atStart, _ := strings.Cut(string(out), "at start: ")
			atStart, _, _ = strings.Cut(atStart, "\n")
			if err != nil || !strings.Contains(atStart, want) {
				t.Errorf("%s=%q: want the heap %q at start; the child said (%v):\n%s", MallocEnv, env, want, err, out)
			}
		}
	}
	t.Logf("at start: %s", MallocTuning())
	if err := TuneMalloc(); err != nil {
		t.Fatal(err)
	}
	got := MallocTuning()
	t.Logf("malloc: %s", got)
	want := "glibc: one arena"
	if os.Getenv(MallocEnv) == "system" {
		want = MallocEnv + "=system"
	}
	if !strings.Contains(got, want) {
		t.Errorf("after TuneMalloc with %s=%q, MallocTuning() = %q, want %q", MallocEnv, os.Getenv(MallocEnv), got, want)
	}
}
