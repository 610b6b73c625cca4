package gotch

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Intra-op threads
//
// libtorch runs its own kernels (elementwise, softmax, layer norm) on an
// OpenMP team of intra-op threads, but a float matmul runs in the BLAS, and
// OpenBLAS's pthread build (Debian's default, as libtorch-dev recommends it)
// keeps a pool of its own, one thread per CPU. With both pools at full size
// the CPUs are oversubscribed, and both busy-wait for work, so each steals
// the cores the other needs. Measured through gotch on 2 CPUs (AMD EPYC,
// Debian's libtorch 1.13.1, OpenBLAS 0.3.21 pthread), one GPT-2-small
// block's heavy pieces ([1,128,768]x[768,3072] matmul, gelu, layer norm,
// softmax over [1,12,128,128]) took per iteration:
//
//	1 intra-op thread                      37-45 ms
//	2 intra-op threads                    134-174 ms
//	2 threads, OMP_WAIT_POLICY=PASSIVE     53-76 ms
//
// So with OpenBLAS's own pool gotch uses one intra-op thread: the matmul,
// most of the time, still runs on every core in OpenBLAS, and the small
// kernels lose little. OMP_WAIT_POLICY is read when libgomp loads, before
// any Go code runs, so gotch cannot choose it for the process.
//
// Otherwise (the reference BLAS, OpenBLAS's OpenMP or serial builds, MKL)
// there is no second pool and gotch keeps libtorch's own count, which
// honours OMP_NUM_THREADS and counts physical cores. On the same machine
// with the reference BLAS that count is 1 (libtorch's cpuinfo counts the
// 2 vCPUs as one core), and 2 threads did not make the block faster: the
// single-threaded reference matmul is nearly all of its 100-300 ms.
//
// The count is set once, at package initialisation, before any op runs.
// libtorch applies a count per OS thread, when that thread first runs an
// op, so SetNumThreads after ops have run on other OS threads does not
// reach them: set GOLENS_NUM_THREADS instead.

// NumThreadsEnv names the environment variable that overrides the intra-op
// thread count gotch chooses: a whole number >= 1.
const NumThreadsEnv = "GOLENS_NUM_THREADS"

var threadsReason string

func init() {
	blas := loadedBLAS()
	n, why := defaultThreads(os.Getenv(NumThreadsEnv), NumThreads(),
		strings.Contains(BuildInfo(), "USE_OPENMP=ON"), blas)
	if err := SetNumThreads(n); err != nil {
		why += fmt.Sprintf("; setting it failed: %v", err)
	}
	threadsReason = why
}

// DefaultThreadsReason says which intra-op thread count gotch set at
// start-up and why, including why a GOLENS_NUM_THREADS value was ignored.
func DefaultThreadsReason() string { return threadsReason }

// defaultThreads chooses the intra-op thread count from the value of
// GOLENS_NUM_THREADS, libtorch's own default, whether libtorch uses OpenMP
// and the BLAS loaded (see loadedBLAS).
func defaultThreads(env string, torchDefault int, openMP bool, blas string) (int, string) {
	n, why := torchDefault, fmt.Sprintf("%d, libtorch's own default (BLAS: %s)", torchDefault, blas)
	if openMP && strings.HasPrefix(blas, "openblas") && blas != "openblas-serial" {
		n, why = 1, fmt.Sprintf("1, because libtorch's OpenMP threads and the threads of %s would compete for the cores", blas)
	}
	if env = strings.TrimSpace(env); env != "" {
		v, err := strconv.Atoi(env)
		if err == nil && v >= 1 {
			return v, fmt.Sprintf("%d, from %s (else %s)", v, NumThreadsEnv, why)
		}
		why += fmt.Sprintf("; %s=%q ignored: not a whole number >= 1", NumThreadsEnv, env)
	}
	return n, why
}

// loadedBLAS names the BLAS in this process from the libraries mapped:
// "openblas-pthread", "openblas-openmp", "openblas-serial", else the path
// of the libblas mapped, else "other" ("unknown" where /proc/self/maps
// cannot be read). An OpenBLAS outside Debian's flavour folders is taken
// for the pthread build, upstream's default.
func loadedBLAS() string {
	if runtime.GOOS != "linux" {
		return "unknown"
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return "unknown"
	}
	return blasFromMaps(string(maps))
}

func blasFromMaps(maps string) string {
	blas := "other"
	for line := range strings.Lines(maps) {
		fields := strings.Fields(line)
		if len(fields) < 6 {
			continue
		}
		path := fields[len(fields)-1]
		switch {
		case strings.Contains(path, "openblas-openmp"):
			return "openblas-openmp"
		case strings.Contains(path, "openblas-serial"):
			return "openblas-serial"
		case strings.Contains(path, "openblas"):
			return "openblas-pthread"
		case strings.HasPrefix(filepath.Base(path), "libblas"):
			blas = path
		}
	}
	return blas
}
