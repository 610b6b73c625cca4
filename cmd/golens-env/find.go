package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Torch is a libtorch found on this machine.
type Torch struct {
	From     string   `json:"from"`     // "$LIBTORCH", "python3" or "system"
	Root     string   `json:"root"`     // the unpacked zip, python's torch package, or /usr
	Version  string   `json:"version"`  // "2.6.0", "2.6.0+cu124"; "" when nothing says
	Includes []string `json:"includes"` // header folders, torch/csrc/api/include last
	LibDir   string   `json:"lib_dir"`  // the folder with libc10 and libtorch
	ABI      int      `json:"cxx11_abi"`
	CXX20    bool     `json:"cxx20"` // its headers need -std=c++20
	CUDA     *CUDA    `json:"cuda,omitempty"`

	abiFrom, stdFrom string // why ABI and CXX20 are what they are, for --explain
}

// CUDA describes a CUDA build of libtorch. gotch's cuda build compiles
// against the CUDA runtime's headers but does not link libcudart: the
// shim finds the runtime's few functions in the process, where
// libtorch_cuda has loaded them.
type CUDA struct {
	Version string `json:"version"`           // "12.4"; "" when torch does not say
	Include string `json:"include"`           // the folder with cuda_runtime_api.h; "" when not found
	Warning string `json:"warning,omitempty"` // why the cuda build will not compile, when it will not
}

// finder looks for libtorch (for build.sh too): $LIBTORCH, then python3's
// torch package, then the system's libtorch-dev.
type finder struct {
	getenv  func(string) string
	sysRoot string // "/" but in tests: where /usr/include and /usr/lib are
	goos    string
	goarch  string
	goEnv   func(string) string // `go env KEY`, for GOFLAGS set with go env -w; nil in tests
	sites   []string            // python's site-packages folders, where pip puts nvidia/*
	trail   []string            // what was looked at and why it was passed over
}

func newFinder() *finder {
	return &finder{getenv: os.Getenv, goEnv: goEnv, sysRoot: "/", goos: runtime.GOOS, goarch: runtime.GOARCH}
}

// goEnv asks the go command for one of its settings, "" when it cannot.
func goEnv(key string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", key).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func (f *finder) note(format string, args ...any) {
	f.trail = append(f.trail, fmt.Sprintf(format, args...))
}

// errNoTorch says the three ways to get a libtorch.
var errNoTorch = errors.New("no libtorch found: set LIBTORCH to an unpacked libtorch zip (pytorch.org), install torch for python3 (pip install torch), or install Debian's or Ubuntu's libtorch-dev (apt-get install libtorch-dev)")

func (f *finder) find(ctx context.Context) (*Torch, error) {
	var (
		t   *Torch
		err error
	)
	if dir := f.getenv("LIBTORCH"); dir != "" {
		if t, err = f.fromDir(dir); err != nil {
			return nil, err
		}
	} else {
		f.note("$LIBTORCH: not set")
		if t = f.fromPython(ctx); t == nil {
			t = f.fromSystem()
		}
	}
	if t == nil {
		return nil, errNoTorch
	}
	f.complete(t)
	return t, nil
}

func (f *finder) libName(name string) string {
	if f.goos == "darwin" {
		return "lib" + name + ".dylib"
	}
	return "lib" + name + ".so"
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// fromDir reads an unpacked libtorch zip: include/ and lib/ under dir.
func (f *finder) fromDir(dir string) (*Torch, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("LIBTORCH=%s: %w", dir, err)
	}
	t := &Torch{From: "$LIBTORCH", Root: abs, LibDir: filepath.Join(abs, "lib"),
		Includes: []string{filepath.Join(abs, "include"), filepath.Join(abs, "include", "torch", "csrc", "api", "include")}}
	if !isFile(filepath.Join(t.Includes[0], "ATen", "ATen.h")) {
		return nil, fmt.Errorf("LIBTORCH=%s has no include/ATen/ATen.h: point it at the folder an unpacked libtorch zip makes (the one with include/ and lib/)", dir)
	}
	if !isFile(filepath.Join(t.LibDir, f.libName("c10"))) {
		return nil, fmt.Errorf("LIBTORCH=%s has no lib/%s: point it at the folder an unpacked libtorch zip makes (the one with include/ and lib/)", dir, f.libName("c10"))
	}
	if b, err := os.ReadFile(filepath.Join(abs, "build-version")); err == nil {
		t.Version = strings.TrimSpace(string(b))
	}
	f.note("$LIBTORCH: %s", abs)
	return t, nil
}

