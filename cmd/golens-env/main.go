package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

const usage = `usage: golens-env [--shell | --json | --explain]

Finds libtorch ($LIBTORCH, python3's torch, or Debian's or Ubuntu's
libtorch-dev) and prints the cgo flags that build golens against it:

	eval "$(go run github.com/golens/golens/cmd/golens-env)"
	go build ./...

For a CUDA torch it also exports GOFLAGS with -tags=cuda added to what
GOFLAGS had, so go build, go test and go vet build the CUDA code with no
flag of their own. That build compiles against the CUDA runtime's headers (found in
$CUDA_HOME, /usr/local/cuda, /usr/include or pip's nvidia packages) and
links no libcudart of its own.

  --shell    export lines for a POSIX shell (the default)
  --json     what was found and the variables, as JSON
  --explain  what was found where, and why
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, newFinder()); err != nil {
		fmt.Fprintln(os.Stderr, "golens-env:", err)
		os.Exit(1)
	}
}

// run is main without its process: it writes the report for args to
// stdout, or returns the one error main prints.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, f *finder) error {
	fs := flag.NewFlagSet("golens-env", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	shell := fs.Bool("shell", false, "")
	asJSON := fs.Bool("json", false, "")
	explain := fs.Bool("explain", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return fmt.Errorf("%v (try --help)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (try --help)", fs.Arg(0))
	}
	if n := count(*shell, *asJSON, *explain); n > 1 {
		return errors.New("give one of --shell, --json and --explain")
	}
	t, err := f.find(ctx)
	if err != nil {
		if *explain {
			for _, s := range f.trail {
				fmt.Fprintln(stderr, "  looked at", s)
			}
		}
		return err
	}
	e := f.env(t)
	switch {
	case *asJSON:
		return writeJSON(stdout, t, e)
	case *explain:
		writeExplain(stdout, f, t, e)
	default:
		writeShell(stdout, stderr, t, e)
	}
	return nil
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// varOrder is the order the variables are printed in.
var varOrder = []string{"CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS", "GOFLAGS"}

// writeShell writes export lines for eval, and its warnings to stderr,
// which eval leaves on the terminal.
func writeShell(w, stderr io.Writer, t *Torch, e Env) {
	fmt.Fprintf(w, "# golens-env: libtorch %s from %s (%s)\n", orUnknown(t.Version), t.From, t.Root)
	for _, k := range varOrder {
		if v, ok := e.Vars[k]; ok {
			fmt.Fprintf(w, "export %s=%s\n", k, shellQuote(v))
		}
	}
	_, goflags := e.Vars["GOFLAGS"]
	switch {
	case t.CUDA != nil && goflags:
		fmt.Fprintf(w, "# CUDA %s: GOFLAGS has -tags=cuda, so go build ./... builds the CUDA code\n", orUnknown(t.CUDA.Version))
	case t.CUDA != nil:
		fmt.Fprintf(w, "# CUDA %s: build with -tags cuda (go build -tags cuda ./...)\n", orUnknown(t.CUDA.Version))
	case goflags:
		fmt.Fprintln(w, "# a CPU-only libtorch: GOFLAGS without the tag cuda")
	}
	for _, warn := range warnings(t, e) {
		fmt.Fprintln(stderr, "golens-env: warning:", warn)
	}
}

// warnings are what will keep the build from working as printed.
func warnings(t *Torch, e Env) []string {
	var ws []string
	if t.CUDA != nil && t.CUDA.Warning != "" {
		ws = append(ws, t.CUDA.Warning)
	}
	if e.warning != "" {
		ws = append(ws, e.warning)
	}
	return ws
}

func writeJSON(w io.Writer, t *Torch, e Env) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Torch
		Env
	}{t, e})
}

func writeExplain(w io.Writer, f *finder, t *Torch, e Env) {
	fmt.Fprintf(w, "libtorch %s from %s\n", orUnknown(t.Version), t.From)
	for _, s := range f.trail {
		fmt.Fprintln(w, "  looked at", s)
	}
	fmt.Fprintf(w, "headers:      %s\n", strings.Join(t.Includes, ", "))
	fmt.Fprintf(w, "libraries:    %s\n", t.LibDir)
	fmt.Fprintf(w, "C++11 ABI:    %d (from %s)\n", t.ABI, t.abiFrom)
	std := "the compiler's default (C++17 with GCC 11 or later)"
	if t.CXX20 {
		std = "C++20 (GCC 11 or later; GCC 10's -std=c++20 does not pass torch's check)"
	}
	fmt.Fprintf(w, "C++ standard: %s: %s\n", std, t.stdFrom)
	if t.CUDA == nil {
		fmt.Fprintln(w, "CUDA:         no (a CPU-only libtorch)")
	} else {
		fmt.Fprintf(w, "CUDA:         %s, the runtime's headers in %s (libcudart is not linked: libtorch_cuda loads it)\n",
			orUnknown(t.CUDA.Version), orNotFound(t.CUDA.Include))
	}
	fmt.Fprintf(w, "GOFLAGS:      %s\n", e.goflags)
	for _, warn := range warnings(t, e) {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	fmt.Fprintln(w, "the variables (gotch's #cgo flags follow the CGO_* ones):")
	for _, k := range varOrder {
		if v, ok := e.Vars[k]; ok {
			fmt.Fprintf(w, "  %s=%s\n", k, v)
		}
	}
	if len(e.Tags) > 0 {
		fmt.Fprintf(w, "build tags: %s\n", strings.Join(slices.Clone(e.Tags), ","))
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(version unknown)"
	}
	return s
}

func orNotFound(s string) string {
	if s == "" {
		return "(not found)"
	}
	return s
}
