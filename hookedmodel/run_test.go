package hookedmodel

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

func run(t *testing.T, m *HookedTransformer, in Input, opts ...RunOption) *Output {
	t.Helper()
	out, err := m.Forward(context.Background(), in, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Free)
	return out
}

// maskTensor makes a [batch pos] padding mask (or any int64 matrix).
func maskTensor(t *testing.T, rows [][]int64) *gotch.Tensor {
	t.Helper()
	var flat []int64
	for _, r := range rows {
		flat = append(flat, r...)
	}
	return gotch.MustFromSlice(flat, []int64{int64(len(rows)), int64(len(rows[0]))}, gotchtest.Device(t))
}

// maskOpts is the AttentionMask option for rows (none for nil rows); the
// mask is freed when the test ends.
func maskOpts(t *testing.T, rows [][]int64) []RunOption {
	t.Helper()
	if rows == nil {
		return nil
	}
	mask := maskTensor(t, rows)
	t.Cleanup(mask.Free)
	return []RunOption{AttentionMask(mask)}
}

// vecRows reads a [batch pos d] tensor as rows of positions of vectors.
func vecRows(t *testing.T, x *gotch.Tensor) [][][]float64 {
	t.Helper()
	v := gotchtest.Values(t, x)
	B, P, D := int(x.Size(0)), int(x.Size(1)), int(x.Size(2))
	out := make([][][]float64, B)
	for b := range B {
		out[b] = make([][]float64, P)
		for p := range P {
			out[b][p] = v[(b*P+p)*D:][:D]
		}
	}
	return out
}

func flatten(xs [][]float64) []float64 { return slices.Concat(xs...) }

