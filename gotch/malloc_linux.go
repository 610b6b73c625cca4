//go:build linux && cgo

package gotch

// The C heap on Linux with glibc
//
// libtorch takes CPU tensor memory from malloc. Called from C++'s main
// thread (PyTorch, a C++ program), glibc serves it from its main arena,
// whose thresholds adapt so that the memory of one forward pass is reused
// by the next. A Go program calls libtorch from whichever OS thread runs
// the goroutine, and glibc gives each such thread an arena of its own,
// made of 64 MiB heaps that it unmaps or trims as soon as they are empty;
// and a golens pass frees its intermediates together at its end. So every
// pass faulted its memory in again: measured on a 2-vCPU VM with a
// gpt2-small model at 1x128 tokens, 5,000-7,500 page faults per forward
// pass, at about 13 µs each there (0 per pass for the same forward in C++),
// which made the forward about 1.5x slower than in C++.
//
// TuneMalloc makes glibc keep one arena for every thread, serve blocks up
// to 256 MiB from it (a 1x128 pass's logits of a 128k vocabulary are 65
// MiB: mapped and faulted in anew each pass at glibc's own upper bound of
// 32 MiB), and give memory back to the system only when over 512 MiB lie
// free at the top of the heap, keeping 512 MiB there when it does (else a
// cache of everything, freed at once after its pass, left more than that
// free and was faulted in again the next: llama-1b's 451 MB cache_all
// pass faulted 62-72k pages against 28k so; its peak resident memory fell
// 0.35 GB and its time 1-3%; bench/RESULTS.md). The cost is that freed
// memory stays with the process (up to that much) for the next pass, as
// with a caching allocator, that threads share one arena lock (small
// blocks come from per-thread caches without it), and that a freed
// model's weights leave holes in the heap: TrimHeap, which
// HookedTransformer.Free calls, gives them back. Because that is a choice
// for the whole process, importing gotch changes nothing: the program opts in (golens's CLI does)
// by importing package gotch/tunedmalloc or by GOLENS_MALLOC=tuned, which
// tune before the Go runtime starts any thread, or by calling TuneMalloc,
// which from main may come too late for some threads (see TuneMalloc).

/*
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

// 0 untouched, 1 tuned, -1 left by GOLENS_MALLOC=system, -2 mallopt failed, -3 not glibc
static int gt_malloc_state;

static int gt_tune_malloc(void) {
#ifdef __GLIBC__
	const char *v = getenv("GOLENS_MALLOC");
	if (v != NULL && strcmp(v, "system") == 0) {
		gt_malloc_state = -1;
	} else if (gt_malloc_state != 1) {
		int ok = mallopt(M_ARENA_MAX, 1);
		ok &= mallopt(M_MMAP_THRESHOLD, 256 << 20);
		ok &= mallopt(M_TRIM_THRESHOLD, 512 << 20);
		ok &= mallopt(M_TOP_PAD, 512 << 20);
		gt_malloc_state = ok ? 1 : -2;
	}
#else
	gt_malloc_state = -3;
#endif
	return gt_malloc_state;
}

// With GOLENS_MALLOC=tuned, tune when the program starts, before the Go
// runtime creates threads, so no thread has an arena of its own yet.
__attribute__((constructor)) static void gt_tune_malloc_at_start(void) {
	const char *v = getenv("GOLENS_MALLOC");
	if (v != NULL && strcmp(v, "tuned") == 0) gt_tune_malloc();
}

// gt_tune_malloc_at_load is package tunedmalloc's constructor's way in.
void gt_tune_malloc_at_load(void) { gt_tune_malloc(); }

static int gt_malloc_tuned(void) { return gt_malloc_state; }

static void gt_trim_heap(void) {
#ifdef __GLIBC__
	if (gt_malloc_state == 1) malloc_trim(0);
#endif
}
*/
import "C"

// TuneMalloc sets glibc's malloc up for libtorch's CPU tensors as the
// comment above explains, for the whole process. Called from main it may
// come after some of the Go runtime's threads have arenas of their own,
// which keep serving the tensors made on them: import package
// gotch/tunedmalloc to tune when the program is loaded instead. It does
// nothing with GOLENS_MALLOC=system, and its error says when mallopt
// refused.
func TuneMalloc() error {
	if C.gt_tune_malloc() == -2 {
		return &Error{Op: "TuneMalloc", Msg: "glibc's mallopt refused the settings"}
	}
	return nil
}

// MallocTuning says how the C heap that libtorch's CPU tensors come from
// is set up.
func MallocTuning() string {
	switch C.gt_malloc_tuned() {
	case 0:
		return "glibc defaults (not tuned: see TuneMalloc)"
	case 1:
		return "glibc: one arena, blocks up to 256 MiB from the heap, trim above 512 MiB free, keeping 512 MiB"
	case -1:
		return "glibc defaults (" + MallocEnv + "=system)"
	case -2:
		return "glibc defaults (mallopt failed)"
	}
	return "the C library's defaults (not glibc)"
}

// TrimHeap gives the free memory of a tuned C heap back to the system, the
// holes inside it too: after freeing a model whose weights came from it.
// Without TuneMalloc it does nothing (glibc's own thresholds trim).
func TrimHeap() { C.gt_trim_heap() }
