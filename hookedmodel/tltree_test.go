package hookedmodel

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// treeCase is a model whose module tree is pinned in testdata: golden is
// print(model) of tl_mirror.py's stand-in for TransformerLens's module
// tree, made by torch's own nn.Module repr with the hooks given to it as
// NAME=NFWD,NBWD:
//
//	python3 testdata/tl_mirror.py repr CONFIG.json HOOKS... > testdata/GOLDEN
//
// with CONFIG.json the model's Config as JSON (TestModuleTreeString
// checks that the script still prints the file, where python3 has torch).
type treeCase struct {
	golden string
	model  func(t *testing.T) *HookedTransformer
	hooks  map[string][2]int // fwd, bwd hooks registered on a point
}

func treeCases() []treeCase {
	return []treeCase{
		{
			golden: "module_tree_gpt2.txt",
			model:  func(t *testing.T) *HookedTransformer { return newTestModel(t, smallConfig(), 1) },
			hooks:  map[string][2]int{"blocks.0.attn.hook_pattern": {1, 0}, "blocks.1.hook_resid_post": {2, 1}},
		},
		{
			// attention-only, processed (LNPre), with the optional hook points
			golden: "module_tree_attn_only.txt",
			model: func(t *testing.T) *HookedTransformer {
				c := attnOnlyConfig()
				c.UseAttnResult, c.UseSplitQKVIn, c.UseHookTokens, c.DVocabOut = true, true, true, 7
				m := newTestModel(t, c, 1)
				if err := m.Process(DefaultProcessing); err != nil {
					t.Fatal(err)
				}
				return m
			},
		},
		{
			golden: "module_tree_solu.txt",
			model: func(t *testing.T) *HookedTransformer {
				c := smallConfig()
				c.NLayers, c.ActFn, c.UseAttnIn, c.UseHookMLPIn = 1, "solu_ln", true, true
				return newTestModel(t, c, 1)
			},
		},
		{
			golden: "module_tree_no_ln.txt",
			model: func(t *testing.T) *HookedTransformer {
				c := smallConfig()
				c.NLayers, c.NormalizationType = 1, ""
				return newTestModel(t, c, 1)
			},
		},
	}
}

// TestModuleTreeString: String prints the golden module tree, which
// tl_mirror.py prints with torch; every hook point of the model is in it
// once, under its name.
func TestModuleTreeString(t *testing.T) {
	gotchtest.CheckLeaks(t)
	_, pyErr := exec.Command("/usr/bin/python3", "-c", "import torch").CombinedOutput()
	var jobs [][]string
	printed := map[string]string{} // golden: where tl_mirror.py prints it
	dir := t.TempDir()             // outlives the subtests, for the jobs
	for _, c := range treeCases() {
		t.Run(c.golden, func(t *testing.T) {
			m := c.model(t)
			defer m.Free()
			noop := func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil }
			printed[c.golden] = filepath.Join(dir, c.golden)
			job := []string{"repr", configFile(t, filepath.Join(dir, c.golden+".json"), m.Cfg), printed[c.golden]}
			for name, n := range c.hooks {
				for range n[0] {
					if _, err := m.AddHook(FwdHook(Name(name), noop)); err != nil {
						t.Fatal(err)
					}
				}
				for range n[1] {
					if _, err := m.AddHook(BwdHook(Name(name), noop)); err != nil {
						t.Fatal(err)
					}
				}
				job = append(job, name+"="+itoa(n[0])+","+itoa(n[1]))
			}
			jobs = append(jobs, job)
			got := m.String()
			want, err := os.ReadFile("testdata/" + c.golden)
			if err != nil {
				t.Fatal(err)
			}
			if got+"\n" != string(want) {
				t.Errorf("String():\n%s\nwant testdata/%s:\n%s", got, c.golden, want)
			}
			for _, name := range m.HookNames() {
				if n := strings.Count(got, "(name='"+name+"'"); n != 1 {
					t.Errorf("hook point %s appears %d times", name, n)
				}
			}
			if n, want := strings.Count(got, "HookPoint("), len(m.HookNames()); n != want {
				t.Errorf("%d hook points in the tree, the model has %d", n, want)
			}
		})
	}
	if pyErr != nil {
		t.Logf("no /usr/bin/python3 with torch (%v): the golden files are not checked against tl_mirror.py", pyErr)
		return
	}
	mirror(t, jobs...)
	for golden, path := range printed {
		py, err := os.ReadFile(path)
		want, err2 := os.ReadFile("testdata/" + golden)
		if err != nil || err2 != nil || string(py) != string(want) {
			t.Errorf("tl_mirror.py prints (%v, %v):\n%s\nnot testdata/%s:\n%s", err, err2, py, golden, want)
		}
	}
}

// TestModuleTreeStringShapesFollowWeights: the tree shows the shapes of
// the model's weights (StateDict's), so a processed model loses its
// LayerNorm weights there too; it needs no live weights to print.
func TestModuleTreeStringShapesFollowWeights(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 1)
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	tree := m.String()
	for k, v := range sd {
		line := k[strings.LastIndexByte(k, '.')+1:] + ": " + shapeString(v.Shape())
		if !strings.Contains(tree, line) {
			t.Errorf("no %q in the tree", line)
		}
	}
	s.Close()
	if err := m.Process(Processing{FoldLN: true}); err != nil {
		t.Fatal(err)
	}
	tree = m.String()
	if strings.Contains(tree, "w: [16]") || !strings.Contains(tree, "(ln1): LayerNormPre(") {
		t.Errorf("processed model's tree still has LayerNorm weights:\n%s", tree)
	}
	m.Free()
	if got := m.String(); got != tree {
		t.Errorf("freed model's tree differs:\n%s", got)
	}
}
