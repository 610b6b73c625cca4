package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/weights"
)

// tinyConfig is a one-layer model with an MLP on the repeated-token task,
// small enough that a step takes about a millisecond.
func tinyConfig(steps int) Config {
	m := hookedmodel.DefaultConfig()
	m.NLayers, m.DModel, m.DHead, m.NHeads, m.DMLP = 1, 16, 4, 4, 32
	m.NCtx, m.DVocab, m.ActFn = 13, 20, "gelu_new"
	tc := DefaultTrainConfig()
	tc.Steps, tc.Warmup, tc.Batch, tc.LR = steps, 2, 4, 1e-2
	tc.LogEvery, tc.EvalEvery, tc.EvalBatches, tc.CheckpointEvery, tc.Seed = 1, 4, 2, 0, 7
	return Config{Model: m, Train: tc, Data: DataConfig{Kind: "repeated_tokens", Repeats: 2}}
}

// runRecords runs cfg into dir and returns the result, the error and the
// records in the order OnRecord saw them.
func runRecords(t *testing.T, ctx context.Context, cfg Config, dir string, opts ...Option) (*Result, []Record, error) {
	t.Helper()
	var recs []Record
	opts = append([]Option{WithProgress(nil), OnRecord(func(r Record) { recs = append(recs, r) })}, opts...)
	res, err := Run(ctx, cfg, dir, opts...)
	return res, recs, err
}

func losses(recs []Record, kind string) []float64 {
	var out []float64
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r.Loss)
		}
	}
	return out
}

