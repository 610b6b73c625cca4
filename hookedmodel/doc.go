// Package hookedmodel is TransformerLens's HookedTransformer in Go: a
// decoder-only transformer on libtorch whose every notable activation
// passes a hook point with TransformerLens's name and shape, so that Go
// functions can read and edit activations on the device while the forward
// pass runs.
//
// A model comes from Load (a Hugging Face checkpoint directory, a golens
// checkpoint, or a name such as "gpt2", "pythia-70m" or
// "meta-llama/Llama-3.2-1B" through the local Hugging Face cache or the
// hub, at a revision or training checkpoint if asked; its weights stream
// onto the device without a second copy of the model) or from New (random
// weights for a Config). Config mirrors
// HookedTransformerConfig field for field, with the same JSON names.
//
// A pass runs on an Input (Tokens, Text or Residual) with Forward,
// RunWithHooks or RunWithCache:
//
//	out, cache, err := m.RunWithCache(ctx, hookedmodel.Text("Hello world"))
//	pattern := cache.MustGet("pattern", 0) // blocks.0.attn.hook_pattern [batch head query key]
//
// Hooks given to RunWithHooks apply to that call only; AddHook registers a
// hook on the model until it is removed. Concurrent passes on one model are
// safe and never see each other's per-call hooks. A hook that fails or
// panics aborts its pass with a *HookError naming the hook point; every
// tensor the pass made is freed either way.
//
// Nobody observing attention scores or patterns lets attention use the
// fused kernel; nobody observing a LayerNorm's scale lets it use ATen's
// fused layer_norm. Observing them gives TransformerLens's explicit
// computation and the same numbers.
//
// Weight processing (fold_ln, center_writing_weights, center_unembed,
// fold_value_biases, refactor_factored_attn_matrices) is applied by Load as
// from_pretrained does, or with Process; NoProcessing loads weights as they
// are. Unlike TransformerLens, a step is done only where it is an exact
// invariance of the log-probabilities (fold_ln is skipped, and W_pos left
// uncentred, where shortformer positions are added after ln1); the
// model's Processing says what ran, what was skipped and why, and golens
// checkpoints keep it. The tokenizer (package tokenizer) is GPT-2's byte-level BPE, built
// in and offline.
//
// Ownership follows gotch's rule: a tensor made from a tensor of a
// gotch.Scope joins that scope and is freed when it closes; every other
// tensor you make is yours to Free. What golens lends you (a hook's act,
// an Output's fields, an ActivationCache's entries, weight views such as
// W_Q()) stays golens's and is in no scope, so ops on it make tensors that
// are yours, which outlive the lender's Free; take an alias (MustAlias) of
// a lent tensor to keep it beyond its lender. Output, ActivationCache,
// KVCache, FactoredMatrix and the model are freed with their Free,
// StateDict's views by closing the scope it returns.
package hookedmodel
