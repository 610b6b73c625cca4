package floor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golens/golens/bench"
	"github.com/golens/golens/bench/floor"
	"github.com/golens/golens/cuda"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// openLib loads the floor, or skips when it is not built, unless
// GOLENS_REQUIRE_FLOOR is set (./build.sh test sets it, so CI cannot pass
// by skipping).
func openLib(tb testing.TB) *floor.Lib {
	tb.Helper()
	lib, err := floor.Open("")
	if errors.Is(err, floor.ErrNotBuilt) && os.Getenv("GOLENS_REQUIRE_FLOOR") == "" {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return lib
}

func newModel(tb testing.TB, cfg hookedmodel.Config) *hookedmodel.HookedTransformer {
	tb.Helper()
	m, err := hookedmodel.New(cfg, hookedmodel.WithSeed(3), hookedmodel.OnDevice(gotchtest.Device(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Free)
	return m
}

func randomTokens(tb testing.TB, m *hookedmodel.HookedTransformer, batch, seq int64) *gotch.Tensor {
	tb.Helper()
	gen := gotch.MustNewGenerator(1)
	defer gen.Free()
	tok := gotch.MustRandint(0, int64(m.Cfg.DVocab), []int64{batch, seq}, gen, m.Device())
	tb.Cleanup(tok.Free)
	return tok
}

// shapeConfig is the config of one of bench's shapes, edited.
func shapeConfig(tb testing.TB, name string, edit func(*hookedmodel.Config)) hookedmodel.Config {
	tb.Helper()
	s, err := bench.ShapeByName(name)
	if err != nil {
		tb.Fatal(err)
	}
	c := s.Config
	if edit != nil {
		edit(&c)
	}
	return c
}

// The floor is the same forward as golens's: same logits on the same
// weights, for both architectures it covers.
func TestFloorIsGolensForward(t *testing.T) {
	gotchtest.CheckLeaks(t)
	lib := openLib(t)
	for _, tc := range []struct {
		name string
		cfg  hookedmodel.Config
	}{
		{"toy", shapeConfig(t, "toy", nil)},
		{"attn-only shortformer", shapeConfig(t, "attn-only-2l", func(c *hookedmodel.Config) {
			c.DModel, c.NHeads, c.DHead, c.DVocab, c.NCtx = 64, 4, 16, 500, 64
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel(t, tc.cfg)
			f, err := lib.NewModel(m)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Free()
			tok := randomTokens(t, m, 2, 7)
			out, err := m.Forward(context.Background(), hookedmodel.Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			want := out.Logits
			got := gotch.MustZeros(want.Shape(), want.DType(), want.Device())
			defer got.Free()
			if err := f.LogitsInto(tok, got); err != nil {
				t.Fatal(err)
			}
			gotchtest.Close(t, "logits", gotchtest.Values(t, got), gotchtest.Values(t, want), 1e-5)
			if err := f.Forward(tok); err != nil { // and the timed path runs
				t.Fatal(err)
			}
		})
	}
}

func TestFloorErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	lib := openLib(t)
	cases := []struct {
		name, want string
		edit       func(*hookedmodel.Config)
	}{
		{"LNPre", `normalization_type "LNPre"`, func(c *hookedmodel.Config) { c.NormalizationType = "LNPre" }},
		{"relu", `act_fn "relu"`, func(c *hookedmodel.Config) { c.ActFn = "relu" }},
		{"eps", "eps 1e-06", func(c *hookedmodel.Config) { c.Eps = 1e-6 }},
		{"bidirectional", `attention_dir "bidirectional"`, func(c *hookedmodel.Config) { c.AttentionDir = "bidirectional" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel(t, shapeConfig(t, "toy", tc.edit))
			if _, err := lib.NewModel(m); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewModel: got %v, want an error naming %s", err, tc.want)
			}
		})
	}
	t.Run("bad tokens", func(t *testing.T) {
		m := newModel(t, shapeConfig(t, "toy", nil))
		f, err := lib.NewModel(m)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Free()
		floats := gotch.MustZeros([]int64{1, 3}, gotch.Float, m.Device())
		defer floats.Free()
		if err := f.Forward(floats); err == nil || !strings.Contains(err.Error(), "floor: forward") {
			t.Fatalf("float tokens: got %v, want the forward's error", err)
		}
		tok := randomTokens(t, m, 1, 3)
		if err := f.LogitsInto(tok, floats); err == nil || !strings.Contains(err.Error(), "logits is") {
			t.Fatalf("logits of the wrong shape: got %v, want an error naming both shapes", err)
		}
		f.Free()
		if err := f.Forward(floats); err == nil || !strings.Contains(err.Error(), "freed") {
			t.Fatalf("after Free: got %v", err)
		}
	})
	t.Run("missing library", func(t *testing.T) {
		_, err := floor.Open(filepath.Join(t.TempDir(), "libgolens_floor.so"))
		if !errors.Is(err, floor.ErrNotBuilt) {
			t.Fatalf("got %v, want ErrNotBuilt", err)
		}
	})
	t.Run("not a library", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "libgolens_floor.so")
		if err := os.WriteFile(path, []byte("not ELF"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := floor.Open(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("got %v, want an error naming %s", err, path)
		}
	})
}

// BenchmarkGPT2SideBySide times, in one process on one gpt2-small-shaped
// model (random weights, 1×128 tokens), rounds of four passes: the C++
// floor on golens's weights, golens's Forward, RunWithHooks with a no-op
// hook on every hook point, and RunWithCache of everything. The order
// rotates each round, so none always runs first or after the same one.
// It reports each side's median pass and the three ratios, of the
// medians: forward/floor (target ≤ 1.05), hooks/forward (≤ 1.05),
// cache/forward (≤ 1.10).
func BenchmarkGPT2SideBySide(b *testing.B) {
	lib := openLib(b)
	m := newModel(b, shapeConfig(b, "gpt2-small", nil))
	f, err := lib.NewModel(m)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Free()
	tok := randomTokens(b, m, 1, 128)
	ctx := context.Background()
	dev := m.Device()
	sync := func() error {
		if dev.Type == gotch.CUDAType {
			return cuda.Synchronize(dev.Index)
		}
		return nil
	}
	noop := []hookedmodel.Hook{hookedmodel.FwdHook(hookedmodel.Match(func(string) bool { return true }),
		func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil })}
	sides := []struct {
		name string
		pass func() error
	}{
		{"floor", func() error { return f.Forward(tok) }},
		{"forward", func() error {
			out, err := m.Forward(ctx, hookedmodel.Tokens(tok))
			out.Free()
			return err
		}},
		{"hooks", func() error {
			out, err := m.RunWithHooks(ctx, hookedmodel.Tokens(tok), noop)
			out.Free()
			return err
		}},
		{"cache", func() error {
			out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(tok))
			cache.Free()
			out.Free()
			return err
		}},
	}
	times := make([][]float64, len(sides))
	round := func(r int, record bool) {
		for i := range sides {
			k := (i + r) % len(sides)
			t0 := time.Now()
			err := sides[k].pass()
			if err == nil {
				err = sync()
			}
			if err != nil {
				b.Fatalf("%s: %v", sides[k].name, err)
			}
			if record {
				times[k] = append(times[k], float64(time.Since(t0)))
			}
		}
	}
	for r := range 2 { // untimed: the heap and the caches settle
		round(r, false)
	}
	r := 0
	for b.Loop() {
		round(r, true)
		r++
	}
	med := make([]float64, len(sides))
	for k, s := range sides {
		med[k] = bench.Median(times[k])
		b.ReportMetric(med[k]/1e6, s.name+"-ms")
	}
	b.ReportMetric(med[1]/med[0], "forward/floor")
	paired := func(a, c int) float64 {
		rs := make([]float64, len(times[a]))
		for i := range rs {
			rs[i] = times[a][i] / times[c][i]
		}
		return bench.Median(rs)
	}
	b.ReportMetric(paired(1, 0), "forward/floor-paired")
	b.ReportMetric(paired(2, 1), "hooks/forward-paired")
	b.ReportMetric(paired(3, 1), "cache/forward-paired")
	b.ReportMetric(med[2]/med[1], "hooks/forward")
	b.ReportMetric(med[3]/med[1], "cache/forward")
}
