package main

import (
	"path/filepath"
	"slices"
	"strings"
)

// Env is what cgo needs to build gotch against a Torch: the CGO_* variables
// (those left out stay as they are) and the build tags.
type Env struct {
	Vars map[string]string `json:"env"`
	Tags []string          `json:"tags"`
}

// env turns a Torch into cgo's flags. torch's include folder is an
// -isystem one, so that the compiler does not warn about torch's own
// headers (as with Debian's, in /usr/include). Its C++ API folder is -I:
// the variables come before gotch's own #cgo flags on the compiler's
// command line, and -I folders are searched before -isystem ones, so this
// torch's torch/version.h wins over the one of Debian's libtorch-dev in
// -I/usr/include/torch/csrc/api/include, which gotch names. /usr/include
// itself is never named (as -isystem it breaks libstdc++'s #include_next).
func (f *finder) env(t *Torch) Env {
	var cpp, cxx, ld []string
	for i, d := range t.Includes {
		switch {
		case d == f.sysInclude():
		case i == 0:
			cpp = append(cpp, "-isystem", d)
		default:
			cpp = append(cpp, "-I"+d)
		}
	}
	cpp = append(cpp, "-D_GLIBCXX_USE_CXX11_ABI="+string(rune('0'+t.ABI)))
	if t.CXX20 {
		cxx = append(cxx, "-std=c++20")
	}
	ld = f.libFlags(ld, t.LibDir)
	e := Env{Vars: map[string]string{}}
	if t.CUDA != nil {
		if t.CUDA.Include != "" && t.CUDA.Include != f.sysInclude() {
			cpp = append(cpp, "-isystem", t.CUDA.Include)
		}
		if t.CUDA.LibDir != "" && t.CUDA.LibDir != t.LibDir {
			ld = f.libFlags(ld, t.CUDA.LibDir)
		}
		e.Tags = []string{"cuda"}
	}
	e.Vars["CGO_CPPFLAGS"] = joinFlags(cpp)
	if len(cxx) > 0 {
		e.Vars["CGO_CXXFLAGS"] = joinFlags(cxx)
	}
	e.Vars["CGO_LDFLAGS"] = joinFlags(ld)
	return e
}

// libFlags adds -L and an rpath for dir, unless the linker and the loader
// search it anyway. The rpath names torch's own folder, so a binary runs
// wherever that torch stays installed, wherever golens's source went.
func (f *finder) libFlags(ld []string, dir string) []string {
	if slices.Contains(f.defaultLibDirs(), filepath.Clean(dir)) {
		return ld
	}
	return append(ld, "-L"+dir, "-Wl,-rpath,"+dir)
}

// joinFlags joins flags the way the go command splits CGO_* variables:
// on spaces, with single or double quotes around a flag that has spaces.
func joinFlags(flags []string) string {
	q := make([]string, len(flags))
	for i, s := range flags {
		switch {
		case !strings.ContainsAny(s, " \t\n\r'\""):
			q[i] = s
		case !strings.Contains(s, "'"):
			q[i] = "'" + s + "'"
		default:
			q[i] = `"` + s + `"`
		}
	}
	return strings.Join(q, " ")
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
