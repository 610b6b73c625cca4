//go:build !linux

package gotch

// MallocEnv names the environment variable that, set to "system", keeps
// the C library's default malloc settings (see MallocTuning).
const MallocEnv = "GOLENS_MALLOC"

// MallocTuning says how gotch set up the C heap that libtorch's CPU
// tensors come from: only glibc's is tuned (see malloc_linux.go).
func MallocTuning() string { return "the C library's defaults (not glibc)" }
