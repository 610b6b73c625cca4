package hookedmodel

import (
	"context"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// A pass frees its intermediates as soon as it is done with them (see
// pass.release), except the activations a hook has seen: a hook may keep
// one and read it, or return it, at a later hook point of the same pass.
// Here a hook on every point keeps what it sees, and at each point checks
// that everything kept so far is still alive and unchanged (equal to
// RunWithCache's values, which take the same explicit paths), on every path
// of the forward pass.
func TestHookKeptActivationsLiveUntilPassEnds(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		mask [][]int64
	}{
		{"gpt2-like", nil, nil},
		{"padded", nil, [][]int64{{0, 0, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}}},
		{"every optional hook", func(c *Config) { c.UseAttnResult, c.UseSplitQKVIn, c.UseHookMLPIn = true, true, true }, nil},
		{"attn_in", func(c *Config) { c.UseAttnIn = true }, nil},
		{"attn-only shortformer LNPre", func(c *Config) {
			c.AttnOnly, c.PositionalEmbeddingType, c.NormalizationType = true, "shortformer", "LNPre"
		}, nil},
		{"solu_ln", func(c *Config) { c.ActFn = "solu_ln" }, nil},
		{"relu no normalization", func(c *Config) { c.ActFn, c.NormalizationType = "relu", "" }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, tc.edit, 7)
			defer m.Free()
			_, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, 8)
			defer tok.Free()
			opts := maskOpts(t, tc.mask)
			ctx := context.Background()
			out, cache, err := m.RunWithCache(ctx, Tokens(tok), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Free()
			defer cache.Free()
			want := gotchtest.Values(t, out.Logits)

			var order []string
			seen := map[string]*gotch.Tensor{}
			check := func(at string) {
				for _, name := range order {
					x := seen[name]
					if x.Freed() {
						t.Fatalf("at %s: the activation a hook kept from %s was freed", at, name)
					}
					if !slices.Equal(gotchtest.Values(t, x), gotchtest.Values(t, cache.MustGet(name))) {
						t.Fatalf("at %s: the activation a hook kept from %s changed", at, name)
					}
				}
			}
			keepAll := FwdHook(Match(func(string) bool { return true }), func(act *gotch.Tensor, name string) (*gotch.Tensor, error) {
				check(name)
				if _, again := seen[name]; !again { // split q/k/v inputs run ln1 three times
					order = append(order, name)
				}
				seen[name] = act
				return nil, nil
			})
			got := forwardValues(t, m, Tokens(tok), []Hook{keepAll}, opts...)
			if len(seen) != len(m.HookNames()) {
				t.Errorf("the hook ran at %d points, the model has %d", len(seen), len(m.HookNames()))
			}
			gotchtest.Close(t, "logits with hooks", got, want, 1e-6)
		})
	}
}
