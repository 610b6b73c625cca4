package hookedmodel

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/weights"
)

// wantErr fails unless err is an error whose message holds every part.
func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one naming %q", what, parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name %q", what, err, p)
		}
	}
}

// TestConfigLiteral checks that a Config{...} literal, which leaves
// use_attn_scale, default_prepend_bos and normalization_type at Go's zero
// values where TransformerLens's defaults are true, true and "LN", is
// refused with an error naming them, unless it sets all three.
func TestConfigLiteral(t *testing.T) {
	dev := gotchtest.Device(t)
	lit := Config{NLayers: 1, DModel: 8, NCtx: 6, DHead: 4, DVocab: 11, ActFn: "relu"}
	_, err := New(lit, OnDevice(dev))
	wantErr(t, "New of a literal", err, "use_attn_scale", "default_prepend_bos", "normalization_type", "DefaultConfig")
	c := lit
	wantErr(t, "Init of a literal", c.Init(), "use_attn_scale", "default_prepend_bos", "normalization_type")

	lit.UseAttnScale, lit.NormalizationType = true, "LN"
	_, err = New(lit, OnDevice(dev))
	wantErr(t, "New of a literal without default_prepend_bos", err, "default_prepend_bos")
	if strings.Contains(err.Error(), "use_attn_scale") || strings.Contains(err.Error(), "normalization_type") {
		t.Errorf("the error names fields the literal set: %v", err)
	}

	lit.DefaultPrependBOS = true // all three set: unambiguous
	gotchtest.CheckLeaks(t)
	m, err := New(lit, OnDevice(dev))
	if err != nil {
		t.Fatalf("a literal that sets the three fields: %v", err)
	}
	m.Free()

	// A Config from DefaultConfig (or JSON) may set them false.
	d := smallConfig()
	d.UseAttnScale, d.DefaultPrependBOS, d.NormalizationType = false, false, ""
	if err := d.Init(); err != nil {
		t.Fatalf("DefaultConfig with the three switched off: %v", err)
	}
	var j Config
	if err := j.UnmarshalJSON([]byte(`{"n_layers":1,"d_model":8,"n_ctx":6,"d_head":4,"d_vocab":11,"act_fn":"relu","use_attn_scale":false}`)); err != nil {
		t.Fatal(err)
	}
	if err := j.Init(); err != nil || j.UseAttnScale || !j.DefaultPrependBOS || j.NormalizationType != "LN" {
		t.Fatalf("JSON config: err %v, use_attn_scale %v default_prepend_bos %v normalization_type %q", err, j.UseAttnScale, j.DefaultPrependBOS, j.NormalizationType)
	}
}

// TestConfigActFnRequired: a model with an MLP and no act_fn is refused
// naming act_fn and saying it must be set, as TransformerLens's assert.
func TestConfigActFnRequired(t *testing.T) {
	c := smallConfig()
	c.ActFn = ""
	wantErr(t, "no act_fn", c.Init(), "act_fn must be set", "attn_only")
	c.AttnOnly = true
	if err := c.Init(); err != nil {
		t.Fatalf("attn_only without act_fn: %v", err)
	}
}

// TestConfigTokenizerName: tokenizer_name is used (GPT-2's tokenizer is
// attached and gives d_vocab when unset, as TransformerLens takes it from
// the tokenizer) or refused naming it.
func TestConfigTokenizerName(t *testing.T) {
	dev := gotchtest.Device(t)
	c := smallConfig()
	c.TokenizerName = "NeelNanda/gpt-neox-tokenizer-digits"
	_, err := New(c, OnDevice(dev))
	wantErr(t, "unknown tokenizer", err, "tokenizer_name", "NeelNanda/gpt-neox-tokenizer-digits", "gpt2")

	c = smallConfig()
	c.TokenizerName = "gpt2" // d_vocab 23 < 50257
	_, err = New(c, OnDevice(dev))
	wantErr(t, "d_vocab below the tokenizer's", err, "tokenizer_name", "50257", "d_vocab is 23")

	gotchtest.CheckLeaks(t)
	c = smallConfig()
	c.TokenizerName, c.DVocab, c.DModel, c.DMLP, c.NLayers = "gpt2", -1, 8, 8, 1
	c.NHeads, c.DHead = 2, 4
	m, err := New(c, OnDevice(dev))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if m.Cfg.DVocab != 50257 || m.Tokenizer == nil {
		t.Fatalf("tokenizer_name gpt2: d_vocab %d, tokenizer %v; want 50257 and GPT-2's", m.Cfg.DVocab, m.Tokenizer)
	}
	out, err := m.Forward(context.Background(), Text("Hello world"))
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
}

