//go:build !darwin

package metal

import (
	"fmt"
	"runtime"
)

var errNeedsMacOS = fmt.Errorf("metal: MPS needs macOS, and this is %s: %w", runtime.GOOS, ErrUnavailable)

// IsAvailable reports whether libtorch can put tensors on the MPS device:
// never off macOS.
func IsAvailable() bool { return false }

// Synchronize waits until all work queued on the MPS device has finished;
// off macOS it returns an error wrapping ErrUnavailable.
func Synchronize() error { return errNeedsMacOS }

// Memory is the number of bytes the MPS allocator has handed to tensors;
// off macOS it returns an error wrapping ErrUnavailable.
func Memory() (int64, error) { return 0, errNeedsMacOS }