// pythonScript prints what golens-env needs to know about python's torch
// as one JSON object, or {"error": ...} when torch does not import.
const pythonScript = `
import json, os, site, sys
try:
    import torch
except Exception as e:
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
    sys.exit(0)
root = os.path.dirname(os.path.abspath(torch.__file__))
try:
    sites = list(site.getsitepackages())
except Exception:
    sites = []
print(json.dumps({
    "root": root,
    "version": torch.__version__,
    "cxx11_abi": bool(torch.compiled_with_cxx11_abi()),
    "cuda": torch.version.cuda,
    "site": [os.path.dirname(root)] + sites,
}))
`

type pyTorch struct {
	Error    string   `json:"error"`
	Root     string   `json:"root"`
	Version  string   `json:"version"`
	CXX11ABI bool     `json:"cxx11_abi"`
	CUDA     *string  `json:"cuda"`
	Site     []string `json:"site"`
}

// fromPython asks python3 (or $PYTHON) where its torch package is. It
// returns nil, with a note saying why, when there is no python, no torch,
// or a torch without C++ headers (Debian's python3-torch: its headers are
// libtorch-dev's, which fromSystem finds).
func (f *finder) fromPython(ctx context.Context) *Torch {
	py := f.getenv("PYTHON")
	if py == "" {
		py = "python3"
	}
	path, err := exec.LookPath(py)
	if err != nil {
		f.note("python: %s not found", py)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // a cold `import torch` takes seconds
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-c", pythonScript)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		f.note("python: %s failed: %v %s", path, err, lastErrLine(stderr.String()))
		return nil
	}
	var info pyTorch
	if err := json.Unmarshal(lastLine(out), &info); err != nil {
		f.note("python: %s printed %q, not what golens-env asked for", path, lastErrLine(string(out)))
		return nil
	}
	if info.Error != "" {
		f.note("python: %s has no usable torch (%s)", path, info.Error)
		return nil
	}
	t := &Torch{From: "python3", Root: info.Root, Version: info.Version, LibDir: filepath.Join(info.Root, "lib"),
		Includes: []string{filepath.Join(info.Root, "include"), filepath.Join(info.Root, "include", "torch", "csrc", "api", "include")}}
	if !isFile(filepath.Join(t.Includes[0], "ATen", "ATen.h")) || !isFile(filepath.Join(t.LibDir, f.libName("c10"))) {
		f.note("python: %s's torch %s at %s has no C++ headers and libraries in include/ and lib/ (Debian's python3-torch keeps them in libtorch-dev)", path, info.Version, info.Root)
		return nil
	}
	if f.isSystemTorch(t) {
		f.note("python: %s's torch %s at %s is Debian's python3-torch, whose C++ side is libtorch-dev's", path, info.Version, info.Root)
		return nil
	}
	t.ABI, t.abiFrom = 0, "torch.compiled_with_cxx11_abi()"
	if info.CXX11ABI {
		t.ABI = 1
	}
	if info.CUDA != nil {
		t.CUDA = &CUDA{Version: *info.CUDA}
	}
	f.sites = info.Site
	f.note("python: %s's torch %s at %s", path, info.Version, info.Root)
	return t
}

// isSystemTorch reports whether python's torch only links to the system's
// headers and libraries, as Debian's python3-torch does with libtorch-dev
// installed: flags that name the system's folders are then the simpler.
func (f *finder) isSystemTorch(t *Torch) bool {
	aten, err1 := filepath.EvalSymlinks(filepath.Join(t.Includes[0], "ATen"))
	c10, err2 := filepath.EvalSymlinks(filepath.Join(t.LibDir, f.libName("c10")))
	sysATen, err3 := filepath.EvalSymlinks(filepath.Join(f.sysInclude(), "ATen"))
	if err1 != nil || err2 != nil || err3 != nil || aten != sysATen {
		return false
	}
	for _, d := range f.defaultLibDirs() {
		if real, err := filepath.EvalSymlinks(d); err == nil && filepath.Dir(c10) == real {
			return true
		}
	}
	return false
}

// multiarch is Debian's name for the library folder of this architecture.
func (f *finder) multiarch() string {
	switch f.goarch {
	case "amd64":
		return "x86_64-linux-gnu"
	case "arm64":
		return "aarch64-linux-gnu"
	case "ppc64le":
		return "powerpc64le-linux-gnu"
	case "s390x":
		return "s390x-linux-gnu"
	case "riscv64":
		return "riscv64-linux-gnu"
	case "386":
		return "i386-linux-gnu"
	}
	return f.goarch + "-linux-gnu"
}

