// Package weights reads and writes checkpoint tensors as raw little-endian
// bytes, without libtorch.
//
// [Open] takes a Hugging Face checkpoint directory (model.safetensors,
// pytorch_model.bin, or their sharded .index.json forms, safetensors
// preferred) or a single checkpoint file, and returns a [Checkpoint] that
// lists its keys and reads each tensor on demand with ReadAt, so a
// checkpoint is never held in memory whole. Files are not memory-mapped: a
// mapped file that shrinks while it is read kills the process with SIGBUS,
// where a read returns an error, and reads were as fast (measured on
// Linux). A file that shrinks while it is open makes reading a tensor an
// error, and so does a safetensors file that changes size at all. Each
// [Tensor] comes back contiguous and row-major in one of the dtypes
// libtorch can take from bytes, whatever the strides and storage sharing of
// the saved tensor. [WriteSafetensors] writes our own checkpoints, with the
// model config in the header metadata.
//
// Torch pickles are decoded with github.com/nlpodyssey/gopickle's pickle
// machine; the torch layer on top of it (storages, views, parameters, the zip
// and legacy containers) is ours, because gopickle's pytorch package reads
// every storage eagerly into typed Go slices and widens float16 and bfloat16
// to float32.
package weights