// TestCfgReadOnly: changing m.Cfg after the model is built makes the next
// pass fail naming the changed field (and the setters), instead of being
// silently ignored; Config is a copy.
func TestCfgReadOnly(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ctx := context.Background()
	m := editedModel(t, nil, 5)
	defer m.Free()
	_, tok := randomTokens(t, 1, 5, m.Cfg.DVocab, 6)
	defer tok.Free()

	c := m.Config()
	c.UseAttnScale = false
	if out, err := m.Forward(ctx, Tokens(tok)); err != nil {
		t.Fatalf("a change to Config()'s copy reached the model: %v", err)
	} else {
		out.Free()
	}

	m.Cfg.UseAttnScale = false
	_, err := m.Forward(ctx, Tokens(tok))
	wantErr(t, "Forward after m.Cfg.UseAttnScale = false", err, "use_attn_scale (false, was true)", "read-only")
	_, _, err = m.RunWithCache(ctx, Tokens(tok))
	wantErr(t, "RunWithCache after the change", err, "use_attn_scale")
	m.Cfg.UseAttnScale = true

	m.Cfg.UseAttnResult = true
	_, err = m.Forward(ctx, Tokens(tok))
	wantErr(t, "Forward after m.Cfg.UseAttnResult = true", err, "use_attn_result", "SetUseAttnResult")
	m.Cfg.UseAttnResult = false

	m.Cfg.ActFn = "relu"
	m.SetUseAttnResult(true) // a setter does not bless another change
	_, err = m.Forward(ctx, Tokens(tok))
	wantErr(t, "Forward after m.Cfg.ActFn = relu and a setter", err, `act_fn ("relu", was "gelu_new")`)
	if strings.Contains(err.Error(), "use_attn_result") {
		t.Errorf("the error names the setter's field: %v", err)
	}
	m.Cfg.ActFn = "gelu_new"
	out, err := m.Forward(ctx, Tokens(tok))
	if err != nil {
		t.Fatalf("after undoing the change: %v", err)
	}
	out.Free()
}

// TestSetters: each TransformerLens setter makes its hook points appear
// (in HookNames, the cache and to hooks) and disappear again, without
// changing the logits; before it, a hook on such a point is an error
// naming the flag.
func TestSetters(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		flag   string
		set    func(m *HookedTransformer, on bool) error
		points []string
	}{
		{"use_attn_result", func(m *HookedTransformer, on bool) error { m.SetUseAttnResult(on); return nil },
			[]string{"blocks.0.attn.hook_result", "blocks.1.attn.hook_result"}},
		{"use_split_qkv_input", func(m *HookedTransformer, on bool) error { m.SetUseSplitQKVInput(on); return nil },
			[]string{"blocks.0.hook_q_input", "blocks.0.hook_k_input", "blocks.1.hook_v_input"}},
		{"use_hook_mlp_in", (*HookedTransformer).SetUseHookMLPIn, []string{"blocks.0.hook_mlp_in", "blocks.1.hook_mlp_in"}},
		{"use_attn_in", func(m *HookedTransformer, on bool) error { m.SetUseAttnIn(on); return nil },
			[]string{"blocks.0.hook_attn_in", "blocks.1.hook_attn_in"}},
	}
	for _, tc := range cases {
		t.Run(tc.flag, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, nil, 7)
			defer m.Free()
			_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 8)
			defer tok.Free()
			want := logits(t, m, tok)
			called := 0
			hook := FwdHook(Name(tc.points[0]), func(x *gotch.Tensor, _ string) (*gotch.Tensor, error) { called++; return nil, nil })

			_, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{hook})
			wantErr(t, "hook before the setter", err, tc.points[0], tc.flag, flagSetters[tc.flag]+"(true)")

			if err := tc.set(m, true); err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.points {
				if !slices.Contains(m.HookNames(), p) {
					t.Errorf("after the setter HookNames lacks %s", p)
				}
			}
			out, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{hook})
			if err != nil {
				t.Fatal(err)
			}
			out.Free()
			if called != 1 {
				t.Errorf("the hook on %s ran %d times, want 1", tc.points[0], called)
			}
			out, cache, err := m.RunWithCache(ctx, Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			gotchtest.Close(t, "logits with "+tc.flag, gotchtest.Values(t, out.Logits), want, 1e-5)
			out.Free()
			for _, p := range tc.points {
				if _, err := cache.Get(p); err != nil {
					t.Errorf("cache after the setter: %v", err)
				}
			}
			cache.Free()
			if c := m.Config(); !configFlag(c, tc.flag) || !configFlag(m.Cfg, tc.flag) {
				t.Errorf("the config does not record %s=true", tc.flag)
			}

			if err := tc.set(m, false); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(m.HookNames(), tc.points[0]) {
				t.Errorf("after switching %s off HookNames still has %s", tc.flag, tc.points[0])
			}
			_, err = m.RunWithHooks(ctx, Tokens(tok), []Hook{hook})
			wantErr(t, "hook after switching off", err, tc.points[0], tc.flag)
		})
	}
	t.Run("attn_only", func(t *testing.T) {
		m := editedModel(t, func(c *Config) { c.AttnOnly = true }, 9)
		defer m.Free()
		wantErr(t, "SetUseHookMLPIn on an attn_only model", m.SetUseHookMLPIn(true), "use_hook_mlp_in", "attn_only")
	})
}