// defaultLibDirs are the folders the linker and the loader search anyway.
func (f *finder) defaultLibDirs() []string {
	var ds []string
	for _, d := range []string{"usr/lib/" + f.multiarch(), "lib/" + f.multiarch(), "usr/lib", "usr/lib64", "lib", "lib64"} {
		ds = append(ds, filepath.Join(f.sysRoot, d))
	}
	return ds
}

// sysInclude is the compiler's own include folder: never named in flags
// (as -I or -isystem it breaks libstdc++'s #include_next <stdlib.h>).
func (f *finder) sysInclude() string { return filepath.Join(f.sysRoot, "usr", "include") }

// fromSystem finds Debian's or Ubuntu's libtorch-dev.
func (f *finder) fromSystem() *Torch {
	inc := f.sysInclude()
	if !isFile(filepath.Join(inc, "ATen", "ATen.h")) {
		f.note("system: no %s", filepath.Join(inc, "ATen", "ATen.h"))
		return nil
	}
	for _, d := range f.defaultLibDirs() {
		if isFile(filepath.Join(d, f.libName("c10"))) {
			f.note("system: headers in %s, libraries in %s", inc, d)
			return &Torch{From: "system", Root: filepath.Join(f.sysRoot, "usr"), LibDir: d,
				Includes: []string{inc, filepath.Join(inc, "torch", "csrc", "api", "include")}}
		}
	}
	f.note("system: %s but no %s in %s", filepath.Join(inc, "ATen", "ATen.h"), f.libName("c10"), strings.Join(f.defaultLibDirs(), ", "))
	return nil
}

// complete fills in what the three sources do not all say: the version,
// the C++ ABI, the C++ standard, and CUDA.
func (f *finder) complete(t *Torch) {
	api := t.Includes[len(t.Includes)-1]
	if t.Version == "" {
		t.Version = headerVersion(filepath.Join(api, "torch", "version.h"))
	}
	if t.abiFrom == "" {
		t.ABI, t.abiFrom = f.detectABI(t)
	}
	aten, _ := os.ReadFile(filepath.Join(t.Includes[0], "ATen", "ATen.h"))
	t.CXX20, t.stdFrom = needsCXX20(t.Version, aten)
	if t.CUDA == nil && isFile(filepath.Join(t.LibDir, f.libName("torch_cuda"))) {
		t.CUDA = &CUDA{Version: cudaFromVersion(t.Version)}
	}
	if t.CUDA != nil {
		f.findCUDA(t.CUDA)
	}
}

var versionDefine = regexp.MustCompile(`#define\s+TORCH_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)`)

// headerVersion reads torch/version.h's TORCH_VERSION_MAJOR/MINOR/PATCH.
func headerVersion(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	v := map[string]string{}
	for _, m := range versionDefine.FindAllSubmatch(b, -1) {
		v[string(m[1])] = string(m[2])
	}
	if v["MAJOR"] == "" || v["MINOR"] == "" {
		return ""
	}
	if v["PATCH"] == "" {
		v["PATCH"] = "0"
	}
	return v["MAJOR"] + "." + v["MINOR"] + "." + v["PATCH"]
}

// majorMinor parses "2.14.0+cu130" or "2.14.0a0" as (2, 14).
func majorMinor(v string) (int, int, bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	digits := func(s string) string {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return s[:i]
	}
	major, err1 := strconv.Atoi(digits(parts[0]))
	minor, err2 := strconv.Atoi(digits(parts[1]))
	return major, minor, err1 == nil && err2 == nil
}

// needsCXX20 reports whether torch's headers must be compiled as C++20.
// PyTorch 2.14 made its headers refuse anything older: its release notes
// ("C++ Frontend": "C++ extensions and LibTorch applications must now
// compile as C++20 or newer", pytorch/pytorch#178150) show 2.13 building
// with C++17 and 2.14 with C++20, and #178150 raised the guard at the top
// of ATen/ATen.h to `__cplusplus < 202002L`. The guard itself is read
// first, so that nightlies and vendor builds that carry it before 2.14 (or
// not yet) get what their headers say. GCC's default, C++17 since GCC 11,
// serves everything older, so no -std is given there.
func needsCXX20(version string, atenH []byte) (bool, string) {
	if bytes.Contains(atenH, []byte("202002L")) {
		return true, "ATen/ATen.h requires C++20"
	}
	if bytes.Contains(atenH, []byte("201703L")) || bytes.Contains(atenH, []byte("201402L")) {
		return false, "ATen/ATen.h requires C++17 or older, the compiler's default"
	}
	if major, minor, ok := majorMinor(version); ok && (major > 2 || major == 2 && minor >= 14) {
		return true, "torch " + version + " (PyTorch 2.14 and later require C++20)"
	}
	return false, "the compiler's default (torch before 2.14)"
}