func TestLearnsRepeatedTokens(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := hookedmodel.DefaultConfig()
	m.NLayers, m.DModel, m.DHead, m.NHeads, m.AttnOnly = 1, 32, 8, 4, true
	m.NCtx, m.DVocab = 21, 24
	tc := DefaultTrainConfig()
	tc.Steps, tc.Warmup, tc.Batch, tc.LR, tc.EvalEvery, tc.CheckpointEvery = 150, 10, 16, 1e-2, 0, 0
	cfg := Config{Model: m, Train: tc, Data: DataConfig{Kind: "repeated_tokens"}}
	res, recs, err := runRecords(t, context.Background(), cfg, t.TempDir(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Done || res.Step != 150 {
		t.Fatalf("result %+v, want done after 150 steps", res)
	}
	byPos := res.Eval.LossByPos // [20]: token 1..10 the first segment, 11..20 its repeat
	first, second := mean(byPos[:10]), mean(byPos[10:])
	t.Logf("held-out loss: first segment %.3f, repeat %.3f (uniform %.3f); ICL score %.3f", first, second, math.Log(23), *res.Eval.ICL)
	if second > first-0.3 {
		t.Errorf("the repeat's loss %.3f is not below the first segment's %.3f by 0.3", second, first)
	}
	if evals := losses(recs, "eval"); evals[len(evals)-1] >= evals[0] {
		t.Errorf("held-out loss went from %.3f to %.3f", evals[0], evals[len(evals)-1])
	}
	if *res.Eval.ICL > -0.3 {
		t.Errorf("ICL score %.3f: the late token's loss should be well below the early one's", *res.Eval.ICL)
	}
}

// With segments of varying length the ICL rows still have their repeats
// at fixed places: the late tokens repeat the early ones.
func TestICLRowsPositions(t *testing.T) {
	d := RepeatedTokens{Vocab: 64, Length: 18, MinLength: 10, Repeats: 2, Prefix: 3, BOS: 0, Rows: 8, Seed: 3}
	rows, early, late, err := d.ICLRows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(early) != 13 || len(late) != len(early) || early[0] != 3 || late[0] != 17 {
		t.Fatalf("early %v, late %v: want 13 tokens each, from 3 and 17 (BOS, prefix 1, segments of 14)", early, late)
	}
	for i, row := range rows {
		if len(row) != d.SeqLen() {
			t.Fatalf("row %d has %d tokens, want %d", i, len(row), d.SeqLen())
		}
		for j := range late {
			if row[late[j]] != row[early[j]] {
				t.Errorf("row %d: token %d is not a repeat of token %d: %v", i, late[j], early[j], row)
			}
		}
	}
	held, _ := d.EvalBatch(context.Background(), 0)
	if slices.EqualFunc(rows, held, slices.Equal) {
		t.Error("the ICL rows are a held-out batch")
	}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func TestSameSeedSameLossCurve(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(6)
	dev := OnDevice(gotchtest.Device(t))
	_, a, err := runRecords(t, context.Background(), cfg, t.TempDir(), dev)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := runRecords(t, context.Background(), cfg, t.TempDir(), dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"train", "eval"} {
		if la, lb := losses(a, kind), losses(b, kind); !slices.Equal(la, lb) || len(la) == 0 {
			t.Errorf("%s losses differ between two runs of one config:\n%v\n%v", kind, la, lb)
		}
	}
	cfg.Train.Seed++
	_, c, err := runRecords(t, context.Background(), cfg, t.TempDir(), dev)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(losses(a, "train"), losses(c, "train")) {
		t.Error("another seed gave the same losses")
	}
}

// Two runs of a model of the shipped one's size agree bit for bit over
// 300 steps, evaluations included. Before Run kept to one OS thread, ops
// that Go moved to threads with another intra-op count summed in another
// order, and such runs drifted apart by an ulp within 250 steps.
func TestSameLossCurveOverHundredsOfSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for seconds")
	}
	gotchtest.CheckLeaks(t)
	m := hookedmodel.DefaultConfig()
	m.NLayers, m.DModel, m.DHead, m.NHeads, m.AttnOnly = 2, 64, 16, 4, true
	m.NCtx, m.DVocab, m.PositionalEmbeddingType = 40, 64, "shortformer"
	tc := DefaultTrainConfig()
	tc.Steps, tc.Warmup, tc.Batch, tc.LR, tc.WeightDecay = 300, 50, 32, 5e-3, 0
	tc.LogEvery, tc.EvalEvery, tc.CheckpointEvery = 10, 100, 0
	cfg := Config{Model: m, Train: tc, Data: DataConfig{Kind: "repeated_tokens", Length: 19, MinLength: 10, Prefix: 1}}
	dev := OnDevice(gotchtest.Device(t))
	var runs [2][]Record
	for i := range runs {
		var err error
		if _, runs[i], err = runRecords(t, context.Background(), cfg, t.TempDir(), dev); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range runs[0] {
		b := runs[1][i]
		if a.Kind != b.Kind || a.Step != b.Step || a.Loss != b.Loss || a.GradNorm != b.GradNorm {
			t.Fatalf("the runs differ at record %d: %s step %d loss %v grad norm %v, and %s step %d loss %v grad norm %v",
				i, a.Kind, a.Step, a.Loss, a.GradNorm, b.Kind, b.Step, b.Loss, b.GradNorm)
		}
	}
}

// TestResumeIsExact stops a run half-way by cancelling it, throws away its
// last checkpoint as a crash would, resumes it from the one before, and
// compares the losses, metrics.jsonl and the final weights and moments
// with an uninterrupted run's, bit for bit.
func TestResumeIsExact(t *testing.T) {
	gotchtest.CheckLeaks(t)
	const n = 12
	cfg := tinyConfig(n)
	cfg.Train.CheckpointEvery = 4
	dev := OnDevice(gotchtest.Device(t))
	dirA, dirB := t.TempDir(), t.TempDir()
	_, recsA, err := runRecords(t, context.Background(), cfg, dirA, dev)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := OnRecord(func(r Record) {
		if r.Step == 6 {
			cancel()
		}
	})
	res, recsB, err := runRecords(t, ctx, cfg, dirB, dev, stop)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled run returned %v, want context.Canceled", err)
	}
	if res.Done || res.Step != 6 || res.Checkpoint != stepDir(dirB, 6) {
		t.Fatalf("a run cancelled after step 6: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dirB, modelFile)); !os.IsNotExist(err) {
		t.Errorf("a stopped run wrote the final model (%v)", err)
	}
	if got, want := steps(recsB), steps(recsA)[:len(recsB)]; !slices.Equal(got, want) {
		t.Errorf("records up to the stop: %v, want %v", got, want)
	}
	if err := os.RemoveAll(stepDir(dirB, 6)); err != nil {
		t.Fatal(err)
	}
	res, recsB, err = runRecords(t, context.Background(), cfg, dirB, dev)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Done || res.Step != n {
		t.Fatalf("the resumed run: %+v", res)
	}
	if got, want := steps(recsB), steps(recsA)[len(recsA)-len(recsB):]; !slices.Equal(got, want) || recsB[0].Step != 5 {
		t.Errorf("records after resuming at step 4: %v, want %v", got, want)
	}
	if a, b := metricLines(t, dirA), metricLines(t, dirB); !bytes.Equal(a, b) {
		t.Errorf("metrics.jsonl differs:\n%s\n---\n%s", a, b)
	}
	sameTensors(t, filepath.Join(dirA, modelFile), filepath.Join(dirB, modelFile))
	sameTensors(t, filepath.Join(stepDir(dirA, n), optimizerFile), filepath.Join(stepDir(dirB, n), optimizerFile))
}

// steps lists the records' kind, step and loss.
func steps(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s %d %v", r.Kind, r.Step, r.Loss))
	}
	return out
}

// metricLines reads metrics.jsonl without the throughput, which timing
// sets.
func metricLines(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, metricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for line := range bytes.Lines(b) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		delete(rec, "tokens_per_s")
		js, _ := json.Marshal(rec)
		out = append(append(out, js...), '\n')
	}
	return out
}