// TestSetUseAttnResultValues: hook_result summed over heads plus b_O is
// hook_attn_out.
func TestSetUseAttnResultValues(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := editedModel(t, nil, 10)
	defer m.Free()
	m.SetUseAttnResult(true)
	_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 11)
	defer tok.Free()
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
	defer cache.Free()
	s := gotch.NewScope()
	defer s.Close()
	res := cache.MustGet("blocks.1.attn.hook_result") // [batch pos head d_model]
	if res.Dim() != 4 || res.Size(2) != int64(m.Cfg.NHeads) {
		t.Fatalf("hook_result has shape %v", res.Shape())
	}
	sum := s.Attach(s.Attach(res.MustSumDims([]int64{2}, false)).MustAdd(m.Blocks[1].Attn.BO))
	gotchtest.Close(t, "sum of hook_result + b_O vs hook_attn_out", gotchtest.Values(t, sum), gotchtest.Values(t, cache.MustGet("blocks.1.hook_attn_out")), 1e-5)
}

func configFlag(c Config, flag string) bool {
	switch flag {
	case "use_attn_result":
		return c.UseAttnResult
	case "use_split_qkv_input":
		return c.UseSplitQKVIn
	case "use_hook_mlp_in":
		return c.UseHookMLPIn
	case "use_attn_in":
		return c.UseAttnIn
	}
	panic(flag)
}

// TestLoadHFScaleAttnWeights: GPT-2's scale_attn_weights=false (Hugging
// Face then skips the division by sqrt(d_head)) loads as
// use_attn_scale=false and gives the source model's logits; absent it is
// true.
func TestLoadHFScaleAttnWeights(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		keys map[string]any
		want bool
	}{
		{"false", map[string]any{"scale_attn_weights": false}, false},
		{"true", map[string]any{"scale_attn_weights": true}, true},
		{"absent", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			src := editedModel(t, func(c *Config) { c.UseAttnScale = tc.want }, 31)
			defer src.Free()
			dir := writeHFGPT2(t, src, hfCheckpoint{prefix: "transformer.", dtype: weights.F32, edit: func(_ map[string]*weights.Tensor, c map[string]any) {
				delete(c, "scale_attn_weights")
				for k, v := range tc.keys {
					c[k] = v
				}
			}})
			_, tok := randomTokens(t, 2, 6, src.Cfg.DVocab, 32)
			defer tok.Free()
			m, err := Load(ctx, dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if m.Cfg.UseAttnScale != tc.want {
				t.Fatalf("loaded use_attn_scale=%v, want %v", m.Cfg.UseAttnScale, tc.want)
			}
			gotchtest.Close(t, "logits of the loaded model", logits(t, m, tok), logits(t, src, tok), 1e-6)
		})
	}
}

// BenchmarkCheckConfig is the cost checkConfig adds to every pass.
func BenchmarkCheckConfig(b *testing.B) {
	m := &HookedTransformer{Cfg: DefaultConfig(), cfg: DefaultConfig()}
	for b.Loop() {
		if err := m.checkConfig(); err != nil {
			b.Fatal(err)
		}
	}
}
