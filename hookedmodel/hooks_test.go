package hookedmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/reference"
)

// referenceRun runs the float64 reference forward of m on rows, with edits
// applied at their hook points.
func referenceRun(t *testing.T, m *HookedTransformer, rows [][]int64, edits map[string]func(reference.Tensor)) map[string]reference.Tensor {
	t.Helper()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := newRefModel(t, m.Cfg, sd)
	r.Edits = edits
	return r.Forward(rows)
}

// forwardValues runs m with the per-call hooks and returns the logits.
func forwardValues(t *testing.T, m *HookedTransformer, in Input, hooks []Hook, opts ...RunOption) []float64 {
	t.Helper()
	out, err := m.RunWithHooks(context.Background(), in, hooks, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	return gotchtest.Values(t, out.Logits)
}

// zeroHead zero-ablates head h of a [batch pos head d_head] activation in
// place, as a TransformerLens hook does with act[:, :, h] = 0.
func zeroHead(h int64) HookFunc {
	return func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		head := act.MustSelect(2, h) // a view of act, the hook's to free
		defer head.Free()
		head.MustZero_()
		return nil, nil
	}
}

// refZeroHead is zeroHead on a reference [batch pos head d] activation.
func refZeroHead(h int) func(reference.Tensor) {
	return func(x reference.Tensor) {
		H, D := x.Shape[2], x.Shape[3]
		for i := range x.Data {
			if (i/D)%H == h {
				x.Data[i] = 0
			}
		}
	}
}

func refScale(f float64) func(reference.Tensor) {
	return func(x reference.Tensor) {
		for i := range x.Data {
			x.Data[i] *= f
		}
	}
}

func TestHookEditsMatchReference(t *testing.T) {
	cases := []struct {
		name  string
		batch int
		point string
		fn    HookFunc
		edit  func(reference.Tensor)
	}{
		{"zero head 1 of z in place", 2, "blocks.0.attn.hook_z", zeroHead(1), refZeroHead(1)},
		{"zero head 3 of layer 1 z in place", 2, "blocks.1.attn.hook_z", zeroHead(3), refZeroHead(3)},
		{"replace resid_pre by twice it", 2, "blocks.1.hook_resid_pre",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { return act.MustMulScalar(2), nil }, refScale(2)},
		{"replace v by new zeros", 2, "blocks.0.attn.hook_v",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
				return gotch.MustZeros(act.Shape(), act.DType(), act.Device()), nil
			}, refScale(0)},
		{"halve mlp post in place", 2, "blocks.0.mlp.hook_post",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { act.MustMulScalar_(0.5); return nil, nil }, refScale(0.5)},
		{"zero pos_embed in place, batch 1", 1, "hook_pos_embed",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { act.MustZero_(); return nil, nil }, refScale(0)},
		{"zero embed in place, batch 1", 1, "hook_embed",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { act.MustZero_(); return nil, nil }, refScale(0)},
		{"zero head 2 of the pattern in place", 2, "blocks.1.attn.hook_pattern",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
				head := act.MustSelect(1, 2)
				defer head.Free()
				head.MustZero_()
				return nil, nil
			},
			func(x reference.Tensor) { // [batch head query key]
				H, Q, K := x.Shape[1], x.Shape[2], x.Shape[3]
				for i := range x.Data {
					if (i/(Q*K))%H == 2 {
						x.Data[i] = 0
					}
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			cfg := smallConfig()
			m := newTestModel(t, cfg, 7)
			defer m.Free()
			rows, tok := randomTokens(t, tc.batch, 6, cfg.DVocab, 8)
			defer tok.Free()
			plain := referenceRun(t, m, rows, nil)
			want := referenceRun(t, m, rows, map[string]func(reference.Tensor){tc.point: tc.edit})

			hook := FwdHook(Name(tc.point), tc.fn)
			got := forwardValues(t, m, Tokens(tok), []Hook{hook})
			gotchtest.Close(t, "hooked logits", got, want["logits"].Data, 1e-4)
			if gotchtest.RelErr(want["logits"].Data, plain["logits"].Data) < 1e-3 {
				t.Fatalf("the edit hardly changes the reference logits: the test proves nothing")
			}

			// The same hook registered on the model, with every activation
			// cached: each one, the edited point included, is the reference's.
			remove, err := m.Hooks(hook)
			if err != nil {
				t.Fatal(err)
			}
			out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
			remove()
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "logits (registered)", out.Logits, want["logits"])
			for _, name := range cache.Keys() {
				compare(t, name, cache.MustGet(name), want[name])
			}
			out.Free()
			cache.Free()

			// The hooks are gone and the weights untouched.
			gotchtest.Close(t, "logits afterwards", forwardValues(t, m, Tokens(tok), nil), plain["logits"].Data, 1e-4)
		})
	}
}

