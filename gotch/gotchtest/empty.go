package gotchtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
)

// EmptyCase is one call of an exported function or method with empty or
// nil inputs, for a package's TestEmptyInputs (see CheckEmpty).
type EmptyCase struct {
	Input string       // the empty input, as a failure names it: "nil tokens"
	Call  func() error // the call: its error, or one saying how its result differs from the documented empty result
	Want  string       // a part of the error saying what was empty; "" where the call succeeds with its documented empty result
}

// CheckEmpty runs each case of each exported name as the subtest
// NAME/INPUT, twice. Before each call *inputs is a new scope, closed after
// it: the cases make their input tensors there. It fails the case when the
// call panics, when the error does not contain Want (or there is one where
// Want is ""), when it is a panic inside the call turned into an error
// (gotch.PanicError, which says "panic:") rather than a check of the
// input, and when the second call leaves more live handles than it found
// (the first may fill a model's caches, such as its stacked weight views).
func CheckEmpty(t *testing.T, inputs **gotch.Scope, cases map[string][]EmptyCase) {
	t.Helper()
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, c := range cases[name] {
				t.Run(c.Input, func(t *testing.T) {
					if !callEmpty(t, inputs, name, c) {
						return
					}
					live := gotch.LiveHandles()
					if callEmpty(t, inputs, name, c) {
						if n := gotch.LiveHandles() - live; n > 0 {
							t.Errorf("%s with %s leaks %d handles a call", name, c.Input, n)
						}
					}
				})
			}
		})
	}
}

// callEmpty makes one call of c and checks its outcome; it reports whether
// the call returned.
func callEmpty(t *testing.T, inputs **gotch.Scope, name string, c EmptyCase) (returned bool) {
	t.Helper()
	*inputs = gotch.NewScope()
	defer (*inputs).Close()
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Errorf("%s with %s panicked: %v", name, c.Input, v)
			}
		}()
		err = c.Call()
		returned = true
	}()
	switch {
	case !returned:
	case err != nil && strings.Contains(err.Error(), "panic:"):
		t.Errorf("%s with %s panicked inside, recovered as the error: %v", name, c.Input, err)
	case c.Want == "" && err != nil:
		t.Errorf("%s with %s: error %v, want the documented empty result", name, c.Input, err)
	case c.Want != "" && (err == nil || !strings.Contains(err.Error(), c.Want)):
		t.Errorf("%s with %s: error %v, want one saying %q", name, c.Input, err, c.Want)
	}
	return returned
}

// ExportedFuncs lists the exported functions ("F") and the exported
// methods of exported types ("T.M") declared in the non-test Go files of
// dir, of every file whatever its build constraints: a cgo file and its
// nocgo stand-in declare the same names. It skips the test where the
// source is not there (a test binary run elsewhere, as in the GPU bundle).
func ExportedFuncs(tb testing.TB, dir string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		tb.Skipf("the source of %s is not here (a test binary run elsewhere, as in the GPU bundle)", dir)
	}
	var names []string
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			tb.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil {
				recv := ReceiverName(fd.Recv.List[0].Type)
				if !ast.IsExported(recv) {
					continue
				}
				name = recv + "." + name
			}
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// ReceiverName is the name of a method receiver's type: T of T, *T, T[P]
// or *T[P] ("" for anything else).
func ReceiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// CheckCovered fails the test listing the exported functions and methods
// of the package in dir that have neither cases nor an exempt reason, and
// the names in either that the package does not export (any more), so
// that the table of empty inputs grows with the API.
func CheckCovered(t *testing.T, dir string, cases map[string][]EmptyCase, exempt map[string]string) {
	t.Helper()
	exported := ExportedFuncs(t, dir)
	var missing, stale []string
	for _, name := range exported {
		if _, ok := cases[name]; !ok && exempt[name] == "" {
			missing = append(missing, name)
		}
	}
	for name := range cases {
		if !slices.Contains(exported, name) {
			stale = append(stale, name)
		}
	}
	for name := range exempt {
		if !slices.Contains(exported, name) {
			stale = append(stale, name)
		}
	}
	slices.Sort(stale)
	if len(missing) > 0 {
		t.Errorf("%d exported functions have no empty-input case (add them to the table, or to the exempt list with a reason):\n\t%s",
			len(missing), strings.Join(missing, "\n\t"))
	}
	if len(stale) > 0 {
		t.Errorf("the empty-input table names functions %s does not export: %s", dir, strings.Join(stale, ", "))
	}
}
