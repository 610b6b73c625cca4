package hookedmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// A pass frees its intermediates as soon as it is done with them (see
// pass.scope), the activations hooks see included: a hook that wants one
// later takes an alias (HookFunc), which is its own. Here a hook on every
// point keeps an alias of what it sees, and at each point checks that
// everything kept so far is still alive and unchanged (equal to
// RunWithCache's values, which take the same explicit paths), on every path
// of the forward pass; the aliases outlive the pass, until the test frees
// them.
func TestHookAliasesOutliveThePass(t *testing.T) {
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
						t.Fatalf("at %s: the alias a hook kept from %s was freed", at, name)
					}
					if !slices.Equal(gotchtest.Values(t, x), gotchtest.Values(t, cache.MustGet(name))) {
						t.Fatalf("at %s: the activation a hook kept from %s changed", at, name)
					}
				}
			}
			keepAll := FwdHook(Match(func(string) bool { return true }), func(act *gotch.Tensor, name string) (*gotch.Tensor, error) {
				check(name)
				old, again := seen[name] // split q/k/v inputs run ln1 three times
				if !again {
					order = append(order, name)
				}
				old.Free()
				seen[name] = act.MustAlias()
				return nil, nil
			})
			got := forwardValues(t, m, Tokens(tok), []Hook{keepAll}, opts...)
			check("the end of the pass")
			for _, x := range seen {
				x.Free()
			}
			if len(seen) != len(m.HookNames()) {
				t.Errorf("the hook ran at %d points, the model has %d", len(seen), len(m.HookNames()))
			}
			gotchtest.Close(t, "logits with hooks", got, want, 1e-6)
		})
	}
}

// Each component call frees what it made when it returns, so nothing
// piles up from layer to layer: the live handles entering every block
// after the first are the same, on the fused paths (only resid_pre
// observed) and on the explicit ones (every hook point observed).
func TestNothingPilesUpOverLayers(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		mask [][]int64
	}{
		{"gpt2-like", nil, nil},
		{"padded", nil, [][]int64{{0, 0, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}}},
		{"every optional hook", func(c *Config) {
			c.UseAttnResult, c.UseSplitQKVIn, c.UseHookMLPIn, c.UseAttnIn = true, true, true, true
		}, nil},
		{"attn_in", func(c *Config) { c.UseAttnIn = true }, nil},
		{"attn-only shortformer LNPre", func(c *Config) {
			c.AttnOnly, c.PositionalEmbeddingType, c.NormalizationType = true, "shortformer", "LNPre"
		}, nil},
		{"solu_ln", func(c *Config) { c.ActFn = "solu_ln" }, nil},
		{"relu no normalization", func(c *Config) { c.ActFn, c.NormalizationType = "relu", "" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, func(c *Config) {
				c.NLayers = 5
				if tc.edit != nil {
					tc.edit(c)
				}
			}, 7)
			defer m.Free()
			_, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, 8)
			defer tok.Free()
			opts := maskOpts(t, tc.mask)
			for _, observe := range []string{"resid_pre", "everything"} {
				live := map[string]int64{}
				hook := FwdHook(Match(func(string) bool { return true }), func(_ *gotch.Tensor, name string) (*gotch.Tensor, error) {
					if strings.HasSuffix(name, "hook_resid_pre") {
						live[name] = gotch.LiveHandles()
					}
					return nil, nil
				})
				if observe == "resid_pre" {
					hook.Filter = Match(func(name string) bool { return strings.HasSuffix(name, "hook_resid_pre") })
				}
				forwardValues(t, m, Tokens(tok), []Hook{hook}, opts...)
				for l := 2; l < 5; l++ {
					if got, want := live[fmt.Sprintf("blocks.%d.hook_resid_pre", l)], live["blocks.1.hook_resid_pre"]; got != want {
						t.Errorf("observing %s: %d live handles entering block %d, %d entering block 1", observe, got, l, want)
					}
				}
			}
		})
	}
}