func TestHookFailures(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name  string
		point string
		fn    HookFunc
		check func(t *testing.T, err error)
	}{
		{"wrong shape", "blocks.0.attn.hook_z",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { return act.MustSelect(0, 0), nil },
			wantMsg("want the activation's")},
		{"wrong shape, new tensor", "blocks.1.hook_resid_pre",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
				return gotch.MustZeros([]int64{3}, act.DType(), act.Device()), nil
			}, wantMsg("want the activation's")},
		{"wrong dtype", "hook_embed",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { return act.MustTo(gotch.Double), nil },
			wantMsg("float64")},
		{"freed replacement", "blocks.0.mlp.hook_post",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
				r := act.MustMulScalar(2)
				r.Free()
				return r, nil
			}, wantMsg("freed")},
		{"returns an error", "blocks.0.attn.hook_pattern",
			func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, boom },
			func(t *testing.T, err error) {
				if !errors.Is(err, boom) {
					t.Errorf("error %q does not wrap the hook's", err)
				}
			}},
		{"returns an error and a tensor", "ln_final.hook_normalized",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
				return gotch.MustZeros(act.Shape(), act.DType(), act.Device()), boom
			},
			func(t *testing.T, err error) {
				if !errors.Is(err, boom) {
					t.Errorf("error %q does not wrap the hook's", err)
				}
			}},
		{"panics", "blocks.1.attn.hook_q",
			func(*gotch.Tensor, string) (*gotch.Tensor, error) { panic("kaboom") },
			wantMsg("kaboom")},
		{"panics with an error", "blocks.1.hook_resid_post",
			func(*gotch.Tensor, string) (*gotch.Tensor, error) { panic(boom) },
			func(t *testing.T, err error) {
				if !errors.Is(err, boom) {
					t.Errorf("error %q does not wrap the panic's", err)
				}
			}},
		{"an op fails in the hook", "blocks.0.hook_mlp_out",
			func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { return act.MustMatmul(act), nil },
			func(t *testing.T, err error) {
				var ge *gotch.Error
				if !errors.As(err, &ge) || ge.Op != "Matmul" {
					t.Errorf("error %q is not the Matmul's *gotch.Error", err)
				}
			}},
	}
	cfg := smallConfig()
	m := newTestModel(t, cfg, 11)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, cfg.DVocab, 12)
	defer tok.Free()
	want := forwardValues(t, m, Tokens(tok), nil)
	ctx := context.Background()

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			checkErr := func(how string, err error) {
				t.Helper()
				var he *HookError
				if !errors.As(err, &he) {
					t.Fatalf("%s: error %v is not a *HookError", how, err)
				}
				if he.Point != tc.point || !strings.Contains(err.Error(), tc.point) {
					t.Errorf("%s: error %q names %q, want %s", how, err, he.Point, tc.point)
				}
				tc.check(t, err)
			}
			hook := FwdHook(Name(tc.point), tc.fn)

			out, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{hook})
			if out != nil {
				t.Errorf("RunWithHooks returned an output with its error")
			}
			checkErr("RunWithHooks", err)

			h, err := m.AddHook(hook)
			if err != nil {
				t.Fatal(err)
			}
			out, err = m.Forward(ctx, Tokens(tok), Return(ReturnBoth))
			checkErr("Forward with a registered hook", err)
			out, cache, err := m.RunWithCache(ctx, Tokens(tok))
			if out != nil || cache != nil {
				t.Errorf("RunWithCache returned results with its error")
			}
			checkErr("RunWithCache with a registered hook", err)
			h.Remove()

			gotchtest.Close(t, "logits after the failure", forwardValues(t, m, Tokens(tok), nil), want, 1e-6)
		})
	}
}

