package hookedmodel

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/reference"
)

func TestGetActName(t *testing.T) {
	cases := []struct {
		name string
		args []any
		want string
	}{
		{"pattern", []any{0}, "blocks.0.attn.hook_pattern"},
		{"resid_pre", []any{3}, "blocks.3.hook_resid_pre"},
		{"q", []any{0, "attn"}, "blocks.0.attn.hook_q"},
		{"q", []any{0, "a"}, "blocks.0.attn.hook_q"},
		{"scale", []any{2, "ln1"}, "blocks.2.ln1.hook_scale"},
		{"scale", nil, "ln_final.hook_scale"},
		{"scale", []any{nil}, "ln_final.hook_scale"},
		{"k6", nil, "blocks.6.attn.hook_k"},
		{"scale4ln1", nil, "blocks.4.ln1.hook_scale"},
		{"attn", []any{1}, "blocks.1.attn.hook_pattern"},
		{"post", []any{int64(2)}, "blocks.2.mlp.hook_post"},
		{"mlp_out", []any{1}, "blocks.1.hook_mlp_out"},
		{"resid_mid", []any{0, "b"}, "blocks.0.hook_resid_mid"},
		{"normalized", []any{1, "ln2"}, "blocks.1.ln2.hook_normalized"},
		{"embed", nil, "hook_embed"},
		{"hook_embed", nil, "hook_embed"},
		{"blocks.0.hook_resid_pre", nil, "blocks.0.hook_resid_pre"},
	}
	for _, tc := range cases {
		got, err := GetActName(tc.name, tc.args...)
		if err != nil || got != tc.want {
			t.Errorf("GetActName(%q, %v) = %q, %v; want %q", tc.name, tc.args, got, err, tc.want)
		}
	}
	// What does not parse is an error that shows the call.
	for _, tc := range []struct {
		name string
		args []any
		want string
	}{
		{"", []any{0}, "empty name"},
		{"q", []any{0, 1}, `GetActName("q", 0, 1): the layer type must be a string`},
		{"q", []any{"0"}, `GetActName("q", "0"): the layer must be an integer`},
		{"q", []any{1.5}, `GetActName("q", 1.5): the layer must be an integer`},
		{"scale", []any{1, "ln1", 2}, `GetActName("scale", 1, "ln1", 2): 3 arguments`},
		{"resid_pre", []any{-1}, `GetActName("resid_pre", -1): layer -1 counts from the end`},
		{"k6", []any{2}, `GetActName("k6", 2): "k6" has its layer in it already`},
		{"blocks.0.hook_resid_pre", []any{1}, "is a full hook-point name"},
	} {
		got, err := GetActName(tc.name, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("GetActName(%q, %v) = %q, %v; want an error saying %q", tc.name, tc.args, got, err, tc.want)
		}
	}
}

// cacheRun runs RunWithCache on tok with opts, failing the test on error.
func cacheRun(t *testing.T, m *HookedTransformer, in Input, opts ...RunOption) (*Output, *ActivationCache) {
	t.Helper()
	out, cache, err := m.RunWithCache(context.Background(), in, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Free(); cache.Free() })
	return out, cache
}

