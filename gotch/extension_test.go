//go:build cgo

package gotch_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// testExtension is a golens extension built by the test (golens_torch_ext.h).
const testExtension = `
#include "golens_torch_ext.h"

#include <ATen/Parallel.h>

#include <stdexcept>

GT_EXTENSION()

// tensors: {x}. Doubles x in place.
extern "C" GT_EXT_EXPORT char *double_(void **, const gt_tensor *ts, int32_t n, const int64_t *, int32_t) {
  GT_EXT_TRY({
    TORCH_CHECK(n == 1, "double_ wants one tensor, got ", n);
    gt_ext_tensor(ts[0], "x").mul_(2);
  })
}

// A C++ exception that is not ATen's.
extern "C" GT_EXT_EXPORT char *throws(void **, const gt_tensor *, int32_t, const int64_t *, int32_t) {
  GT_EXT_TRY({ throw std::runtime_error("thrown on purpose"); })
}

// tensors: {x, y or NULL}; ints: {k}. x += y, or x += k without y.
extern "C" GT_EXT_EXPORT char *add_opt(void **, const gt_tensor *ts, int32_t n, const int64_t *ints, int32_t n_ints) {
  GT_EXT_TRY({
    TORCH_CHECK(n == 2 && n_ints == 1, "add_opt wants two tensors and one int");
    const at::Tensor &x = gt_ext_tensor(ts[0], "x");
    if (auto y = gt_ext_opt_tensor(ts[1])) x.add_(*y);
    else x.add_(ints[0]);
  })
}

// Counts its calls in *state (a heap int64_t); tensors: {out}, int64 [1],
// gets the count.
extern "C" GT_EXT_EXPORT char *count(void **state, const gt_tensor *ts, int32_t n, const int64_t *, int32_t) {
  GT_EXT_TRY({
    TORCH_CHECK(n == 1, "count wants one tensor");
    if (*state == nullptr) *state = new int64_t(0);
    int64_t *c = static_cast<int64_t *>(*state);
    gt_ext_tensor(ts[0], "out").fill_(++*c);
  })
}

// Frees count's state.
extern "C" GT_EXT_EXPORT char *count_free(void **state, const gt_tensor *, int32_t, const int64_t *, int32_t) {
  delete static_cast<int64_t *>(*state);
  *state = nullptr;
  return nullptr;
}

// ints: {n}. Sets the calling thread's intra-op thread count to n.
extern "C" GT_EXT_EXPORT char *set_threads(void **, const gt_tensor *, int32_t, const int64_t *ints, int32_t) {
  GT_EXT_TRY({ at::set_num_threads(int(ints[0])); })
}

// tensors: {out}, int64 [1], gets the calling thread's intra-op thread count.
extern "C" GT_EXT_EXPORT char *threads(void **, const gt_tensor *ts, int32_t, const int64_t *, int32_t) {
  GT_EXT_TRY({ gt_ext_tensor(ts[0], "out").fill_(int64_t(at::get_num_threads())); })
}
`

// fakeExtension has the identification symbols with the values given, and
// nothing of ATen (so it builds in a moment).
const fakeExtension = `
#include <stdint.h>
extern "C" int32_t gt_ext_abi_version(void) { return ABI; }
extern "C" const char *gt_ext_torch_version(void) { return TORCH; }
`

