// Package analysis is the circuits toolkit of golens: the standard
// mechanistic-interpretability workflow of TransformerLens and ARENA on a
// hookedmodel.HookedTransformer.
//
//   - Head detection (DetectHead): previous-token, duplicate-token,
//     induction, current-token and first-token heads, or any pattern,
//     scored as TransformerLens's head_detector scores them.
//   - Induction (Induction, RepeatedTokens): loss on each repeat of
//     repeated random tokens, and each head's induction score.
//   - Direct logit attribution (LogitAttribution): a logit difference
//     split by layer, head and source position, through the cached
//     LayerNorm scale.
//   - Ablation (NewAblation, AblationTable): zero, mean and resample
//     ablation of heads, neurons, and whole attention or MLP layers.
//   - Activation patching (ActivationPatching) with TransformerLens's
//     patching-module shapes, and its gradient approximation
//     (AttributionPatching) from one clean and one corrupted run.
//   - Logit lens (LogitLens): the residual stream through the final
//     LayerNorm and the unembedding after every layer.
//   - Composition scores (CompositionScores): Q-, K- and V-composition
//     between every pair of heads, with a random baseline.
//   - Circuit accuracy (CircuitAccuracy, FullOVCircuit): the share of
//     tokens a head's full OV circuit copies (ARENA's top_1_acc), in
//     blocks of rows, so a 50257-token vocabulary never needs its dense
//     product.
//
// Results are Tables, plain Go arrays with named axes ([layer head],
// [layer pos], ...), which need no Free. Long work takes a context first
// and stops when it is done; sweeps draw a progress bar on the writer
// WithProgress gives. NewInductionModel builds a small model with a known
// induction circuit, by hand: the ground truth the package's tests check
// the analyses against.
package analysis