func wantMsg(sub string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		if !strings.Contains(err.Error(), sub) {
			t.Errorf("error %q does not say %q", err, sub)
		}
	}
}

// recorder records which hook ran at which point, in order; safe for
// concurrent use.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) hook(label string) HookFunc {
	return func(_ *gotch.Tensor, name string) (*gotch.Tensor, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls = append(r.calls, label+"@"+name)
		return nil, nil
	}
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func TestRegisteredHooks(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 13)
	defer m.Free()
	_, tok := randomTokens(t, 1, 4, cfg.DVocab, 14)
	defer tok.Free()
	ctx := context.Background()
	var rec recorder
	forward := func(t *testing.T, hooks ...Hook) []string {
		t.Helper()
		out, err := m.RunWithHooks(ctx, Tokens(tok), hooks)
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
		return rec.take()
	}
	const p0, p1 = "blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"
	expect := func(t *testing.T, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("hooks ran as %q, want %q", got, want)
		}
	}
	noHooks := func(t *testing.T) {
		t.Helper()
		if l := m.ListHooks(); len(l) != 0 {
			t.Fatalf("hooks left registered: %+v", l)
		}
	}

	t.Run("until removed", func(t *testing.T) {
		h, err := m.AddHook(FwdHook(Name(p0), rec.hook("a")))
		if err != nil {
			t.Fatal(err)
		}
		expect(t, forward(t), "a@"+p0)
		expect(t, forward(t), "a@"+p0)
		h.Remove()
		h.Remove() // idempotent
		expect(t, forward(t))
		HookHandle{}.Remove() // the zero handle, as a failed AddHook returns, is harmless
		noHooks(t)
	})

	t.Run("permanent and ResetHooks", func(t *testing.T) {
		if _, err := m.AddHook(FwdHook(Name(p0), rec.hook("perm")), Permanent(), WithLabel("perm")); err != nil {
			t.Fatal(err)
		}
		if _, err := m.AddHook(FwdHook(Name(p0), rec.hook("temp")), WithLabel("temp")); err != nil {
			t.Fatal(err)
		}
		expect(t, forward(t), "perm@"+p0, "temp@"+p0)
		m.ResetHooks(false)
		if l := m.ListHooks(); len(l) != 1 || l[0] != (HookInfo{Point: p0, Dir: Fwd, Label: "perm", Permanent: true}) {
			t.Errorf("after ResetHooks(false): %+v, want only the permanent hook", l)
		}
		expect(t, forward(t), "perm@"+p0)
		m.ResetHooks(true)
		noHooks(t)
		expect(t, forward(t))
	})

	t.Run("prepend and per-call order", func(t *testing.T) {
		for _, h := range []struct {
			label string
			opts  []HookOption
		}{{"A", nil}, {"B", nil}, {"C", []HookOption{Prepend()}}} {
			if _, err := m.AddHook(FwdHook(Name(p1), rec.hook(h.label)), h.opts...); err != nil {
				t.Fatal(err)
			}
		}
		defer m.ResetHooks(true)
		// Registered hooks first (C was prepended), then the per-call ones
		// in the order given.
		expect(t, forward(t, FwdHook(Name(p1), rec.hook("D")), FwdHook(Name(p1), rec.hook("E"))),
			"C@"+p1, "A@"+p1, "B@"+p1, "D@"+p1, "E@"+p1)
	})

	t.Run("ListHooks", func(t *testing.T) {
		defer m.ResetHooks(true)
		f := func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil }
		if _, err := m.AddHook(FwdHook(Names(p1, p0), f), WithLabel("two")); err != nil {
			t.Fatal(err)
		}
		if _, err := m.AddHook(BwdHook(Name(p0), f), WithLabel("grad"), Permanent()); err != nil {
			t.Fatal(err)
		}
		want := []HookInfo{{p0, Fwd, "two", false}, {p0, Bwd, "grad", true}, {p1, Fwd, "two", false}}
		if got := m.ListHooks(); !slices.Equal(got, want) {
			t.Errorf("ListHooks = %+v, want %+v", got, want)
		}
		if Fwd.String() != "fwd" || Bwd.String() != "bwd" {
			t.Errorf("directions print as %s and %s", Fwd, Bwd)
		}
	})

	t.Run("Hooks with defer", func(t *testing.T) {
		func() {
			remove, err := m.Hooks(FwdHook(Name(p0), rec.hook("x")), FwdHook(Name(p1), rec.hook("y")))
			if err != nil {
				t.Fatal(err)
			}
			defer remove()
			expect(t, forward(t), "x@"+p0, "y@"+p1)
		}()
		noHooks(t)
		expect(t, forward(t))
		// One bad hook: none of them stays.
		remove, err := m.Hooks(FwdHook(Name(p0), rec.hook("x")), FwdHook(Name("blocks.7.hook_resid_pre"), rec.hook("y")))
		if err == nil {
			t.Errorf("Hooks with a hook that matches nothing succeeded")
		}
		remove()
		noHooks(t)
	})

	t.Run("bad hooks", func(t *testing.T) {
		fn := rec.hook("x")
		for _, tc := range []struct {
			name string
			h    Hook
			want string
		}{
			{"no matching point", FwdHook(Name("blocks.2.hook_resid_pre"), fn), "no hook point"},
			{"no matching point, labelled", Hook{Filter: Name("hook_nothing"), Fn: fn, Label: "mine"}, "mine"},
			{"nil filter", FwdHook(nil, fn), "filter"},
			{"nil function", FwdHook(Name(p0), nil), "function"},
		} {
			h, err := m.AddHook(tc.h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: AddHook error %v, want one saying %q", tc.name, err, tc.want)
			}
			h.Remove()
		}
		if _, err := Regexp("blocks.(0"); err == nil || !strings.Contains(err.Error(), "blocks.(0") {
			t.Errorf("a bad regexp gave error %v, want one quoting it", err)
		}
		noHooks(t)
	})

	t.Run("filters", func(t *testing.T) {
		re, err := Regexp(`^blocks\.1\.attn\.hook_[qk]$`)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			f    Filter
			want []string
		}{
			{"Name", Name("hook_embed"), []string{"hook_embed"}},
			{"Names", Names("ln_final.hook_scale", "hook_pos_embed"), []string{"hook_pos_embed", "ln_final.hook_scale"}},
			{"Regexp", re, []string{"blocks.1.attn.hook_q", "blocks.1.attn.hook_k"}},
			{"Match", Match(func(n string) bool { return strings.HasSuffix(n, "mlp.hook_post") }),
				[]string{"blocks.0.mlp.hook_post", "blocks.1.mlp.hook_post"}},
		} {
			got := forward(t, FwdHook(tc.f, rec.hook(tc.name)))
			var want []string
			for _, p := range tc.want {
				want = append(want, tc.name+"@"+p)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: hooks ran at %q, want %q", tc.name, got, want)
			}
		}
	})
}

