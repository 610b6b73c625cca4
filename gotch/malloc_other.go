//go:build !linux || !cgo

package gotch

// TuneMalloc tunes glibc's malloc for libtorch (see malloc_linux.go); other
// C libraries are left alone, and without cgo there is no C heap.
func TuneMalloc() error { return nil }

// MallocTuning says how the C heap that libtorch's CPU tensors come from
// is set up: only glibc's is tuned, and without cgo there is none.
func MallocTuning() string {
	if !cgoEnabled {
		return "no C heap: golens was built without cgo"
	}
	return "the C library's defaults (not glibc)"
}

// TrimHeap does nothing here: only a tuned glibc heap keeps freed memory.
func TrimHeap() {}
