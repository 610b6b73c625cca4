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

// BLASThreads is the number of threads OpenBLAS runs a matmul on, or -1
// when the BLAS loaded is not OpenBLAS.
func BLASThreads() int { return int(C.gt_blas_threads()) }

// SetBLASThreads sets OpenBLAS's thread count for the whole process and
// reports whether it could (false: the BLAS is not OpenBLAS). Small
// matmuls run faster on one thread than split across two (see
// hookedmodel/train's BLASThreads). Wait for running ops to finish first.
func SetBLASThreads(n int) bool {
	if n < 1 {
		return false
	}
	return C.gt_set_blas_threads(C.int(n)) == 1
}
