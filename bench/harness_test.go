package bench

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// Every workload on the toy shape gives an OK row, checked and timed.
func TestRunToyAllWorkloads(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	var rows []Row
	g := Grid{Shapes: []string{"toy"}, Workloads: Workloads(), Sizes: []Size{{2, 8}}, DTypes: []string{"float32"}, Device: dev}
	err := Run(context.Background(), g, func(r Row) error { rows = append(rows, r); return nil }, Reps(2), Warmup(1), NewTokens(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(Workloads()) {
		t.Fatalf("%d rows, want %d", len(rows), len(Workloads()))
	}
	for _, r := range rows {
		if r.Status != OK {
			t.Errorf("%s: %s %s", r.Workload, r.Status, r.Error)
			continue
		}
		if r.MaxRelErr == nil || *r.MaxRelErr > 1e-4 || r.MedianMS == nil || *r.MedianMS <= 0 || r.Throughput == nil || r.FLOPs <= 0 || r.PeakMemMB == nil || *r.PeakMemMB <= 0 {
			t.Errorf("%s: incomplete row %+v", r.Workload, r)
		}
		if r.Impl != "golens" || r.Shape != "toy" || r.Batch != 2 || r.Seq != 8 || r.Device != dev.String() || r.Torch == "" || r.Machine == "" {
			t.Errorf("%s: wrong labels %+v", r.Workload, r)
		}
	}
}

// A model whose weights changed after the reference ran on the check
// input is WRONG, and a workload that fails is an ERROR row naming the
// problem.
func TestCheckCatchesWrongAndErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e, o, w := toyForward(t)
	m := e.m
	small, err := newInputs(m, checkBatch, checkSeq, checkNewTokens, o.seed)
	if err != nil {
		t.Fatal(err)
	}
	defer small.free()
	if _, err := e.refForward(small.rows, nil); err != nil { // the reference run of the current weights
		t.Fatal(err)
	}
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	sd["unembed.b_U"].MustFill_(0.5) // state-dict tensors share the model's storage
	s.Close()
	row := newRow(m.Cfg.ModelName, w, Size{1, 8}, "float32", m.Device(), o)
	measure(context.Background(), e, w, Size{1, 8}, &row, o)
	if row.Status != Wrong || !strings.Contains(row.Error, "logits: rel err") || row.MedianMS != nil {
		t.Errorf("perturbed weights: %s %q", row.Status, row.Error)
	}

	e.weightsChanged()
	row = newRow(m.Cfg.ModelName, w, Size{1, 1000}, "float32", m.Device(), o)
	measure(context.Background(), e, w, Size{1, 1000}, &row, o)
	if row.Status != Error || !strings.Contains(row.Error, "n_ctx 128") {
		t.Errorf("too long: %s %q", row.Status, row.Error)
	}
}

func TestFLOPs(t *testing.T) {
	sh, _ := ShapeByName("gpt2-small")
	in := &inputs{batch: 1, seq: 128, newTokens: 16}
	// 2 × (85M weights + 38.6M unembedding) per token, plus attention
	want := 128*2*(12*(4*768*768+2*768*3072)+768*50257.0) + 12*12*4*128*128*64.0
	if got := forwardFLOPs(sh.Config, in); math.Abs(got-want) > 1 {
		t.Errorf("forward FLOPs %g, want %g", got, want)
	}
	if kv, full := generateKVFLOPs(sh.Config, in), generateFLOPs(sh.Config, in); kv >= full/10 {
		t.Errorf("generation with the KV cache %g FLOPs, without %g: the cache should save most", kv, full)
	}
}

// The reference's run of the check input is kept for the next row's check
// (for llama-1b, a minute of float64 arithmetic), and a change of weights
// drops it.
func TestCheckKeepsReferenceRuns(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e, o, w := toyForward(t)
	m := e.m
	row := newRow(m.Cfg.ModelName, w, Size{1, 8}, "float32", m.Device(), o)
	measure(context.Background(), e, w, Size{1, 8}, &row, o)
	if row.Status != OK {
		t.Fatalf("%s %s", row.Status, row.Error)
	}
	small, err := newInputs(m, checkBatch, checkSeq, checkNewTokens, o.seed)
	if err != nil {
		t.Fatal(err)
	}
	defer small.free()
	logits := func() *float64 {
		acts, err := e.refForward(small.rows, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &acts["logits"].Data[0]
	}
	kept := logits()
	if again := logits(); again != kept {
		t.Error("the check input's run was not kept: the reference ran again")
	}
	e.weightsChanged()
	if fresh := logits(); fresh == kept {
		t.Error("after a change of weights the old run was used")
	}
}

// toyForward is the forward workload on a toy-shaped model, freed when the
// test ends, with one timed repetition.
func toyForward(t *testing.T) (*env, *options, workload) {
	t.Helper()
	sh, _ := ShapeByName("toy")
	m, err := hookedmodel.New(sh.Config, hookedmodel.OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{m: m, dtype: "float32", owned: true}
	t.Cleanup(e.free)
	w, _ := workloadByName("forward")
	return e, &options{reps: 1, newTokens: 2, seed: 1}, w
}