func TestRunWithCacheOptions(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 21)
	defer m.Free()
	_, tok := randomTokens(t, 2, 6, cfg.DVocab, 22)
	defer tok.Free()
	_, one := randomTokens(t, 1, 6, cfg.DVocab, 23)
	defer one.Free()
	full, fullCache := cacheRun(t, m, Tokens(tok))
	_, oneCache := cacheRun(t, m, Tokens(one))
	logits := gotchtest.Values(t, full.Logits)

	t.Run("all", func(t *testing.T) {
		if got, want := fullCache.Keys(), m.HookNames(); !slices.Equal(got, want) {
			t.Errorf("Keys = %q, want every hook point in forward order %q", got, want)
		}
		var bytes int64
		for _, k := range fullCache.Keys() {
			x := fullCache.MustGet(k)
			bytes += x.Numel() * 4
			if x.RequiresGrad() || x.Device() != gotchtest.Device(t) {
				t.Errorf("%s: cached %s (requires grad %v)", k, x, x.RequiresGrad())
			}
		}
		if fullCache.Bytes() != bytes {
			t.Errorf("Bytes = %d, want %d", fullCache.Bytes(), bytes)
		}
		s := fullCache.String()
		if !strings.HasPrefix(s, fmt.Sprintf("ActivationCache with %d activations:\n", len(m.HookNames()))) || !strings.Contains(s, "blocks.1.attn.hook_pattern Tensor(float32[2 4 6 6]") {
			t.Errorf("String() =\n%s", s)
		}
	})

	t.Run("shorthand", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []any
			want string
		}{
			{"pattern", []any{0}, "blocks.0.attn.hook_pattern"},
			{"resid_pre", []any{1}, "blocks.1.hook_resid_pre"},
			{"scale", nil, "ln_final.hook_scale"},
			{"k1", nil, "blocks.1.attn.hook_k"},
			{"hook_embed", nil, "hook_embed"},
			{"blocks.0.mlp.hook_pre", nil, "blocks.0.mlp.hook_pre"},
			// TransformerLens's three-part key, cache["scale", 1, "ln1"].
			{"scale", []any{1, "ln1"}, "blocks.1.ln1.hook_scale"},
			{"normalized", []any{0, "ln2"}, "blocks.0.ln2.hook_normalized"},
			{"q", []any{1, "attn"}, "blocks.1.attn.hook_q"},
			// A negative layer counts from the end: -1 is the last of 2.
			{"resid_pre", []any{-1}, "blocks.1.hook_resid_pre"},
			{"pattern", []any{-2}, "blocks.0.attn.hook_pattern"},
			{"scale", []any{-1, "ln1"}, "blocks.1.ln1.hook_scale"},
		} {
			x, err := fullCache.Get(tc.name, tc.args...)
			if err != nil {
				t.Errorf("Get(%q, %v): %v", tc.name, tc.args, err)
				continue
			}
			if want := fullCache.acts[tc.want]; x != want {
				t.Errorf("Get(%q, %v) is not %s", tc.name, tc.args, tc.want)
			}
		}
		for _, tc := range []struct {
			name string
			args []any
			want string
		}{
			{"pattern7", nil, `"blocks.7.attn.hook_pattern"`},
			{"blocks.0.hook_nothing", nil, `"blocks.0.hook_nothing"`},
			{"", nil, "empty name"},
			{"q", []any{0, 1}, `Get("q", 0, 1): the layer type must be a string`},
			{"q", []any{0, "attn", 1}, `Get("q", 0, "attn", 1): 3 arguments`},
			{"q", []any{"0"}, `Get("q", "0"): the layer must be an integer`},
			{"resid_pre", []any{-3}, `Get("resid_pre", -3): layer -3 is out of range for 2 layers`},
			{"resid_pre", []any{2}, `"blocks.2.hook_resid_pre"`},
			{"blocks.0.hook_resid_pre", []any{0}, "is a full hook-point name"},
			{"result", []any{0}, "use_attn_result=true"},
		} {
			if _, err := fullCache.Get(tc.name, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Get(%q, %v): error %v, want one saying %s", tc.name, tc.args, err, tc.want)
			}
		}
	})

	t.Run("NamesFilter", func(t *testing.T) {
		re, err := Regexp(`hook_(pattern|resid_post)$`)
		if err != nil {
			t.Fatal(err)
		}
		out, c := cacheRun(t, m, Tokens(tok), NamesFilter(re))
		want := []string{"blocks.0.attn.hook_pattern", "blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post"}
		if !slices.Equal(c.Keys(), want) || c.Len() != 4 {
			t.Errorf("Keys = %q, want %q", c.Keys(), want)
		}
		gotchtest.Close(t, "logits", gotchtest.Values(t, out.Logits), logits, 1e-6)
		for _, k := range want {
			sameValues(t, k, c.MustGet(k), fullCache.MustGet(k), 1e-6)
		}
	})

	t.Run("RemoveBatchDim", func(t *testing.T) {
		_, c := cacheRun(t, m, Tokens(one), RemoveBatchDim())
		s := gotch.NewScope() // ops on the cache's tensors are the test's
		defer s.Close()
		for _, k := range c.Keys() {
			x, ref := c.MustGet(k), borrow(s, oneCache.MustGet(k))
			if !slices.Equal(x.Shape(), ref.Shape()[1:]) {
				t.Errorf("%s: shape %v, want %v without its batch dimension", k, x.Shape(), ref.Shape())
				continue
			}
			sameValues(t, k, x, ref.MustSelect(0, 0), 1e-6)
		}
		if c.Len() != oneCache.Len() {
			t.Errorf("%d activations, want %d", c.Len(), oneCache.Len())
		}
	})

	t.Run("RemoveBatchDim needs a batch of 1", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		resid := fullCache.MustGet("blocks.1.hook_resid_pre")
		for _, tc := range []struct {
			name string
			in   Input
			opts []RunOption
		}{
			{"tokens", Tokens(tok), nil},
			{"residual", Residual(resid), []RunOption{StartAtLayer(1)}},
		} {
			out, c, err := m.RunWithCache(context.Background(), tc.in, append(tc.opts, RemoveBatchDim())...)
			if err == nil || !strings.Contains(err.Error(), "batch of 1") {
				t.Errorf("%s: batch 2 with RemoveBatchDim gave error %v", tc.name, err)
			}
			if out != nil || c != nil {
				t.Errorf("%s: results with the error", tc.name)
			}
		}
	})

	t.Run("CachePositions range", func(t *testing.T) {
		for _, ps := range []PosSlice{{Start: 1, Stop: 4}, {Start: -3}, {Start: 2, Stop: -1}} {
			_, c := cacheRun(t, m, Tokens(tok), CachePositions(ps))
			if got, want := c.MustGet("pattern", 0).Shape(), []int64{2, 4, stop0(ps) - start0(ps), 6}; !slices.Equal(got, want) {
				t.Errorf("%+v: pattern %v, want %v: queries sliced, every key kept", ps, got, want)
			}
			start, stop := start0(ps), stop0(ps)
			for _, k := range c.Keys() {
				dim := posDim(k)
				ref := fullCache.MustGet(k).MustSlice(int64(dim), start, stop, 1)
				x := c.MustGet(k)
				if !slices.Equal(x.Shape(), ref.Shape()) {
					t.Errorf("%+v %s: shape %v, want %v", ps, k, x.Shape(), ref.Shape())
				} else {
					sameValues(t, k, x, ref, 1e-6)
				}
				ref.Free()
			}
		}
	})

	t.Run("CachePositions single", func(t *testing.T) {
		_, c := cacheRun(t, m, Tokens(one), CachePositions(PosSlice{Start: -1, Single: true}), RemoveBatchDim())
		for _, tc := range []struct {
			name  string
			shape []int64
			dim   int64
		}{
			{"blocks.0.hook_resid_pre", []int64{16}, 1},
			{"blocks.1.attn.hook_q", []int64{4, 4}, 1},
			{"blocks.0.ln1.hook_scale", []int64{1}, 1},
			{"blocks.1.attn.hook_pattern", []int64{4, 6}, 2}, // the last query's pattern over every key
			{"blocks.0.attn.hook_attn_scores", []int64{4, 6}, 2},
		} {
			s := gotch.NewScope()
			x := c.MustGet(tc.name)
			ref := borrow(s, oneCache.MustGet(tc.name)).MustSelect(0, 0).MustSelect(tc.dim-1, 5)
			if !slices.Equal(x.Shape(), tc.shape) {
				t.Errorf("%s: shape %v, want %v", tc.name, x.Shape(), tc.shape)
			} else {
				sameValues(t, tc.name, x, ref, 1e-6)
			}
			s.Close()
		}
	})

	t.Run("CacheDevice and To", func(t *testing.T) {
		_, c := cacheRun(t, m, Tokens(tok), CacheDevice(gotch.CPU), NamesFilter(Names("blocks.0.hook_resid_post", "ln_final.hook_scale")))
		for _, k := range c.Keys() {
			x := c.MustGet(k)
			if x.Device() != gotch.CPU {
				t.Errorf("%s on %s, want cpu", k, x.Device())
			}
			sameValues(t, k, x, fullCache.MustGet(k), 1e-6)
		}
		if err := c.To(gotchtest.Device(t)); err != nil {
			t.Fatal(err)
		}
		for _, k := range c.Keys() {
			if d := c.MustGet(k).Device(); d != gotchtest.Device(t) {
				t.Errorf("%s on %s after To", k, d)
			}
			sameValues(t, k+" after To", c.MustGet(k), fullCache.MustGet(k), 1e-6)
		}
	})

	t.Run("StopAtLayer", func(t *testing.T) {
		for _, stop := range []int{1, -1} {
			out, c := cacheRun(t, m, Tokens(tok), StopAtLayer(stop))
			if out.Logits != nil || out.Loss != nil || out.Residual == nil {
				t.Fatalf("StopAtLayer(%d) returned logits %v, loss %v, residual %v", stop, out.Logits, out.Loss, out.Residual)
			}
			gotchtest.Close(t, "residual", gotchtest.Values(t, out.Residual), gotchtest.Values(t, fullCache.MustGet("blocks.1.hook_resid_pre")), 1e-6)
			for _, k := range c.Keys() {
				if strings.HasPrefix(k, "blocks.1.") || strings.HasPrefix(k, "ln_final.") {
					t.Errorf("StopAtLayer(%d) cached %s", stop, k)
				}
			}
			if _, err := c.Get("blocks.0.hook_resid_post"); err != nil {
				t.Error(err)
			}
		}
		out, c := cacheRun(t, m, Tokens(tok), StopAtLayer(0))
		if c.Len() != 2 || out.Residual == nil {
			t.Errorf("StopAtLayer(0) cached %q", c.Keys())
		}
	})

	t.Run("StartAtLayer", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		resid := fullCache.MustGet("blocks.1.hook_resid_pre")
		out, c := cacheRun(t, m, Residual(resid), StartAtLayer(1), Return(ReturnBoth), LossTokens(tok))
		gotchtest.Close(t, "logits from layer 1", gotchtest.Values(t, out.Logits), logits, 1e-5)
		if out.Tokens != nil {
			t.Errorf("a residual input returned tokens %s", out.Tokens)
		}
		if k := c.Keys(); k[0] != "blocks.1.hook_resid_pre" || slices.ContainsFunc(k, func(s string) bool { return strings.HasPrefix(s, "blocks.0.") }) {
			t.Errorf("StartAtLayer(1) cached %q", k)
		}
		ref, err := m.Forward(context.Background(), Tokens(tok), Return(ReturnLoss))
		if err != nil {
			t.Fatal(err)
		}
		gotchtest.Close(t, "loss from layer 1", []float64{out.Loss.MustItem()}, []float64{ref.Loss.MustItem()}, 1e-5)
		ref.Free()
		// The input is the caller's still.
		if resid.Freed() {
			t.Errorf("the pass freed its residual input")
		}
	})

	t.Run("Free", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		out, c, err := m.RunWithCache(context.Background(), Tokens(tok))
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
		x := c.MustGet("hook_embed")
		c.Free()
		if !x.Freed() || c.Len() != 0 || len(c.Keys()) != 0 || c.Bytes() != 0 {
			t.Errorf("after Free: tensor freed %v, %d activations", x.Freed(), c.Len())
		}
		if _, err := c.Get("hook_embed"); err == nil {
			t.Errorf("Get after Free succeeded")
		}
		c.Free()
		out.Free()
		var nilCache *ActivationCache
		nilCache.Free()
	})
}

// sameValues compares two tensors of one shape within tol, masked
// attention scores (-inf) included: they must be masked in the same places.
func sameValues(t *testing.T, name string, got, want *gotch.Tensor, tol float64) {
	t.Helper()
	if !slices.Equal(got.Shape(), want.Shape()) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape(), want.Shape())
		return
	}
	g, w := gotchtest.Values(t, got), gotchtest.Values(t, want)
	for i := range g {
		if math.IsInf(g[i], -1) != math.IsInf(w[i], -1) {
			t.Errorf("%s: masking differs at flat index %d: got %g, want %g", name, i, g[i], w[i])
			return
		}
	}
	gotchtest.Close(t, name, reference.Finite(g), reference.Finite(w), tol)
}

// start0 and stop0 resolve a PosSlice over the 6 positions of the tests.
func start0(ps PosSlice) int64 { return (ps.Start + 6) % 6 }
func stop0(ps PosSlice) int64 {
	if ps.Stop <= 0 {
		return ps.Stop + 6
	}
	return ps.Stop
}
