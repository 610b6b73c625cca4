//go:build !linux || !cgo

package gotch

// MallocEnv names the environment variable that, set to "system", keeps
// the C library's default malloc settings (see MallocTuning).
const MallocEnv = "GOLENS_MALLOC"

// MallocTuning says how gotch set up the C heap that libtorch's CPU
// tensors come from: only glibc's is tuned (see malloc_linux.go), and
// without cgo there is none.
func MallocTuning() string {
	if !cgoEnabled {
		return "no C heap: golens was built without cgo"
	}
	return "the C library's defaults (not glibc)"
}