// A hook that keeps act itself, not an alias, finds it freed once the call
// returns (act is lent for the call): an op on it is an error, not a crash,
// and returning it at a later hook point aborts the pass with an error
// naming that point.
func TestHookKeptActivationIsFreedCleanly(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, nil, 7)
	defer m.Free()
	_, tok := randomTokens(t, 1, 5, m.Cfg.DVocab, 8)
	defer tok.Free()
	const early, late = "blocks.0.attn.hook_pattern", "blocks.1.hook_resid_pre"
	var kept *gotch.Tensor
	var opErr error
	hooks := []Hook{
		FwdHook(Name(early), func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { kept = act; return nil, nil }),
		FwdHook(Name(late), func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
			if !kept.Freed() {
				t.Errorf("%s is still alive at %s: the pass kept it", early, late)
			}
			_, opErr = kept.Sum()
			return nil, nil
		}),
	}
	out, err := m.RunWithHooks(context.Background(), Tokens(tok), hooks)
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
	if opErr == nil {
		t.Error("an op on a freed activation succeeded")
	}

	const from, to = "blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"
	hooks = []Hook{
		FwdHook(Name(from), func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) { kept = act; return nil, nil }),
		FwdHook(Name(to), func(*gotch.Tensor, string) (*gotch.Tensor, error) { return kept, nil }),
	}
	_, err = m.RunWithHooks(context.Background(), Tokens(tok), hooks)
	var he *HookError
	if !errors.As(err, &he) || he.Point != to || !strings.Contains(err.Error(), "freed") {
		t.Fatalf("returning a freed activation: got %v, want a HookError at %s saying it was freed", err, to)
	}
	out, err = m.Forward(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatalf("the model is unusable after the error: %v", err)
	}
	out.Free()
}

// A hook may return the same alias of an activation, or one tensor of its
// own, at several hook points: the pass takes it at the first and works on
// handles of its own, so each gives the logits of returning a fresh copy
// each time.
func TestHookReturnsReusedTensors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, nil, 7)
	defer m.Free()
	_, tok := randomTokens(t, 1, 5, m.Cfg.DVocab, 8)
	defer tok.Free()
	const src = "blocks.0.hook_resid_pre"
	// run keeps keep(act) at src and returns give(kept) at each later point.
	run := func(t *testing.T, keep func(*gotch.Tensor) *gotch.Tensor, give func(*gotch.Tensor) *gotch.Tensor) []float64 {
		t.Helper()
		var kept *gotch.Tensor
		hooks := []Hook{FwdHook(Name(src), func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
			kept = keep(act)
			return nil, nil
		})}
		for _, name := range []string{"blocks.0.hook_resid_mid", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_mid"} {
			hooks = append(hooks, FwdHook(Name(name), func(*gotch.Tensor, string) (*gotch.Tensor, error) { return give(kept), nil }))
		}
		return forwardValues(t, m, Tokens(tok), hooks)
	}
	var vals []float32
	var shape []int64
	copyOf := func(act *gotch.Tensor) *gotch.Tensor { // a tensor of no scope with act's values
		if act != nil {
			vals, shape = gotch.MustToSlice[float32](act), act.Shape()
		}
		return gotch.MustFromSlice(vals, shape, gotch.CPU)
	}
	for _, tc := range []struct {
		name string
		keep func(*gotch.Tensor) *gotch.Tensor
	}{
		{"one alias", func(act *gotch.Tensor) *gotch.Tensor { return act.MustAlias() }},
		{"one tensor of the hook's own", copyOf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := run(t, func(act *gotch.Tensor) *gotch.Tensor { copyOf(act).Free(); return nil },
				func(*gotch.Tensor) *gotch.Tensor { return copyOf(nil) })
			got := run(t, tc.keep, func(kept *gotch.Tensor) *gotch.Tensor { return kept })
			gotchtest.Close(t, "logits", got, want, 1e-6)
		})
	}
}
