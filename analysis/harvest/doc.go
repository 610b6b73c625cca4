// Package harvest runs a model over a token dataset and writes chosen
// activations to disk, one row per token, as sharded safetensors files
// with a manifest: the input of sparse autoencoders, probes and activation
// statistics.
//
// The dataset is cut into shards of a fixed number of examples; shard k
// holds examples [k·S, (k+1)·S) and is computed by rank k mod world. Each
// shard is computed the same way whichever rank takes it (the same
// batches, the same padding), so the shards, concatenated in order, are
// the same bytes for any number of ranks. A shard is written atomically
// (temporary file, then rename), so after a crash a run resumes with the
// shards that are missing: nothing lost, nothing twice.
//
// A shard's safetensors file holds, for each hook, a tensor [rows ...]
// (the hook's activation at each real token, example by example, position
// by position) and the int64 tensors example, position and token [rows]
// saying where each row came from. manifest.json lists the shards, the
// hooks with their per-row shapes and dtypes, and the totals; numpy reads
// a shard with a few lines (8-byte little-endian header length, a JSON
// header, then the raw arrays).
package harvest
