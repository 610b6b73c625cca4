package hookedmodel

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// emptyEnv is what the empty-input cases call into: one tiny model with
// GPT-2's tokenizer, a cache of it, and that model saved for the loaders.
type emptyEnv struct {
	m     *HookedTransformer
	cache *ActivationCache // of m on "a b": [1 3]
	ckpt  string           // m saved by Save
	s     *gotch.Scope     // the input tensors of a call (see gotchtest.CheckEmpty)
}

// TestEmptyInputs calls every exported function and method with empty and
// nil inputs (see emptyCases): each gives an error that says what was
// empty, or its documented empty result; none panics or leaks.
func TestEmptyInputs(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := &emptyEnv{m: gpt2TinyModel(t), ckpt: filepath.Join(t.TempDir(), "tiny.safetensors")}
	if err := e.m.Save(e.ckpt); err != nil {
		t.Fatal(err)
	}
	out, cache, err := e.m.RunWithCache(context.Background(), Text("a b"))
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
	e.cache = cache
	defer cache.Free()
	gotchtest.CheckEmpty(t, &e.s, emptyCases(e))
}

// TestExportedHaveEmptyCases: every exported function and method of the
// package has empty-input cases or a reason to need none, so that a new one
// cannot be added without them.
func TestExportedHaveEmptyCases(t *testing.T) {
	gotchtest.CheckCovered(t, ".", emptyCases(&emptyEnv{}), emptyExempt)
}

// emptyExempt are the exported functions with no input that could be
// empty, each with the reason. Those whose receiver can be nil or zero also
// have a case calling them so.
var emptyExempt = map[string]string{
	"AllowNonFinite":               "an option without arguments",
	"ApplyLN":                      "an option without arguments",
	"DefaultConfig":                "no input",
	"Greedy":                       "an option without arguments",
	"InclBwd":                      "an option without arguments",
	"InclMid":                      "an option without arguments",
	"InclRemainder":                "an option without arguments",
	"LossPerToken":                 "an option without arguments",
	"MLPInput":                     "an option without arguments",
	"NoKVCache":                    "an option without arguments",
	"NoProcessing":                 "an option without arguments",
	"OfficialModelNames":           "no input",
	"Permanent":                    "an option without arguments",
	"Prepend":                      "an option without arguments",
	"RecomputeLN":                  "an option without arguments",
	"RemoveBatchDim":               "an option without arguments",
	"ActivationCache.MustGet":      "panics by contract (a Must function); Get is its error form",
	"ActivationCache.Bytes":        "a getter",
	"ActivationCache.Keys":         "a getter",
	"ActivationCache.Len":          "a getter",
	"ActivationCache.String":       "a getter",
	"ActivationCache.Free":         "no input; a nil cache is a no-op (case)",
	"Direction.String":             "a getter",
	"FactoredMatrix.A":             "a getter",
	"FactoredMatrix.B":             "a getter",
	"FactoredMatrix.LDim":          "a getter",
	"FactoredMatrix.MDim":          "a getter",
	"FactoredMatrix.RDim":          "a getter",
	"FactoredMatrix.Ndim":          "a getter",
	"FactoredMatrix.Shape":         "a getter",
	"FactoredMatrix.Free":          "no input; a nil matrix is a no-op (case)",
	"HookError.Error":              "a getter",
	"HookError.Unwrap":             "a getter",
	"HookHandle.Remove":            "no input; the zero handle is a no-op (case)",
	"HookedTransformer.Config":     "a getter",
	"HookedTransformer.DType":      "a getter",
	"HookedTransformer.Device":     "a getter",
	"HookedTransformer.Free":       "no input; freeing the test's model would end the test",
	"HookedTransformer.HookNames":  "a getter",
	"HookedTransformer.ListHooks":  "a getter",
	"HookedTransformer.NewKVCache": "no input",
	"HookedTransformer.Parameters": "a getter",
	"HookedTransformer.Processing": "a getter",
	"HookedTransformer.StateDict":  "no input (case: its views)",
	"HookedTransformer.B_K":        "a weight getter (case)",
	"HookedTransformer.B_O":        "a weight getter (case)",
	"HookedTransformer.B_Q":        "a weight getter (case)",
	"HookedTransformer.B_U":        "a weight getter (case)",
	"HookedTransformer.B_V":        "a weight getter (case)",
	"HookedTransformer.B_in":       "a weight getter (case)",
	"HookedTransformer.B_out":      "a weight getter (case)",
	"HookedTransformer.W_E":        "a weight getter (case)",
	"HookedTransformer.W_K":        "a weight getter (case)",
	"HookedTransformer.W_O":        "a weight getter (case)",
	"HookedTransformer.W_Q":        "a weight getter (case)",
	"HookedTransformer.W_U":        "a weight getter (case)",
	"HookedTransformer.W_V":        "a weight getter (case)",
	"HookedTransformer.W_in":       "a weight getter (case)",
	"HookedTransformer.W_gate":     "a weight getter (case)",
	"HookedTransformer.W_out":      "a weight getter (case)",
	"HookedTransformer.W_pos":      "a weight getter (case)",
	"HookedTransformer.OV":         "no input (case)",
	"HookedTransformer.QK":         "no input (case)",
	"KVCache.Free":                 "no input; nil and zero caches are no-ops (case)",
	"KVCache.Len":                  "a getter; nil and zero caches hold 0 positions (case)",
	"Output.Free":                  "no input; nil and zero outputs are no-ops (case)",
	"ProcessingRecord.String":      "a getter; the zero record is \"none\" (case)",
	"Attention.B_K":                "a weight getter; a nil layer is an error (case)",
	"Attention.B_O":                "a weight getter; a nil layer is an error (case)",
	"Attention.B_Q":                "a weight getter; a nil layer is an error (case)",
	"Attention.B_V":                "a weight getter; a nil layer is an error (case)",
	"Attention.W_K":                "a weight getter; a nil layer is an error (case)",
	"Attention.W_O":                "a weight getter; a nil layer is an error (case)",
	"Attention.W_Q":                "a weight getter; a nil layer is an error (case)",
	"Attention.W_V":                "a weight getter; a nil layer is an error (case)",
	"MLP.B_in":                     "a weight getter; a nil MLP (attention-only) is an error (case)",
	"MLP.B_out":                    "a weight getter; a nil MLP (attention-only) is an error (case)",
	"MLP.W_in":                     "a weight getter; a nil MLP (attention-only) is an error (case)",
	"MLP.W_gate":                   "a weight getter; a nil MLP (attention-only) is an error (case)",
	"MLP.W_out":                    "a weight getter; a nil MLP (attention-only) is an error (case)",
}

