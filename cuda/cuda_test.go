package cuda_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/golens/golens/cuda"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// isSentinel reports whether err says "no CUDA here" in one of the two ways
// callers are told to test for.
func isSentinel(err error) bool {
	return errors.Is(err, cuda.ErrNotCompiled) || errors.Is(err, cuda.ErrUnavailable)
}

// gpu is the CUDA device under test; it skips the test unless
// GOLENS_TEST_DEVICE names one.
func gpu(t *testing.T) int {
	t.Helper()
	d := gotchtest.Device(t)
	if d.Type != gotch.CUDAType {
		t.Skipf("needs a GPU: run with %s=cuda", gotchtest.DeviceEnv)
	}
	return d.Index
}

func TestWithoutGPU(t *testing.T) {
	gotchtest.CheckLeaks(t)
	if cuda.IsAvailable() {
		t.Skip("a CUDA device is visible; the no-GPU path needs a machine without one")
	}
	if n := cuda.DeviceCount(); n != 0 {
		t.Errorf("DeviceCount() = %d without a GPU, want 0", n)
	}
	_, propsErr := cuda.Properties(0)
	_, memErr := cuda.Memory(0)
	ev, recordErr := cuda.Record(0)
	if ev != nil {
		t.Errorf("Record returned an event without a GPU")
	}
	for name, err := range map[string]error{
		"Properties":  propsErr,
		"Synchronize": cuda.Synchronize(0),
		"Memory":      memErr,
		"ResetPeak":   cuda.ResetPeak(0),
		"EmptyCache":  cuda.EmptyCache(),
		"Record":      recordErr,
	} {
		if !isSentinel(err) {
			t.Errorf("%s: got %v, want an error wrapping ErrNotCompiled or ErrUnavailable", name, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		code error // the sentinel gotch wraps for the shim's error code
		want error
	}{
		{"not compiled: this golens shim was built without CUDA", gotch.ErrNotCompiled, cuda.ErrNotCompiled},
		{"no CUDA device 3: 1 visible", gotch.ErrNoDevice, cuda.ErrUnavailable},
		{"CUDA error: out of memory", gotch.ErrOutOfMemory, nil},
	} {
		err := cuda.Classify("synchronize device 3", &gotch.Error{Op: "Op", Msg: tc.msg, Err: tc.code})
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("classify(%q) = %v, want it to wrap %v", tc.msg, err, tc.want)
		}
		if tc.want == nil && isSentinel(err) {
			t.Errorf("classify(%q) = %v, want no sentinel", tc.msg, err)
		}
		if !strings.HasPrefix(err.Error(), "cuda: synchronize device 3: ") {
			t.Errorf("classify(%q) = %q, want it to say what failed", tc.msg, err)
		}
	}
}

func TestElapsedNilEvent(t *testing.T) {
	var freed cuda.Event
	freed.Free() // a zero Event is already free; Free must not crash
	if _, err := cuda.Elapsed(nil, &freed); err == nil {
		t.Error("Elapsed(nil, freed) returned no error")
	}
}

func TestProperties(t *testing.T) {
	dev := gpu(t)
	p, err := cuda.Properties(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cuda:%d: %+v", dev, p)
	if p.Name == "" || p.Major < 3 || p.Minor < 0 || p.TotalMemory < 1<<30 {
		t.Errorf("Properties(%d) = %+v, want a name, compute capability ≥ 3.0 and ≥ 1 GiB", dev, p)
	}
	if _, err := cuda.Properties(cuda.DeviceCount()); !errors.Is(err, cuda.ErrUnavailable) {
		t.Errorf("Properties of device %d (one past the last): got %v, want ErrUnavailable", cuda.DeviceCount(), err)
	}
}

func TestMemory(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gpu(t)
	const bytes = 64 << 20
	if err := cuda.ResetPeak(dev); err != nil {
		t.Fatal(err)
	}
	before := memory(t, dev)
	x, err := gotch.Zeros([]int64{bytes / 4}, gotch.Float, gotch.CUDA(dev))
	if err != nil {
		t.Fatal(err)
	}
	during := memory(t, dev)
	x.Free()
	if got := during.Allocated - before.Allocated; got < bytes {
		t.Errorf("a %d-byte tensor raised Allocated by %d", bytes, got)
	}
	if during.PeakAllocated < during.Allocated || during.Reserved < during.Allocated {
		t.Errorf("inconsistent statistics: %+v", during)
	}
	if err := cuda.ResetPeak(dev); err != nil {
		t.Fatal(err)
	}
	after := memory(t, dev)
	if after.PeakAllocated >= during.PeakAllocated {
		t.Errorf("after Free and ResetPeak, PeakAllocated = %d, want below %d", after.PeakAllocated, during.PeakAllocated)
	}
	if err := cuda.EmptyCache(); err != nil {
		t.Fatal(err)
	}
	if r := memory(t, dev).Reserved; r > during.Reserved {
		t.Errorf("EmptyCache raised Reserved from %d to %d", during.Reserved, r)
	}
}

func memory(t *testing.T, dev int) cuda.MemoryStats {
	t.Helper()
	m, err := cuda.Memory(dev)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEventsTimeMatmul(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gpu(t)
	s := gotch.NewScope()
	defer s.Close()
	x := s.Attach(gotch.MustOnes([]int64{4096, 4096}, gotch.Float, gotch.CUDA(dev)))
	start, err := cuda.Record(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer start.Free()
	for range 4 {
		x.MustMatmul(x)
	}
	end, err := cuda.Record(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer end.Free()
	d, err := cuda.Elapsed(start, end)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("4 matmuls of 4096² float32 on cuda:%d: %v", dev, d)
	if d <= 0 {
		t.Errorf("Elapsed = %v, want > 0", d)
	}
	if err := cuda.Synchronize(dev); err != nil {
		t.Errorf("Synchronize(%d): %v", dev, err)
	}
}
