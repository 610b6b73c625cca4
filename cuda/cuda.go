package cuda

import (
	"errors"
	"fmt"

	"github.com/golens/golens/gotch"
)

var (
	// ErrNotCompiled is wrapped by every error of a golens built without
	// CUDA support.
	ErrNotCompiled = errors.New("this golens was built without CUDA support: build it with -tags cuda against a CUDA libtorch (go run github.com/golens/golens/cmd/golens-env prints the flags), or use the cpu backend")
	// ErrUnavailable is wrapped by the error of a call about a CUDA device
	// that is not there.
	ErrUnavailable = errors.New("no such CUDA device: check nvidia-smi and CUDA_VISIBLE_DEVICES, or use the cpu backend")
)

// classify says what failed and wraps this package's sentinel for the kind
// of failure gotch reports.
func classify(what string, err error) error {
	var ge *gotch.Error
	msg := err.Error()
	if errors.As(err, &ge) {
		msg = ge.Msg
	}
	switch {
	case errors.Is(err, gotch.ErrNotCompiled):
		return fmt.Errorf("cuda: %s: %w", what, ErrNotCompiled)
	case errors.Is(err, gotch.ErrNoDevice):
		return fmt.Errorf("cuda: %s: %s: %w", what, msg, ErrUnavailable)
	}
	return fmt.Errorf("cuda: %s: %w", what, err)
}

// DeviceCount is the number of CUDA devices libtorch sees; 0 without CUDA.
func DeviceCount() int { return gotch.CUDADeviceCount() }

// IsAvailable reports whether libtorch sees at least one CUDA device, so
// tensors can be put on one. The statistics in this package may still be
// missing (ErrNotCompiled) when golens was built without the cuda tag.
func IsAvailable() bool { return DeviceCount() > 0 }

// Props describes a CUDA device.
type Props = gotch.CUDAProps

// Properties describes device dev.
func Properties(dev int) (Props, error) {
	p, err := gotch.CUDAProperties(dev)
	if err != nil {
		return Props{}, classify(fmt.Sprintf("properties of device %d", dev), err)
	}
	return p, nil
}

// Synchronize waits until all work queued on device dev has finished.
func Synchronize(dev int) error {
	if err := gotch.CUDASynchronize(dev); err != nil {
		return classify(fmt.Sprintf("synchronize device %d", dev), err)
	}
	return nil
}

// MemoryStats are the caching allocator's statistics for one device, in
// bytes. Reserved memory includes cached blocks that tensors no longer use;
// peaks count from the last ResetPeak.
type MemoryStats = gotch.CUDAMemoryStats

// Memory reads the memory statistics of device dev.
func Memory(dev int) (MemoryStats, error) {
	m, err := gotch.CUDAMemory(dev)
	if err != nil {
		return MemoryStats{}, classify(fmt.Sprintf("memory of device %d", dev), err)
	}
	return m, nil
}

// ResetPeak makes the peaks of device dev start again from the current
// values, so a measurement can cover one piece of work.
func ResetPeak(dev int) error {
	if err := gotch.CUDAResetPeak(dev); err != nil {
		return classify(fmt.Sprintf("reset peak memory of device %d", dev), err)
	}
	return nil
}

// EmptyCache returns the allocator's cached, unused blocks to the driver,
// so other processes (or nvidia-smi) see the memory as free.
func EmptyCache() error {
	if err := gotch.CUDAEmptyCache(); err != nil {
		return classify("empty cache", err)
	}
	return nil
}
