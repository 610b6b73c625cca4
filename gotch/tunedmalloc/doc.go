// Package tunedmalloc, imported for its side effect, tunes glibc's malloc
// for libtorch's CPU tensors as gotch.TuneMalloc does, but when the
// program is loaded, before the Go runtime starts a thread:
//
//	import _ "github.com/golens/golens/gotch/tunedmalloc"
//
// gotch.TuneMalloc called from main comes too late in a Go program: by
// then the runtime's threads (and any cgo call made on them) may have
// arenas of their own, which the one-arena setting does not take back, so
// tensors made on those threads skip the tuning (measured: a llama-1b
// cache-everything pass faulted 49k pages in with TuneMalloc in main, 28k
// with the heap tuned at load). GOLENS_MALLOC=system still leaves the heap
// alone. golens's CLI imports it. Elsewhere than Linux with glibc and cgo
// it does nothing.
package tunedmalloc
