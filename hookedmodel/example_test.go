package hookedmodel_test

import (
	"context"
	"fmt"
	"log"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// tinyModel is a randomly initialised two-layer model with four heads.
func tinyModel() *hookedmodel.HookedTransformer {
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.DMLP = 2, 16, 4, 4, 64
	cfg.NCtx, cfg.DVocab, cfg.ActFn = 32, 100, "gelu_new"
	m, err := hookedmodel.New(cfg, hookedmodel.WithSeed(0))
	if err != nil {
		log.Fatal(err)
	}
	return m
}

func ExampleHookedTransformer_RunWithCache() {
	m := tinyModel()
	defer m.Free()
	tokens := gotch.MustFromSlice([]int64{5, 17, 42, 8, 99}, []int64{1, 5}, gotch.CPU)
	defer tokens.Free()

	out, cache, err := m.RunWithCache(context.Background(), hookedmodel.Tokens(tokens))
	if err != nil {
		log.Fatal(err)
	}
	defer out.Free()
	defer cache.Free() // the cache owns its tensors and lends them

	pattern := cache.MustGet("blocks.0.attn.hook_pattern") // or cache.MustGet("pattern", 0)
	fmt.Println("pattern:", pattern.Shape())               // [batch head query key]
	fmt.Println("resid_pre 1:", cache.MustGet("resid_pre", 1).Shape())
	fmt.Println("logits:", out.Logits.Shape())
	// Output:
	// pattern: [1 4 5 5]
	// resid_pre 1: [1 5 16]
	// logits: [1 5 100]
}

func ExampleHookedTransformer_RunWithHooks() {
	m := tinyModel()
	defer m.Free()
	tokens := gotch.MustFromSlice([]int64{5, 17, 42, 8, 99}, []int64{1, 5}, gotch.CPU)
	defer tokens.Free()
	ctx := context.Background()

	// Zero-ablate head 2 of layer 0: hook_z is [batch pos head d_head].
	ablate := hookedmodel.FwdHook(hookedmodel.Name("blocks.0.attn.hook_z"),
		func(z *gotch.Tensor, name string) (*gotch.Tensor, error) {
			head := z.MustSelect(2, 2) // a view of z: ops on z are the hook's, to free
			defer head.Free()
			head.MustZero_() // in place: the activation changes
			return nil, nil  // nil: keep the (edited) activation
		})
	// Per-call hooks run in order: this one sees the ablated activation.
	check := hookedmodel.FwdHook(hookedmodel.Name("blocks.0.attn.hook_z"),
		func(z *gotch.Tensor, name string) (*gotch.Tensor, error) {
			s := gotch.NewScope() // or a scope for the hook's ops, freed together
			defer s.Close()
			fmt.Printf("%s head 2 after ablation: %g\n", name, s.Attach(z.MustAlias()).MustSelect(2, 2).MustAbs().MustSum().MustItem())
			return nil, nil
		})
	ablated, err := m.RunWithHooks(ctx, hookedmodel.Tokens(tokens), []hookedmodel.Hook{ablate, check})
	if err != nil {
		log.Fatal(err)
	}
	defer ablated.Free()
	clean, err := m.Forward(ctx, hookedmodel.Tokens(tokens)) // per-call hooks are gone
	if err != nil {
		log.Fatal(err)
	}
	defer clean.Free()

	s := gotch.NewScope()
	defer s.Close()
	diff := s.Attach(ablated.Logits.MustSub(clean.Logits)).MustAbs().MustMax().MustItem()
	fmt.Println("logits changed:", diff > 0)
	// Output:
	// blocks.0.attn.hook_z head 2 after ablation: 0
	// logits changed: true
}

// A hook gets its activation for the call only: the pass frees it when the
// hook returns. To read it later, keep an alias: act.MustAlias() is yours.
// Returning it from a hook hands it to the pass, which frees it.
func ExampleHookFunc() {
	m := tinyModel()
	defer m.Free()
	tokens := gotch.MustFromSlice([]int64{5, 17, 42, 8, 99}, []int64{1, 5}, gotch.CPU)
	defer tokens.Free()

	// Skip block 0: layer 1 reads what layer 0 read.
	var resid0 *gotch.Tensor
	keep := hookedmodel.FwdHook(hookedmodel.Name("blocks.0.hook_resid_pre"),
		func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
			resid0 = act.MustAlias() // shares act's memory; yours until handed over
			return nil, nil
		})
	skip := hookedmodel.FwdHook(hookedmodel.Name("blocks.1.hook_resid_pre"),
		func(*gotch.Tensor, string) (*gotch.Tensor, error) { return resid0, nil })
	out, err := m.RunWithHooks(context.Background(), hookedmodel.Tokens(tokens), []hookedmodel.Hook{keep, skip})
	if err != nil {
		log.Fatal(err)
	}
	defer out.Free()
	fmt.Println("logits:", out.Logits.Shape(), "alias freed with the pass:", resid0.Freed())
	// Output: logits: [1 5 100] alias freed with the pass: true
}

func ExampleGetActName() {
	for _, key := range [][]any{
		{"pattern", 0},
		{"resid_pre", 3},
		{"q", 0, "attn"},
		{"scale", 2, "ln1"},
		{"scale"},
		{"embed"},
		{"k6"},
		{"scale4ln1"},
	} {
		full, err := hookedmodel.GetActName(key[0].(string), key[1:]...)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(full)
	}
	// A negative layer counts from the end: only the cache (which knows the
	// model) resolves it, as cache.Get("resid_pre", -1).
	_, err := hookedmodel.GetActName("resid_pre", -1)
	fmt.Println(err)
	// Output:
	// blocks.0.attn.hook_pattern
	// blocks.3.hook_resid_pre
	// blocks.0.attn.hook_q
	// blocks.2.ln1.hook_scale
	// ln_final.hook_scale
	// hook_embed
	// blocks.6.attn.hook_k
	// blocks.4.ln1.hook_scale
	// GetActName("resid_pre", -1): layer -1 counts from the end, which only a model knows: use ActivationCache.Get, or layer + n_layers
}
