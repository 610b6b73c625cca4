// Package floor runs the C++ floor under golens's forward pass, the same
// GPT-2 forward written directly against ATen (bench/cpp/gpt2_floor.h),
// inside a golens process on the golens model's own weight tensors.
//
// The floor comes as a golens extension (gotch.OpenExtension,
// gotch/csrc/golens_torch_ext.h), libgolens_floor, that ./build.sh floor
// builds into this package's lib/ folder (test and bench build it too; see
// Path) and this package loads at run time, so the package itself is plain
// Go and the library can be rebuilt against another torch (on a GPU
// machine, by bench/gpu/run.sh). It must be built against the torch golens
// runs on; Open says so otherwise.
//
// Timing the floor in the same process, alternating with golens's passes
// on the same weight memory, removes what a separate C++ process differs
// in (heap layout, page placement, the process's own slow phases on a
// shared VM); what remains of the ratio is what golens's Go layer adds.
// BenchmarkGPT2SideBySide measures it, with the hook and cache targets, in
// one run.
package floor
