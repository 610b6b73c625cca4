package gotchtest_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// layer is the rank of each top-level directory of the module (DESIGN.md
// §2): a package imports only packages of a lower rank or of its own
// directory, so the layering has no upward arrow, in tests either.
var layer = map[string]int{
	"gotch":       0,
	"cuda":        1,
	"metal":       1,
	"backend":     2,
	"hookedmodel": 3,
	"analysis":    4,
	"bench":       5,
	"models":      5,
	"cmd":         6,
}

const module = "github.com/golens/golens"

// top is the module directory a package lives under, and whether it is one
// of the module's own.
func top(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return "", false
	}
	dir, _, _ := strings.Cut(rest, "/")
	return dir, true
}

func TestLayersPointDown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	out, err := exec.Command("go", "list", "-json=ImportPath,CgoFiles,Imports,TestImports,XTestImports", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath                         string
			CgoFiles                           []string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		from, _ := top(p.ImportPath)
		rank, known := layer[from]
		if !known {
			t.Errorf("%s: directory %q has no layer: add it to the table (and to DESIGN.md §2)", p.ImportPath, from)
			continue
		}
		if len(p.CgoFiles) > 0 && from != "gotch" {
			t.Errorf("%s uses cgo (%v): gotch is the only package that crosses into C", p.ImportPath, p.CgoFiles)
		}
		for _, imp := range append(append(p.Imports, p.TestImports...), p.XTestImports...) {
			to, ours := top(imp)
			if !ours || to == from {
				continue
			}
			if layer[to] >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports point down only", p.ImportPath, rank, imp, layer[to])
			}
		}
	}
}
