package metal

import "github.com/golens/golens/gotch"

// IsAvailable reports whether libtorch can put tensors on the MPS device.
func IsAvailable() bool { return gotch.HasDevice(gotch.MPSType) }

// Synchronize waits until all work queued on the MPS device has finished.
func Synchronize() error {
	if err := gotch.MPSSynchronize(); err != nil {
		return classify("synchronize", err)
	}
	return nil
}

// Memory is the number of bytes the MPS allocator has handed to tensors.
func Memory() (int64, error) {
	n, err := gotch.MPSMemory()
	if err != nil {
		return 0, classify("memory", err)
	}
	return n, nil
}
