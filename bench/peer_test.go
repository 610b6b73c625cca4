package bench

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/reference"
	"github.com/golens/golens/hookedmodel/weights"
)

// peerPython is /usr/bin/python3 with torch, the interpreter bench/run.sh
// runs the PyTorch peer with, or skips the test.
func peerPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		t.Skipf("no %s with torch: %v", py, err)
	}
	if _, err := os.Stat("peers/gpt2_peer.py"); err != nil {
		t.Skip("peers/gpt2_peer.py is not here (a test binary run elsewhere)")
	}
	return py
}

// peerSizes is the --sizes JSON that gives the peer's shape c's sizes; the
// rest (attention scale, rope scaling, ...) is the peer's own shape's, so
// that the test also compares the peer's architecture with golens's.
func peerSizes(c hookedmodel.Config) string {
	kv := c.NKeyValueHeads
	if kv == 0 {
		kv = c.NHeads
	}
	rotary := c.RotaryDim
	if rotary == 0 {
		rotary = c.DHead
	}
	sizes := map[string]any{
		"n_layers": c.NLayers, "d_model": c.DModel, "n_heads": c.NHeads, "n_kv_heads": kv, "d_head": c.DHead,
		"d_mlp": c.DMLP, "d_vocab": c.DVocab, "n_ctx": c.NCtx, "rotary_dim": rotary,
	}
	if c.WindowSize != nil {
		sizes["window"] = *c.WindowSize
	}
	js, _ := json.Marshal(sizes)
	return string(js)
}

// readPT reads every tensor of a torch file.
func readPT(t *testing.T, path string) map[string]*weights.Tensor {
	t.Helper()
	ck, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	out := map[string]*weights.Tensor{}
	for _, k := range ck.Keys() {
		if out[k], err = ck.Get(k); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// float64s decodes a float64 tensor.
func float64s(t *testing.T, w *weights.Tensor) []float64 {
	t.Helper()
	if w.DType != weights.F64 {
		t.Fatalf("%s: dtype %s, want float64", w.Name, w.DType)
	}
	xs := make([]float64, len(w.Data)/8)
	for i := range xs {
		xs[i] = math.Float64frombits(binary.LittleEndian.Uint64(w.Data[8*i:]))
	}
	return xs
}

// The PyTorch peer's maths for the new architectures is the float64
// reference's (hookedmodel/reference, written independently from Hugging
// Face's modeling code): the peer's float64 miniature of each shape (its
// --dump, with norm weights and biases away from 1 and 0) gives, on the
// reference loaded with the peer's own weights, the same activation at
// every hook point, and both have the same hook points, so the peer's
// cache_all caches what golens's does.
func TestPeerMatchesReference(t *testing.T) {
	py := peerPython(t)
	gotchtest.CheckLeaks(t)
	for _, name := range []string{"pythia-160m", "llama-1b", "gemma2-2b"} {
		t.Run(name, func(t *testing.T) {
			sh, err := ShapeByName(name)
			if err != nil {
				t.Fatal(err)
			}
			c := miniature(sh)
			dir := t.TempDir()
			out, err := exec.Command(py, "peers/gpt2_peer.py", "--shape", name, "--sizes", peerSizes(c), "--dump", dir).CombinedOutput()
			if err != nil {
				t.Fatalf("gpt2_peer.py --dump: %v\n%s", err, out)
			}
			ref := peerReference(t, c, readPT(t, filepath.Join(dir, "state_dict.pt")))
			acts := readPT(t, filepath.Join(dir, "acts.pt"))
			want := ref.Forward(tokenRows(t, acts["tokens"]))
			delete(acts, "tokens")
			for k := range want {
				if _, ok := acts[k]; !ok {
					t.Errorf("%s: the reference has it, the peer does not", k)
				}
			}
			for k, a := range acts {
				w, ok := want[k]
				if !ok {
					t.Errorf("%s: the peer has it, the reference does not", k)
					continue
				}
				if !slices.Equal(intShape(a.Shape), w.Shape) {
					t.Errorf("%s: shape %v, the reference's %v", k, a.Shape, w.Shape)
					continue
				}
				got := reference.Finite(float64s(t, a))
				if e := gotchtest.RelErr(got, reference.Finite(w.Data)); !(e < 1e-9) {
					t.Errorf("%s: rel err %.3g", k, e)
				}
			}
		})
	}
}

// peerReference is the float64 reference of c with the peer's weights sd.
// The peer multiplies Gemma's embeddings by sqrt(d_model) as Hugging Face
// does, where golens folds the scale into W_E and its Config has no field
// for it: the reference is told so.
func peerReference(t *testing.T, c hookedmodel.Config, sd map[string]*weights.Tensor) *reference.Model {
	t.Helper()
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := reference.ParseConfig(js)
	if err != nil {
		t.Fatal(err)
	}
	rc.DType = "float64" // the peer's dump is float64: no rounding of Gemma's embedding scale
	rc.ScaleEmbed = c.NormWeightPlusOne
	s := gotch.NewScope()
	defer s.Close()
	ts := map[string]*gotch.Tensor{}
	for k, w := range sd {
		x, err := gotch.FromBytes(w.Data, w.Shape, gotch.Double, gotch.CPU)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		ts[k] = s.Attach(x)
	}
	r, err := reference.New(rc, ts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tokenRows(t *testing.T, w *weights.Tensor) [][]int64 {
	t.Helper()
	if w == nil || w.DType != weights.I64 || len(w.Shape) != 2 {
		t.Fatalf("tokens: %v", w)
	}
	rows := make([][]int64, w.Shape[0])
	for b := range rows {
		for p := range w.Shape[1] {
			rows[b] = append(rows[b], int64(binary.LittleEndian.Uint64(w.Data[8*(int64(b)*w.Shape[1]+p):])))
		}
	}
	return rows
}

func intShape(s []int64) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = int(v)
	}
	return out
}
