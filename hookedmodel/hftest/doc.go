// Package hftest writes small random checkpoints in Hugging Face's on-disk
// layout (config.json beside model.safetensors or its shards) for every
// model_type golens loads, under transformers' tensor names, keeping the
// values it wrote so tests can compare a loaded model with a reference
// computed from them. It is for tests, as gotchtest is.
package hftest
