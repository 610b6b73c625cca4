package analysis

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// emptyEnv is what the empty-input cases call into: a small induction
// model and a one-layer model with GPT-2's tokenizer, for TestPrompt.
type emptyEnv struct {
	m    *hookedmodel.HookedTransformer // NewInductionModel: 2 layers of 3 heads, d_vocab 8
	text *hookedmodel.HookedTransformer
	s    *gotch.Scope // the input tensors of a call (see gotchtest.CheckEmpty)
}

// TestEmptyInputs calls every exported function and method with empty and
// nil inputs (see emptyCases): each gives an error that says what was
// empty, or its documented empty result; none panics or leaks.
func TestEmptyInputs(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	im, err := NewInductionModel(InductionConfig{DVocab: 8, NCtx: 24}, hookedmodel.OnDevice(dev))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Free()
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.AttnOnly = 1, 8, 4, 2, true
	cfg.NCtx, cfg.DVocab = 16, 50257 // GPT-2's vocabulary: New attaches its tokenizer
	text, err := hookedmodel.New(cfg, hookedmodel.OnDevice(dev))
	if err != nil {
		t.Fatal(err)
	}
	defer text.Free()
	e := &emptyEnv{m: im.Model, text: text}
	gotchtest.CheckEmpty(t, &e.s, emptyCases(e))
}

// TestExportedHaveEmptyCases: every exported function and method of the
// package has empty-input cases or a reason to need none, so that a new one
// cannot be added without them.
func TestExportedHaveEmptyCases(t *testing.T) {
	gotchtest.CheckCovered(t, ".", emptyCases(&emptyEnv{}), emptyExempt)
}

// emptyExempt are the exported functions with no input that could be
// empty, each with the reason. Those whose receiver can be zero also have
// a case calling them so.
var emptyExempt = map[string]string{
	"ExcludeBOS":          "an option without arguments",
	"ExcludeCurrentToken": "an option without arguments",
	"PatternNames":        "no input",
	"Table.At":            "indexing: an index out of range panics, as a slice index does (an empty table has none in range)",
	"Table.Set":           "indexing: an index out of range panics, as a slice index does (an empty table has none in range)",
	"Table.Index":         "indexing: a flat index out of range panics, as a slice index does (an empty table has none in range)",
	"AblationMode.String": "a getter (case: the zero mode)",
	"Component.HookName":  "a getter (case: the zero component)",
	"Component.String":    "a getter (case: the zero component)",
	"HeadID.String":       "a getter (case: the zero head)",
	"Sweep.String":        "a getter (case: the zero sweep)",
	"PromptTest.Ranks":    "a getter (case: the zero result)",
	"PromptTest.String":   "a getter (case: the zero result)",
	"Table.Argmax":        "a getter (case: empty tables)",
	"Table.String":        "a getter (case: empty tables)",
	"Table.Sum":           "a getter (case: empty tables)",
	"Ablation.Hooks":      "a getter (case: the zero ablation)",
	"Ablation.Close":      "no input; nil and zero ablations are no-ops (case)",
	"InductionModel.Free": "no input; nil and zero models are no-ops (case)",
}