func TestFusedAttentionMatchesExplicit(t *testing.T) {
	patterns, err := Regexp(`hook_pattern$`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  string
		mask [][]int64
	}{
		{"causal", "causal", nil},
		{"bidirectional", "bidirectional", nil},
		{"causal with padding", "causal", [][]int64{{1, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1, 1}}},
		{"bidirectional with padding", "bidirectional", [][]int64{{0, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			m := editedModel(t, func(c *Config) { c.AttentionDir = tc.dir }, 31)
			defer m.Free()
			_, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, 32)
			defer tok.Free()
			opts := maskOpts(t, tc.mask)

			// Nobody observes the pattern: the fused kernel runs where it can.
			p, err := m.newPass(context.Background(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Blocks[0].Attn.fusable(p, nil, 0, 4) {
				t.Errorf("attention with nothing observing it does not take the fused path")
			}
			p.s.Close()
			fused := run(t, m, Tokens(tok), opts...)

			out, cache, err := m.RunWithCache(context.Background(), Tokens(tok), append(opts, NamesFilter(patterns))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cache.Free()
			defer out.Free()
			if cache.Len() != 2 {
				t.Fatalf("cached %q, want both patterns", cache.Keys())
			}
			g, w := gotchtest.Values(t, fused.Logits), gotchtest.Values(t, out.Logits)
			if tc.mask != nil { // padding queries give garbage either way; compare real ones
				for i := range g {
					b, q := i/(7*m.Cfg.DVocab), (i/m.Cfg.DVocab)%7
					if tc.mask[b][q] == 0 {
						g[i], w[i] = 0, 0
					}
				}
			}
			gotchtest.Close(t, "fused vs explicit logits", g, w, 1e-5)
		})
	}
}

func TestReturnTypes(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 41)
	defer m.Free()
	rows, tok := randomTokens(t, 2, 6, cfg.DVocab, 42)
	defer tok.Free()

	both := run(t, m, Tokens(tok), Return(ReturnBoth), LossPerToken())
	if both.Logits == nil || both.Loss == nil || !slices.Equal(both.Loss.Shape(), []int64{2, 5}) {
		t.Fatalf("ReturnBoth with LossPerToken: logits %v, loss %v", both.Logits, both.Loss)
	}
	// The per-token loss is -log_softmax(logits) at the next token.
	logits := vecRows(t, both.Logits)
	var want []float64
	for b := range rows {
		for p := range len(rows[b]) - 1 {
			l := logits[b][p]
			mx := slices.Max(l)
			sum := 0.0
			for _, v := range l {
				sum += math.Exp(v - mx)
			}
			want = append(want, -(l[rows[b][p+1]] - mx - math.Log(sum)))
		}
	}
	perToken := gotchtest.Values(t, both.Loss)
	gotchtest.Close(t, "per-token loss", perToken, want, 1e-5)
	mean := 0.0
	for _, v := range perToken {
		mean += v / float64(len(perToken))
	}

	loss := run(t, m, Tokens(tok), Return(ReturnLoss))
	if loss.Logits != nil || loss.Loss.Dim() != 0 {
		t.Errorf("ReturnLoss: logits %v, loss %v", loss.Logits, loss.Loss)
	}
	gotchtest.Close(t, "loss", []float64{loss.Loss.MustItem()}, []float64{mean}, 1e-6)

	logitsOnly := run(t, m, Tokens(tok))
	if logitsOnly.Loss != nil || logitsOnly.Logits == nil {
		t.Errorf("default return: logits %v, loss %v", logitsOnly.Logits, logitsOnly.Loss)
	}
	gotchtest.Close(t, "logits", gotchtest.Values(t, logitsOnly.Logits), gotchtest.Values(t, both.Logits), 1e-6)

	none := run(t, m, Tokens(tok), Return(ReturnNone))
	if none.Logits != nil || none.Loss != nil || none.Residual != nil {
		t.Errorf("ReturnNone returned logits %v, loss %v", none.Logits, none.Loss)
	}
	if got := gotch.MustToSlice[int64](none.Tokens); !slices.Equal(got, slices.Concat(rows...)) {
		t.Errorf("Output.Tokens = %v", got)
	}

	// With a padding mask the mean runs over the real next tokens only.
	mask := maskTensor(t, [][]int64{{0, 0, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}})
	defer mask.Free()
	padded := run(t, m, Tokens(tok), Return(ReturnLoss), LossPerToken(), AttentionMask(mask))
	paddedMean := run(t, m, Tokens(tok), Return(ReturnLoss), AttentionMask(mask))
	pt, sum := gotchtest.Values(t, padded.Loss), 0.0
	for i, v := range pt {
		if i < 2 && v != 0 {
			t.Errorf("per-token loss at padding %d is %g, want 0", i, v)
		}
		sum += v
	}
	gotchtest.Close(t, "masked mean loss", []float64{paddedMean.Loss.MustItem()}, []float64{sum / 8}, 1e-6)
}

func TestRunErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 43)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, cfg.DVocab, 44)
	defer tok.Free()
	resid := gotch.MustZeros([]int64{2, 5, 16}, gotch.Float, gotchtest.Device(t))
	defer resid.Free()
	floats := gotch.MustZeros([]int64{2, 5}, gotch.Float, gotchtest.Device(t))
	defer floats.Free()
	big := gotch.MustFull([]int64{1, 3}, 23, gotch.Int64, gotchtest.Device(t))
	defer big.Free()
	long := gotch.MustZeros([]int64{1, 13}, gotch.Int64, gotchtest.Device(t))
	defer long.Free()
	shortTok := gotch.MustZeros([]int64{2, 4}, gotch.Int64, gotchtest.Device(t))
	defer shortTok.Free()
	badMask := maskTensor(t, [][]int64{{1, 1, 1}})
	defer badMask.Free()
	for _, tc := range []struct {
		name string
		in   Input
		opts []RunOption
		want string
	}{
		{"token out of range", Tokens(big), nil, "d_vocab"},
		{"float tokens", Tokens(floats), nil, "int64 or int32"},
		{"nil tokens", Tokens(nil), nil, "nil"},
		{"no input", nil, nil, "no input"},
		{"stop_at_layer out of range", Tokens(tok), []RunOption{StopAtLayer(3)}, "stop_at_layer 3"},
		{"stop_at_layer below range", Tokens(tok), []RunOption{StopAtLayer(-3)}, "stop_at_layer -3"},
		{"start_at_layer past stop", Residual(resid), []RunOption{StartAtLayer(2), StopAtLayer(1)}, "start_at_layer 2"},
		{"start_at_layer with tokens", Tokens(tok), []RunOption{StartAtLayer(1)}, "Residual"},
		{"residual of the wrong width", Residual(floats), []RunOption{StartAtLayer(1)}, "residual"},
		{"loss without tokens", Residual(resid), []RunOption{StartAtLayer(1), Return(ReturnBoth)}, "LossTokens"},
		{"loss tokens of the wrong length", Residual(resid), []RunOption{StartAtLayer(1), Return(ReturnLoss), LossTokens(shortTok)}, "do not match"},
		{"float loss tokens", Residual(resid), []RunOption{StartAtLayer(1), Return(ReturnLoss), LossTokens(floats)}, "int64 or int32"},
		{"mask of the wrong shape", Tokens(tok), []RunOption{AttentionMask(badMask)}, "attention mask"},
		{"longer than n_ctx", Tokens(long), nil, "n_ctx"},
		{"text without a tokenizer", Text("hello"), nil, "tokenizer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			out, err := m.Forward(context.Background(), tc.in, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
			if out != nil {
				t.Errorf("an output with the error")
				out.Free()
			}
			out, c, err := m.RunWithCache(context.Background(), tc.in, tc.opts...)
			if err == nil || out != nil || c != nil {
				t.Errorf("RunWithCache: error %v", err)
			}
		})
	}
}

