//go:build cgo && !golens_prebuilt

// The shim's C++ (csrc/), compiled by cgo as one translation unit: ATen's
// headers are parsed once (10 s here, against 26 s for the four files
// apart), and Go's build cache keeps the object. Built with the tag
// golens_prebuilt, gotch links a prebuilt libgolens_torch instead (the GPU
// bundle: see build.sh); without cgo, there is no shim (see nocgo.go).
#include "csrc/shim.cpp"
#include "csrc/ops_gen.cpp"
#include "csrc/ops_helpers.cpp"
#include "csrc/devices.cpp"
#include "csrc/dist.cpp"
