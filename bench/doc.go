// Package bench is golens's benchmark harness: the workloads a user of an
// interpretability library runs (a forward pass, caching activations,
// hooks, generation, activation patching, a training step) on model shapes
// from tutorial toys to Gemma 2, each timed and each checked against the
// float64 reference (hookedmodel/reference); a row that fails the check
// reports no timings.
//
// A result is a Row, printed as one JSON object per line in the format
// that bench/HARNESS.md fixes for every implementation: golens here, and
// beside it the PyTorch and transformers peers (bench/peers) and the C++
// ATen floor (bench/cpp). Table turns the rows of one run into ratios
// against each peer. `golens bench` is the command line over Run, and
// `./build.sh bench` runs the whole CPU grid with all the peers.
package bench