// cudaFromVersion reads the CUDA version from a libtorch build version
// such as "2.6.0+cu124" ("12.4").
func cudaFromVersion(v string) string {
	_, local, ok := strings.Cut(v, "+cu")
	if !ok || len(local) < 3 {
		return ""
	}
	for _, c := range local {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return local[:len(local)-1] + "." + local[len(local)-1:]
}

var abiDefine = regexp.MustCompile(`_GLIBCXX_USE_CXX11_ABI=([01])`)

// detectABI finds the libstdc++ ABI libtorch was built with: from the
// TORCH_CXX_FLAGS its TorchConfig.cmake exports, else from the symbols
// of libc10 (std::__cxx11::basic_string appears only with the new ABI).
func (f *finder) detectABI(t *Torch) (int, string) {
	for _, p := range []string{
		filepath.Join(t.Root, "share", "cmake", "Torch", "TorchConfig.cmake"),
		filepath.Join(t.LibDir, "cmake", "Torch", "TorchConfig.cmake"),
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if m := abiDefine.FindSubmatch(b); m != nil {
			return int(m[1][0] - '0'), p
		}
	}
	lib := filepath.Join(t.LibDir, f.libName("c10"))
	if abi, ok := elfABI(lib); ok {
		return abi, "the symbols of " + lib
	}
	return 1, "unknown (no TorchConfig.cmake, no ELF symbols in " + lib + "): the default, 1"
}

// elfABI reads the dynamic symbols of a shared library: 1 when they name
// std::__cxx11, 0 when they are C++ but do not, !ok when it cannot tell.
func elfABI(path string) (int, bool) {
	ef, err := elf.Open(path)
	if err != nil {
		return 0, false
	}
	defer ef.Close()
	syms, err := ef.DynamicSymbols()
	if err != nil {
		return 0, false
	}
	cxx := false
	for _, s := range syms {
		if strings.Contains(s.Name, "St7__cxx11") || strings.Contains(s.Name, "NSt7__cxx11") {
			return 1, true
		}
		cxx = cxx || strings.HasPrefix(s.Name, "_Z")
	}
	return 0, cxx
}

// findCUDA looks for the CUDA runtime's headers (cuda_runtime_api.h),
// which gotch's cuda build compiles against: $CUDA_HOME, /usr/local/cuda, the system, and pip's nvidia packages
// beside python's torch. It does not look for libcudart: the shim does
// not link it.
func (f *finder) findCUDA(c *CUDA) {
	var incs []string
	if h := f.getenv("CUDA_HOME"); h != "" {
		incs = append(incs, filepath.Join(h, "include"))
	}
	incs = append(incs, filepath.Join(f.sysRoot, "usr", "local", "cuda", "include"), f.sysInclude())
	for _, s := range f.sites {
		pkgs, _ := filepath.Glob(filepath.Join(s, "nvidia", "*"))
		slices.Sort(pkgs)
		for _, p := range append([]string{filepath.Join(s, "nvidia")}, pkgs...) {
			incs = append(incs, filepath.Join(p, "include"))
		}
	}
	for _, d := range incs {
		if isFile(filepath.Join(d, "cuda_runtime_api.h")) {
			c.Include = d
			f.note("CUDA: %s", filepath.Join(d, "cuda_runtime_api.h"))
			return
		}
	}
	f.note("CUDA: no cuda_runtime_api.h in %s", strings.Join(incs, ", "))
	c.Warning = "a CUDA torch, but no cuda_runtime_api.h (the CUDA runtime's headers) in $CUDA_HOME/include, " +
		"/usr/local/cuda/include, /usr/include or pip's nvidia/*/include, so the cuda build cannot compile: " +
		"install the CUDA toolkit's headers, or pip install " + cudaRuntimeWheel(c.Version) +
		" beside python3's torch, or set CUDA_HOME to the folder whose include/ has them"
}

// cudaRuntimeWheel names pip's package with the CUDA runtime's headers.
func cudaRuntimeWheel(version string) string {
	major, _, _ := strings.Cut(version, ".")
	switch major {
	case "11", "12":
		return "nvidia-cuda-runtime-cu" + major
	case "":
		return "nvidia-cuda-runtime (nvidia-cuda-runtime-cu12 for CUDA 12)"
	}
	return "nvidia-cuda-runtime"
}

// lastErrLine is the last line of a python error: a traceback ends with it.
func lastErrLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// lastLine is the last non-empty line of out: torch may print warnings first.
func lastLine(out []byte) []byte {
	out = bytes.TrimSpace(out)
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		return out[i+1:]
	}
	return out
}
