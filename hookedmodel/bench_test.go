package hookedmodel

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
)

// Benchmarks on a gpt2-small-shaped model with random weights at 1×128
// tokens: a plain forward, the same with a no-op hook on every hook point,
// and with everything cached. bench/run.sh runs them beside the C++ floor
// (bench/cpp/gpt2_forward.cpp) and reports the ratios. Each runs two
// untimed passes first (see benchPasses for what they report).

var gpt2Small = sync.OnceValues(func() (*HookedTransformer, error) {
	c := DefaultConfig()
	c.NLayers, c.DModel, c.DHead, c.NHeads, c.DMLP = 12, 768, 64, 12, 3072
	c.NCtx, c.DVocab, c.ActFn = 1024, 50257, "gelu_new"
	return New(c, WithSeed(0))
})

func benchSetup(b *testing.B) (*HookedTransformer, *gotch.Tensor) {
	m, err := gpt2Small()
	if err != nil {
		b.Fatal(err)
	}
	gen := gotch.MustNewGenerator(1)
	defer gen.Free()
	tok := gotch.MustRandint(0, int64(m.Cfg.DVocab), []int64{1, 128}, gen, m.Device())
	b.Cleanup(tok.Free)
	return m, tok
}

// benchPasses runs pass twice untimed, then in b.Loop, and reports the
// median wall and CPU time of one pass (median-ns/op, cpu-ns/op: a pass
// another program slowed down moves the median less than the mean ns/op),
// the page faults per pass (faults/op) and the peak resident memory.
func benchPasses(b *testing.B, pass func() error) {
	for range 2 { // as the C++ floor: the C heap settles in the first passes
		if err := pass(); err != nil {
			b.Fatal(err)
		}
	}
	var wall, cpu []float64
	var faults int64
	for b.Loop() {
		start, t0 := procUsage(), time.Now()
		if err := pass(); err != nil {
			b.Fatal(err)
		}
		d, end := time.Since(t0), procUsage()
		wall = append(wall, float64(d))
		cpu = append(cpu, float64(end.cpu-start.cpu))
		faults += end.faults - start.faults
	}
	b.ReportMetric(median(wall), "median-ns/op")
	b.ReportMetric(median(cpu), "cpu-ns/op")
	b.ReportMetric(float64(faults)/float64(len(wall)), "faults/op")
	b.ReportMetric(procUsage().peakMB, "peak-MB")
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

type usage struct {
	cpu    time.Duration // user and system, all threads
	faults int64         // minor and major page faults
	peakMB float64       // peak resident memory in MiB
}

func procUsage() usage {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return usage{}
	}
	u := usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), faults: ru.Minflt + ru.Majflt}
	if runtime.GOOS == "darwin" {
		u.peakMB = float64(ru.Maxrss) / (1 << 20) // bytes there
	} else {
		u.peakMB = float64(ru.Maxrss) / (1 << 10) // KiB on Linux
	}
	return u
}

func BenchmarkGPT2Forward(b *testing.B) {
	m, tok := benchSetup(b)
	ctx := context.Background()
	benchPasses(b, func() error {
		out, err := m.Forward(ctx, Tokens(tok))
		out.Free()
		return err
	})
}

func BenchmarkGPT2RunWithHooksNoop(b *testing.B) {
	m, tok := benchSetup(b)
	ctx := context.Background()
	noop := []Hook{FwdHook(Match(func(string) bool { return true }), func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil })}
	benchPasses(b, func() error {
		out, err := m.RunWithHooks(ctx, Tokens(tok), noop)
		out.Free()
		return err
	})
}

func BenchmarkGPT2RunWithCacheAll(b *testing.B) {
	m, tok := benchSetup(b)
	ctx := context.Background()
	benchPasses(b, func() error {
		out, cache, err := m.RunWithCache(ctx, Tokens(tok))
		cache.Free()
		out.Free()
		return err
	})
}
