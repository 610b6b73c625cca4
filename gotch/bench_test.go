//go:build cgo

package gotch_test

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
)

// BenchmarkOp is the cost of one small op through gotch: the cgo crossing,
// ATen's dispatch and the result's Free. bench/cpp/op_floor.cpp runs the
// same ops straight against ATen; ./build.sh bench puts the two side by side.
func BenchmarkOp(b *testing.B) {
	v := make([]float32, 64)
	for i := range v {
		v[i] = float32(i) / 64
	}
	x := gotch.MustFromSlice(v[:8], []int64{8}, gotch.CPU)
	y := gotch.MustFromSlice(v[8:16], []int64{8}, gotch.CPU)
	m := gotch.MustFromSlice(v, []int64{8, 8}, gotch.CPU)
	defer func() { x.Free(); y.Free(); m.Free() }()

	for _, c := range []benchCase{
		{"add", func() { x.MustAdd(y).Free() }},
		{"matmul", func() { m.MustMatmul(m).Free() }},
		{"softmax", func() { m.MustSoftmax(-1).Free() }},
		{"transpose", func() { m.MustTranspose(0, 1).Free() }},
		{"add_", func() { x.MustAdd_(y) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			benchLoop(b, c.op)
		})
	}
}

// BenchmarkGPT2Block times the heavy CPU pieces of one GPT-2-small block
// (d_model 768, d_mlp 3072, 12 heads, 128 positions), alone and in a row,
// at the process's intra-op thread count. Set it with GOLENS_NUM_THREADS:
// libtorch applies a change per OS thread, so changing it between
// sub-benchmarks would measure a mix.
func BenchmarkGPT2Block(b *testing.B) {
	g := gotch.MustNewGenerator(1)
	defer g.Free()
	randn := func(shape ...int64) *gotch.Tensor { return gotch.MustRandn(shape, g, gotch.Float, gotch.CPU) }
	x, w, h := randn(1, 128, 768), randn(768, 3072), randn(1, 128, 3072)
	lw, lb, s := randn(768), randn(768), randn(1, 12, 128, 128)
	defer func() {
		for _, t := range []*gotch.Tensor{x, w, h, lw, lb, s} {
			t.Free()
		}
	}()

	parts := []benchCase{
		{"matmul", func() { x.MustMatmul(w).Free() }},
		{"gelu", func() { h.MustGelu("tanh").Free() }},
		{"layernorm", func() { x.MustLayerNorm([]int64{768}, lw, lb, 1e-5).Free() }},
		{"softmax", func() { s.MustSoftmax(-1).Free() }},
	}
	block := benchCase{"block", func() {
		for _, p := range parts {
			p.op()
		}
	}}
	for _, c := range append([]benchCase{block}, parts...) {
		b.Run(c.name, func(b *testing.B) {
			benchLoop(b, c.op)
			b.ReportMetric(float64(gotch.NumThreads()), "threads")
		})
	}
}

type benchCase struct {
	name string
	op   func()
}

// benchLoop runs op in b.Loop and reports, beside the wall time, the process's
// CPU time per op (all its threads: Go's GC included), which other programs
// on the same cores disturb much less, and its peak resident memory.
func benchLoop(b *testing.B, op func()) {
	start, _ := procUsage()
	n := 0
	for b.Loop() {
		op()
		n++
	}
	end, peak := procUsage()
	b.ReportMetric(float64(end-start)/float64(n), "cpu-ns/op")
	b.ReportMetric(peak, "peak-MB")
}

// procUsage is the process's CPU time (user and system) and peak resident
// memory in MiB.
func procUsage() (cpu time.Duration, peakMB float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if runtime.GOOS == "darwin" {
		return cpu, float64(ru.Maxrss) / (1 << 20) // bytes there
	}
	return cpu, float64(ru.Maxrss) / (1 << 10) // KiB on Linux
}
