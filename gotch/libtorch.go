package gotch

// The libtorch linked in, and its process-wide settings. The calls cross
// into the shim in cgo.go; without cgo (nocgo.go) the strings are empty,
// the counts 0, and what returns an error returns one wrapping ErrNoCgo.

// ABIVersion is the shim ABI this package was written for: csrc's
// GT_ABI_VERSION, which cgo.go checks at compile time and against the
// shim it links at start-up.
const ABIVersion = 3

// TorchVersion is the libtorch version the shim was compiled against; ""
// without cgo.
func TorchVersion() string { return torchVersion() }

// BuildInfo describes the libtorch build (BLAS, OpenMP, CUDA); "" without
// cgo.
func BuildInfo() string { return buildInfo() }

// HasFusedAttention reports whether ScaledDotProductAttention has a fused
// kernel in this torch (2.0 and later); before, it computes the same result
// through the math path.
func HasFusedAttention() bool { return hasFusedAttention() }

// LiveHandles is the number of tensor and generator handles alive in the
// shim; see gotchtest for the leak check built on it. It is 0 without cgo.
func LiveHandles() int64 { return liveHandles() }

// SetNumThreads sets libtorch's number of intra-op threads. libtorch keeps
// the count per OS thread; the shim applies it to each OS thread before
// that thread's next op, so it holds whichever thread Go runs a call on
// (gotch sets it at init, from GOLENS_NUM_THREADS or its platform default).
func SetNumThreads(n int) error { return setNumThreads(n) }

// NumThreads is libtorch's number of intra-op threads; 0 without cgo.
func NumThreads() int { return numThreads() }

// ManualSeed seeds libtorch's global generators (CPU and every CUDA device).
func ManualSeed(seed uint64) error { return manualSeed(seed) }

// MallocEnv names the environment variable that sets up the C heap at
// start-up: "tuned" tunes it as TuneMalloc does, before any thread starts;
// "system" keeps the C library's defaults even when TuneMalloc is called.
const MallocEnv = "GOLENS_MALLOC"
