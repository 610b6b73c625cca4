package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Header guards as torch's ATen/ATen.h writes them.
const (
	guard17 = "#if !defined(_MSC_VER) && __cplusplus < 201703L\n#error C++17 or later compatible compiler is required to use ATen.\n#endif\n"
	guard20 = "#if !defined(_MSC_VER) && __cplusplus < 202002L\n#error C++20 or later compatible compiler is required to use ATen.\n#endif\n"
)

func versionH(major, minor, patch int) string {
	return fmt.Sprintf("#pragma once\n#define TORCH_VERSION_MAJOR %d\n#define TORCH_VERSION_MINOR %d\n#define TORCH_VERSION_PATCH %d\n", major, minor, patch)
}

func torchConfig(abi string) string {
	return "if(CMAKE_SYSTEM_NAME STREQUAL \"Linux\")\n  set(TORCH_CXX_FLAGS \"-D_GLIBCXX_USE_CXX11_ABI=" + abi + "\")\nendif()\n"
}

// tree writes files (path relative to root -> content) under root.
func tree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// libtorchZip is the layout of an unpacked libtorch zip, as files under prefix.
func libtorchZip(prefix, buildVersion, atenGuard, abi string, cuda bool) map[string]string {
	files := map[string]string{
		prefix + "include/ATen/ATen.h":                            atenGuard,
		prefix + "include/torch/csrc/api/include/torch/version.h": versionH(2, 6, 0),
		prefix + "lib/libc10.so":                                  "",
		prefix + "lib/libtorch.so":                                "",
		prefix + "lib/libtorch_cpu.so":                            "",
		prefix + "share/cmake/Torch/TorchConfig.cmake":            torchConfig(abi),
	}
	if buildVersion != "" {
		files[prefix+"build-version"] = buildVersion + "\n"
	}
	if cuda {
		files[prefix+"lib/libtorch_cuda.so"] = ""
	}
	return files
}

// fakePython writes a python3 on PATH that prints out, or fails when out is "".
func fakePython(t *testing.T, out string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nexit 1\n"
	if out != "" {
		script = "#!/bin/sh\necho '" + out + "'\n"
	}
	tree(t, dir, map[string]string{"python3": script})
	t.Setenv("PATH", dir)
}

func pyJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFind(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake python3 is a shell script")
	}
	type want struct {
		from, version string
		abi           int
		vars          map[string]string // with ROOT for the temp dir
		tags          string
		cudaNote      string // a substring of the CUDA warning, "" for none
		err           string // a substring of the error
	}
	cases := []struct {
		name   string
		files  map[string]string // under the temp dir ROOT
		env    map[string]string // with ROOT
		goenv  string            // what go env GOFLAGS says (the go env file's)
		python string            // what python3 prints (with ROOT); "" fails; "none" is no python3
		want   want
	}{
		{
			name:   "libtorch zip, old ABI, C++17",
			files:  libtorchZip("libtorch/", "2.6.0+cpu", guard17, "0", false),
			env:    map[string]string{"LIBTORCH": "ROOT/libtorch"},
			python: "none",
			want: want{from: "$LIBTORCH", version: "2.6.0+cpu", abi: 0, vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/libtorch/include -IROOT/libtorch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=0",
				"CGO_LDFLAGS":  "-LROOT/libtorch/lib -Wl,-rpath,ROOT/libtorch/lib",
			}},
		},
		{
			name:   "libtorch zip whose headers need C++20, version from version.h",
			files:  libtorchZip("libtorch/", "", guard20, "1", false),
			env:    map[string]string{"LIBTORCH": "ROOT/libtorch"},
			python: "none",
			want: want{from: "$LIBTORCH", version: "2.6.0", abi: 1, vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/libtorch/include -IROOT/libtorch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1",
				"CGO_CXXFLAGS": "-std=c++20",
				"CGO_LDFLAGS":  "-LROOT/libtorch/lib -Wl,-rpath,ROOT/libtorch/lib",
			}},
		},
		{
			name: "CUDA libtorch zip with a CUDA toolkit in CUDA_HOME: its headers, not its libcudart",
			files: merge(libtorchZip("libtorch/", "2.6.0+cu124", guard17, "1", true), map[string]string{
				"cuda/include/cuda_runtime_api.h": "",
				"cuda/lib64/libcudart.so":         "",
			}),
			env:    map[string]string{"LIBTORCH": "ROOT/libtorch", "CUDA_HOME": "ROOT/cuda"},
			python: "none",
			want: want{from: "$LIBTORCH", version: "2.6.0+cu124", abi: 1, tags: "cuda", vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/libtorch/include -IROOT/libtorch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1 -isystem ROOT/cuda/include",
				"CGO_LDFLAGS":  "-LROOT/libtorch/lib -Wl,-rpath,ROOT/libtorch/lib",
				"GOFLAGS":      "-tags=cuda",
			}},
		},
		{
			name:   "CUDA libtorch zip without the CUDA runtime's headers anywhere",
			files:  libtorchZip("libtorch/", "2.6.0+cu124", guard17, "1", true),
			env:    map[string]string{"LIBTORCH": "ROOT/libtorch", "GOFLAGS": "-mod=mod"},
			python: "none",
			want: want{from: "$LIBTORCH", version: "2.6.0+cu124", abi: 1, tags: "cuda",
				cudaNote: "no cuda_runtime_api.h (the CUDA runtime's headers) in $CUDA_HOME/include, /usr/local/cuda/include, /usr/include or pip's nvidia/*/include, so the cuda build cannot compile: install the CUDA toolkit's headers, or pip install nvidia-cuda-runtime-cu12",
				vars: map[string]string{
					"CGO_CPPFLAGS": "-isystem ROOT/libtorch/include -IROOT/libtorch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1",
					"CGO_LDFLAGS":  "-LROOT/libtorch/lib -Wl,-rpath,ROOT/libtorch/lib",
					"GOFLAGS":      "-mod=mod -tags=cuda",
				}},
		},
		{
			name: "CUDA libtorch zip, GOFLAGS with its own tags: cuda joins them",
			files: merge(libtorchZip("libtorch/", "2.6.0+cu124", guard17, "1", true), map[string]string{
				"usr/local/cuda/include/cuda_runtime_api.h": "",
			}),
			env:    map[string]string{"LIBTORCH": "ROOT/libtorch", "GOFLAGS": "-mod=mod -tags=foo -trimpath"},
			python: "none",
			want: want{from: "$LIBTORCH", version: "2.6.0+cu124", abi: 1, tags: "cuda", vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/libtorch/include -IROOT/libtorch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1 -isystem ROOT/usr/local/cuda/include",
				"CGO_LDFLAGS":  "-LROOT/libtorch/lib -Wl,-rpath,ROOT/libtorch/lib",
				"GOFLAGS":      "-mod=mod -tags=foo,cuda -trimpath",
			}},
		},
		{
			name: "CUDA libtorch zip, GOFLAGS from go env -w that has cuda already",
			files: merge(libtorchZip("libtorch/", "2.6.0+cu124", guard17, "1", true), map[string]string{
				"usr/local/cuda/include/cuda_runtime_api.h": "",
			}),
			env:    map[string]string{"LIBTORCH": "ROOT/libtorch"},
			goenv:  "-buildvcs=false -tags=cuda,foo",
			python: "none",
			want: want{from: "$LIBTORCH", version: "2.6.0+cu124", abi: 1, tags: "cuda", vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/libtorch/include -IROOT/libtorch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1 -isystem ROOT/usr/local/cuda/include",
				"CGO_LDFLAGS":  "-LROOT/libtorch/lib -Wl,-rpath,ROOT/libtorch/lib",
				"GOFLAGS":      "-buildvcs=false -tags=cuda,foo",
			}},
		},
		{
			name:   "CPU libtorch zip after an eval for a CUDA one: cuda leaves GOFLAGS",
			files:  libtorchZip("libtorch/", "2.6.0+cpu", guard17, "1", false),
			env:    map[string]string{"LIBTORCH": "ROOT/libtorch", "GOFLAGS": "-mod=mod -tags=cuda"},
			python: "none",
			want: want{from: "$LIBTORCH", version: "2.6.0+cpu", abi: 1, vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/libtorch/include -IROOT/libtorch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1",
				"CGO_LDFLAGS":  "-LROOT/libtorch/lib -Wl,-rpath,ROOT/libtorch/lib",
				"GOFLAGS":      "-mod=mod",
			}},
		},
		{
			name:   "CPU libtorch zip: GOFLAGS without cuda is left alone",
			files:  libtorchZip("libtorch/", "2.6.0+cpu", guard17, "1", false),
			env:    map[string]string{"LIBTORCH": "ROOT/libtorch", "GOFLAGS": "-mod=mod -tags=foo"},
			goenv:  "-tags=cuda", // not read: $GOFLAGS overrides the go env file
			python: "none",
			want: want{from: "$LIBTORCH", version: "2.6.0+cpu", abi: 1, vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/libtorch/include -IROOT/libtorch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1",
				"CGO_LDFLAGS":  "-LROOT/libtorch/lib -Wl,-rpath,ROOT/libtorch/lib",
			}},
		},
		{
			name:   "LIBTORCH without headers",
			files:  map[string]string{"empty/lib/libc10.so": ""},
			env:    map[string]string{"LIBTORCH": "ROOT/empty"},
			python: "none",
			want:   want{err: "has no include/ATen/ATen.h"},
		},
		{
			name: "pip torch with CUDA 13 from pip's nvidia packages: only libcudart.so.13 is fine",
			files: merge(libtorchZip("site/torch/", "", guard20, "1", true), map[string]string{
				"site/nvidia/cu13/include/cuda_runtime_api.h": "",
				"site/nvidia/cu13/lib/libcudart.so.13":        "",
			}),
			python: `{"root": "ROOT/site/torch", "version": "2.14.0+cu130", "cxx11_abi": true, "cuda": "13.0", "site": ["ROOT/site"]}`,
			want: want{from: "python3", version: "2.14.0+cu130", abi: 1, tags: "cuda", vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/site/torch/include -IROOT/site/torch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1 -isystem ROOT/site/nvidia/cu13/include",
				"CGO_CXXFLAGS": "-std=c++20",
				"CGO_LDFLAGS":  "-LROOT/site/torch/lib -Wl,-rpath,ROOT/site/torch/lib",
				"GOFLAGS":      "-tags=cuda",
			}},
		},
		{
			name:   "pip torch with CUDA 13 but no nvidia headers",
			files:  libtorchZip("site/torch/", "", guard20, "1", true),
			python: `{"root": "ROOT/site/torch", "version": "2.14.0+cu130", "cuda": "13.0", "cxx11_abi": true, "site": ["ROOT/site"]}`,
			want: want{from: "python3", version: "2.14.0+cu130", abi: 1, tags: "cuda", cudaNote: "pip install nvidia-cuda-runtime beside python3's torch", vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/site/torch/include -IROOT/site/torch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1",
				"CGO_CXXFLAGS": "-std=c++20",
				"CGO_LDFLAGS":  "-LROOT/site/torch/lib -Wl,-rpath,ROOT/site/torch/lib",
				"GOFLAGS":      "-tags=cuda",
			}},
		},
		{
			name:   "pip torch, old ABI as python says (TorchConfig.cmake disagreeing is not read)",
			files:  libtorchZip("site/torch/", "", guard17, "1", false),
			python: `{"root": "ROOT/site/torch", "version": "2.6.0+cpu", "cxx11_abi": false, "cuda": null, "site": []}`,
			want: want{from: "python3", version: "2.6.0+cpu", abi: 0, vars: map[string]string{
				"CGO_CPPFLAGS": "-isystem ROOT/site/torch/include -IROOT/site/torch/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=0",
				"CGO_LDFLAGS":  "-LROOT/site/torch/lib -Wl,-rpath,ROOT/site/torch/lib",
			}},
		},
		{
			name: "python has no torch: the system's libtorch-dev",
			files: map[string]string{
				"usr/include/ATen/ATen.h":                                 guard17,
				"usr/include/torch/csrc/api/include/torch/version.h":      versionH(1, 13, 0),
				"usr/lib/MULTIARCH/libc10.so":                             "",
				"usr/lib/MULTIARCH/cmake/Torch/TorchConfig.cmake":         torchConfig("1"),
				"usr/lib/python3/dist-packages/torch/include/ATen/ATen.h": guard17,
			},
			python: `{"error": "ModuleNotFoundError: No module named 'torch'"}`,
			want: want{from: "system", version: "1.13.0", abi: 1, vars: map[string]string{
				"CGO_CPPFLAGS": "-IROOT/usr/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1",
				"CGO_LDFLAGS":  "",
			}},
		},
		{
			name: "python's torch has no C++ side: the system's, a CUDA build",
			files: map[string]string{
				"usr/include/ATen/ATen.h":            guard17,
				"usr/lib/MULTIARCH/libc10.so":        "",
				"usr/lib/MULTIARCH/libtorch_cuda.so": "",
				"usr/include/cuda_runtime_api.h":     "",
				"usr/lib/MULTIARCH/libcudart.so":     "",
				"pytorch/__init__.py":                "",
			},
			python: `{"root": "ROOT/pytorch", "version": "1.13.0a0", "cxx11_abi": true, "cuda": null, "site": []}`,
			want: want{from: "system", abi: 1, tags: "cuda", vars: map[string]string{
				"CGO_CPPFLAGS": "-IROOT/usr/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1", // no ABI to read: the default
				"CGO_LDFLAGS":  "",
				"GOFLAGS":      "-tags=cuda",
			}},
		},
		{
			name:   "no torch anywhere",
			files:  map[string]string{"usr/include/stdio.h": ""},
			python: "",
			want:   want{err: "no libtorch found: set LIBTORCH to an unpacked libtorch zip (pytorch.org), install torch for python3 (pip install torch), or install Debian's or Ubuntu's libtorch-dev"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			f := &finder{sysRoot: root, goos: "linux", goarch: "amd64"}
			sub := func(s string) string {
				return strings.ReplaceAll(strings.ReplaceAll(s, "ROOT", root), "MULTIARCH", f.multiarch())
			}
			files := map[string]string{}
			for p, content := range c.files {
				files[sub(p)] = content
			}
			tree(t, root, files)
			env := map[string]string{}
			for k, v := range c.env {
				env[k] = sub(v)
			}
			f.getenv = func(k string) string { return env[k] }
			f.goEnv = func(k string) string {
				if k != "GOFLAGS" {
					t.Errorf("go env %s: only GOFLAGS is asked for", k)
				}
				return c.goenv
			}
			switch c.python {
			case "none":
				t.Setenv("PATH", t.TempDir())
			default:
				fakePython(t, sub(c.python))
			}

			tc, err := f.find(context.Background())
			if c.want.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.want.err) {
					t.Fatalf("find: got error %v, want one saying %q", err, c.want.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("find: %v\ntrail: %s", err, strings.Join(f.trail, "\n"))
			}
			if tc.From != c.want.from || tc.Version != c.want.version || tc.ABI != c.want.abi {
				t.Errorf("found from %q version %q ABI %d, want %q %q %d\ntrail: %s", tc.From, tc.Version, tc.ABI,
					c.want.from, c.want.version, c.want.abi, strings.Join(f.trail, "\n"))
			}
			e := f.env(tc)
			wantVars := map[string]string{}
			for k, v := range c.want.vars {
				wantVars[k] = sub(v)
			}
			for _, k := range varOrder {
				got, gok := e.Vars[k]
				want, wok := wantVars[k]
				if got != want || gok != wok {
					t.Errorf("%s: got %q (set %v), want %q (set %v)", k, got, gok, want, wok)
				}
			}
			if got := strings.Join(e.Tags, ","); got != c.want.tags {
				t.Errorf("tags: got %q, want %q", got, c.want.tags)
			}
			note := ""
			if tc.CUDA != nil {
				note = tc.CUDA.Warning
			}
			if c.want.cudaNote == "" && note != "" || !strings.Contains(note, c.want.cudaNote) {
				t.Errorf("CUDA warning: got %q, want one saying %q", note, c.want.cudaNote)
			}
		})
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestNeedsCXX20(t *testing.T) {
	for _, c := range []struct {
		version string
		atenH   string
		want    bool
	}{
		{"1.13.0", "#if !defined(_MSC_VER) && __cplusplus < 201402L", false},
		{"2.6.0", guard17, false},
		{"2.13.1+cu130", guard17, false},
		{"2.13.0a0+nv26.08", guard20, true}, // a vendor build with the guard early
		{"2.14.0+cu130", guard17, false},    // the header is believed over the number
		{"2.14.0+cu130", "", true},
		{"3.0.0", "", true},
		{"2.9.1", "", false},
		{"", "", false},
	} {
		if got, why := needsCXX20(c.version, []byte(c.atenH)); got != c.want {
			t.Errorf("needsCXX20(%q, %q) = %v (%s), want %v", c.version, c.atenH, got, why, c.want)
		}
	}
}

