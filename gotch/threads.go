package gotch

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Intra-op threads
//
// libtorch runs its own kernels (elementwise, softmax, layer norm) on an
// OpenMP team of intra-op threads, but a float matmul runs in the BLAS, and
// OpenBLAS (what Debian's libtorch-dev recommends) runs it on threads of its
// own, one per CPU. With both at full size the CPUs are oversubscribed and
// each side's threads spin while waiting, taking the cores the other needs.
// Measured through gotch (bench/run.sh) on 2 vCPUs (AMD EPYC, Debian's
// libtorch 1.13.1), one GPT-2-small block's heavy pieces in a row
// ([1,128,768]x[768,3072] matmul, gelu, layer norm, softmax over
// [1,12,128,128]), median ms per iteration:
//
//	BLAS                      1 thread   2 threads   2, OMP_WAIT_POLICY=PASSIVE
//	OpenBLAS 0.3.21 pthread     10.2       28.2        14.7
//	OpenBLAS 0.3.21 openmp      12.0       33.1        10.2
//	reference BLAS 3.11        113.3      117.1       113.5
//
// So with a threaded OpenBLAS gotch uses one intra-op thread: the matmul,
// most of the time, still runs on every CPU in OpenBLAS, and the small
// kernels lose little (gelu on [1,128,3072]: 1.3 ms on 1 thread, 0.75 ms on
// 2 when the machine is otherwise idle). OMP_WAIT_POLICY is read when
// libgomp loads, before any Go code runs, so gotch cannot set it.
//
// Otherwise (reference or serial BLAS, MKL, no OpenMP) gotch keeps
// libtorch's own count, which honours OMP_NUM_THREADS and counts physical
// cores. On the machine above it is 1 (libtorch's cpuinfo sees the 2 vCPUs
// as one core), and with the reference BLAS 2 threads changed the block by
// under 4% either way (its single-threaded matmul is 90% of the time),
// though gelu alone ran 1.6x faster on an otherwise idle machine.
//
// Because the count is a choice for the whole process, importing gotch
// changes nothing: a program opts in with UseRecommendedThreads (golens's
// CLI does), or sets a count with SetNumThreads or GOLENS_NUM_THREADS (read
// once, at package initialisation; "auto" means the recommended count).
// Without either, each OS thread runs libtorch's own default. libtorch
// keeps the count per OS thread, so once a count is set the shim gives
// each OS thread the count last set before that thread's next op
// (csrc/shim.h, sync_threads).

// NumThreadsEnv names the environment variable that sets the intra-op
// thread count at start-up: a whole number from 1 to maxThreads, or "auto"
// for the recommended count.
const NumThreadsEnv = "GOLENS_NUM_THREADS"

// maxThreads bounds GOLENS_NUM_THREADS: a typo such as 80000 must not make
// libtorch start that many threads.
const maxThreads = 1024

// recommended is the count RecommendedThreads reports, chosen once.
var recommended = sync.OnceValues(func() (int, string) {
	return recommendThreads(os.Getenv(NumThreadsEnv), NumThreads(),
		strings.Contains(BuildInfo(), "USE_OPENMP=ON"), loadedBLAS())
})

func init() {
	if os.Getenv(NumThreadsEnv) != "" {
		// A failure shows again on the first SetNumThreads or op.
		_, _ = UseRecommendedThreads()
	}
}

// RecommendedThreads is the intra-op thread count gotch recommends for
// this machine and libtorch, or the one GOLENS_NUM_THREADS names, and why
// (including why a GOLENS_NUM_THREADS value was ignored). A goroutine
// locked to its OS thread can give that thread the count with
// SetNumThreads, so that every op of a long computation runs with the same
// count (and sums in the same order) whichever thread Go would otherwise
// have moved it to.
func RecommendedThreads() (n int, why string) { return recommended() }

// UseRecommendedThreads sets the intra-op thread count to
// RecommendedThreads' and returns the reason for it.
func UseRecommendedThreads() (string, error) {
	n, why := RecommendedThreads()
	return why, SetNumThreads(n)
}

// recommendThreads chooses the intra-op thread count from the value of
// GOLENS_NUM_THREADS, libtorch's own default, whether libtorch uses OpenMP
// and the BLAS loaded (see loadedBLAS).
func recommendThreads(env string, torchDefault int, openMP bool, blas string) (int, string) {
	n, why := torchDefault, fmt.Sprintf("%d, libtorch's own default (BLAS: %s)", torchDefault, blas)
	if openMP && strings.HasPrefix(blas, "openblas") && blas != "openblas-serial" {
		n, why = 1, fmt.Sprintf("1, because libtorch's OpenMP threads and the threads of %s would compete for the cores", blas)
	}
	if env = strings.TrimSpace(env); env != "" && env != "auto" {
		v, err := strconv.Atoi(env)
		if err == nil && v >= 1 && v <= maxThreads {
			return v, fmt.Sprintf("%d, from %s (else %s)", v, NumThreadsEnv, why)
		}
		why += fmt.Sprintf("; %s=%q ignored: not a whole number from 1 to %d", NumThreadsEnv, env, maxThreads)
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