// emptyCases are the calls with empty and nil inputs, by the exported name
// they call. The closures read e only when they run, so the coverage test
// can list the names without a model.
func emptyCases(e *emptyEnv) map[string][]gotchtest.EmptyCase {
	type C = gotchtest.EmptyCase
	ctx := context.Background()
	zeros := func(shape ...int64) *gotch.Tensor {
		return e.s.Attach(gotch.MustZeros(shape, gotch.Int64, e.m.Device()))
	}
	ids := func(v ...int64) *gotch.Tensor { // [1 len(v)]
		return e.s.Attach(gotch.MustFromSlice(v, []int64{1, int64(len(v))}, e.m.Device()))
	}
	tok := func() *gotch.Tensor { return ids(0, 1, 2, 3, 1, 2) }
	pattern := func() Pattern { p, _ := PatternByName("previous_token_head"); return p }
	// metricOf applies a metric to logits [1 3 8].
	metricOf := func(mt Metric, logits *gotch.Tensor) error {
		v, err := mt(logits)
		v.Free()
		return err
	}
	logits := func() *gotch.Tensor { return e.s.Attach(gotch.MustZeros([]int64{1, 3, 8}, gotch.Float, e.m.Device())) }
	// repeated checks RepeatedTokens under opts.
	repeated := func(opts ...Option) error {
		t, err := RepeatedTokens(e.m, opts...)
		t.Free()
		return err
	}
	detect := func(opts ...Option) error { return errOf(DetectHead(ctx, e.m, tok(), pattern(), opts...)) }
	ablation := func(mode AblationMode, comps []Component, opts ...Option) error {
		a, err := NewAblation(ctx, e.m, mode, comps, opts...)
		if err == nil && len(a.Hooks()) != len(comps) {
			err = fmt.Errorf("%d hooks for %d components", len(a.Hooks()), len(comps))
		}
		a.Close()
		return err
	}
	patch := func(opts ...Option) error {
		return errOf(ActivationPatching(ctx, e.m, tok(), tok(), LogitDiff(-1, []int64{1}, nil), ResidPre, opts...))
	}
	prompt := func(p, answer string, opts ...Option) error {
		return errOf(TestPrompt(ctx, e.text, p, answer, opts...))
	}
	nan := func(x float64) error {
		if !math.IsNaN(x) {
			return fmt.Errorf("got %g, want NaN", x)
		}
		return nil
	}
	// fm is a [8 8] factored matrix of zeros, of inner dim 1.
	fm := func() *hookedmodel.FactoredMatrix {
		f, err := hookedmodel.NewFactoredMatrix(e.s.Attach(gotch.MustZeros([]int64{8, 1}, gotch.Float, e.m.Device())),
			e.s.Attach(gotch.MustZeros([]int64{1, 8}, gotch.Float, e.m.Device())))
		if err != nil {
			panic(err)
		}
		return f
	}
	empty := func() *Table { return NewTable([]string{"layer", "head"}, 0, 3) }
	noModel := "nil model"

	return map[string][]C{
		// Options, applied where they are read.
		"AtPosition": {{Input: "0", Call: func() error {
			return errOf(LogitAttribution(ctx, e.m, tok(), []int64{1}, nil, AtPosition(0)))
		}}},
		"BOS":             {{Input: "0", Call: func() error { return repeated(BOS(0)) }}},
		"BaselineSamples": {{Input: "0", Call: func() error { return errOf(CompositionScores(ctx, e.m, BaselineSamples(0))) }, Want: "0 baseline samples"}},
		"BatchSize":       {{Input: "0", Call: func() error { return repeated(BatchSize(0)) }, Want: "batch 0 must be positive"}},
		"BlockRows": {{Input: "0", Call: func() error {
			f := fm()
			defer f.Free()
			return errOf(CircuitAccuracy(ctx, f, BlockRows(0)))
		}, Want: "blocks of 0 rows"}},
		"CleanCache": {{Input: "nil (run the clean input)", Call: func() error { return patch(CleanCache(nil)) }}},
		"SplitOver":  {{Input: "nil (one process)", Call: func() error { return patch(SplitOver(nil)) }}},
		"OnlyHeads": {{Input: "no heads (all of them)", Call: func() error {
			t, err := DetectHead(ctx, e.m, tok(), pattern(), OnlyHeads())
			if err == nil && t.Argmax() == nil {
				err = fmt.Errorf("no head scored: %v", t)
			}
			return err
		}}},
		"PrependBOS":           {{Input: `false with an empty prompt`, Call: func() error { return prompt("", "a", PrependBOS(false)) }, Want: "the prompt has no tokens"}},
		"PrependSpaceToAnswer": {{Input: `false with an empty answer`, Call: func() error { return prompt("a", "", PrependSpaceToAnswer(false)) }, Want: "the answer has no tokens"}},
		"Reference": {
			{Input: "nil", Call: func() error { return ablation(MeanAblation, []Component{Head(0, 0)}, Reference(nil)) }, Want: "mean ablation needs Reference tokens"},
			{Input: "[1 0]", Call: func() error { return ablation(MeanAblation, []Component{Head(0, 0)}, Reference(zeros(1, 0))) }, Want: "batch > 0 and pos > 0"},
		},
		"SeqLen":           {{Input: "0", Call: func() error { return repeated(SeqLen(0)) }, Want: "seq_len 0 and batch 4 must be positive"}},
		"TokenRange":       {{Input: "0, 0", Call: func() error { return repeated(TokenRange(0, 0)) }, Want: "token range [0, 0) is not within"}},
		"TopK":             {{Input: "0", Call: func() error { return errOf(LogitLens(ctx, e.m, tok(), TopK(0))) }, Want: "top-k 0 is not within"}},
		"WithErrorMeasure": {{Input: `""`, Call: func() error { return detect(WithErrorMeasure("")) }, Want: `error measure "" is not`}},
		"WithMetric": {{Input: "nil (the loss)", Call: func() error {
			return errOf(AblationTable(ctx, e.m, tok(), ZeroAblation, WithMetric(nil)))
		}}},
		"WithProgress": {{Input: "nil (no bar)", Call: func() error { return patch(WithProgress(nil)) }}},
		"WithSeed":     {{Input: "0", Call: func() error { return repeated(WithSeed(0)) }}},

		// Analyses.
		"AblationTable": {
			{Input: "nil model", Call: func() error { return errOf(AblationTable(ctx, nil, nil, ZeroAblation)) }, Want: noModel},
			{Input: "nil tokens", Call: func() error { return errOf(AblationTable(ctx, e.m, nil, ZeroAblation)) }, Want: "tokens: nil"},
			{Input: "tokens [1 0]", Call: func() error { return errOf(AblationTable(ctx, e.m, zeros(1, 0), ZeroAblation)) }, Want: "batch > 0 and pos > 0"},
			{Input: "nil option", Call: func() error { return errOf(AblationTable(ctx, e.m, tok(), ZeroAblation, nil)) }},
		},
		"ActivationPatching": {
			{Input: "nil model", Call: func() error { return errOf(ActivationPatching(ctx, nil, nil, nil, nil, ResidPre)) }, Want: noModel},
			{Input: "nil metric", Call: func() error { return errOf(ActivationPatching(ctx, e.m, tok(), tok(), nil, ResidPre)) }, Want: "no metric"},
			{Input: "nil tokens", Call: func() error {
				return errOf(ActivationPatching(ctx, e.m, nil, nil, LogitDiff(-1, []int64{1}, nil), ResidPre))
			}, Want: "nil or freed tokens"},
			{Input: "tokens [1 0]", Call: func() error {
				return errOf(ActivationPatching(ctx, e.m, zeros(1, 0), zeros(1, 0), LogitDiff(-1, []int64{1}, nil), ResidPre))
			}, Want: "batch > 0 and pos > 0"},
		},
		"AttributionPatching": {
			{Input: "nil model", Call: func() error { return errOf(AttributionPatching(ctx, nil, nil, nil, nil, nil)) }, Want: noModel},
			{Input: "no sweeps", Call: func() error {
				return errOf(AttributionPatching(ctx, e.m, tok(), tok(), LogitDiff(-1, []int64{1}, nil), nil))
			}, Want: "no sweeps"},
			{Input: "nil tokens and metric", Call: func() error {
				return errOf(AttributionPatching(ctx, e.m, nil, nil, nil, []Sweep{ResidPre}))
			}, Want: "no metric"},
		},
		"CircuitAccuracy": {
			{Input: "nil matrix", Call: func() error { return errOf(CircuitAccuracy(ctx, nil)) }, Want: "want a non-empty square matrix [n n], got nil"},
			{Input: "[2 0]·[0 2] (no rows)", Call: func() error {
				f, err := hookedmodel.NewFactoredMatrix(e.s.Attach(gotch.MustZeros([]int64{0, 2}, gotch.Float, e.m.Device())),
					e.s.Attach(gotch.MustZeros([]int64{2, 0}, gotch.Float, e.m.Device())))
				if err != nil {
					return err
				}
				defer f.Free()
				return errOf(CircuitAccuracy(ctx, f))
			}, Want: "want a non-empty square matrix [n n], got [0 0]"},
		},
		"Circuits": {
			{Input: "nil model", Call: func() error { return errOf(Circuits(nil, HeadID{}, HeadID{}, 0)) }, Want: noModel},
			{Input: "0 positions", Call: func() error {
				c, err := Circuits(e.m, HeadID{}, HeadID{}, 0)
				if err == nil && fmt.Sprint(c.PrevQK.Shape) != "[0 0]" {
					err = fmt.Errorf("PrevQK %v, want [0 0]", c.PrevQK.Shape)
				}
				return err
			}},
		},
		"CompositionScores": {
			{Input: "nil model", Call: func() error { return errOf(CompositionScores(ctx, nil)) }, Want: noModel},
			{Input: "nil option", Call: func() error { return errOf(CompositionScores(ctx, e.m, nil)) }},
		},
		"DetectHead": {
			{Input: "nil model", Call: func() error { return errOf(DetectHead(ctx, nil, nil, nil)) }, Want: noModel},
			{Input: "nil pattern", Call: func() error { return errOf(DetectHead(ctx, e.m, tok(), nil)) }, Want: "no pattern"},
			{Input: "nil tokens", Call: func() error { return errOf(DetectHead(ctx, e.m, nil, pattern())) }, Want: "nil or freed tokens"},
			{Input: "tokens [0]", Call: func() error { return errOf(DetectHead(ctx, e.m, zeros(0), pattern())) }, Want: "more than one position"},
			{Input: "tokens [0 5]", Call: func() error { return errOf(DetectHead(ctx, e.m, zeros(0, 5), pattern())) }, Want: "batch > 0 and pos > 0"},
		},
		"FixedPattern": {{Input: "nil", Call: func() error { return errOf(DetectHead(ctx, e.m, tok(), FixedPattern(nil))) }, Want: "got 0 rows"}},
		"FullOVCircuit": {
			{Input: "nil model", Call: func() error { return errOf(FullOVCircuit(nil, HeadID{})) }, Want: noModel},
			{Input: "zero head", Call: func() error { f, err := FullOVCircuit(e.m, HeadID{}); f.Free(); return err }},
		},
		"Induction": {
			{Input: "nil model", Call: func() error { return errOf(Induction(ctx, nil)) }, Want: noModel},
			{Input: "nil option", Call: func() error { return errOf(Induction(ctx, e.m, nil)) }},
		},
		"InductionOn": {
			{Input: "nil model", Call: func() error { return errOf(InductionOn(ctx, nil, nil, 0)) }, Want: noModel},
			{Input: "nil tokens, seq_len 0", Call: func() error { return errOf(InductionOn(ctx, e.m, nil, 0)) }, Want: "tokens must be [batch 1+2·seq_len]"},
			{Input: "tokens [1 1], seq_len 0", Call: func() error { return errOf(InductionOn(ctx, e.m, ids(0), 0)) }, Want: "tokens must be [batch 1+2·seq_len]"},
		},
		"LogitAttribution": {
			{Input: "nil model", Call: func() error { return errOf(LogitAttribution(ctx, nil, nil, nil, nil)) }, Want: noModel},
			{Input: "nil tokens", Call: func() error { return errOf(LogitAttribution(ctx, e.m, nil, nil, nil)) }, Want: "tokens must be [batch pos], got Tensor(nil)"},
			{Input: "no answers", Call: func() error { return errOf(LogitAttribution(ctx, e.m, tok(), nil, nil)) }, Want: "0 correct and 0 incorrect tokens for a batch of 1"},
			{Input: "tokens [0 2], no answers", Call: func() error { return errOf(LogitAttribution(ctx, e.m, zeros(0, 2), nil, nil)) }, Want: "batch > 0 and pos > 0"},
		},
		"LogitDiff": {
			{Input: "no answers", Call: func() error { return metricOf(LogitDiff(0, nil, nil), logits()) }, Want: "0 answer tokens for a batch of 1"},
			{Input: "nil logits", Call: func() error { return metricOf(LogitDiff(0, []int64{1}, nil), nil) }, Want: "logits Tensor(nil), want [batch pos d_vocab]"},
		},
		"LogitLens": {
			{Input: "nil model", Call: func() error { return errOf(LogitLens(ctx, nil, nil)) }, Want: noModel},
			{Input: "nil tokens", Call: func() error { return errOf(LogitLens(ctx, e.m, nil)) }, Want: "got Tensor(nil)"},
			{Input: "tokens [1 0]", Call: func() error { return errOf(LogitLens(ctx, e.m, zeros(1, 0))) }, Want: "at least two positions"},
		},
		"NewAblation": {
			{Input: "nil model", Call: func() error { return errOf(NewAblation(ctx, nil, ZeroAblation, nil)) }, Want: noModel},
			{Input: "zero ablation of no components", Call: func() error { return ablation(ZeroAblation, nil) }},
			{Input: "mean ablation of no components", Call: func() error { return ablation(MeanAblation, nil) }},
			{Input: "resample ablation of no components", Call: func() error { return ablation(ResampleAblation, []Component{}) }},
			{Input: "zero Component (head 0.0)", Call: func() error { return ablation(ZeroAblation, []Component{{}}) }},
		},
		"NewInductionModel": {
			{Input: "nil option", Call: func() error {
				im, err := NewInductionModel(InductionConfig{DVocab: 8, NCtx: 24}, nil, hookedmodel.OnDevice(e.m.Device()))
				im.Free()
				return err
			}},
			{Input: "zero InductionConfig (the defaults)", Call: func() error {
				im, err := NewInductionModel(InductionConfig{}, hookedmodel.OnDevice(e.m.Device()))
				if err == nil && (im.Model.Cfg.DVocab != 64 || im.Model.Cfg.NCtx != 32) {
					err = fmt.Errorf("d_vocab %d, n_ctx %d: want the defaults 64, 32", im.Model.Cfg.DVocab, im.Model.Cfg.NCtx)
				}
				im.Free()
				return err
			}},
		},
		"NextTokenLogProb": {
			{Input: "nil tokens", Call: func() error { return metricOf(NextTokenLogProb(nil, 0, 0), logits()) }, Want: "tokens Tensor(nil): want both"},
			{Input: "nil logits", Call: func() error { return metricOf(NextTokenLogProb(ids(0, 1, 2), 0, 0), nil) }, Want: "logits Tensor(nil)"},
		},
		"ParseAblationMode": {{Input: `""`, Call: func() error { return errOf(ParseAblationMode("")) }, Want: `ablation mode "": want zero, mean or resample`}},
		"PatternByName":     {{Input: `""`, Call: func() error { return errOf(PatternByName("")) }, Want: `unknown head pattern ""`}},
		"RepeatedTokens":    {{Input: "nil model", Call: func() error { return errOf(RepeatedTokens(nil)) }, Want: noModel}},
		"TestPrompt": {
			{Input: "nil model", Call: func() error { return errOf(TestPrompt(ctx, nil, "", "")) }, Want: noModel},
			{Input: `"", "" (BOS, then " ")`, Call: func() error { return prompt("", "") }},
			{Input: "a model without tokenizer", Call: func() error { return errOf(TestPrompt(ctx, e.m, "", "")) }, Want: "has no tokenizer"},
		},
		"TestPromptAnswers": {
			{Input: "no answers", Call: func() error { return errOf(TestPromptAnswers(ctx, e.text, "", nil)) }, Want: "no answers"},
			{Input: `"", "" without spaces`, Call: func() error {
				return errOf(TestPromptAnswers(ctx, e.text, "a", []string{"", ""}, PrependSpaceToAnswer(false)))
			}, Want: "answer 0 has no tokens"},
		},
		"TestPromptTokens": {
			{Input: "nil model", Call: func() error { return errOf(TestPromptTokens(ctx, nil, nil, nil)) }, Want: noModel},
			{Input: "nil prompt and answer", Call: func() error { return errOf(TestPromptTokens(ctx, e.m, nil, nil)) }, Want: "the prompt has no tokens"},
			{Input: "nil answer", Call: func() error { return errOf(TestPromptTokens(ctx, e.m, []int64{0}, nil)) }, Want: "the answer has no tokens"},
		},
		"Workflow": {
			{Input: "nil model", Call: func() error { return errOf2(Workflow(ctx, nil, nil)) }, Want: noModel},
			{Input: "nil prompt", Call: func() error { return errOf2(Workflow(ctx, e.m, nil)) }, Want: "the prompt must be one row of tokens [1 pos], got Tensor(nil)"},
			{Input: "prompt [1 0]", Call: func() error { return errOf2(Workflow(ctx, e.m, zeros(1, 0))) }, Want: "pos"},
		},

		// Plain functions and values.
		"Correlation": {{Input: "nil, nil", Call: func() error { return nan(Correlation(nil, nil)) }}},
		"DiagonalShare": {
			{Input: "nil table", Call: func() error { return nan(DiagonalShare(nil)) }},
			{Input: "zero Table", Call: func() error { return nan(DiagonalShare(&Table{})) }},
			{Input: "[0 3] table", Call: func() error { return nan(DiagonalShare(empty())) }},
		},
		"HeadLabel": {{Input: "0, 0", Call: func() error { return equal(HeadLabel(0, 0), "L0H0") }}},
		"Head":      {{Input: "0, 0", Call: func() error { return equal(Head(0, 0).String(), "L0H0") }}},
		"Neuron":    {{Input: "0, 0", Call: func() error { return equal(Neuron(0, 0).HookName(), "blocks.0.mlp.hook_post") }}},
		"AttnLayer": {{Input: "0", Call: func() error { return equal(AttnLayer(0).String(), "0_attn_out") }}},
		"MLPLayer":  {{Input: "0 in an attention-only model", Call: func() error { return ablation(ZeroAblation, []Component{MLPLayer(0)}) }, Want: "an attention-only model has no MLPs"}},
		"NewTable": {
			{Input: "no axes (a scalar)", Call: func() error {
				if t := NewTable(nil); len(t.Data) != 1 || t.Sum() != 0 {
					return fmt.Errorf("got %v, want one zero", t.Data)
				}
				return nil
			}},
			{Input: "a zero-size axis", Call: func() error {
				if t := empty(); len(t.Data) != 0 {
					return fmt.Errorf("got %v, want no values", t.Data)
				}
				return nil
			}},
		},
		"AblationMode.String": {{Input: "zero mode", Call: func() error { return equal(AblationMode(0).String(), "zero") }}},
		"Component.HookName":  {{Input: "zero Component", Call: func() error { return equal(Component{}.HookName(), "blocks.0.attn.hook_z") }}},
		"Component.String":    {{Input: "zero Component", Call: func() error { return equal(Component{}.String(), "L0H0") }}},
		"HeadID.String":       {{Input: "zero HeadID", Call: func() error { return equal(HeadID{}.String(), "L0H0") }}},
		"Sweep.String":        {{Input: "zero Sweep", Call: func() error { return equal(Sweep(0).String(), "resid_pre") }}},
		"Ablation.Hooks":      {{Input: "zero Ablation", Call: func() error { return equal(fmt.Sprint(len((&Ablation{}).Hooks())), "0") }}},
		"Ablation.Close": {
			{Input: "nil Ablation", Call: func() error { (*Ablation)(nil).Close(); return nil }},
			{Input: "zero Ablation", Call: func() error { (&Ablation{}).Close(); return nil }},
		},
		"InductionModel.Free": {
			{Input: "nil model", Call: func() error { (*InductionModel)(nil).Free(); return nil }},
			{Input: "zero model", Call: func() error { (&InductionModel{}).Free(); return nil }},
		},
		"PatchingResult.Normalized": {
			{Input: "zero PatchingResult", Call: func() error {
				if t := (&PatchingResult{}).Normalized(); t != nil {
					return fmt.Errorf("got %v, want nil", t)
				}
				return nil
			}},
			{Input: "an empty table", Call: func() error {
				if t := (&PatchingResult{Patched: empty()}).Normalized(); len(t.Data) != 0 {
					return fmt.Errorf("got %v, want no values", t.Data)
				}
				return nil
			}},
		},
		"PromptTest.Ranks":  {{Input: "zero PromptTest", Call: func() error { return equal(fmt.Sprint((&PromptTest{}).Ranks()), "[]") }}},
		"PromptTest.String": {{Input: "zero PromptTest", Call: func() error { _ = (&PromptTest{}).String(); return nil }}},
		"Table.Argmax": {
			{Input: "an empty table", Call: func() error { return equal(fmt.Sprint(empty().Argmax()), "[]") }},
			{Input: "zero Table", Call: func() error { return equal(fmt.Sprint((&Table{}).Argmax()), "[]") }},
		},
		"Table.Map": {
			{Input: "nil f", Call: func() error {
				t := NewTable([]string{"x"}, 2)
				t.Data[1] = 3
				return equal(fmt.Sprint(t.Map(nil).Data), "[0 3]")
			}},
			{Input: "an empty table", Call: func() error { return equal(fmt.Sprint(empty().Map(math.Abs).Shape), "[0 3]") }},
		},
		"Table.String": {
			{Input: "an empty table", Call: func() error { return equal(empty().String(), "[layer head] [0 3]") }},
			{Input: "zero Table", Call: func() error { return equal((&Table{}).String(), "[] []") }},
		},
		"Table.Sum": {
			{Input: "an empty table", Call: func() error { return equal(fmt.Sprint(empty().Sum()), "0") }},
			{Input: "zero Table", Call: func() error { return equal(fmt.Sprint((&Table{}).Sum()), "0") }},
		},
	}
}

// errOf is the error of a call whose result needs no check and no freeing.
func errOf[T any](_ T, err error) error { return err }

func errOf2[T, U any](_ T, _ U, err error) error { return err }

func equal(got, want string) error {
	if got != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}
