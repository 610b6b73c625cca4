package hookedmodel

import (
	"context"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestHookOnNoHookPoint: a hook or names filter that selects no hook point
// of the model is an error that names what was asked for and the nearest
// real points, or the config flag that enables a switched-off point, as
// TransformerLens raises on a hook name its model lacks. It fails before
// the pass runs, so the hook is never called.
func TestHookOnNoHookPoint(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 41)
	defer m.Free()
	_, tok := randomTokens(t, 1, 4, cfg.DVocab, 42)
	defer tok.Free()
	ctx := context.Background()
	called := 0
	fn := func(*gotch.Tensor, string) (*gotch.Tensor, error) { called++; return nil, nil }
	re := func(expr string) Filter {
		f, err := Regexp(expr)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	for _, tc := range []struct {
		name string
		f    Filter
		want []string // each must be in the error
	}{
		{"typo", Name("blocks.0.hook_resid_pr"),
			[]string{`"blocks.0.hook_resid_pr"`, "nearest: blocks.0.hook_resid_pre, "}},
		{"layer past the end", Name("blocks.2.hook_resid_pre"),
			[]string{`"blocks.2.hook_resid_pre"`, "it has 2 layers", "blocks.1.hook_resid_pre"}},
		{"shorthand, not a name", Name("pattern"), []string{`"pattern"`, "nearest: blocks.0.attn.hook_pattern, "}},
		{"one of Names", Names("hook_embed", "blocks.1.attn.hook_patern"),
			[]string{`"blocks.1.attn.hook_patern"`, "blocks.1.attn.hook_pattern"}},
		{"Name inside a predicate", Match(func(n string) bool { return Name("hook_embed")(n) || Name("hook_embd")(n) }),
			[]string{`"hook_embd"`, "nearest: hook_embed"}},
		{"regexp", re(`^blocks\.5\.attn\.hook_z$`),
			[]string{"fwd hook: its regexp", `blocks\\.5`, "selects no hook point", "nearest: blocks.0.attn.hook_z"}},
		{"predicate", Match(func(string) bool { return false }), []string{"fwd hook: its filter selects no hook point"}},
		{"label", Name("hook_nothing"), []string{`fwd hook "mine"`, `"hook_nothing"`}},
		// Points TransformerLens has that this model's config switches off.
		{"hook_result", Name("blocks.0.attn.hook_result"), []string{`"blocks.0.attn.hook_result"`, "use_attn_result=true"}},
		{"hook_q_input", Name("blocks.1.hook_q_input"), []string{"use_split_qkv_input=true"}},
		{"hook_mlp_in", Name("blocks.0.hook_mlp_in"), []string{"use_hook_mlp_in=true"}},
		{"hook_attn_in", Name("blocks.0.hook_attn_in"), []string{"use_attn_in=true"}},
		{"hook_tokens", Name("hook_tokens"), []string{"use_hook_tokens=true"}},
		{"regexp of switched-off points", re(`attn\.hook_result$`),
			[]string{"only blocks.0.attn.hook_result, blocks.1.attn.hook_result, which are off", "use_attn_result=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, err error, want ...string) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s succeeded", how)
				}
				for _, w := range want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", how, err, w)
					}
				}
			}
			hook := FwdHook(tc.f, fn)
			if tc.name == "label" {
				hook.Label = "mine"
			}
			// want, with the hook's description as another entry point words it.
			as := func(r *strings.Replacer) []string {
				var w []string
				for _, s := range tc.want {
					w = append(w, r.Replace(s))
				}
				return w
			}
			same := strings.NewReplacer()
			out, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{hook})
			if out != nil {
				t.Errorf("RunWithHooks returned an output with its error")
			}
			check("RunWithHooks", err, as(same)...)

			bwd := BwdHook(tc.f, fn)
			bwd.Label = hook.Label
			_, err = m.RunWithHooks(ctx, Tokens(tok), []Hook{bwd}, Return(ReturnLoss))
			check("RunWithHooks with a backward hook", err, as(strings.NewReplacer("fwd hook", "bwd hook"))...)

			_, err = m.AddHook(hook)
			check("AddHook", err, as(strings.NewReplacer("fwd hook", "add fwd hook"))...)

			_, err = m.Generate(ctx, Tokens(tok), MaxNewTokens(1), StopAtEOS(false), GenHooks(hook))
			check("Generate", err, as(same)...)

			out, cache, err := m.RunWithCache(ctx, Tokens(tok), NamesFilter(tc.f))
			if out != nil || cache != nil {
				t.Errorf("RunWithCache returned results with its error")
			}
			check("RunWithCache", err, as(strings.NewReplacer(`fwd hook "mine"`, "names filter", "fwd hook", "names filter"))...)
		})
	}
	if called != 0 {
		t.Errorf("a hook that selects no hook point ran %d times", called)
	}

	t.Run("unset", func(t *testing.T) {
		for _, h := range []Hook{FwdHook(nil, fn), FwdHook(Name("hook_embed"), nil)} {
			if _, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{h}); err == nil || !strings.Contains(err.Error(), "the filter and the function must be set") {
				t.Errorf("RunWithHooks with an unset hook: error %v", err)
			}
		}
	})

	t.Run("switched on", func(t *testing.T) {
		on := editedModel(t, func(c *Config) {
			c.UseAttnResult, c.UseSplitQKVIn, c.UseHookMLPIn, c.UseAttnIn = true, true, true, true
		}, 43)
		defer on.Free()
		var rec recorder
		names := Names("blocks.0.attn.hook_result", "blocks.1.hook_q_input", "blocks.0.hook_mlp_in", "blocks.0.hook_attn_in")
		out, err := on.RunWithHooks(ctx, Tokens(tok), []Hook{FwdHook(names, rec.hook("x"))})
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
		if got := rec.take(); len(got) != 4 {
			t.Errorf("hooks ran at %q, want the 4 points", got)
		}
	})
}

func TestNearest(t *testing.T) {
	names := []string{"hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"}
	got := nearest("blocks.0.hook_resid_pr", names, 3)
	if len(got) != 3 || got[0] != "blocks.0.hook_resid_pre" || got[1] != "blocks.0.hook_resid_post" {
		t.Errorf("nearest = %q", got)
	}
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"hook_z", "hook_q", 1}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}
