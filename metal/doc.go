// Package metal exposes what golens needs from Apple's MPS (Metal
// Performance Shaders) device beyond running tensors on it: availability,
// synchronisation, allocated memory, and which torch versions are known to
// compute wrong results on it.
//
// It is plain Go over package gotch's MPS calls, used on macOS only; on
// other systems every call returns an error wrapping ErrUnavailable, so
// programs that mention MPS still build everywhere. On macOS, a golens built without MPS support (libtorch
// before 2.1) returns errors wrapping ErrNotCompiled.
//
// MPS has computed silently wrong results in some torch releases, with no
// error raised, and TransformerLens (utilities/devices.py) warns about it on
// every MPS run. KnownBadTorch names the releases with known bugs; for the
// others, package backend's self-check compares the device with the CPU.
package metal
