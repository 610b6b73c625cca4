package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Env is what cgo needs to build gotch against a Torch: the CGO_* variables
// (those left out stay as they are), the build tags, and GOFLAGS with
// those tags added, so that a plain go build uses them.
type Env struct {
	Vars map[string]string `json:"env"`
	Tags []string          `json:"tags"`

	goflags string // what GOFLAGS was, where from, and what became of it, for --explain
	warning string // why GOFLAGS could not take the tag
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
		e.Tags = []string{"cuda"}
	}
	e.Vars["CGO_CPPFLAGS"] = joinFlags(cpp)
	if len(cxx) > 0 {
		e.Vars["CGO_CXXFLAGS"] = joinFlags(cxx)
	}
	e.Vars["CGO_LDFLAGS"] = joinFlags(ld)
	f.setGOFLAGS(&e, t.CUDA != nil)
	return e
}

// setGOFLAGS adds -tags=cuda to the GOFLAGS already set ($GOFLAGS, else
// go env -w's) for a CUDA torch, so that go build, go test and go vet
// build gotch's CUDA code with no flag of their own. For a CPU-only torch
// it takes cuda out of GOFLAGS's tags, where an earlier eval for a CUDA
// torch left it; otherwise it leaves GOFLAGS alone.
func (f *finder) setGOFLAGS(e *Env, cuda bool) {
	base, from := f.getenv("GOFLAGS"), "$GOFLAGS"
	if base == "" && f.goEnv != nil {
		base, from = f.goEnv("GOFLAGS"), "go env GOFLAGS"
	}
	if base == "" {
		from = "not set"
	} else {
		from = fmt.Sprintf("%s (from %s)", base, from)
	}
	v, err := setTag(base, "cuda", cuda)
	switch {
	case err != nil && cuda:
		e.goflags = from
		e.warning = fmt.Sprintf("GOFLAGS %s, so golens-env leaves it as it is: build with -tags cuda", err)
	case err == nil && (cuda || v != base):
		e.Vars["GOFLAGS"] = v
		e.goflags = from + ", exported as " + v
	case base != "":
		e.goflags = from + ", left as it is"
	default:
		e.goflags = from
	}
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

// setTag adds tag to the build tags in goflags (a GOFLAGS value), or with
// on false takes it out, changing nothing else: the last -tags flag (the
// one the go command applies) gets it, or a -tags flag is appended. A
// goflags that already says what is asked comes back as it is.
func setTag(goflags, tag string, on bool) (string, error) {
	fields, err := splitQuoted(goflags)
	if err != nil {
		return "", err
	}
	last := -1
	var tags []string
	for i, fl := range fields {
		name, value, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(fl.text, "-"), "-"), "=")
		if name == "tags" && ok && strings.HasPrefix(fl.text, "-") {
			last, tags = i, tagList(value)
		}
	}
	if slices.Contains(tags, tag) == on {
		return goflags, nil
	}
	if !on {
		tags = slices.DeleteFunc(tags, func(s string) bool { return s == tag })
	} else {
		tags = append(tags, tag)
	}
	flag := joinFlags([]string{"-tags=" + strings.Join(tags, ",")})
	if last < 0 {
		return joinSpaced(goflags, flag), nil
	}
	fl := fields[last]
	if len(tags) == 0 {
		return joinSpaced(goflags[:fl.start], goflags[fl.end:]), nil
	}
	return goflags[:fl.start] + flag + goflags[fl.end:], nil
}

// tagList reads a -tags value as the go command does: a comma-separated
// list, or, with a space or quote in it, Go 1.12's space-separated one.
func tagList(value string) []string {
	var tags []string
	if strings.ContainsAny(value, " '") {
		fields, _ := splitQuoted(value)
		for _, fl := range fields {
			tags = append(tags, fl.text)
		}
		return tags
	}
	for _, s := range strings.Split(value, ",") {
		if s != "" {
			tags = append(tags, s)
		}
	}
	return tags
}

// joinSpaced joins a and b with one space between them, or none where
// one is empty.
func joinSpaced(a, b string) string {
	a, b = strings.TrimRight(a, " \t\n\r"), strings.TrimLeft(b, " \t\n\r")
	if a == "" || b == "" {
		return a + b
	}
	return a + " " + b
}

// quotedField is one field of a GOFLAGS value: its text, quotes taken off,
// and where it is in the value, quotes included.
type quotedField struct {
	text       string
	start, end int
}

// splitQuoted splits s as the go command splits GOFLAGS and CGO_*
// variables (cmd/internal/quoted.Split): on spaces, with single or double
// quotes, which escape nothing, around a whole field.
func splitQuoted(s string) ([]quotedField, error) {
	var fields []quotedField
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for i := 0; i < len(s); {
		if isSpace(s[i]) {
			i++
			continue
		}
		start := i
		if q := s[i]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[i+1:], q)
			if end < 0 {
				return nil, fmt.Errorf("%s has an unterminated %c string", s, q)
			}
			i += 1 + end + 1
			fields = append(fields, quotedField{s[start+1 : i-1], start, i})
			continue
		}
		for i < len(s) && !isSpace(s[i]) {
			i++
		}
		fields = append(fields, quotedField{s[start:i], start, i})
	}
	return fields, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
