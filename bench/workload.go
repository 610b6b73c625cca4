package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/train"
)

// A workload is one thing a user does with a model, run on inputs of a
// given batch and length.
type workload struct {
	name string
	unit string // what throughput counts per second
	// items is how many units one repetition produces; flops what it costs.
	items func(c hookedmodel.Config, in *inputs) float64
	flops func(c hookedmodel.Config, in *inputs) float64
	// run does one repetition and hands its result to the check (nil when
	// timed: the result is freed).
	run func(ctx context.Context, e *env, in *inputs, see func(result) error) error
	// check compares a result on the small input with the reference;
	// plain is the reference run of the input with the weights before it.
	check func(e *env, in *inputs, r result, plain refActs) (verdict, error)
}

// inputs are one row's tokens: [batch seq] random tokens, and for
// patching a corrupted copy; rows holds the clean ones as Go values.
type inputs struct {
	batch, seq, newTokens int
	tokens, corrupted     *gotch.Tensor
	rows, corruptedRows   [][]int64
}

// result is what a repetition produced, for the check.
type result struct {
	logits   *gotch.Tensor
	cache    *hookedmodel.ActivationCache
	ids      [][]int64
	patching *analysis.PatchingResult
	losses   [2]float64 // train_step: before the step, and after it
}

var workloads = []workload{
	{name: "forward", unit: "tokens/s", items: tokens, flops: forwardFLOPs, run: forward(nil), check: checkLogits(nil)},
	{name: "cache_all", unit: "tokens/s", items: tokens, flops: forwardFLOPs, run: cache(func(string) bool { return true }), check: checkCache},
	{name: "cache_all_cpu", unit: "tokens/s", items: tokens, flops: forwardFLOPs, run: cache(func(string) bool { return true }, hookedmodel.CacheDevice(gotch.CPU)), check: checkCache},
	{name: "cache_pattern", unit: "tokens/s", items: tokens, flops: forwardFLOPs, run: cache(isPattern), check: checkCache},
	{name: "cache_resid", unit: "tokens/s", items: tokens, flops: forwardFLOPs, run: cache(isResid), check: checkCache},
	{name: "hooks_noop", unit: "tokens/s", items: tokens, flops: forwardFLOPs, run: forward(noopHooks), check: checkLogits(nil)},
	{name: "hooks_modify", unit: "tokens/s", items: tokens, flops: forwardFLOPs, run: forward(ablateHooks), check: checkLogits(ablateEdits)},
	{name: "generate_kv", unit: "new_tokens/s", items: newTokens, flops: generateKVFLOPs, run: generate(false), check: checkGenerate},
	{name: "generate_nokv", unit: "new_tokens/s", items: newTokens, flops: generateFLOPs, run: generate(true), check: checkGenerate},
	{name: "patching", unit: "passes/s", items: patchedPasses, flops: patchingFLOPs, run: patching, check: checkPatching},
	{name: "train_step", unit: "tokens/s", items: tokens, flops: trainFLOPs, run: trainStep, check: checkTrain},
}

// Workloads names the harness's workloads in their order.
func Workloads() []string {
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = w.name
	}
	return names
}

func workloadByName(name string) (workload, error) {
	for _, w := range workloads {
		if w.name == name {
			return w, nil
		}
	}
	return workload{}, fmt.Errorf("unknown workload %q (known: %s)", name, strings.Join(Workloads(), ", "))
}

func isPattern(name string) bool { return strings.HasSuffix(name, "hook_pattern") }

func isResid(name string) bool {
	return strings.HasSuffix(name, "hook_resid_pre") || strings.HasSuffix(name, "hook_resid_mid") || strings.HasSuffix(name, "hook_resid_post")
}

// noopHooks is a forward hook that returns nothing on every hook point.
func noopHooks(*hookedmodel.HookedTransformer) []hookedmodel.Hook {
	return []hookedmodel.Hook{hookedmodel.FwdHook(func(string) bool { return true },
		func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil })}
}

// ablatedPoint is where hooks_modify zero-ablates head 0.
const ablatedPoint = "blocks.0.attn.hook_z"