// TestHookPatchingFromCache is activation patching as TransformerLens users
// write it: a hook returns the activation a clean run cached, as an alias of
// its own (the cache lends its tensors; the pass takes what a hook returns
// unscoped). The cache keeps its tensors.
func TestHookPatchingFromCache(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 15)
	defer m.Free()
	_, clean := randomTokens(t, 1, 5, cfg.DVocab, 16)
	defer clean.Free()
	_, corrupt := randomTokens(t, 1, 5, cfg.DVocab, 17)
	defer corrupt.Free()
	ctx := context.Background()
	cleanOut, cleanCache, err := m.RunWithCache(ctx, Tokens(clean))
	if err != nil {
		t.Fatal(err)
	}
	defer cleanOut.Free()
	defer cleanCache.Free()
	want := gotchtest.Values(t, cleanOut.Logits)

	// Patching the whole residual stream entering layer 1 gives the clean
	// logits, twice in a row from the same cache.
	patch := FwdHook(Name("blocks.1.hook_resid_pre"), func(_ *gotch.Tensor, name string) (*gotch.Tensor, error) {
		return cleanCache.MustGet(name).Alias()
	})
	for i := range 2 {
		got := forwardValues(t, m, Tokens(corrupt), []Hook{patch})
		gotchtest.Close(t, fmt.Sprintf("patched logits, run %d", i), got, want, 1e-5)
	}
	if x := cleanCache.MustGet("blocks.1.hook_resid_pre"); x.Freed() {
		t.Errorf("the patch took the cache's tensor: %s", x)
	}
}