func TestContextCancellation(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 45)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, cfg.DVocab, 46)
	defer tok.Free()

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
		opts []RunOption
	}{
		{"cancelled", cancelled, context.Canceled, nil},
		{"cancelled, no block to run", cancelled, context.Canceled, []RunOption{StopAtLayer(0)}},
		{"deadline passed", past, context.DeadlineExceeded, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			if _, err := m.Forward(tc.ctx, Tokens(tok), tc.opts...); !errors.Is(err, tc.want) {
				t.Errorf("Forward: %v, want %v", err, tc.want)
			}
			if _, c, err := m.RunWithCache(tc.ctx, Tokens(tok), tc.opts...); !errors.Is(err, tc.want) || c != nil {
				t.Errorf("RunWithCache: %v, want %v", err, tc.want)
			}
			if _, err := m.RunWithHooks(tc.ctx, Tokens(tok), []Hook{FwdHook(Name("blocks.0.attn.hook_z"), zeroHead(0))}, tc.opts...); !errors.Is(err, tc.want) {
				t.Errorf("RunWithHooks: %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("cancelled during the pass", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var later int
		hooks := []Hook{
			FwdHook(Name("blocks.0.hook_resid_post"), func(*gotch.Tensor, string) (*gotch.Tensor, error) { cancel(); return nil, nil }),
			FwdHook(Name("blocks.1.hook_resid_pre"), func(*gotch.Tensor, string) (*gotch.Tensor, error) { later++; return nil, nil }),
		}
		out, cache, err := func() (*Output, *ActivationCache, error) {
			remove, err := m.Hooks(hooks...)
			if err != nil {
				t.Fatal(err)
			}
			defer remove()
			return m.RunWithCache(ctx, Tokens(tok), InclBwd(), Return(ReturnLoss))
		}()
		if !errors.Is(err, context.Canceled) || out != nil || cache != nil {
			t.Errorf("RunWithCache cancelled in a hook: %v", err)
		}
		if later != 0 {
			t.Errorf("the pass went on into block 1 after the cancel")
		}
	})
	// The model works afterwards.
	run(t, m, Tokens(tok))
}

// sliceRows keeps positions [from, from+n) of row b of a [batch pos d]
// tensor's values.
func sliceRows(x [][][]float64, b, from, n int) []float64 { return flatten(x[b][from : from+n]) }

func TestPadding(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	m := newTestModel(t, cfg, 51)
	defer m.Free()
	rowsA, a := randomTokens(t, 1, 6, cfg.DVocab, 52)
	defer a.Free()
	rowsB, b := randomTokens(t, 1, 4, cfg.DVocab, 53)
	defer b.Free()
	wantA := vecRows(t, run(t, m, Tokens(a)).Logits)[0]
	wantB := vecRows(t, run(t, m, Tokens(b)).Logits)[0]
	A, B := rowsA[0], rowsB[0]
	const pad = 7

	t.Run("left with a mask", func(t *testing.T) {
		tok := maskTensor(t, [][]int64{A, {pad, pad, B[0], B[1], B[2], B[3]}})
		defer tok.Free()
		for _, dtype := range []gotch.DType{gotch.Int64, gotch.Bool, gotch.Float} {
			mask := maskTensor(t, [][]int64{{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}})
			typed := mask.MustTo(dtype)
			mask.Free()
			got := vecRows(t, run(t, m, Tokens(tok), AttentionMask(typed)).Logits)
			typed.Free()
			gotchtest.Close(t, "row A "+dtype.String(), flatten(got[0]), flatten(wantA), 1e-4)
			gotchtest.Close(t, "row B "+dtype.String(), sliceRows(got, 1, 2, 4), flatten(wantB), 1e-4)
		}
	})

	t.Run("right without a mask", func(t *testing.T) {
		tok := maskTensor(t, [][]int64{{B[0], B[1], B[2], B[3], pad, pad}, A})
		defer tok.Free()
		got := vecRows(t, run(t, m, Tokens(tok)).Logits)
		gotchtest.Close(t, "row B", sliceRows(got, 0, 0, 4), flatten(wantB), 1e-4)
		gotchtest.Close(t, "row A", flatten(got[1]), flatten(wantA), 1e-4)
	})
}

func TestTextInput(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := gpt2TinyModel(t)
	if m.Tokenizer == nil {
		t.Fatal("a model with GPT-2's vocabulary has no tokenizer")
	}
	short, long := "a b c", "a longer text here"
	ids, _, err := m.Tokenizer.ToTokens([]string{short, long}, tokenizer.PrependBOS(false))
	if err != nil {
		t.Fatal(err)
	}
	n, width := 3, len(ids[1])
	if width <= n {
		t.Fatalf("%q has %d tokens, not more than %q", long, width, short)
	}
	alone := vecRows(t, run(t, m, Text(short), PrependBOS(false)).Logits)[0]
	aloneBOS := vecRows(t, run(t, m, Text(short)).Logits)[0]

	left := run(t, m, Text(short, long), PaddingSide("left"), PrependBOS(false))
	if !slices.Equal(left.Tokens.Shape(), []int64{2, int64(width)}) {
		t.Fatalf("tokens %s, want [2 %d]", left.Tokens, width)
	}
	toks := gotch.MustToSlice[int64](left.Tokens)
	if toks[0] != int64(m.Tokenizer.Pad()) || toks[width-n] == int64(m.Tokenizer.BOS()) {
		t.Errorf("left-padded tokens without BOS: %v", toks)
	}
	got := vecRows(t, left.Logits)
	gotchtest.Close(t, "left-padded short text", sliceRows(got, 0, width-n, n), flatten(alone), 1e-4)

	right := run(t, m, Text(short, long))
	if toks := gotch.MustToSlice[int64](right.Tokens); toks[0] != int64(m.Tokenizer.BOS()) {
		t.Errorf("tokens %v do not start with BOS", toks)
	}
	got = vecRows(t, right.Logits)
	gotchtest.Close(t, "right-padded short text", sliceRows(got, 0, 0, n+1), flatten(aloneBOS), 1e-4)

	if _, err := m.Forward(context.Background(), Text(short), PaddingSide("middle")); err == nil {
		t.Errorf("padding side \"middle\" accepted")
	}
	if _, err := m.Forward(context.Background(), Text()); err == nil {
		t.Errorf("no texts accepted")
	}
}

func TestBackward(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	cfg.DType = "float64" // for the finite differences
	m := newTestModel(t, cfg, 61)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, cfg.DVocab, 62)
	defer tok.Free()
	ctx := context.Background()
	const point = "blocks.1.hook_resid_pre"

	t.Run("BwdHook", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		seen := map[string][]int64{}
		record := func(g *gotch.Tensor, name string) (*gotch.Tensor, error) {
			seen[name] = g.Shape()
			return nil, nil
		}
		out, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{
			BwdHook(Names(point, "hook_embed", "blocks.0.attn.hook_pattern"), record),
			// An in-place edit where the gradient starts is fine.
			FwdHook(Name("blocks.0.hook_resid_pre"), func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
				act.MustMulScalar_(1)
				return nil, nil
			}),
		}, Return(ReturnLoss))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Free()
		if len(seen) != 0 {
			t.Errorf("backward hooks ran before Backward: %v", seen)
		}
		if err := out.Backward(); err != nil {
			t.Fatal(err)
		}
		want := map[string][]int64{point: {2, 5, 16}, "hook_embed": {2, 5, 16}, "blocks.0.attn.hook_pattern": {2, 4, 5, 5}}
		for k, s := range want {
			if !slices.Equal(seen[k], s) {
				t.Errorf("gradient at %s: shape %v, want %v", k, seen[k], s)
			}
		}
	})

	t.Run("InclBwd and finite differences", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		out, cache, err := m.RunWithCache(ctx, Tokens(tok), InclBwd(), Return(ReturnLoss))
		if err != nil {
			t.Fatal(err)
		}
		defer cache.Free()
		defer out.Free()
		if _, err := cache.Get("blocks.0.hook_resid_post_grad"); err == nil {
			t.Errorf("gradients cached before Backward")
		}
		if err := out.Backward(); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"blocks.0.hook_resid_post", "hook_embed", "blocks.1.attn.hook_z"} {
			g, err := cache.Get(k + "_grad")
			if err != nil {
				t.Error(err)
				continue
			}
			if !slices.Equal(g.Shape(), cache.MustGet(k).Shape()) {
				t.Errorf("%s_grad: shape %v, want the activation's %v", k, g.Shape(), cache.MustGet(k).Shape())
			}
		}
		grad := gotchtest.Values(t, cache.MustGet(point+"_grad"))

		// d loss / d resid[b, p, d] by central differences.
		loss := func(b, p, d int64, eps float64) float64 {
			nudge := FwdHook(Name(point), func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
				s := gotch.NewScope() // the hook's ops on act land in it
				defer s.Close()
				e := s.Attach(act.MustAlias()).MustSelect(0, b).MustSelect(0, p).MustSelect(0, d)
				e.MustFill_(e.MustItem() + eps)
				return nil, nil
			})
			o, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{nudge}, Return(ReturnLoss))
			if err != nil {
				t.Fatal(err)
			}
			defer o.Free()
			return o.Loss.MustItem()
		}
		const eps = 1e-5
		var fd, an []float64
		for _, i := range [][3]int64{{0, 0, 0}, {0, 2, 5}, {1, 3, 15}, {1, 1, 7}, {0, 4, 3}} {
			fd = append(fd, (loss(i[0], i[1], i[2], eps)-loss(i[0], i[1], i[2], -eps))/(2*eps))
			an = append(an, grad[(i[0]*5+i[1])*16+i[2]])
		}
		gotchtest.Close(t, "gradient vs finite differences", an, fd, 1e-6)
		if gotchtest.RelErr(an, make([]float64, len(an))) < 1e-3 {
			t.Errorf("the gradients are all about zero: %v", an)
		}
	})

	t.Run("with hook_tokens and a residual input", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		cfg := smallConfig()
		cfg.UseHookTokens = true
		m := newTestModel(t, cfg, 63)
		defer m.Free()
		out, cache, err := m.RunWithCache(ctx, Tokens(tok), InclBwd(), Return(ReturnLoss))
		if err != nil {
			t.Fatal(err)
		}
		defer cache.Free()
		defer out.Free()
		if err := out.Backward(); err != nil {
			t.Fatal(err)
		}
		if _, err := cache.Get("hook_tokens_grad"); err == nil {
			t.Errorf("integer tokens have a gradient")
		}
		resid := cache.MustGet("blocks.1.hook_resid_pre")
		want := cache.MustGet("blocks.1.hook_resid_pre_grad")
		// From a residual stream: the gradient there is the same.
		out2, cache2, err := m.RunWithCache(ctx, Residual(resid), StartAtLayer(1), LossTokens(tok), InclBwd(), Return(ReturnLoss))
		if err != nil {
			t.Fatal(err)
		}
		defer cache2.Free()
		defer out2.Free()
		if err := out2.Backward(); err != nil {
			t.Fatal(err)
		}
		sameValues(t, "gradient from a residual input", cache2.MustGet("blocks.1.hook_resid_pre_grad"), want, 1e-12)
		if resid.RequiresGrad() {
			t.Errorf("the caller's residual tensor now requires grad")
		}
	})

	t.Run("errors", func(t *testing.T) {
		gotchtest.CheckLeaks(t)
		for _, tc := range []struct {
			name string
			opts []RunOption
			want string
		}{
			{"logits", nil, "scalar loss"},
			{"per-token loss", []RunOption{Return(ReturnLoss), LossPerToken()}, "scalar loss"},
			{"no gradients asked for", []RunOption{Return(ReturnLoss)}, ""},
		} {
			out, err := m.Forward(ctx, Tokens(tok), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := out.Backward(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: Backward error %v, want one saying %q", tc.name, err, tc.want)
			}
			out.Free()
		}
		// Twice: the graph is gone the second time.
		out, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{BwdHook(Name(point), func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil })}, Return(ReturnLoss))
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Backward(); err != nil {
			t.Fatal(err)
		}
		if err := out.Backward(); err == nil {
			t.Errorf("a second Backward succeeded")
		}
		out.Free()
		// A failing backward hook names its point.
		out, err = m.RunWithHooks(ctx, Tokens(tok), []Hook{BwdHook(Name(point), func(*gotch.Tensor, string) (*gotch.Tensor, error) { panic("bwd boom") })}, Return(ReturnLoss))
		if err != nil {
			t.Fatal(err)
		}
		err = out.Backward()
		var he *HookError
		if !errors.As(err, &he) || !strings.HasPrefix(he.Point, point) || !strings.Contains(err.Error(), "bwd boom") {
			t.Errorf("a panicking backward hook gave %v", err)
		}
		out.Free()
	})
}