func TestCUDAFromVersion(t *testing.T) {
	for v, want := range map[string]string{"2.6.0+cu124": "12.4", "2.11.0+cu130": "13.0", "2.6.0+cpu": "", "2.6.0": "", "2.6.0+cu12x": ""} {
		if got := cudaFromVersion(v); got != want {
			t.Errorf("cudaFromVersion(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestQuoting(t *testing.T) {
	if got, want := joinFlags([]string{"-I/a b/include", "-L/c", `-I/it's`}), `'-I/a b/include' -L/c "-I/it's"`; got != want {
		t.Errorf("joinFlags: got %s, want %s", got, want)
	}
	if got, want := shellQuote(`-I'/x y'`), `'-I'\''/x y'\'''`; got != want {
		t.Errorf("shellQuote: got %s, want %s", got, want)
	}
}

func TestRun(t *testing.T) {
	root := t.TempDir()
	tree(t, root, libtorchZip("libtorch/", "2.6.0+cu124", guard17, "1", true))
	t.Setenv("PATH", t.TempDir())
	newF := func() *finder {
		return &finder{sysRoot: root, goos: "linux", goarch: "amd64", getenv: func(k string) string {
			if k == "LIBTORCH" {
				return filepath.Join(root, "libtorch")
			}
			return ""
		}}
	}
	for _, c := range []struct {
		args       []string
		wantOut    []string // substrings of stdout
		wantStderr []string // substrings of stderr
		wantErr    string
		checkJSON  bool
	}{
		{args: nil, wantOut: []string{"export CGO_CPPFLAGS='-isystem " + root + "/libtorch/include ", "export CGO_LDFLAGS='-L" + root + "/libtorch/lib -Wl,-rpath," + root + "/libtorch/lib'\n",
			"export GOFLAGS='-tags=cuda'\n", "# CUDA 12.4: GOFLAGS has -tags=cuda, so go build ./... builds the CUDA code\n"},
			wantStderr: []string{"golens-env: warning: a CUDA torch, but no cuda_runtime_api.h (the CUDA runtime's headers)", "the cuda build cannot compile"}},
		{args: []string{"--shell"}, wantOut: []string{"export CGO_CPPFLAGS="}, wantStderr: []string{"golens-env: warning: a CUDA torch"}},
		{args: []string{"--explain"}, wantOut: []string{"libtorch 2.6.0+cu124 from $LIBTORCH", "C++11 ABI:    1 (from " + root,
			"CUDA:         12.4, the runtime's headers in (not found) (libcudart is not linked", "  warning: a CUDA torch, but no cuda_runtime_api.h",
			"GOFLAGS:      not set, exported as -tags=cuda\n", "  GOFLAGS=-tags=cuda\n", "build tags: cuda"}},
		{args: []string{"--json"}, checkJSON: true},
		{args: []string{"--help"}, wantOut: []string{"usage: golens-env"}},
		{args: []string{"--json", "--explain"}, wantErr: "give one of"},
		{args: []string{"--nope"}, wantErr: "flag provided but not defined: -nope (try --help)"},
		{args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), c.args, &stdout, &stderr, newF())
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: got error %v, want %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		for _, w := range c.wantOut {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, stdout.String())
			}
		}
		for _, w := range c.wantStderr {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: stderr lacks %q:\n%s", c.args, w, stderr.String())
			}
		}
		if len(c.wantStderr) == 0 && stderr.Len() > 0 {
			t.Errorf("%v: stderr says %s", c.args, stderr.String())
		}
		if c.checkJSON {
			var got struct {
				From string            `json:"from"`
				ABI  int               `json:"cxx11_abi"`
				CUDA *CUDA             `json:"cuda"`
				Env  map[string]string `json:"env"`
				Tags []string          `json:"tags"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("--json: %v\n%s", err, stdout.String())
			}
			if got.From != "$LIBTORCH" || got.ABI != 1 || got.CUDA == nil || got.CUDA.Version != "12.4" ||
				!strings.HasPrefix(got.Env["CGO_LDFLAGS"], "-L"+root) || got.Env["GOFLAGS"] != "-tags=cuda" ||
				len(got.Tags) != 1 || got.Tags[0] != "cuda" || !strings.Contains(got.CUDA.Warning, "no cuda_runtime_api.h") {
				t.Errorf("--json: got %+v", got)
			}
		}
	}
}

// The shell output, run through sh, sets exactly the variables --json gives.
func TestShellOutputEvaluates(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs a POSIX shell")
	}
	root := filepath.Join(t.TempDir(), "it's a dir")
	tree(t, root, libtorchZip("libtorch/", "2.14.0+cpu", guard20, "1", false))
	f := &finder{sysRoot: t.TempDir(), goos: "linux", goarch: "amd64", getenv: func(k string) string {
		if k == "LIBTORCH" {
			return filepath.Join(root, "libtorch")
		}
		return ""
	}}
	var stdout bytes.Buffer
	if err := run(context.Background(), nil, &stdout, &bytes.Buffer{}, f); err != nil {
		t.Fatal(err)
	}
	script := stdout.String() + "printf '%s\\n' \"$CGO_CPPFLAGS\" \"$CGO_CXXFLAGS\" \"$CGO_LDFLAGS\"\n"
	out, err := runShell(script)
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, script)
	}
	lib := filepath.Join(root, "libtorch", "lib")
	want := `-isystem "` + root + `/libtorch/include" "-I` + root + `/libtorch/include/torch/csrc/api/include" -D_GLIBCXX_USE_CXX11_ABI=1` + "\n" +
		"-std=c++20\n" + `"-L` + lib + `" "-Wl,-rpath,` + lib + `"` + "\n"
	if out != want {
		t.Errorf("sh printed\n%s\nwant\n%s", out, want)
	}
}

// For a CUDA torch the shell output exports GOFLAGS with -tags=cuda added
// to what was there, quotes and all, and the go command, after the eval,
// reads the tags from it.
func TestShellOutputGOFLAGS(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs a POSIX shell")
	}
	root := filepath.Join(t.TempDir(), "it's a dir")
	tree(t, root, merge(libtorchZip("libtorch/", "2.6.0+cu124", guard17, "1", true),
		map[string]string{"cuda/include/cuda_runtime_api.h": ""}))
	goflags := `-mod=mod "-ldflags=-X main.who=it's me" -tags=foo`
	f := &finder{sysRoot: t.TempDir(), goos: "linux", goarch: "amd64", getenv: func(k string) string {
		return map[string]string{"LIBTORCH": filepath.Join(root, "libtorch"), "CUDA_HOME": filepath.Join(root, "cuda"), "GOFLAGS": goflags}[k]
	}}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), nil, &stdout, &stderr, f); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	script := stdout.String() + "printf '%s\\n' \"$GOFLAGS\"\n"
	out, err := runShell(script)
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, script)
	}
	if want := `-mod=mod "-ldflags=-X main.who=it's me" -tags=foo,cuda` + "\n"; out != want {
		t.Errorf("sh printed GOFLAGS\n%s\nwant\n%s", out, want)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to read GOFLAGS")
	}
	script = stdout.String() + "GOTOOLCHAIN=local go list -f '{{context.BuildTags}}' runtime\n"
	out, err = runShell(script)
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, script)
	}
	if out != "[foo cuda]\n" {
		t.Errorf("go list after the eval reads the build tags %s, want [foo cuda]", out)
	}
}

// setTag changes only the tags in GOFLAGS, as the go command reads them.
func TestSetTag(t *testing.T) {
	goBin, _ := exec.LookPath("go")
	for _, c := range []struct {
		goflags string
		on      bool
		want    string
		tags    string // the build tags go list reads from want
		err     string
	}{
		{"", true, "-tags=cuda", "[cuda]", ""},
		{"-mod=mod", true, "-mod=mod -tags=cuda", "[cuda]", ""},
		{" -mod=mod\t", true, " -mod=mod -tags=cuda", "[cuda]", ""},
		{"-tags=foo", true, "-tags=foo,cuda", "[foo cuda]", ""},
		{"--tags=foo,bar -mod=mod", true, "-tags=foo,bar,cuda -mod=mod", "[foo bar cuda]", ""},
		{"-tags=", true, "-tags=cuda", "[cuda]", ""},
		{"-tags=cuda", true, "-tags=cuda", "[cuda]", ""},
		{"-mod=mod -tags=foo,cuda,bar", true, "-mod=mod -tags=foo,cuda,bar", "[foo cuda bar]", ""},
		{"-tags=cuda -tags=foo", true, "-tags=cuda -tags=foo,cuda", "[foo cuda]", ""}, // the last -tags is the one that counts
		{"-tags=foo -tags=cuda", true, "-tags=foo -tags=cuda", "[cuda]", ""},
		{`"-tags=foo bar" -mod=mod`, true, "-tags=foo,bar,cuda -mod=mod", "[foo bar cuda]", ""}, // Go 1.12's spaces
		{`'-ldflags=-s -w' -tags=foo`, true, `'-ldflags=-s -w' -tags=foo,cuda`, "[foo cuda]", ""},
		{`-mod=mod '-ldflags=-s -w`, true, "", "", "unterminated ' string"},
		{"-mod=mod -tags=cuda", false, "-mod=mod", "[]", ""},
		{"-tags=cuda -mod=mod", false, "-mod=mod", "[]", ""},
		{"-tags=foo,cuda -trimpath", false, "-tags=foo -trimpath", "[foo]", ""},
		{"-mod=mod -tags=foo", false, "-mod=mod -tags=foo", "[foo]", ""},
		{"", false, "", "[]", ""},
	} {
		got, err := setTag(c.goflags, "cuda", c.on)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("setTag(%q, %v): got %q, %v; want an error saying %q", c.goflags, c.on, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("setTag(%q, %v) = %q, %v; want %q", c.goflags, c.on, got, err, c.want)
			continue
		}
		if goBin == "" {
			continue
		}
		cmd := exec.Command(goBin, "list", "-f", "{{context.BuildTags}}", "runtime")
		cmd.Env = append(os.Environ(), "GOFLAGS="+got, "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c.tags {
			t.Errorf("GOFLAGS=%s go list reads the build tags %s (%v), want %s", got, bytes.TrimSpace(out), err, c.tags)
		}
	}
}

func runShell(script string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c", script).Output()
	return string(out), err
}

// Debian's python3-torch with libtorch-dev installed links its include/
// and lib/ to the system's folders: the flags then name those.
func TestDebianPythonTorchIsTheSystems(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake python3 is a shell script")
	}
	root := t.TempDir()
	f := &finder{sysRoot: root, goos: "linux", goarch: "amd64", getenv: func(string) string { return "" }}
	tree(t, root, map[string]string{
		"usr/include/ATen/ATen.h":                      guard17,
		"usr/lib/" + f.multiarch() + "/libc10.so.1.13": "",
	})
	pkg := filepath.Join(root, "usr/lib/python3/dist-packages/torch")
	for _, l := range [][2]string{
		{"../../../../../include/ATen", "include/ATen"},
		{"../../../../" + f.multiarch() + "/libc10.so.1.13", "lib/libc10.so"},
		{"libc10.so.1.13", "../../../" + f.multiarch() + "/libc10.so"},
	} {
		link := filepath.Join(pkg, l[1])
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l[0], link); err != nil {
			t.Fatal(err)
		}
	}
	fakePython(t, `{"root": "`+pkg+`", "version": "1.13.0a0", "cxx11_abi": true, "cuda": null, "site": []}`)
	tc, err := f.find(context.Background())
	if err != nil {
		t.Fatalf("find: %v\n%s", err, strings.Join(f.trail, "\n"))
	}
	if tc.From != "system" || tc.LibDir != filepath.Join(root, "usr/lib", f.multiarch()) {
		t.Errorf("found %s torch in %s, want the system's\n%s", tc.From, tc.LibDir, strings.Join(f.trail, "\n"))
	}
}

// elfABI reads a real library's symbols where one is installed.
func TestELFABI(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := elfABI(self); ok && runtime.GOOS == "linux" {
		t.Errorf("elfABI(%s): a Go test binary has no C++ symbols to tell by", self)
	}
	if _, ok := elfABI(filepath.Join(t.TempDir(), "missing.so")); ok {
		t.Error("elfABI of a missing file says it can tell")
	}
	f := newFinder()
	lib := filepath.Join("/usr/lib", f.multiarch(), "libc10.so")
	if !isFile(lib) {
		t.Skipf("no %s to read", lib)
	}
	if abi, ok := elfABI(lib); !ok || abi != 1 {
		t.Errorf("elfABI(%s) = %d, %v; want 1 (Debian builds with the C++11 ABI)", lib, abi, ok)
	}
}