// ablateHooks zero-ablates head 0 of layer 0 in place: z [batch pos head d_head].
func ablateHooks(*hookedmodel.HookedTransformer) []hookedmodel.Hook {
	return []hookedmodel.Hook{hookedmodel.FwdHook(hookedmodel.Name(ablatedPoint),
		func(z *gotch.Tensor, _ string) (*gotch.Tensor, error) {
			return nil, gotch.Try(func() {
				head := z.MustNarrow(2, 0, 1)
				defer head.Free()
				head.MustZero_()
			})
		})}
}

func forward(hooks func(*hookedmodel.HookedTransformer) []hookedmodel.Hook) func(context.Context, *env, *inputs, func(result) error) error {
	return func(ctx context.Context, e *env, in *inputs, see func(result) error) error {
		var hs []hookedmodel.Hook
		if hooks != nil {
			hs = hooks(e.m)
		}
		out, err := e.m.RunWithHooks(ctx, hookedmodel.Tokens(in.tokens), hs)
		if err != nil {
			return err
		}
		defer out.Free()
		return hand(see, result{logits: out.Logits})
	}
}

func cache(filter hookedmodel.Filter, opts ...hookedmodel.RunOption) func(context.Context, *env, *inputs, func(result) error) error {
	opts = append(opts, hookedmodel.NamesFilter(filter))
	return func(ctx context.Context, e *env, in *inputs, see func(result) error) error {
		out, c, err := e.m.RunWithCache(ctx, hookedmodel.Tokens(in.tokens), opts...)
		if err != nil {
			return err
		}
		defer out.Free()
		defer c.Free()
		return hand(see, result{logits: out.Logits, cache: c})
	}
}

func generate(noKV bool) func(context.Context, *env, *inputs, func(result) error) error {
	return func(ctx context.Context, e *env, in *inputs, see func(result) error) error {
		opts := []hookedmodel.GenOption{hookedmodel.MaxNewTokens(in.newTokens), hookedmodel.Greedy(), hookedmodel.StopAtEOS(false)}
		if noKV {
			opts = append(opts, hookedmodel.NoKVCache())
		}
		ids, err := e.m.Generate(ctx, hookedmodel.Tokens(in.tokens), opts...)
		if err != nil {
			return err
		}
		return hand(see, result{ids: ids})
	}
}

// patchingMetric is HARNESS.md's: the logit of token 1 minus that of
// token 2 at the last position, averaged over the batch.
func patchingMetric(batch int) analysis.Metric {
	return analysis.LogitDiff(-1, slices.Repeat([]int64{1}, batch), slices.Repeat([]int64{2}, batch))
}

func patching(ctx context.Context, e *env, in *inputs, see func(result) error) error {
	res, err := analysis.ActivationPatching(ctx, e.m, in.tokens, in.corrupted, patchingMetric(in.batch), analysis.HeadOutByPos)
	if err != nil {
		return err
	}
	return hand(see, result{patching: res})
}

// trainLR is the train_step workload's learning rate.
const trainLR = 1e-3

func trainStep(ctx context.Context, e *env, in *inputs, see func(result) error) error {
	if e.stepper == nil {
		st, err := train.NewStepper(e.m, train.DefaultTrainConfig())
		if err != nil {
			return err
		}
		e.stepper = st
	}
	e.weightsChanged()
	loss, _, err := e.stepper.Step(ctx, in.tokens, trainLR)
	if err != nil {
		return err
	}
	r := result{losses: [2]float64{loss, 0}}
	if see == nil {
		return nil
	}
	// the loss after the step, for the check, without recording gradients
	err = gotch.NoGrad(func() error {
		out, err := e.m.Forward(ctx, hookedmodel.Tokens(in.tokens), hookedmodel.Return(hookedmodel.ReturnLoss))
		if err != nil {
			return err
		}
		defer out.Free()
		r.losses[1], err = out.Loss.Item()
		return err
	})
	if err != nil {
		return err
	}
	return hand(see, r)
}

// hand gives a check its result; timed repetitions have no check.
func hand(see func(result) error, r result) error {
	if see == nil {
		return nil
	}
	return see(r)
}