func TestModelTokenizerMethods(t *testing.T) {
	gotchtest.CheckLeaks(t)
	c := DefaultConfig()
	c.NLayers, c.DModel, c.DHead, c.NCtx, c.DVocab, c.AttnOnly = 1, 8, 4, 16, 50257, true
	m, err := New(c, OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	tok, err := m.ToTokens([]string{"Hello world", "Hi"}, PaddingSide("left"))
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Free()
	if got := gotch.MustToSlice[int64](tok); !slices.Equal(got, []int64{50256, 15496, 995, 50256, 50256, 17250}) {
		t.Errorf("ToTokens with left padding: %v", got)
	}
	strs, err := m.ToStrTokens("Hello world", PrependBOS(false))
	if err != nil || !slices.Equal(strs, []string{"Hello", " world"}) {
		t.Errorf("ToStrTokens: %q, %v", strs, err)
	}
	if id, err := m.ToSingleToken(" world"); err != nil || id != 995 {
		t.Errorf("ToSingleToken(\" world\") = %d, %v; want 995", id, err)
	}
	if _, err := m.ToSingleToken("Hello world"); err == nil {
		t.Error("ToSingleToken of two tokens succeeded")
	}
	if s, err := m.ToString([]int64{15496, 995}); err != nil || s != "Hello world" {
		t.Errorf("ToString: %q, %v", s, err)
	}
	if pos, err := m.GetTokenPosition(" world", "Hello world world", "last"); err != nil || pos != 3 {
		t.Errorf("GetTokenPosition last: %d, %v; want 3 (after BOS)", pos, err)
	}
}