// buildLib compiles src (C++) into a shared library in dir with the flags
// gotch itself is built with, and returns its path.
func buildLib(t *testing.T, dir, name, src string, torch bool, defs ...string) string {
	t.Helper()
	csrc, err := filepath.Abs("csrc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(csrc, "golens_torch_ext.h")); err != nil {
		t.Skip("the shim's headers are not here (a test binary run elsewhere, as in the GPU bundle):", err)
	}
	cpp, lib := filepath.Join(dir, name+".cpp"), filepath.Join(dir, "lib"+name+".so")
	if err := os.WriteFile(cpp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-std=c++17", "-shared", "-fPIC", "-O1", "-I" + csrc}
	args = append(args, defs...)
	if torch { // as cgo.go: the environment's flags, then Debian's folder of torch/version.h
		args = append(args, strings.Fields(os.Getenv("CGO_CPPFLAGS"))...)
		args = append(args, strings.Fields(os.Getenv("CGO_CXXFLAGS"))...)
		args = append(args, "-I/usr/include/torch/csrc/api/include")
	}
	args = append(args, cpp, "-o", lib)
	if torch {
		args = append(args, strings.Fields(os.Getenv("CGO_LDFLAGS"))...)
		args = append(args, "-ltorch_cpu", "-lc10")
	}
	if out, err := exec.Command("g++", args...).CombinedOutput(); err != nil {
		t.Fatalf("g++ %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return lib
}

func TestExtension(t *testing.T) {
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("g++ is needed to build the test's extension:", err)
	}
	gotchtest.CheckLeaks(t)
	dir := t.TempDir()
	path := buildLib(t, dir, "testext", testExtension, true)
	ext, err := gotch.OpenExtension(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ext.Close(); err != nil {
			t.Error(err)
		}
	}()
	dev := gotchtest.Device(t)
	floats := func(t *testing.T, xs ...float32) *gotch.Tensor {
		x := gotch.MustFromSlice(xs, []int64{int64(len(xs))}, dev)
		t.Cleanup(x.Free)
		return x
	}

	t.Run("in place", func(t *testing.T) {
		x := floats(t, 1, 2, 3)
		if err := ext.Call("double_", nil, []*gotch.Tensor{x}); err != nil {
			t.Fatal(err)
		}
		if got, want := gotchtest.Values(t, x), []float64{2, 4, 6}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("optional tensor", func(t *testing.T) {
		x, y := floats(t, 1, 2), floats(t, 10, 20)
		if err := ext.Call("add_opt", nil, []*gotch.Tensor{x, y}, 5); err != nil {
			t.Fatal(err)
		}
		if err := ext.Call("add_opt", nil, []*gotch.Tensor{x, nil}, 5); err != nil {
			t.Fatal(err)
		}
		if got, want := gotchtest.Values(t, x), []float64{16, 27}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("state", func(t *testing.T) {
		out := gotch.MustZeros([]int64{1}, gotch.Int64, dev)
		defer out.Free()
		var st gotch.ExtState
		for range 3 {
			if err := ext.Call("count", &st, []*gotch.Tensor{out}); err != nil {
				t.Fatal(err)
			}
		}
		if got := gotchtest.Values(t, out); got[0] != 3 || st.Empty() {
			t.Errorf("count after 3 calls: %v (state empty: %v), want 3 and a state", got, st.Empty())
		}
		if err := ext.Call("count_free", &st, nil); err != nil || !st.Empty() {
			t.Errorf("count_free: %v, state empty %v; want nil and true", err, st.Empty())
		}
	})
	t.Run("thread count", func(t *testing.T) {
		// A thread whose count went stale (here by the extension's own
		// doing) runs the extension with golens's count all the same.
		want := gotch.NumThreads()
		staled, reset, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // one OS thread from here on
			defer runtime.UnlockOSThread()
			out := gotch.MustZeros([]int64{1}, gotch.Int64, gotch.CPU)
			defer out.Free()
			err := ext.Call("set_threads", nil, nil, int64(want+1))
			close(staled)
			if err != nil {
				t.Error(err)
				return
			}
			<-reset
			if err := ext.Call("threads", nil, []*gotch.Tensor{out}); err != nil {
				t.Error(err)
			} else if got := gotchtest.Values(t, out)[0]; int(got) != want {
				t.Errorf("the extension ran with %v intra-op threads, golens set %d", got, want)
			}
		}()
		<-staled
		if err := gotch.SetNumThreads(want); err != nil { // from another OS thread
			t.Error(err)
		}
		close(reset)
		<-done
	})
	t.Run("C++ exception", func(t *testing.T) {
		err := ext.Call("throws", nil, nil)
		var ge *gotch.Error
		if !errors.As(err, &ge) || !strings.Contains(err.Error(), "thrown on purpose") || !strings.Contains(err.Error(), "libtestext.so:throws") {
			t.Fatalf("got %v, want a *gotch.Error naming libtestext.so:throws with the exception's message", err)
		}
	})
	t.Run("ATen error", func(t *testing.T) {
		x := floats(t, 1)
		err := ext.Call("double_", nil, []*gotch.Tensor{x, x})
		if err == nil || !strings.Contains(err.Error(), "wants one tensor, got 2") || !strings.Contains(err.Error(), "float32[1]") {
			t.Fatalf("got %v, want TORCH_CHECK's message and the operands", err)
		}
		err = ext.Call("double_", nil, []*gotch.Tensor{nil})
		if err == nil || !strings.Contains(err.Error(), "argument 'x' is a nil tensor") {
			t.Fatalf("nil tensor where one is required: got %v", err)
		}
	})
	t.Run("freed tensor", func(t *testing.T) {
		x := floats(t, 1)
		x.Free()
		if err := ext.Call("double_", nil, []*gotch.Tensor{x}); !errors.Is(err, gotch.ErrFreed) {
			t.Fatalf("got %v, want ErrFreed", err)
		}
	})
	t.Run("missing function", func(t *testing.T) {
		err := ext.Call("no_such_fn", nil, nil)
		if err == nil || !strings.Contains(err.Error(), `no function "no_such_fn"`) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 8 {
			x := floats(t, float32(i))
			wg.Go(func() {
				for range 3 {
					if err := ext.Call("double_", nil, []*gotch.Tensor{x}); err != nil {
						t.Error(err)
					}
				}
				if got := gotchtest.Values(t, x)[0]; got != float64(8*i) {
					t.Errorf("%d doubled 3 times: %v", i, got)
				}
			})
		}
		wg.Wait()
	})
	t.Run("closed", func(t *testing.T) {
		e2, err := gotch.OpenExtension(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := e2.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e2.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := e2.Call("throws", nil, nil); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Call after Close: got %v", err)
		}
	})
}

func TestOpenExtensionErrors(t *testing.T) {
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("g++ is needed to build the test's libraries:", err)
	}
	dir := t.TempDir()
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "libmissing.so")
		_, err := gotch.OpenExtension(path)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Fatalf("got %v, want fs.ErrNotExist naming %s", err, path)
		}
	})
	t.Run("not a library", func(t *testing.T) {
		path := filepath.Join(dir, "libtext.so")
		if err := os.WriteFile(path, []byte("not ELF"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := gotch.OpenExtension(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("got %v, want an error naming %s", err, path)
		}
	})
	for _, tc := range []struct {
		name, want string
		src        string
		defs       []string
	}{
		{"not an extension", "is not a golens extension", "extern \"C\" int f(void) { return 1; }\n", nil},
		{"ABI", "built for golens ABI 999", fakeExtension, []string{"-DABI=999", `-DTORCH="` + gotch.TorchVersion() + `"`}},
		{"torch", "built against torch 0.0.1-other", fakeExtension, []string{fmt.Sprintf("-DABI=%d", gotch.ABIVersion), `-DTORCH="0.0.1-other"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := buildLib(t, dir, strings.ReplaceAll(tc.name, " ", "_"), tc.src, false, tc.defs...)
			_, err := gotch.OpenExtension(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, path, tc.want)
			}
		})
	}
}