// errOf is the error of a call whose result needs no check and no freeing.
func errOf[T any](_ T, err error) error { return err }

// emptyCases are the calls with empty and nil inputs, by the exported name
// they call. The closures read e only when they run, so the coverage test
// can list the names without a model.
func emptyCases(e *emptyEnv) map[string][]gotchtest.EmptyCase {
	type C = gotchtest.EmptyCase
	ctx := context.Background()
	noBOS := PrependBOS(false)
	dev := func() gotch.Device { return e.m.Device() }
	zeros := func(dt gotch.DType, shape ...int64) *gotch.Tensor {
		return e.s.Attach(gotch.MustZeros(shape, dt, dev()))
	}
	ids := func(v ...int64) *gotch.Tensor { // [1 len(v)]
		return e.s.Attach(gotch.MustFromSlice(v, []int64{1, int64(len(v))}, dev()))
	}
	resid := func() *gotch.Tensor { return zeros(gotch.Float, 1, 2, int64(e.m.Cfg.DModel)) }
	// pass and cached turn a call's results into its error, freeing what it made.
	pass := func(out *Output, err error) error { out.Free(); return err }
	cached := func(out *Output, c *ActivationCache, err error) error { out.Free(); c.Free(); return err }
	// shapeIs checks a tensor result the caller owns, and frees it.
	shapeIs := func(want string) func(*gotch.Tensor, error) error {
		return func(x *gotch.Tensor, err error) error {
			if err != nil {
				return err
			}
			defer x.Free()
			if got := fmt.Sprint(x.Shape()); got != want {
				return fmt.Errorf("shape %s, want %s", got, want)
			}
			return nil
		}
	}
	// stackIs checks a cache computation's stack and labels.
	stackIs := func(want string, labels ...string) func(*gotch.Tensor, []string, error) error {
		return func(x *gotch.Tensor, got []string, err error) error {
			if err := shapeIs(want)(x, err); err != nil {
				return err
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", labels) {
				return fmt.Errorf("labels %q, want %q", got, labels)
			}
			return nil
		}
	}
	strs := func(want string) func([]string, error) error {
		return func(got []string, err error) error {
			if err == nil && fmt.Sprintf("%q", got) != want {
				err = fmt.Errorf("got %q, want %s", got, want)
			}
			return err
		}
	}
	// forward runs one pass on "a b" with opts, for the run options.
	forward := func(opts ...RunOption) error { return pass(e.m.Forward(ctx, Tokens(ids(64, 65)), opts...)) }
	withHook := func(h Hook) error { return pass(e.m.RunWithHooks(ctx, Tokens(ids(64, 65)), []Hook{h})) }
	logitsOnly := func(out *Output, err error) error {
		if err == nil && (out.Logits == nil || out.Residual != nil) {
			err = fmt.Errorf("logits %v, residual %v: want the default logits", out.Logits.Spec(), out.Residual.Spec())
		}
		return pass(out, err)
	}
	// generate extends "a b" by one token.
	generate := func(opts ...GenOption) func() error {
		return func() error {
			rows, err := e.m.Generate(ctx, Tokens(ids(64, 65)), append([]GenOption{MaxNewTokens(1)}, opts...)...)
			if err == nil && (len(rows) != 1 || len(rows[0]) != 3) {
				err = fmt.Errorf("rows %v, want one of the input's 2 tokens and 1 new", rows)
			}
			return err
		}
	}
	load := func(opts ...Option) func() error {
		return func() error {
			m, err := Load(ctx, e.ckpt, opts...)
			if err == nil {
				m.Free()
			}
			return err
		}
	}
	newModel := func(opts ...Option) func() error {
		return func() error {
			m, err := New(e.m.Config(), opts...)
			if err == nil {
				m.Free()
			}
			return err
		}
	}
	mathOpt := func(opts ...CacheMathOption) error {
		return stackIs("[3 1 3 8]", "embed", "pos_embed", "0_attn_out")(e.cache.DecomposeResid(0, append([]CacheMathOption{MLPInput()}, opts...)...))
	}
	stack1 := func() *gotch.Tensor { return zeros(gotch.Float, 1, 1, 3, 8) } // [component batch pos d_model]
	// fm is a 2×2 factored matrix of inner dim 0: the product is zeros.
	fm := func() *FactoredMatrix {
		f, err := NewFactoredMatrix(zeros(gotch.Float, 2, 0), zeros(gotch.Float, 0, 2))
		if err != nil {
			panic(err)
		}
		return f
	}

	// fmIs checks a FactoredMatrix result's shape, and frees it.
	fmIs := func(want string) func(*FactoredMatrix, error) error {
		return func(f *FactoredMatrix, err error) error {
			if err == nil && fmt.Sprint(f.Shape()) != want {
				err = fmt.Errorf("shape %v, want %s", f.Shape(), want)
			}
			return freeFM(f, err)
		}
	}

	return map[string][]C{
		// Options, applied where they are read.
		"AttentionMask": {
			{Input: "nil mask", Call: func() error { return logitsOnly(e.m.Forward(ctx, Tokens(ids(64, 65)), AttentionMask(nil))) }},
			{Input: "mask [1 0]", Call: func() error { return forward(AttentionMask(zeros(gotch.Int64, 1, 0))) }, Want: "attention mask must be [batch pos]"},
		},
		"Batches": {{Input: "zero PosSlice (every row)", Call: func() error {
			return shapeIs("[1 1 3]")(e.cache.LogitAttrs(stack1(), ids(64, 65, 66), nil, Batches(PosSlice{})))
		}}},
		"BwdHook":     {{Input: "nil filter and func", Call: func() error { return withHook(BwdHook(nil, nil)) }, Want: "the filter and the function must be set"}},
		"CacheDevice": {{Input: "zero Device (cpu)", Call: func() error { return cached(e.m.RunWithCache(ctx, Text("a"), CacheDevice(gotch.Device{}))) }}},
		"CachePositions": {{Input: "zero PosSlice (every position)", Call: func() error {
			out, c, err := e.m.RunWithCache(ctx, Text("a b"), CachePositions(PosSlice{}))
			if err == nil {
				var x *gotch.Tensor
				if x, err = c.Get("resid_pre", 0); err == nil && fmt.Sprint(x.Shape()) != "[1 3 8]" {
					err = fmt.Errorf("resid_pre %v, want [1 3 8]", x.Shape())
				}
			}
			return cached(out, c, err)
		}}},
		"EOSToken": {{Input: "id 0", Call: generate(EOSToken(0))}},
		"ExpandNeurons": {{Input: "false", Call: func() error {
			return stackIs("[6 1 3 8]", "L0H0", "L0H1", "0_mlp_out", "embed", "pos_embed", "bias")(e.cache.GetFullResidDecomposition(1, ExpandNeurons(false)))
		}}},
		"FreqPenalty": {{Input: "0", Call: generate(FreqPenalty(0))}},
		"FwdHook":     {{Input: "nil filter and func", Call: func() error { return withHook(FwdHook(nil, nil)) }, Want: "the filter and the function must be set"}},
		"GenHooks": {
			{Input: "no hooks", Call: generate(GenHooks())},
			{Input: "zero Hook", Call: generate(GenHooks(Hook{})), Want: "the filter and the function must be set"},
		},
		"GenRun": {
			{Input: "no options", Call: func() error { return errOf(e.m.Generate(ctx, Tokens(nil), GenRun())) }, Want: "tokens: nil"},
			{Input: "nil option", Call: generate(GenRun(nil, noBOS))},
		},
		"HasBatchDim": {{Input: "false", Call: func() error {
			return shapeIs("[1 3 8]")(e.cache.ApplyLnToStack(zeros(gotch.Float, 1, 3, 8), 0, HasBatchDim(false)))
		}}},
		"InclEmbeds": {{Input: "false (no components)", Call: func() error {
			return stackIs("[0 1 3 8]")(e.cache.DecomposeResid(0, InclEmbeds(false)))
		}}},
		"LossTokens": {
			{Input: "nil", Call: func() error {
				return pass(e.m.Forward(ctx, Residual(resid()), StartAtLayer(0), Return(ReturnLoss), LossTokens(nil)))
			}, Want: "a loss needs tokens"},
			{Input: "[1 0]", Call: func() error {
				return pass(e.m.Forward(ctx, Residual(resid()), StartAtLayer(0), Return(ReturnLoss), LossTokens(zeros(gotch.Int64, 1, 0))))
			}, Want: "loss tokens: tokens must be [batch pos] with batch > 0 and pos > 0"},
		},
		"Match": {{Input: "nil predicate", Call: func() error { return withHook(FwdHook(Match(nil), noopHook)) }, Want: "the filter and the function must be set"}},
		"MaxNewTokens": {{Input: "0", Call: func() error {
			rows, err := e.m.Generate(ctx, Tokens(ids(64, 65)), MaxNewTokens(0))
			if err == nil && fmt.Sprint(rows) != "[[64 65]]" {
				err = fmt.Errorf("rows %v, want the input alone", rows)
			}
			return err
		}}},
		"Mode": {{Input: `""`, Call: func() error { return stackErr(e.cache.DecomposeResid(0, Mode(""))) }, Want: `mode "" is not all, attn or mlp`}},
		"Name": {{Input: `""`, Call: func() error { return withHook(FwdHook(Name(""), noopHook)) }, Want: `""`}},
		"Names": {
			{Input: "no names", Call: func() error { return withHook(FwdHook(Names(), noopHook)) }, Want: "selects no hook point"},
			{Input: `""`, Call: func() error { return withHook(FwdHook(Names(""), noopHook)) }, Want: `""`},
		},
		"NamesFilter": {{Input: "nil (every hook point)", Call: func() error {
			out, c, err := e.m.RunWithCache(ctx, Text("a"), NamesFilter(nil))
			if err == nil && c.Len() != len(e.m.HookNames()) {
				err = fmt.Errorf("%d activations cached, want all %d", c.Len(), len(e.m.HookNames()))
			}
			return cached(out, c, err)
		}}},
		"Neurons": {{Input: "no neurons", Call: func() error {
			return stackIs("[0 1 3 8]")(e.cache.StackNeuronResults(1, Neurons()))
		}}},
		"OnDevice":    {{Input: "zero Device (cpu)", Call: newModel(OnDevice(gotch.Device{}))}},
		"PaddingSide": {{Input: `"" (right, the default)`, Call: func() error { return logitsOnly(e.m.Forward(ctx, Text("a", "a b"), PaddingSide(""))) }}},
		"Positions":   {{Input: "zero PosSlice (every position)", Call: func() error { return mathOpt(Positions(PosSlice{})) }}},
		"PrependBOS":  {{Input: "false with an empty text", Call: func() error { return pass(e.m.Forward(ctx, Text(""), noBOS)) }, Want: "the texts make no tokens"}},
		"Regexp": {
			{Input: `""`, Call: func() error {
				f, err := Regexp("")
				if err != nil {
					return err
				}
				return withHook(FwdHook(f, noopHook)) // "" matches every name
			}},
		},
		"Residual": {
			{Input: "nil", Call: func() error { return pass(e.m.Forward(ctx, Residual(nil))) }, Want: "residual: nil"},
			{Input: "[0 3 d]", Call: func() error { return pass(e.m.Forward(ctx, Residual(zeros(gotch.Float, 0, 3, 8)), StartAtLayer(0))) }, Want: "batch > 0 and pos > 0"},
			{Input: "[1 0 d]", Call: func() error { return pass(e.m.Forward(ctx, Residual(zeros(gotch.Float, 1, 0, 8)), StartAtLayer(0))) }, Want: "batch > 0 and pos > 0"},
		},
		"Return":       {{Input: "zero ReturnType (logits)", Call: func() error { return logitsOnly(e.m.Forward(ctx, Tokens(ids(64)), Return(0))) }}},
		"Seed":         {{Input: "0", Call: generate(Seed(0))}},
		"StartAtLayer": {{Input: "0 with tokens (the default)", Call: func() error { return logitsOnly(e.m.Forward(ctx, Tokens(ids(64)), StartAtLayer(0))) }}},
		"StopAtLayer": {{Input: "0 (the embeddings)", Call: func() error {
			out, err := e.m.Forward(ctx, Tokens(ids(64)), StopAtLayer(0))
			if err == nil && (out.Residual == nil || out.Logits != nil) {
				err = fmt.Errorf("residual %v, logits %v: want the residual stream alone", out.Residual.Spec(), out.Logits.Spec())
			}
			return pass(out, err)
		}}},
		"StopAtEOS":   {{Input: "false", Call: generate(StopAtEOS(false))}},
		"Temperature": {{Input: "0 (greedy)", Call: generate(Temperature(0))}},
		"Text": {
			{Input: "no texts", Call: func() error { return pass(e.m.Forward(ctx, Text())) }, Want: "text input: no texts"},
			{Input: `"" without BOS`, Call: func() error { return pass(e.m.Forward(ctx, Text(""), noBOS)) }, Want: "the texts make no tokens"},
			{Input: `"", "" left-padded without BOS`, Call: func() error {
				return pass(e.m.Forward(ctx, Text("", ""), noBOS, PaddingSide("left")))
			}, Want: "the texts make no tokens"},
		},
		"Tokens": {
			{Input: "nil", Call: func() error { return pass(e.m.Forward(ctx, Tokens(nil))) }, Want: "tokens: nil"},
			{Input: "[0 5]", Call: func() error { return pass(e.m.Forward(ctx, Tokens(zeros(gotch.Int64, 0, 5)))) }, Want: "batch > 0 and pos > 0"},
			{Input: "[2 0]", Call: func() error { return pass(e.m.Forward(ctx, Tokens(zeros(gotch.Int64, 2, 0)))) }, Want: "batch > 0 and pos > 0"},
			{Input: "[0]", Call: func() error { return pass(e.m.Forward(ctx, Tokens(zeros(gotch.Int64, 0)))) }, Want: "batch > 0 and pos > 0"},
		},
		"TopK":       {{Input: "0 (unset)", Call: generate(TopK(0))}},
		"TopP":       {{Input: "0 (unset)", Call: generate(TopP(0))}},
		"WithConfig": {{Input: "nil edit", Call: load(WithConfig(nil))}},
		"WithDType": {
			{Input: "0 (float32)", Call: load(WithDType(0))},
			{Input: "int64", Call: load(WithDType(gotch.Int64)), Want: `dtype "int64" is not a floating-point type`},
			{Input: "DType(99)", Call: load(WithDType(99)), Want: `dtype "DType(99)" is not a floating-point type`},
		},
		"WithHub": {{Input: "no options", Call: load(WithHub())}, {Input: "nil option", Call: load(WithHub(nil))}},
		"WithRevision": {{Input: `"" (main)`, Call: load(WithRevision(""))},
			{Input: `"main" for a local path`, Call: load(WithRevision("main")), Want: "is a local path"}},
		"WithCheckpointIndex": {{Input: "0 for a local path", Call: load(WithCheckpointIndex(0)), Want: "is a local path"}},
		"WithCheckpointValue": {{Input: "0 for a local path", Call: load(WithCheckpointValue(0)), Want: "is a local path"}},
		"WithKVCache": {
			{Input: "nil (none)", Call: func() error { return logitsOnly(e.m.Forward(ctx, Tokens(ids(64)), WithKVCache(nil))) }},
			{Input: "zero KVCache", Call: func() error { return forward(WithKVCache(&KVCache{})) }, Want: "the key-value cache has 0 layers"},
		},
		"WithLabel": {{Input: `""`, Call: func() error {
			h, err := e.m.AddHook(FwdHook(Name("hook_embed"), noopHook), WithLabel(""))
			h.Remove()
			return err
		}}},
		"WithProcessing": {{Input: "zero Processing (none)", Call: load(WithProcessing(Processing{}))}},
		"WithSeed":       {{Input: "0", Call: newModel(WithSeed(0))}},

		// Functions.
		"GetActName": {
			{Input: `""`, Call: func() error { return errOf(GetActName("")) }, Want: "empty name"},
			{Input: `"", nil, nil`, Call: func() error { return errOf(GetActName("", nil, nil)) }, Want: "empty name"},
		},
		"LayerOf": {{Input: `""`, Call: func() error {
			if l, ok := LayerOf(""); ok || l != 0 {
				return fmt.Errorf("LayerOf(\"\") = %d, %v, want 0, false", l, ok)
			}
			return nil
		}}},
		"Load": {
			{Input: `""`, Call: func() error { return errOf(Load(ctx, "")) }, Want: `load "": no such file`},
			{Input: "nil option", Call: load(nil)},
		},
		"LoadConfig": {{Input: `""`, Call: func() error { return errOf(LoadConfig("")) }, Want: "config"}},
		"LoadFS": {
			{Input: `nil fs, ""`, Call: func() error { return errOf(LoadFS(ctx, nil, "")) }, Want: `load "": `},
		},
		"New": {
			{Input: "zero Config", Call: func() error { return errOf(New(Config{})) }, Want: "use_attn_scale"},
			{Input: "DefaultConfig (no sizes)", Call: func() error { return errOf(New(DefaultConfig())) }, Want: "n_layers"},
			{Input: "nil option", Call: newModel(nil)},
		},
		"NewFactoredMatrix": {
			{Input: "nil, nil", Call: func() error { return errOf(NewFactoredMatrix(nil, nil)) }, Want: "got nil and nil"},
			{Input: "[0], [0]", Call: func() error {
				return errOf(NewFactoredMatrix(zeros(gotch.Float, 0), zeros(gotch.Float, 0)))
			}, Want: "factors must be matrices"},
			{Input: "[2 0], [0 2]", Call: func() error { f := fm(); defer f.Free(); return shapeIs("[2 2]")(f.AB()) }},
		},
		"FactoredSVD": {
			{Input: "nil, nil", Call: func() error { _, _, _, err := FactoredSVD(nil, nil); return err }, Want: "got nil and nil"},
			{Input: "[2 3], [2 3]", Call: func() error {
				_, _, _, err := FactoredSVD(zeros(gotch.Float, 2, 3), zeros(gotch.Float, 2, 3))
				return err
			}, Want: "got [2 3] and [2 3]"},
			{Input: "[2 0], [0 2]", Call: func() error {
				u, s, vh, err := FactoredSVD(zeros(gotch.Float, 2, 0), zeros(gotch.Float, 0, 2))
				u.Free()
				s.Free()
				vh.Free()
				return err
			}},
		},
		"TokenizerOf": {{Input: `""`, Call: func() error { return errOf(TokenizerOf("")) }, Want: `no tokenizer known for model ""`}},
		"WriteSafetensors": {
			{Input: `"", no tensors`, Call: func() error { return WriteSafetensors("", nil, nil, nil) }, Want: "write safetensors: empty path"},
			{Input: "a name without its tensor", Call: func() error {
				return WriteSafetensors(filepath.Join(filepath.Dir(e.ckpt), "x.safetensors"), []string{"w"}, nil, nil)
			}, Want: `no tensor for name "w"`},
		},

		// ActivationCache.
		"ActivationCache.Get": {
			{Input: `""`, Call: func() error { return errOf(e.cache.Get("")) }, Want: "empty name"},
			{Input: `"", nil`, Call: func() error { return errOf(e.cache.Get("", nil)) }, Want: "empty name"},
			{Input: "zero cache", Call: func() error { return errOf((&ActivationCache{}).Get("hook_embed")) }, Want: "holds 0 activations"},
		},
		"ActivationCache.AccumulatedResid": {
			{Input: "layer 0", Call: func() error { return stackIs("[1 1 3 8]", "0_pre")(e.cache.AccumulatedResid(0)) }},
			{Input: "zero cache", Call: func() error { return stackErr((&ActivationCache{}).AccumulatedResid(0)) }, Want: "the cache has no model"},
			{Input: "nil option", Call: func() error { return stackIs("[1 1 3 8]", "0_pre")(e.cache.AccumulatedResid(0, nil)) }},
		},
		"ActivationCache.DecomposeResid": {
			{Input: "layer 0", Call: func() error { return stackIs("[2 1 3 8]", "embed", "pos_embed")(e.cache.DecomposeResid(0)) }},
			{Input: "zero cache", Call: func() error { return stackErr((&ActivationCache{}).DecomposeResid(0)) }, Want: "the cache has no model"},
		},
		"ActivationCache.GetFullResidDecomposition": {
			{Input: "layer 0", Call: func() error {
				return stackIs("[3 1 3 8]", "embed", "pos_embed", "bias")(e.cache.GetFullResidDecomposition(0))
			}},
			{Input: "zero cache", Call: func() error { return stackErr((&ActivationCache{}).GetFullResidDecomposition(0)) }, Want: "the cache has no model"},
		},
		"ActivationCache.StackHeadResults": {
			{Input: "layer 0 (no heads)", Call: func() error { return stackIs("[0 1 3 8]")(e.cache.StackHeadResults(0)) }},
			{Input: "zero cache", Call: func() error { return stackErr((&ActivationCache{}).StackHeadResults(0)) }, Want: "the cache has no model"},
		},
		"ActivationCache.StackNeuronResults": {
			{Input: "layer 0 (no neurons)", Call: func() error { return stackIs("[0 1 3 8]")(e.cache.StackNeuronResults(0)) }},
			{Input: "zero cache", Call: func() error { return stackErr((&ActivationCache{}).StackNeuronResults(0)) }, Want: "the cache has no model"},
		},
		"ActivationCache.ApplyLnToStack": {
			{Input: "nil stack", Call: func() error { return errOf(e.cache.ApplyLnToStack(nil, 0)) }, Want: "no stack"},
			{Input: "stack [0 1 3 8]", Call: func() error { return shapeIs("[0 1 3 8]")(e.cache.ApplyLnToStack(zeros(gotch.Float, 0, 1, 3, 8), 0)) }},
			{Input: "zero cache", Call: func() error { return errOf((&ActivationCache{}).ApplyLnToStack(nil, 0)) }, Want: "the cache has no model"},
		},
		"ActivationCache.LogitAttrs": {
			{Input: "nil stack and tokens", Call: func() error { return errOf(e.cache.LogitAttrs(nil, nil, nil)) }, Want: "no stack"},
			{Input: "nil tokens", Call: func() error { return errOf(e.cache.LogitAttrs(stack1(), nil, nil)) }, Want: "no tokens"},
			{Input: "stack [0 1 3 8]", Call: func() error {
				return shapeIs("[0 1 3]")(e.cache.LogitAttrs(zeros(gotch.Float, 0, 1, 3, 8), ids(64, 65, 66), nil))
			}},
			{Input: "tokens [0]", Call: func() error { return errOf(e.cache.LogitAttrs(stack1(), zeros(gotch.Int64, 0), nil)) }, Want: "tokens"},
		},
		"ActivationCache.ComputeHeadResults": {
			{Input: "zero cache", Call: func() error { return (&ActivationCache{}).ComputeHeadResults() }, Want: "the cache has no model"},
		},
		"ActivationCache.To": {
			{Input: "zero Device (cpu)", Call: func() error { return (&ActivationCache{}).To(gotch.Device{}) }},
		},
		"ActivationCache.Free": {
			{Input: "nil cache", Call: func() error { (*ActivationCache)(nil).Free(); return nil }},
			{Input: "zero cache", Call: func() error { (&ActivationCache{}).Free(); return nil }},
		},

		// FactoredMatrix, on a 2×2 product of inner dim 0 (zeros).
		"FactoredMatrix.AB":        {{Input: "inner dim 0", Call: func() error { f := fm(); defer f.Free(); return shapeIs("[2 2]")(f.AB()) }}},
		"FactoredMatrix.BA":        {{Input: "inner dim 0", Call: func() error { f := fm(); defer f.Free(); return shapeIs("[0 0]")(f.BA()) }}},
		"FactoredMatrix.CollapseL": {{Input: "inner dim 0", Call: func() error { f := fm(); defer f.Free(); return shapeIs("[0 2]")(f.CollapseL()) }}},
		"FactoredMatrix.CollapseR": {{Input: "inner dim 0", Call: func() error { f := fm(); defer f.Free(); return shapeIs("[2 0]")(f.CollapseR()) }}},
		"FactoredMatrix.Corner": {
			{Input: "k 0", Call: func() error { f := fm(); defer f.Free(); return errOf(f.Corner(0)) }, Want: "corner size 0"},
		},
		"FactoredMatrix.Eigenvalues": {{Input: "inner dim 0", Call: func() error {
			f := fm()
			defer f.Free()
			re, im, err := f.Eigenvalues()
			im.Free()
			return shapeIs("[0]")(re, err)
		}}},
		"FactoredMatrix.Get": {{Input: "no index (the matrix)", Call: func() error {
			f := fm()
			defer f.Free()
			g, err := f.Get()
			if err == nil {
				defer g.Free()
				if got := fmt.Sprint(g.Shape()); got != "[2 2]" {
					err = fmt.Errorf("shape %s, want [2 2]", got)
				}
			}
			return err
		}}},
		"FactoredMatrix.LeftMul":     {{Input: "nil", Call: func() error { f := fm(); defer f.Free(); return errOf(f.LeftMul(nil)) }, Want: "LeftMul by nil"}},
		"FactoredMatrix.MakeEven":    {{Input: "inner dim 0", Call: func() error { f := fm(); defer f.Free(); return freeFM(f.MakeEven()) }}},
		"FactoredMatrix.Mul":         {{Input: "nil", Call: func() error { f := fm(); defer f.Free(); return errOf(f.Mul(nil)) }, Want: "Mul by nil"}},
		"FactoredMatrix.MulFactored": {{Input: "nil", Call: func() error { f := fm(); defer f.Free(); return errOf(f.MulFactored(nil)) }, Want: "MulFactored by nil"}},
		"FactoredMatrix.Norm":        {{Input: "inner dim 0", Call: func() error { f := fm(); defer f.Free(); return shapeIs("[]")(f.Norm()) }}},
		"FactoredMatrix.SVD": {{Input: "inner dim 0", Call: func() error {
			f := fm()
			defer f.Free()
			u, s, vh, err := f.SVD()
			vh.Free()
			u.Free()
			return shapeIs("[0]")(s, err)
		}}},
		"FactoredMatrix.Rows":     {{Input: "no index (no rows)", Call: func() error { f := fm(); defer f.Free(); return fmIs("[0 2]")(f.Rows()) }}},
		"FactoredMatrix.Cols":     {{Input: "no index (no columns)", Call: func() error { f := fm(); defer f.Free(); return fmIs("[2 0]")(f.Cols()) }}},
		"FactoredMatrix.RowRange": {{Input: "0, 0 (no rows)", Call: func() error { f := fm(); defer f.Free(); return fmIs("[0 2]")(f.RowRange(0, 0)) }}},
		"FactoredMatrix.ColRange": {{Input: "0, 0 (no columns)", Call: func() error { f := fm(); defer f.Free(); return fmIs("[2 0]")(f.ColRange(0, 0)) }}},
		"FactoredMatrix.T":        {{Input: "inner dim 0", Call: func() error { f := fm(); defer f.Free(); return freeFM(f.T()) }}},
		"FactoredMatrix.Free":     {{Input: "nil matrix", Call: func() error { (*FactoredMatrix)(nil).Free(); return nil }}},

		// HookedTransformer.
		"HookedTransformer.AddHook": {
			{Input: "zero Hook", Call: func() error { return errOf(e.m.AddHook(Hook{})) }, Want: "the filter and the function must be set"},
			{Input: "nil option", Call: func() error {
				h, err := e.m.AddHook(FwdHook(Name("hook_embed"), noopHook), nil, WithLabel(""))
				h.Remove()
				return err
			}},
		},
		"HookedTransformer.Block": {{Input: "0", Call: func() error { return errOf(e.m.Block(0)) }}},
		"HookedTransformer.Forward": {
			{Input: "nil input", Call: func() error { return pass(e.m.Forward(ctx, nil)) }, Want: "no input"},
			{Input: "nil option", Call: func() error { return logitsOnly(e.m.Forward(ctx, Tokens(ids(64)), nil)) }},
		},
		"HookedTransformer.Generate": {
			{Input: "nil input", Call: func() error { return errOf(e.m.Generate(ctx, nil)) }, Want: "no input"},
			{Input: "Text()", Call: func() error { return errOf(e.m.Generate(ctx, Text())) }, Want: "no texts"},
			{Input: "nil option", Call: generate(nil)},
		},
		"HookedTransformer.GetTokenPosition": {
			{Input: "nil token", Call: func() error { return errOf(e.m.GetTokenPosition(nil, "a b", "first")) }, Want: "token must be a string, int or int64, not <nil>"},
			{Input: `"" token`, Call: func() error { return errOf(e.m.GetTokenPosition("", "a b", "first")) }, Want: "not a single token"},
			{Input: "nil input", Call: func() error { return errOf(e.m.GetTokenPosition(" b", nil, "first")) }, Want: "input must be a string, []int64 or []int, not <nil>"},
			{Input: `"" input`, Call: func() error { return errOf(e.m.GetTokenPosition(" b", "", "first", noBOS)) }, Want: "does not occur in the input"},
			{Input: "[]int64{}", Call: func() error { return errOf(e.m.GetTokenPosition(5, []int64{}, "last")) }, Want: "does not occur in the input"},
			{Input: `"" mode`, Call: func() error { return errOf(e.m.GetTokenPosition(5, []int64{5}, "")) }, Want: `mode must be "first" or "last"`},
		},
		"HookedTransformer.Hooks": {
			{Input: "no hooks", Call: func() error { remove, err := e.m.Hooks(); remove(); return err }},
			{Input: "zero Hook", Call: func() error { remove, err := e.m.Hooks(Hook{}); remove(); return err }, Want: "the filter and the function must be set"},
		},
		"HookedTransformer.IDsToStrTokens": {
			{Input: "nil", Call: func() error { return strs(`[]`)(e.m.IDsToStrTokens(nil)) }},
		},
		"HookedTransformer.Process":    {{Input: "zero Processing (none)", Call: func() error { return e.m.Process(Processing{}) }}},
		"HookedTransformer.ResetHooks": {{Input: "false", Call: func() error { e.m.ResetHooks(false); return nil }}},
		"HookedTransformer.RunWithCache": {
			{Input: "Text()", Call: func() error { return cached(e.m.RunWithCache(ctx, Text())) }, Want: "text input: no texts"},
			{Input: "Tokens [0 5]", Call: func() error { return cached(e.m.RunWithCache(ctx, Tokens(zeros(gotch.Int64, 0, 5)))) }, Want: "batch > 0 and pos > 0"},
			{Input: "nil option", Call: func() error { return cached(e.m.RunWithCache(ctx, Text("a"), nil)) }},
		},
		"HookedTransformer.RunWithHooks": {
			{Input: "Text(), nil hooks", Call: func() error { return pass(e.m.RunWithHooks(ctx, Text(), nil)) }, Want: "text input: no texts"},
			{Input: "Tokens [2 0], no hooks", Call: func() error {
				return pass(e.m.RunWithHooks(ctx, Tokens(zeros(gotch.Int32, 2, 0)), []Hook{}))
			}, Want: "batch > 0 and pos > 0"},
			{Input: "a zero Hook", Call: func() error { return withHook(Hook{}) }, Want: "the filter and the function must be set"},
		},
		"HookedTransformer.Save":                {{Input: `""`, Call: func() error { return e.m.Save("") }, Want: "empty path"}},
		"HookedTransformer.SetRequiresGrad":     {{Input: "false", Call: func() error { return e.m.SetRequiresGrad(false) }}},
		"HookedTransformer.SetUseAttnIn":        {{Input: "false", Call: func() error { e.m.SetUseAttnIn(false); return nil }}},
		"HookedTransformer.SetUseAttnResult":    {{Input: "false", Call: func() error { e.m.SetUseAttnResult(false); return nil }}},
		"HookedTransformer.SetUseHookMLPIn":     {{Input: "false", Call: func() error { return e.m.SetUseHookMLPIn(false) }}},
		"HookedTransformer.SetUseSplitQKVInput": {{Input: "false", Call: func() error { e.m.SetUseSplitQKVInput(false); return nil }}},
		"HookedTransformer.TensorToStrTokens": {
			{Input: "nil", Call: func() error { return errOf(e.m.TensorToStrTokens(nil)) }, Want: "tokens: nil tensor"},
			{Input: "[0]", Call: func() error {
				rows, err := e.m.TensorToStrTokens(zeros(gotch.Int64, 0))
				if err == nil && fmt.Sprintf("%q", rows) != "[[]]" {
					err = fmt.Errorf("got %q, want one empty row", rows)
				}
				return err
			}},
			{Input: "[1 0]", Call: func() error {
				rows, err := e.m.TensorToStrTokens(zeros(gotch.Int64, 1, 0))
				if err == nil && fmt.Sprintf("%q", rows) != "[[]]" {
					err = fmt.Errorf("got %q, want one empty row", rows)
				}
				return err
			}},
		},
		"HookedTransformer.TextsToStrTokens": {
			{Input: "nil", Call: func() error {
				rows, err := e.m.TextsToStrTokens(nil)
				if err == nil && len(rows) != 0 {
					err = fmt.Errorf("got %q, want no rows", rows)
				}
				return err
			}},
		},
		"HookedTransformer.ToSingleToken": {{Input: `""`, Call: func() error { return errOf(e.m.ToSingleToken("")) }, Want: `text "" is not a single token: it encodes to 0 tokens`}},
		"HookedTransformer.ToStrTokens": {
			{Input: `""`, Call: func() error { return strs(`["<|endoftext|>"]`)(e.m.ToStrTokens("")) }},
			{Input: `"" without BOS`, Call: func() error { return strs(`[]`)(e.m.ToStrTokens("", noBOS)) }},
		},
		"HookedTransformer.ToString": {
			{Input: "nil", Call: func() error {
				s, err := e.m.ToString(nil)
				if err == nil && s != "" {
					err = fmt.Errorf("got %q", s)
				}
				return err
			}},
			{Input: "[]int64{}", Call: func() error { return errOf(e.m.ToString([]int64{})) }},
		},
		"HookedTransformer.ToTokens": {
			{Input: "nil", Call: func() error { return shapeIs("")(e.m.ToTokens(nil)) }, Want: "to tokens: no texts"},
			{Input: "[]string{}", Call: func() error { return shapeIs("")(e.m.ToTokens([]string{})) }, Want: "to tokens: no texts"},
			{Input: `"" (BOS)`, Call: func() error { return shapeIs("[1 1]")(e.m.ToTokens([]string{""})) }},
			{Input: `"" without BOS`, Call: func() error { return shapeIs("[1 0]")(e.m.ToTokens([]string{""}, noBOS)) }},
		},
		"HookedTransformer.StateDict": {
			{Input: "(none)", Call: func() error {
				_, s, err := e.m.StateDict()
				s.Close()
				return err
			}},
			{Input: "nil model", Call: func() error { return errOf2((*HookedTransformer)(nil).StateDict()) }, Want: "state dict: nil model"},
		},
		"HookedTransformer.LoadStateDict": {
			{Input: "nil", Call: func() error { return e.m.LoadStateDict(nil) }, Want: "the state dict is empty"},
			{Input: "nil model", Call: func() error { return (*HookedTransformer)(nil).LoadStateDict(nil) }, Want: "load state dict: nil model"},
		},
		"HookedTransformer.LoadStateDictFile": {{Input: `""`, Call: func() error { return e.m.LoadStateDictFile("") }, Want: "no path"}},
		"HookedTransformer.SaveStateDict":     {{Input: `""`, Call: func() error { return e.m.SaveStateDict("") }, Want: "save state dict: no path"}},
		"HookedTransformer.To":                {{Input: "nil model", Call: func() error { return (*HookedTransformer)(nil).To(gotch.CPU) }, Want: "to: nil model"}},
		"HookedTransformer.String": {{Input: "nil model", Call: func() error {
			if s := (*HookedTransformer)(nil).String(); s != "HookedTransformer()" {
				return fmt.Errorf("got %q, want \"HookedTransformer()\"", s)
			}
			return nil
		}}},
		"Strict": {{Input: "false with an empty state dict", Call: func() error {
			return e.m.LoadStateDict(map[string]*gotch.Tensor{}, Strict(false))
		}, Want: "the state dict is empty"}},
		"HookedTransformer.QK": {{Input: "(none)", Call: func() error { return freeFM(e.m.QK()) }}},
		"HookedTransformer.OV": {{Input: "(none)", Call: func() error { return freeFM(e.m.OV()) }}},

		// Types with a zero or nil value a caller can hold.
		"Attention.W_Q": {{Input: "nil layer", Call: func() error { return errOf((*Attention)(nil).W_Q()) }, Want: "attn.W_Q: no attention layer"}},
		"MLP.W_in":      {{Input: "nil MLP", Call: func() error { return errOf((*MLP)(nil).W_in()) }, Want: "mlp.W_in: an attention-only model has no MLP"}},
		"MLP.W_gate":    {{Input: "nil MLP", Call: func() error { return errOf((*MLP)(nil).W_gate()) }, Want: "mlp.W_gate: an attention-only model has no MLP"}},
		"Config.Init":   {{Input: "zero Config", Call: func() error { return (&Config{}).Init() }, Want: "use_attn_scale"}},
		"Config.UnmarshalJSON": {
			{Input: "nil", Call: func() error { return (&Config{}).UnmarshalJSON(nil) }, Want: "JSON"},
			{Input: "{}", Call: func() error { return (&Config{}).UnmarshalJSON([]byte("{}")) }},
		},
		"NewAttnTypes": {{Input: "no layers", Call: func() error {
			if a, err := NewAttnTypes(); err != nil || a != "" {
				return fmt.Errorf("got %q, %v; want the unset AttnTypes", a, err)
			}
			return nil
		}}},
		"AttnTypes.Len": {{Input: "unset", Call: func() error { return lenIs(int64(AttnTypes("").Len()), 0) }}},
		"AttnTypes.Local": {{Input: "unset, layer -1", Call: func() error {
			if AttnTypes("").Local(-1) || AttnTypes("l").Local(-1) {
				return fmt.Errorf("a layer outside attn_types is local")
			}
			return nil
		}}},
		"AttnTypes.List": {{Input: "unset", Call: func() error {
			if l := AttnTypes("").List(); l != nil {
				return fmt.Errorf("got %v, want nil", l)
			}
			return nil
		}}},
		"AttnTypes.MarshalJSON": {{Input: "unset", Call: func() error {
			if b, err := AttnTypes("").MarshalJSON(); err != nil || string(b) != "null" {
				return fmt.Errorf("got %s, %v; want null", b, err)
			}
			return nil
		}}},
		"AttnTypes.UnmarshalJSON": {
			{Input: "nil", Call: func() error { var a AttnTypes; return a.UnmarshalJSON(nil) }, Want: "attn_types"},
			{Input: "[]", Call: func() error { var a AttnTypes; return a.UnmarshalJSON([]byte("[]")) }},
		},
		"HookHandle.Remove": {{Input: "zero handle", Call: func() error { HookHandle{}.Remove(); return nil }}},
		"KVCache.Len": {
			{Input: "nil cache", Call: func() error { return lenIs((*KVCache)(nil).Len(), 0) }},
			{Input: "zero cache", Call: func() error { return lenIs((&KVCache{}).Len(), 0) }},
		},
		"KVCache.Free": {
			{Input: "nil cache", Call: func() error { (*KVCache)(nil).Free(); return nil }},
			{Input: "zero cache", Call: func() error { (&KVCache{}).Free(); return nil }},
		},
		"Output.Backward": {
			{Input: "zero Output", Call: func() error { return (&Output{}).Backward() }, Want: "backward needs a scalar loss"},
		},
		"Output.BackwardFrom": {
			{Input: "nil metric", Call: func() error { return (&Output{}).BackwardFrom(nil) }, Want: "backward needs a scalar (0-d) tensor"},
			{Input: "metric [0]", Call: func() error { return (&Output{}).BackwardFrom(zeros(gotch.Float, 0)) }, Want: "backward needs a scalar (0-d) tensor"},
		},
		"Output.Free": {
			{Input: "nil Output", Call: func() error { (*Output)(nil).Free(); return nil }},
			{Input: "zero Output", Call: func() error { (&Output{}).Free(); return nil }},
		},
		"ProcessingRecord.Ran": {{Input: `zero record, ""`, Call: func() error {
			if (ProcessingRecord{}).Ran("") {
				return fmt.Errorf("the zero record ran \"\"")
			}
			return nil
		}}},
		"ProcessingRecord.String": {{Input: "zero record", Call: func() error {
			if s := (ProcessingRecord{}).String(); s != "none" {
				return fmt.Errorf("got %q, want \"none\"", s)
			}
			return nil
		}}},
		"Direction.String": {{Input: "zero Direction", Call: func() error {
			if s := Direction(0).String(); s != "fwd" {
				return fmt.Errorf("got %q, want \"fwd\"", s)
			}
			return nil
		}}},
		"HookError.Error": {{Input: "zero HookError", Call: func() error { _ = (&HookError{}).Error(); return nil }}},
	}
}

// noopHook is a hook that keeps the activation.
func noopHook(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil }

// stackErr is the error of a cache computation, freeing its stack.
func stackErr(x *gotch.Tensor, _ []string, err error) error { x.Free(); return err }

// freeFM is the error of a call returning a FactoredMatrix, freeing it.
func freeFM(f *FactoredMatrix, err error) error { f.Free(); return err }

func lenIs(got, want int64) error {
	if got != want {
		return fmt.Errorf("len %d, want %d", got, want)
	}
	return nil
}

func errOf2[T, U any](_ T, _ U, err error) error { return err }
