package metal_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/metal"
)

func TestWithoutMPS(t *testing.T) {
	gotchtest.CheckLeaks(t)
	if metal.IsAvailable() {
		t.Skip("an MPS device is here; the no-MPS path needs a machine without one")
	}
	_, memErr := metal.Memory()
	for name, err := range map[string]error{"Synchronize": metal.Synchronize(), "Memory": memErr} {
		if !errors.Is(err, metal.ErrUnavailable) && !errors.Is(err, metal.ErrNotCompiled) {
			t.Errorf("%s: got %v, want an error wrapping ErrUnavailable or ErrNotCompiled", name, err)
		}
		if runtime.GOOS != "darwin" && !strings.Contains(err.Error(), "MPS needs macOS") {
			t.Errorf("%s on %s: %q does not say that MPS needs macOS", name, runtime.GOOS, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		code error // the sentinel gotch wraps for the shim's error code
		want error
	}{
		{"not compiled: this golens shim was built without MPS", gotch.ErrNotCompiled, metal.ErrNotCompiled},
		{"MPS is not available on this machine", gotch.ErrNoDevice, metal.ErrUnavailable},
		{"MPS backend out of memory", gotch.ErrOutOfMemory, nil},
	} {
		err := metal.Classify("memory", &gotch.Error{Op: "Op", Msg: tc.msg, Err: tc.code})
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("classify(%q) = %v, want it to wrap %v", tc.msg, err, tc.want)
		}
		if tc.want == nil && (errors.Is(err, metal.ErrNotCompiled) || errors.Is(err, metal.ErrUnavailable)) {
			t.Errorf("classify(%q) = %v, want no sentinel", tc.msg, err)
		}
		if !strings.HasPrefix(err.Error(), "metal: memory: ") {
			t.Errorf("classify(%q) = %q, want it to say what failed", tc.msg, err)
		}
	}
}

func TestKnownBadTorch(t *testing.T) {
	for _, tc := range []struct {
		version string
		bad     bool
	}{
		{"1.13.0", true},
		{"1.12.1+cpu", true},
		{"2.0.1", false},
		{"2.7.1", false},
		{"2.8.0", true},
		{"2.8.1+cpu", true},
		{"2.8.0a0+gitabc", true},
		{"2.9.0", false},
		{"2.10.0", false},
		{"2.11.0.dev20260101", false},
		{"3.0.0", false},
		{"", true},
		{"two.eight", true},
		{"2", true},
	} {
		bad, reason := metal.KnownBadTorch(tc.version)
		if bad != tc.bad {
			t.Errorf("KnownBadTorch(%q) = %v (%q), want %v", tc.version, bad, reason, tc.bad)
		}
		if bad == (reason == "") {
			t.Errorf("KnownBadTorch(%q) = %v with reason %q: a bad version needs a reason, a good one none", tc.version, bad, reason)
		}
	}
}

func TestSynchronizeAndMemory(t *testing.T) {
	gotchtest.CheckLeaks(t)
	if d := gotchtest.Device(t); d.Type != gotch.MPSType {
		t.Skipf("needs MPS: run with %s=mps", gotchtest.DeviceEnv)
	}
	before, err := metal.Memory()
	if err != nil {
		t.Fatal(err)
	}
	x, err := gotch.Zeros([]int64{1 << 22}, gotch.Float, gotch.MPS)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Free()
	if err := metal.Synchronize(); err != nil {
		t.Fatal(err)
	}
	after, err := metal.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 16<<20 {
		t.Errorf("a 16 MiB tensor raised allocated memory by %d bytes", after-before)
	}
}