// sameTensors checks that two safetensors files hold the same keys with
// the same bytes.
func sameTensors(t *testing.T, a, b string) {
	t.Helper()
	ca, err := weights.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := weights.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	if !slices.Equal(ca.Keys(), cb.Keys()) {
		t.Fatalf("%s and %s hold different keys", a, b)
	}
	for _, k := range ca.Keys() {
		ta, err := ca.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := cb.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ta.Data, tb.Data) {
			t.Errorf("%s differs between %s and %s", k, a, b)
		}
	}
}

func TestWithProgress(t *testing.T) {
	gotchtest.CheckLeaks(t)
	var buf bytes.Buffer
	if _, err := Run(context.Background(), tinyConfig(3), t.TempDir(), WithProgress(&buf)); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "3/3") || !strings.Contains(out, "tok/s") || !strings.Contains(out, "loss ") {
		t.Errorf("the progress bar shows %q", out)
	}
}

func TestCancelWritesCheckpoint(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(50)
	cfg.Train.CheckpointEvery = 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	res, _, err := runRecords(t, ctx, cfg, dir, OnDevice(gotchtest.Device(t)), OnRecord(func(r Record) {
		if r.Step == 3 {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) || res == nil || res.Step != 3 {
		t.Fatalf("got %+v, %v; want a stop after step 3 with context.Canceled", res, err)
	}
	m, err := hookedmodel.Load(context.Background(), res.Model)
	if err != nil {
		t.Fatalf("the checkpoint's model does not load: %v", err)
	}
	m.Free()

	// Cancelled before the first step: the initial weights are saved.
	res, _, err = runRecords(t, ctx, cfg, t.TempDir())
	if !errors.Is(err, context.Canceled) || res.Step != 0 || res.Checkpoint == "" {
		t.Fatalf("a run cancelled from the start: %+v, %v", res, err)
	}
}

func TestResumeRefusesAnotherRun(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(2)
	dir := t.TempDir()
	if _, _, err := runRecords(t, context.Background(), cfg, dir); err != nil {
		t.Fatal(err)
	}
	cfg.Train.LR *= 2
	if _, _, err := runRecords(t, context.Background(), cfg, dir); err == nil {
		t.Fatal("resuming with another learning rate succeeded")
	}
	cfg.Train.LR /= 2
	cfg.Train.EvalEvery = 1 // how often to evaluate is not part of the trajectory
	if res, _, err := runRecords(t, context.Background(), cfg, dir); err != nil || !res.Done {
		t.Fatalf("resuming a finished run with another eval_every: %+v, %v", res, err)
	}
}

func TestHeadScores(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(4)
	calls := 0
	score := func(_ context.Context, m *hookedmodel.HookedTransformer) ([][]float64, error) {
		calls++
		if m.Parameters()[0].Tensor.RequiresGrad() {
			return nil, errors.New("the weights record gradients during evaluation")
		}
		return [][]float64{{1, math.NaN(), 0.5, 2}}, nil
	}
	dir := t.TempDir()
	res, _, err := runRecords(t, context.Background(), cfg, dir, HeadScore("fake", score))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 { // at steps 0 and 4
		t.Errorf("the score ran %d times, want 2", calls)
	}
	b, _ := os.ReadFile(filepath.Join(dir, metricsFile))
	if !bytes.Contains(b, []byte(`"head_scores":{"fake":[[1,null,0.5,2]]}`)) {
		t.Errorf("metrics.jsonl lacks the scores:\n%s", b)
	}
	if got := res.Eval.HeadScores["fake"][0][3]; got != 2 {
		t.Errorf("result's score %g, want 2", got)
	}

	failing := func(context.Context, *hookedmodel.HookedTransformer) ([][]float64, error) {
		return nil, errors.New("boom")
	}
	if _, _, err := runRecords(t, context.Background(), cfg, t.TempDir(), HeadScore("bad", failing)); err == nil || !strings.Contains(err.Error(), "head score bad: boom") {
		t.Errorf("a failing score gave %v", err)
	}
	panicky := func(context.Context, *hookedmodel.HookedTransformer) ([][]float64, error) { panic("oops") }
	if _, _, err := runRecords(t, context.Background(), cfg, t.TempDir(), HeadScore("p", panicky)); err == nil || !strings.Contains(err.Error(), "head score p: panic: oops") {
		t.Errorf("a panicking score gave %v", err)
	}
}

func TestICLScore(t *testing.T) {
	byPos := make([]float64, 511) // 512 tokens
	for i := range byPos {
		byPos[i] = float64(i + 1) // the loss of token i+1 is i+1
	}
	if got := iclScore(byPos); got != 500-50 {
		t.Errorf("iclScore = %g, want 450 (token 500 minus token 50)", got)
	}
	if got := iclScore([]float64{1}); !math.IsNaN(got) {
		t.Errorf("iclScore of two tokens = %g, want NaN", got)
	}
}

// BenchmarkTrainStep times one optimisation step of the toy model of
// benchConfig (forward, backward, clipping, AdamW) and reports tokens/s,
// the median step (median-ns/op) and the process's CPU time per step
// (cpu-ns/op): other programs on the cores disturb these two less than the
// mean. bench/peers/train_step.py is the same in PyTorch.
func BenchmarkTrainStep(b *testing.B) {
	cfg := benchConfig()
	m, err := hookedmodel.New(cfg.Model, hookedmodel.WithSeed(0))
	if err != nil {
		b.Fatal(err)
	}
	data, err := newDataset(&cfg)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := newTrainer(m, cfg, data, parallel{})
	if err != nil {
		m.Free()
		b.Fatal(err)
	}
	defer tr.free()
	ctx := context.Background()
	if _, err := tr.trainStep(ctx, false); err != nil { // untimed
		b.Fatal(err)
	}
	tokens := 0
	var steps []time.Duration
	var start time.Duration
	for b.Loop() {
		if len(steps) == 0 {
			start = cpuTime()
		}
		t0 := time.Now()
		st, err := tr.trainStep(ctx, false)
		if err != nil {
			b.Fatal(err)
		}
		steps = append(steps, time.Since(t0))
		tokens += st.tokens
	}
	slices.Sort(steps)
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(steps[len(steps)/2]), "median-ns/op")
	b.ReportMetric(float64(cpuTime()-start)/float64(len(steps)), "cpu-ns/op")
}

// cpuTime is the process's CPU time, user and system, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchConfig is the toy model of bench/peers/train_step.py: 2 layers,
// d_model 128, 4 heads, d_mlp 512, n_ctx 128, d_vocab 512, batch 8.
func benchConfig() Config {
	m := hookedmodel.DefaultConfig()
	m.NLayers, m.DModel, m.DHead, m.NHeads, m.DMLP = 2, 128, 32, 4, 512
	m.NCtx, m.DVocab, m.ActFn = 128, 512, "gelu_new"
	tc := DefaultTrainConfig()
	tc.Steps, tc.Warmup, tc.Batch = 1<<30, 100, 8
	cfg := Config{Model: m, Train: tc, Data: DataConfig{Kind: "repeated_tokens"}}
	if err := cfg.Init(); err != nil {
		panic(err)
	}
	return cfg
}
