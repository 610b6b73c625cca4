package hookedmodel

import (
	"github.com/golens/golens/gotch/gotchtest"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tlNamesPage is the page mapping TransformerLens's names to golens's.
const tlNamesPage = "TRANSFORMERLENS.md"

// tlPackages are the packages the page may name, by the qualifier it
// writes, and their directories from this one.
var tlPackages = map[string]string{
	"hookedmodel": ".",
	"tokenizer":   "tokenizer",
	"analysis":    "../analysis",
	"gotch":       "../gotch",
	"einops":      "../gotch/einops",
	"report":      "../analysis/report",
	"train":       "train",
}

// goAPI is a package's exported declarations, read from its source: the
// signature each one has in the page's golens column ("" where the page
// shows none) and whether the page must show it.
type goAPI map[string]apiEntry

type apiEntry struct {
	sig      string
	required bool // functions, methods and fields
}

// readAPI parses the package in dir (every non-test file, whatever its
// build constraints) into its exported names: F, T, T.M, T.Field, C.
func readAPI(t *testing.T, dir string) goAPI {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Skipf("the source of %s is not here (a test binary run elsewhere, as in the GPU bundle)", dir)
	}
	api := goAPI{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				name := d.Name.Name
				if d.Recv != nil {
					recv := gotchtest.ReceiverName(d.Recv.List[0].Type)
					if !ast.IsExported(recv) {
						continue
					}
					name = recv + "." + name
				}
				if ast.IsExported(d.Name.Name) {
					api[name] = apiEntry{funcSig(d), true}
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !ast.IsExported(s.Name.Name) {
							continue
						}
						st, ok := s.Type.(*ast.StructType)
						if !ok {
							// A func or named type shows its definition; an interface none.
							if _, iface := s.Type.(*ast.InterfaceType); iface {
								api[s.Name.Name] = apiEntry{}
							} else {
								api[s.Name.Name] = apiEntry{sig: types.ExprString(s.Type)}
							}
							continue
						}
						api[s.Name.Name] = apiEntry{}
						for _, fld := range st.Fields.List {
							for _, n := range fld.Names {
								if n.IsExported() {
									api[s.Name.Name+"."+n.Name] = apiEntry{types.ExprString(fld.Type), true}
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								api[n.Name] = apiEntry{}
							}
						}
					}
				}
			}
		}
	}
	return api
}

// funcSig is a function's signature as the page writes it: its name, type
// parameters, parameters and results, on one line.
func funcSig(d *ast.FuncDecl) string {
	var b strings.Builder
	b.WriteString(d.Name.Name)
	if tp := d.Type.TypeParams; tp != nil {
		var ps []string
		for _, f := range tp.List {
			ps = append(ps, fieldString(f))
		}
		b.WriteString("[" + strings.Join(ps, ", ") + "]")
	}
	sig := *d.Type
	sig.TypeParams = nil
	b.WriteString(strings.TrimPrefix(types.ExprString(&sig), "func"))
	return b.String()
}

func fieldString(f *ast.Field) string {
	var names []string
	for _, n := range f.Names {
		names = append(names, n.Name)
	}
	if len(names) == 0 {
		return types.ExprString(f.Type)
	}
	return strings.Join(names, ", ") + " " + types.ExprString(f.Type)
}

var codeSpan = regexp.MustCompile("^`([^`]+)`$")

// TestTransformerLensNames checks the page that maps TransformerLens's names
// to golens's against the source, so that it cannot drift: each golens name
// in its table is an exported declaration of the package it names, each
// signature is the declaration's, and a row without an equivalent says
// "not yet" and nothing else.
func TestTransformerLensNames(t *testing.T) {
	page, err := os.ReadFile(tlNamesPage)
	if os.IsNotExist(err) {
		t.Skip(tlNamesPage, "is not here (a test binary run elsewhere, as in the GPU bundle)")
	}
	if err != nil {
		t.Fatal(err)
	}
	apis := map[string]goAPI{}
	python := map[string]int{}
	rows, notYet := 0, 0
	for i, line := range strings.Split(string(page), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if cells[0] == "TransformerLens" || strings.HasPrefix(cells[0], "---") {
			continue // the header and its rule
		}
		where := func(format string, args ...any) {
			t.Helper()
			t.Errorf("%s:%d: "+format, append([]any{tlNamesPage, i + 1}, args...)...)
		}
		if len(cells) != 4 {
			where("%d cells, want 4 (TransformerLens | golens | signature | notes)", len(cells))
			continue
		}
		rows++
		if !strings.HasPrefix(cells[0], "`") {
			where("the TransformerLens name %q does not start with a code span", cells[0])
			continue
		}
		py := []string{cells[0], cells[0]}
		if prev, dup := python[py[1]]; dup {
			where("%s is on line %d already", py[1], prev)
		}
		python[py[1]] = i + 1
		if cells[1] == "not yet" {
			notYet++
			if cells[2] != "" || cells[3] != "" {
				where("%s: a row that says \"not yet\" says nothing else", py[1])
			}
			continue
		}
		gn := codeSpan.FindStringSubmatch(cells[1])
		if gn == nil {
			where("%s: the golens cell %q is neither \"not yet\" nor one code span", py[1], cells[1])
			continue
		}
		pkg, name, _ := strings.Cut(gn[1], ".")
		dir, ok := tlPackages[pkg]
		if !ok {
			where("%s: %s: the golens name must start with one of the packages hookedmodel, tokenizer, analysis, gotch, einops", py[1], gn[1])
			continue
		}
		if apis[pkg] == nil {
			apis[pkg] = readAPI(t, dir)
		}
		e, ok := apis[pkg][name]
		if !ok {
			where("%s: %s is not an exported name of package %s", py[1], gn[1], pkg)
			continue
		}
		sig := ""
		if cells[2] != "" {
			m := codeSpan.FindStringSubmatch(cells[2])
			if m == nil {
				where("%s: the signature %q is not one code span", py[1], cells[2])
				continue
			}
			sig = m[1]
		}
		switch {
		case sig == "" && e.required:
			where("%s: %s has no signature; it is `%s`", py[1], gn[1], e.sig)
		case sig != "" && sig != e.sig && (e.required || e.sig != ""):
			where("%s: %s is `%s`, the page says `%s`", py[1], gn[1], e.sig, sig)
		case sig != "" && e.sig == "":
			where("%s: %s is a struct, an interface or a constant: leave its signature empty", py[1], gn[1])
		}
	}
	if rows < 50 {
		t.Errorf("%s has %d rows; the table was not found or lost most of its rows", tlNamesPage, rows)
	}
	t.Logf("%d TransformerLens names, %d of them not yet in golens", rows, notYet)

	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err == nil && !strings.Contains(string(readme), "hookedmodel/"+tlNamesPage) {
		t.Errorf("README.md does not link hookedmodel/%s", tlNamesPage)
	}
}
