package gotch

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"slices"
	"strings"
	"testing"
)

// exportedAPI lists gotch's exported declarations as the build with cgo on
// or off sees them: "func Name(params) results", "method (*T) Name...",
// "type T", "const C", "var V". Parameter names are left out.
func exportedAPI(t *testing.T, cgo bool) []string {
	t.Helper()
	ctx := build.Default
	ctx.CgoEnabled = cgo
	pkg, err := ctx.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var api []string
	for _, name := range append(pkg.GoFiles, pkg.CgoFiles...) {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				kind := "func "
				if d.Recv != nil {
					kind = "method (" + types.ExprString(d.Recv.List[0].Type) + ") "
				}
				api = append(api, kind+d.Name.Name+typeParams(d.Type.TypeParams)+fields(d.Type.Params)+" "+fields(d.Type.Results))
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							api = append(api, "type "+s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								api = append(api, d.Tok.String()+" "+n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(api)
	return api
}

func typeParams(fl *ast.FieldList) string {
	if fl == nil {
		return ""
	}
	return "[" + strings.Trim(fields(fl), "()") + "]"
}

// fields renders a parameter or result list by types only.
func fields(fl *ast.FieldList) string {
	if fl == nil {
		return "()"
	}
	var ts []string
	for _, f := range fl.List {
		for range max(len(f.Names), 1) {
			ts = append(ts, types.ExprString(f.Type))
		}
	}
	return "(" + strings.Join(ts, ", ") + ")"
}

// TestNoCgoAPI checks that a build without cgo has the exported API of a
// build with it, so a program that compiles against golens compiles with
// CGO_ENABLED=0 too and fails with ErrNoCgo when it runs. A new cgo file
// needs its stand-ins in nocgo.go; a failure names what is missing.
func TestNoCgoAPI(t *testing.T) {
	sourceGo(t)
	with, without := exportedAPI(t, true), exportedAPI(t, false)
	if len(with) < 100 {
		t.Fatalf("found only %d exported declarations with cgo", len(with))
	}
	for _, d := range with {
		if _, found := slices.BinarySearch(without, d); !found {
			t.Errorf("with cgo only: %s", d)
		}
	}
	for _, d := range without {
		if _, found := slices.BinarySearch(with, d); !found {
			t.Errorf("without cgo only: %s", d)
		}
	}
}
