// Package train trains small HookedTransformers from scratch with
// libtorch's autograd: AdamW with decoupled weight decay (as
// torch.optim.AdamW), a linear warm-up then cosine decay of the learning
// rate, and clipping of the global gradient norm.
//
// A run is a Config (the model, the optimisation, the data), usually read
// from the JSON file that `golens train --config` takes:
//
//	cfg, err := train.LoadConfig("induction.json")
//	res, err := train.Run(ctx, cfg, "out", train.HeadScore("induction", inductionScore))
//
// Run writes checkpoints, metrics.jsonl and the final model into its out
// folder (see Run), and resumes from the latest checkpoint there, bit for
// bit where the run stopped: a batch is a function of the seed and the step
// alone (Dataset), and a checkpoint keeps the weights, AdamW's moments and
// step counts, and the step. On the same machine the same config gives the
// same loss curve. Cancelling the context stops the run after the current
// step with a checkpoint.
//
// Two datasets come with the package: RepeatedTokens, random sequences
// repeated within each row (the induction task), and Text, a text file in
// GPT-2's BPE packed into rows. Every evaluation reports the held-out loss,
// the in-context learning score of Olsson et al. (2022), and the per-head
// scores of the HeadScore functions given.
//
// Weight decay applies to matrices only (not biases or LayerNorm weights)
// unless decay_all asks for TransformerLens's train.py behaviour, which
// decays every parameter. Weights are updated in place under gotch.NoGrad,
// and every tensor a step makes is freed with its scope.
package train
