package bench

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Status is a row's correctness verdict.
type Status string

const (
	OK    Status = "OK"    // the check passed; the row is timed
	Error Status = "ERROR" // the workload failed; Row.Error says how
	Wrong Status = "WRONG" // numbers differ from the reference beyond tolerance
)

// Row is one result: a workload on a shape, batch and sequence length,
// dtype and device, by one implementation. Its JSON is HARNESS.md's row
// format, shared with the peers; pointers are null where a value is
// unknown (a failed row is not timed).
type Row struct {
	Impl      string   `json:"impl"`
	Workload  string   `json:"workload"`
	Shape     string   `json:"shape"`
	Batch     int      `json:"batch"`
	Seq       int      `json:"seq"`
	DType     string   `json:"dtype"`
	Device    string   `json:"device"`
	Status    Status   `json:"status"`
	Error     string   `json:"error"`
	MaxRelErr *float64 `json:"max_rel_err"`

	MedianMS       *float64 `json:"median_ms"`
	MinMS          *float64 `json:"min_ms"`
	Reps           int      `json:"reps"`
	Warmup         int      `json:"warmup"`
	Throughput     *float64 `json:"throughput"`
	ThroughputUnit string   `json:"throughput_unit"`
	FLOPs          float64  `json:"flops"`
	TFLOPs         *float64 `json:"tflops"`
	PeakMemMB      *float64 `json:"peak_mem_mb"`

	Torch   string `json:"torch"`
	Threads int    `json:"threads"`
	Machine string `json:"machine"`
	GPU     string `json:"gpu"`
	Time    string `json:"time"`
	Note    string `json:"note,omitempty"`
}

func ptr(v float64) *float64 { return &v }

// machine names the CPU as HARNESS.md asks: its model name and count.
func machine() string {
	name := runtime.GOARCH
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				name = strings.TrimSpace(v)
				break
			}
		}
	}
	return name + " x" + strconv.Itoa(runtime.NumCPU())
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// resetPeakRSS starts the resident-memory high-water mark again from the
// current size (Linux's clear_refs); false where that is not possible, and
// peakRSSMB then reports the process's peak so far.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSSMB is the resident-memory high-water mark in MiB: VmHWM, or the
// process's maximum from getrusage where /proc is missing.
func peakRSSMB() float64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return float64(ru.Maxrss) / (1 << 20) // bytes there
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}
