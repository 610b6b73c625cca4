//go:build cgo

package gotch

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>

// OpenBLAS, when it is the BLAS loaded, has these; other BLAS libraries do
// not, and then nothing is changed.
static int gt_blas_threads(void) {
	int (*get)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
	return get ? get() : -1;
}

static int gt_set_blas_threads(int n) {
	void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
	if (!set) return 0;
	set(n);
	return 1;
}
*/
import "C"

func blasThreads() int { return int(C.gt_blas_threads()) }

func setBLASThreads(n int) bool { return C.gt_set_blas_threads(C.int(n)) == 1 }
