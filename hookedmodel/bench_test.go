package hookedmodel

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
)

// Benchmarks on a gpt2-small-shaped model with random weights at 1×128
// tokens: a plain forward, the same with a no-op hook on every hook point,
// and with everything cached. bench/run.sh runs them beside the C++ floor
// (bench/cpp/gpt2_forward.cpp) and reports the ratios. Each runs one
// untimed pass first, and reports beside the wall time the process's CPU
// time per pass (cpu-ns/op; other programs on the same cores disturb it
// less), the page faults per pass (faults/op) and the peak resident memory
// (peak-MB).

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

// benchPasses runs pass once untimed, then in b.Loop, and reports the CPU
// time and page faults per pass and the peak resident memory.
func benchPasses(b *testing.B, pass func() error) {
	if err := pass(); err != nil {
		b.Fatal(err)
	}
	var start usage
	n := 0
	for b.Loop() {
		if n == 0 {
			start = procUsage()
		}
		if err := pass(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	end := procUsage()
	b.ReportMetric(float64(end.cpu-start.cpu)/float64(n), "cpu-ns/op")
	b.ReportMetric(float64(end.faults-start.faults)/float64(n), "faults/op")
	b.ReportMetric(end.peakMB, "peak-MB")
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
