package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golens/golens/cuda"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/metal"
)

// Backend is a device that Resolve found usable, with what it can do.
type Backend struct {
	dev  gotch.Device
	name string
	caps Capabilities
}

// Device is where tensors go.
func (b *Backend) Device() gotch.Device { return b.dev }

// Name describes the device for people, e.g. "cpu" or
// "cuda:0 (NVIDIA H100 80GB HBM3, compute 9.0)".
func (b *Backend) Name() string { return b.name }

// Capabilities is what the device can do, measured when it was resolved.
func (b *Backend) Capabilities() Capabilities {
	c := b.caps
	c.DTypes = slices.Clone(c.DTypes)
	return c
}

// Seed seeds libtorch's global random generators (CPU and every CUDA
// device). It is process-wide, whatever the backend.
func (b *Backend) Seed(seed uint64) error {
	if err := gotch.ManualSeed(seed); err != nil {
		return fmt.Errorf("backend: seed: %w", err)
	}
	return nil
}

// SetThreads sets the number of libtorch's intra-op CPU threads. It is
// process-wide, whatever the backend.
func (b *Backend) SetThreads(n int) error {
	if err := gotch.SetNumThreads(n); err != nil {
		return fmt.Errorf("backend: set threads: %w", err)
	}
	return nil
}

// Threads is the number of libtorch's intra-op CPU threads.
func (b *Backend) Threads() int { return gotch.NumThreads() }

type config struct {
	selfCheck bool
}

// Option changes how Resolve chooses a device.
type Option func(*config)

// WithSelfCheck makes Resolve run SelfCheck on a device before choosing
// it: "auto" passes over a device that fails, and an explicit device
// returns the failure as an error.
func WithSelfCheck() Option {
	return func(c *config) { c.selfCheck = true }
}

// autoOrder is what "auto" tries, best first, ending with the CPU, which is
// always there.
var autoOrder = []gotch.Device{gotch.CUDA(0), gotch.MPS, gotch.CPU}

// Resolve returns the backend for spec: "cpu", "cuda" (cuda:0), "cuda:N",
// "mps", or "auto" for the first usable of cuda:0, mps and cpu. When a
// device cannot be used, the error says why and wraps the reason's
// sentinel: cuda.ErrNotCompiled, cuda.ErrUnavailable, metal.ErrUnavailable,
// metal.ErrNotCompiled, or ErrNotSupported for MPS on a torch with known
// wrong results (metal.KnownBadTorch); in a build without cgo, whatever the
// spec, gotch.ErrNoCgo.
func Resolve(spec string, opts ...Option) (*Backend, error) {
	if err := gotch.Available(); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if spec == "auto" {
		var errs []error
		for _, d := range autoOrder {
			b, err := open(d, cfg)
			if err == nil {
				return b, nil
			}
			errs = append(errs, err)
		}
		return nil, fmt.Errorf("backend: auto: no usable device:\n%w", errors.Join(errs...))
	}
	d, err := gotch.ParseDevice(spec)
	if err != nil {
		return nil, fmt.Errorf("backend: unknown device %q: want auto, cpu, cuda, cuda:N or mps", spec)
	}
	return open(d, cfg)
}

// open checks that d can be used, measures its capabilities and, when
// asked, runs the self-check.
func open(d gotch.Device, cfg config) (*Backend, error) {
	b := &Backend{dev: d, name: d.String()}
	var props cuda.Props
	switch d.Type {
	case gotch.CUDAType:
		var err error
		if props, err = checkCUDA(d.Index); err != nil {
			return nil, err
		}
		if props.Name != "" {
			b.name = fmt.Sprintf("%s (%s, compute %d.%d)", d, props.Name, props.Major, props.Minor)
		}
	case gotch.MPSType:
		if err := checkMPS(); err != nil {
			return nil, err
		}
	}
	b.caps = measure(d, props)
	if cfg.selfCheck {
		if err := b.SelfCheck(context.Background()); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// checkCUDA says why CUDA device i cannot be used, or describes it. Its
// properties are zero when the shim was built without the CUDA runtime
// headers: libtorch still runs tensors there, but golens cannot ask.
func checkCUDA(i int) (cuda.Props, error) {
	n := cuda.DeviceCount()
	props, err := cuda.Properties(i)
	switch {
	case n == 0 && errors.Is(err, cuda.ErrNotCompiled) && !strings.Contains(gotch.BuildInfo(), "USE_CUDA=ON"):
		return props, fmt.Errorf("backend: cannot use cuda:%d: this libtorch (%s) was built without CUDA: %w", i, gotch.TorchVersion(), err)
	case i >= n: // also a CUDA libtorch without a GPU, whether golens has its CUDA parts (-tags cuda) or not
		return props, fmt.Errorf("backend: cannot use cuda:%d: no CUDA device %d (%d visible): %w", i, i, n, cuda.ErrUnavailable)
	case err != nil && !errors.Is(err, cuda.ErrNotCompiled):
		return props, fmt.Errorf("backend: cannot use cuda:%d: %w", i, err)
	}
	return props, nil
}

// checkMPS says why the MPS device cannot be used.
func checkMPS() error {
	if !metal.IsAvailable() {
		err := metal.Synchronize() // says why: not macOS, a shim without MPS, or no device
		if err == nil {
			err = metal.ErrUnavailable
		}
		return fmt.Errorf("backend: cannot use mps: %w", err)
	}
	if bad, why := metal.KnownBadTorch(gotch.TorchVersion()); bad {
		return fmt.Errorf("backend: cannot use mps: %s: %w", why, ErrNotSupported)
	}
	return nil
}
