package backend_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/backend"
	"github.com/golens/golens/cuda"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/metal"
)

// resolve resolves the device under test.
func resolve(t *testing.T, opts ...backend.Option) *backend.Backend {
	t.Helper()
	b, err := backend.Resolve(gotchtest.Device(t).String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResolve(t *testing.T) {
	gotchtest.CheckLeaks(t)
	noCUDA := !cuda.IsAvailable()
	noMPS := !metal.IsAvailable()
	unknown := "want auto, cpu, cuda, cuda:N or mps"
	// Without a GPU, the error says why: a golens built without CUDA, or a
	// CUDA build (-tags cuda; the CUDA lane of ./build.sh lanes) that sees
	// no device.
	noCUDA0, noCUDA3, noCUDAErr := "this libtorch ("+gotch.TorchVersion()+") was built without CUDA", "cannot use cuda:3: this libtorch", cuda.ErrNotCompiled
	if _, err := cuda.Properties(0); noCUDA && !errors.Is(err, cuda.ErrNotCompiled) {
		noCUDA0, noCUDA3, noCUDAErr = "cannot use cuda:0: no CUDA device 0 (0 visible)", "cannot use cuda:3: no CUDA device 3 (0 visible)", cuda.ErrUnavailable
	}
	for _, tc := range []struct {
		spec    string
		skip    bool // the row needs a machine without that device
		want    gotch.Device
		errText string // a substring of the error, when one is expected
		errIs   error
	}{
		{spec: "cpu", want: gotch.CPU},
		{spec: "auto", skip: !noCUDA || !noMPS, want: gotch.CPU},
		{spec: "cuda", skip: !noCUDA, errText: noCUDA0, errIs: noCUDAErr},
		{spec: "cuda:3", skip: !noCUDA, errText: noCUDA3, errIs: noCUDAErr},
		{spec: "mps", skip: runtime.GOOS == "darwin", errText: "MPS needs macOS", errIs: metal.ErrUnavailable},
		{spec: "gpu", errText: unknown},
		{spec: "cuda:x", errText: unknown},
		{spec: "cuda:-1", errText: unknown},
		{spec: "CPU", errText: unknown},
		{spec: "", errText: unknown},
	} {
		t.Run(fmt.Sprintf("%q", tc.spec), func(t *testing.T) {
			if tc.skip {
				t.Skip("this machine has the device")
			}
			b, err := backend.Resolve(tc.spec)
			if tc.errText == "" {
				if err != nil {
					t.Fatalf("Resolve(%q): %v", tc.spec, err)
				}
				if b.Device() != tc.want {
					t.Errorf("Resolve(%q).Device() = %v, want %v", tc.spec, b.Device(), tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve(%q) = %v, want an error", tc.spec, b.Name())
			}
			if !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("Resolve(%q) error %q does not say %q", tc.spec, err, tc.errText)
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("Resolve(%q) error %q does not wrap %q", tc.spec, err, tc.errIs)
			}
		})
	}
}

func TestResolveMissingGPU(t *testing.T) {
	gotchtest.CheckLeaks(t)
	if gotchtest.Device(t).Type != gotch.CUDAType {
		t.Skipf("needs a GPU: run with %s=cuda", gotchtest.DeviceEnv)
	}
	n := cuda.DeviceCount()
	_, err := backend.Resolve(fmt.Sprintf("cuda:%d", n))
	want := fmt.Sprintf("no CUDA device %d (%d visible)", n, n)
	if !errors.Is(err, cuda.ErrUnavailable) || !strings.Contains(err.Error(), want) {
		t.Errorf("Resolve(cuda:%d) = %v, want an error saying %q and wrapping cuda.ErrUnavailable", n, err, want)
	}
}

func TestCapabilities(t *testing.T) {
	gotchtest.CheckLeaks(t)
	b := resolve(t)
	c := b.Capabilities()
	t.Logf("%s, torch %s: %+v", b.Name(), c.Torch, c)
	for _, dt := range []gotch.DType{gotch.Float, gotch.Double, gotch.Half, gotch.BFloat16} {
		if _, ok := c.DType(dt); !ok {
			t.Errorf("no entry for %s", dt)
		}
	}
	if err := b.Supports(gotch.Float); err != nil {
		t.Errorf("Supports(float32): %v", err)
	}
	if err := b.Supports(gotch.Int64); !errors.Is(err, backend.ErrNotSupported) {
		t.Errorf("Supports(int64) = %v, want ErrNotSupported", err)
	}
	switch d := b.Device(); d.Type {
	case gotch.CPUType:
		if c.TF32 || c.FusedAttention || c.TotalMemory != 0 {
			t.Errorf("on the CPU, TF32, FusedAttention and TotalMemory must be unset: %+v", c)
		}
	case gotch.CUDAType:
		p, err := cuda.Properties(d.Index)
		if err != nil {
			t.Fatal(err)
		}
		if c.TF32 != (p.Major >= 8) || c.TotalMemory != p.TotalMemory || c.FusedAttention != gotch.HasFusedAttention() {
			t.Errorf("capabilities %+v do not match the device %+v", c, p)
		}
	}
}

// The dtype matrix of Debian's libtorch 1.13 on the CPU, as documented in
// doc.go; the probe in Resolve regenerates it.
func TestCPUDTypesTorch113(t *testing.T) {
	gotchtest.CheckLeaks(t)
	if !strings.HasPrefix(gotch.TorchVersion(), "1.13.") {
		t.Skipf("the recorded matrix is for torch 1.13, this is %s", gotch.TorchVersion())
	}
	b, err := backend.Resolve("cpu")
	if err != nil {
		t.Fatal(err)
	}
	full := func(dt gotch.DType) backend.DTypeSupport {
		return backend.DTypeSupport{DType: dt, Storage: true, Matmul: true, Softmax: true, LayerNorm: true}
	}
	want := []backend.DTypeSupport{
		full(gotch.Float), full(gotch.Double),
		{DType: gotch.Half, Storage: true},
		full(gotch.BFloat16),
	}
	if got := b.Capabilities().DTypes; !slices.Equal(got, want) {
		t.Errorf("DTypes = %+v\nwant %+v", got, want)
	}
	err = b.Supports(gotch.Half)
	if !errors.Is(err, backend.ErrNotSupported) || !strings.Contains(err.Error(), "no matmul, softmax, layer_norm") {
		t.Errorf("Supports(float16) = %v, want ErrNotSupported naming matmul, softmax and layer_norm", err)
	}
	if !b.Capabilities().BF16Matmul {
		t.Error("BF16Matmul is false, but bfloat16 matmul runs on this CPU")
	}
}

func TestSelfCheck(t *testing.T) {
	gotchtest.CheckLeaks(t)
	b := resolve(t, backend.WithSelfCheck())
	if err := b.SelfCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.SelfCheck(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("SelfCheck with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestSelfCheckCatchesWrongResults(t *testing.T) {
	gotchtest.CheckLeaks(t)
	d := gotchtest.Device(t)
	b := resolve(t)
	for _, op := range backend.CheckNames() {
		t.Run(op, func(t *testing.T) {
			backend.CorruptOn(t, d, op)
			err := b.SelfCheck(context.Background())
			if err == nil || !strings.Contains(err.Error(), op+" differs") {
				t.Fatalf("SelfCheck with a wrong %s = %v, want an error naming it", op, err)
			}
			for _, other := range backend.CheckNames() {
				if other != op && strings.Contains(err.Error(), other+" differs") {
					t.Errorf("SelfCheck with only %s wrong blames %s too: %v", op, other, err)
				}
			}
			if _, err := backend.Resolve(d.String(), backend.WithSelfCheck()); err == nil || !strings.Contains(err.Error(), op) {
				t.Errorf("Resolve(%s, WithSelfCheck()) with a wrong %s = %v, want an error naming it", d, op, err)
			}
			if _, err := backend.Resolve(d.String()); err != nil {
				t.Errorf("Resolve(%s) without the self-check: %v", d, err)
			}
		})
	}
}

// "auto" with the self-check passes over a device that computes wrongly
// and takes the next; cpu:0 stands in for a faulty accelerator.
func TestAutoSkipsFailingDevice(t *testing.T) {
	gotchtest.CheckLeaks(t)
	faulty := gotch.Device{Type: gotch.CPUType, Index: 0}
	backend.SetAutoOrder(t, faulty, gotch.CPU)
	backend.CorruptOn(t, faulty, "softmax")

	b, err := backend.Resolve("auto")
	if err != nil {
		t.Fatal(err)
	}
	if b.Device() != faulty {
		t.Errorf("without the self-check, auto chose %v, want the first device %v", b.Device(), faulty)
	}
	b, err = backend.Resolve("auto", backend.WithSelfCheck())
	if err != nil {
		t.Fatal(err)
	}
	if b.Device() != gotch.CPU {
		t.Errorf("with the self-check, auto chose %v, want %v after the faulty %v", b.Device(), gotch.CPU, faulty)
	}
}

// With the real order, "auto" never chooses the device under test once it
// computes wrongly; when that is the CPU, nothing is left.
func TestAutoSkipsWrongDeviceUnderTest(t *testing.T) {
	gotchtest.CheckLeaks(t)
	d := gotchtest.Device(t)
	backend.CorruptOn(t, d, "matmul")
	b, err := backend.Resolve("auto", backend.WithSelfCheck())
	if d == gotch.CPU {
		if err == nil || !strings.Contains(err.Error(), "self-check on cpu failed: matmul differs") {
			t.Errorf("auto with a wrong CPU = %v, want an error naming the matmul", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if b.Device() == d {
		t.Errorf("auto chose %v, whose self-check fails", d)
	}
}

func TestSeedAndThreads(t *testing.T) {
	gotchtest.CheckLeaks(t)
	b := resolve(t)
	draw := func() []float64 {
		if err := b.Seed(42); err != nil {
			t.Fatal(err)
		}
		// Dropout draws from the global generators that Seed seeds.
		x, err := gotch.Ones([]int64{64}, gotch.Float, b.Device())
		if err != nil {
			t.Fatal(err)
		}
		defer x.Free()
		y, err := x.Dropout(0.5, true)
		if err != nil {
			t.Fatal(err)
		}
		defer y.Free()
		return gotchtest.Values(t, y)
	}
	if a, c := draw(), draw(); !slices.Equal(a, c) {
		t.Errorf("the same seed drew %v, then %v", a, c)
	}

	old := b.Threads()
	t.Cleanup(func() { _ = b.SetThreads(old) })
	if err := b.SetThreads(1); err != nil {
		t.Fatal(err)
	}
	if n := b.Threads(); n != 1 {
		t.Errorf("Threads() = %d after SetThreads(1)", n)
	}
	if err := b.SetThreads(0); err == nil {
		t.Error("SetThreads(0) returned no error")
	}
}
