package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/safefile"
)

// HeadScoreFunc scores every attention head of a model [layer][head], such
// as analysis's induction score.
type HeadScoreFunc func(ctx context.Context, m *hookedmodel.HookedTransformer) ([][]float64, error)

type headScore struct {
	name string
	fn   HeadScoreFunc
}

// score runs the function, turning a panic into its error.
func (hs headScore) score(ctx context.Context, m *hookedmodel.HookedTransformer) (v [][]float64, err error) {
	if perr := gotch.Try(func() { v, err = hs.fn(ctx, m) }); perr != nil {
		return nil, perr
	}
	return v, err
}

// Option configures Run.
type Option func(*options)

type options struct {
	device      gotch.Device
	blasThreads int
	progress    io.Writer
	scores      []headScore
	data        Dataset
	onRecord    []func(Record)
	force       bool
	group       Group
}

// Force lets Run write into a non-empty folder that holds no run of this
// config (by default an error, so a model directory or another run is never
// overwritten).
func Force() Option { return func(o *options) { o.force = true } }

// BLASThreads sets OpenBLAS's thread count for the run (default 1; 0
// leaves it), and restores it after. The small models trained here spend
// their time in matmuls too small to share: models/induction-2l trained at
// 104–110 k tokens/s on one OpenBLAS thread against 81–93 k on two (2
// vCPUs, OpenBLAS 0.3.21). The setting is process-wide: other work in the
// process runs with it meanwhile. Other BLAS libraries are left alone.
func BLASThreads(n int) Option { return func(o *options) { o.blasThreads = n } }

// OnDevice trains on dev (default the CPU).
func OnDevice(dev gotch.Device) Option { return func(o *options) { o.device = dev } }

// WithProgress draws the progress bar (step, loss, tokens/s) on w (default
// os.Stderr); nil draws none.
func WithProgress(w io.Writer) Option { return func(o *options) { o.progress = w } }

// HeadScore adds a per-head score to every evaluation, under name.
func HeadScore(name string, fn HeadScoreFunc) Option {
	return func(o *options) { o.scores = append(o.scores, headScore{name, fn}) }
}

// WithDataset trains on d instead of the dataset the config's "data"
// describes; "data" is then still checked and recorded, not read.
func WithDataset(d Dataset) Option { return func(o *options) { o.data = d } }

// OnRecord calls fn with every record as it is written to metrics.jsonl,
// on the training goroutine, after the functions of earlier OnRecords.
func OnRecord(fn func(Record)) Option {
	return func(o *options) { o.onRecord = append(o.onRecord, fn) }
}

// Record is one line of metrics.jsonl: the training loss of a logged step
// ("train") or an evaluation ("eval").
type Record struct {
	Kind         string                 `json:"kind"`
	Step         int                    `json:"step"`                   // steps done; a train record is about the last of them
	Tokens       int64                  `json:"tokens"`                 // training tokens seen
	Loss         float64                `json:"loss"`                   // train: the step's batch; eval: the held-out mean
	LR           float64                `json:"lr,omitempty"`           // train: the step's learning rate
	GradNorm     float64                `json:"grad_norm,omitempty"`    // train: the global gradient norm before clipping
	TokensPerSec float64                `json:"tokens_per_s,omitempty"` // train: over the steps since the previous train record
	HeadScores   map[string][][]float64 `json:"head_scores,omitempty"`  // eval: [layer][head] per score, NaN written as null
	// ICL is the in-context learning score of Olsson et al. (2022): the
	// loss at token 500/512 of the context minus that at token 50/512
	// (tokens 500 and 50 of 512); nil when the rows are too short. On
	// repeated tokens it is the mean loss on a repeat minus that on the
	// first copy (RepeatedTokens.ICLRows).
	ICL *float64 `json:"icl_score,omitempty"`
	// LossByPos[i] is the held-out loss of predicting token i+1 [seq-1].
	LossByPos []float64 `json:"-"`
}

// Result says where a run stopped.
type Result struct {
	Step       int    // steps done
	Done       bool   // the run reached its last step
	Model      string // the final model file when Done, else the last checkpoint's
	Checkpoint string // the last checkpoint folder
	Eval       *Record
}

// Run trains the model cfg describes, writing into outDir:
//
//	config.json                  the run's config, defaults filled in
//	metrics.jsonl                one Record per logged step and per evaluation
//	checkpoints/step-NNNNNNNN/   model.safetensors and optimizer.safetensors
//	model.safetensors            the final model (hookedmodel.Load reads it)
//
// When outDir already holds checkpoints of the same run, Run resumes from
// the latest one, exactly where it stopped, and drops the metrics written
// after it; a finished run is returned as it is. A non-empty outDir that
// holds no run of this config is an error unless Force. While Run works,
// outDir is locked: a second Run on it, in this process or another, fails
// at once naming the first. When ctx is done Run finishes the current step
// (with its evaluation and checkpoint, when due), writes a checkpoint and
// returns the result with ctx's error.
func Run(ctx context.Context, cfg Config, outDir string, opts ...Option) (*Result, error) {
	o := options{device: gotch.CPU, progress: os.Stderr, blasThreads: 1}
	for _, f := range opts {
		f(&o)
	}
	if before := gotch.BLASThreads(); o.blasThreads > 0 && before > 0 && gotch.SetBLASThreads(o.blasThreads) {
		defer gotch.SetBLASThreads(before)
	}
	// One OS thread with gotch's intra-op count for the whole run: libtorch
	// keeps the count per OS thread, and ops that Go ran on threads with
	// another count summed in another order, so two runs of one config
	// drifted apart by an ulp within 250 steps. The shim now gives every
	// thread the count, yet without the lock two runs still differed at
	// step 40 (TestSameLossCurveOverHundredsOfSteps): some other per-thread
	// state matters too, not yet found.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The count is the one this thread has (the caller's choice, or
	// libtorch's default), now given to every thread the run's ops meet.
	if err := gotch.SetNumThreads(gotch.NumThreads()); err != nil {
		return nil, err
	}
	if err := cfg.Init(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dp, err := newParallel(o.group)
	if err != nil {
		return nil, err
	}
	if dp.lead() {
		release, err := claim(outDir, cfg, o.force)
		if err != nil {
			return nil, err
		}
		defer release()
	} else {
		o.progress = nil // rank 0 shows the run
	}
	if err := dp.barrier(ctx); err != nil { // the others read what rank 0 claimed
		return nil, err
	}
	data := o.data
	if data == nil {
		if data, err = newDataset(&cfg); err != nil {
			return nil, err
		}
	}
	tr, err := start(ctx, cfg, outDir, data, o.device, dp)
	if err != nil {
		return nil, err
	}
	defer tr.free()
	r := &run{tr: tr, o: o, out: outDir}
	if dp.lead() {
		if err := r.openMetrics(); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		defer r.metrics.Close()
	}
	return r.loop(ctx)
}

// start writes config.json and makes the run's trainer: from the latest
// checkpoint in out, or a new model seeded by train.seed.
func start(ctx context.Context, cfg Config, out string, data Dataset, dev gotch.Device, dp parallel) (*trainer, error) {
	tr, err := newOrResumed(ctx, cfg, out, data, dev, dp)
	if err != nil {
		return nil, err
	}
	if tr.step > cfg.Train.Steps {
		tr.free()
		return nil, fmt.Errorf("%s holds a checkpoint at step %d, past the run's %d steps: ask for at least %d steps, or use a new out folder", out, tr.step, cfg.Train.Steps, tr.step)
	}
	if !dp.lead() {
		return tr, nil
	}
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err == nil {
		err = safefile.Write(filepath.Join(out, configFile), 0o644, func(w io.Writer) error {
			_, err := w.Write(append(js, '\n'))
			return err
		})
	}
	if err != nil {
		tr.free()
		return nil, err
	}
	return tr, nil
}

func newOrResumed(ctx context.Context, cfg Config, out string, data Dataset, dev gotch.Device, dp parallel) (*trainer, error) {
	ck, err := latestCheckpoint(out)
	if err != nil {
		return nil, err
	}
	if ck != "" {
		return resume(ctx, ck, cfg, data, dev, dp)
	}
	m, err := hookedmodel.New(cfg.Model, hookedmodel.OnDevice(dev), hookedmodel.WithSeed(cfg.Train.Seed))
	if err != nil {
		return nil, err
	}
	tr, err := newTrainer(m, cfg, data, dp)
	if err != nil {
		m.Free()
		return nil, err
	}
	return tr, nil
}

// run is Run's loop state.
type run struct {
	tr      *trainer
	o       options
	out     string
	metrics *os.File
	bar     *bar
	res     Result
}

// loop trains up to the last step or until ctx is done, evaluating,
// logging and checkpointing as the config says.
func (r *run) loop(ctx context.Context) (*Result, error) {
	tc := &r.tr.cfg.Train
	r.bar = newBar(r.o.progress, tc.Steps, r.tr.step)
	defer r.bar.close()
	// A step, once begun, runs to its end with its evaluation and
	// checkpoint: cancellation is seen between steps.
	quiet := context.WithoutCancel(ctx)
	if r.tr.step == tc.Steps { // a finished run, resumed: nothing to do
		return r.finish()
	}
	if r.tr.step == 0 {
		if err := r.eval(quiet); err != nil {
			return nil, err
		}
	}
	lastCheckpoint := time.Now()
	var window throughput
	// One process stops before a step once ctx is done; data-parallel
	// ranks agree in each step's all-reduce and stop together after it.
	alone := r.tr.dp.size() == 1
	stopped := false
	for r.tr.step < tc.Steps && !stopped && !(alone && ctx.Err() != nil) {
		t0 := time.Now()
		st, err := r.tr.trainStep(quiet, ctx.Err() != nil)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", r.tr.step, err)
		}
		stopped = st.stop
		window.add(st.tokens, time.Since(t0))
		r.bar.update(r.tr.step, st.loss, window.rate())
		step := r.tr.step
		if step%tc.LogEvery == 0 || step == tc.Steps {
			rec := Record{Kind: "train", Step: step, Tokens: r.tr.tokens, Loss: st.loss, LR: st.lr, GradNorm: st.gradNorm, TokensPerSec: window.rate()}
			if err := r.write(rec); err != nil {
				return nil, err
			}
			window = throughput{}
		}
		if (tc.EvalEvery > 0 && step%tc.EvalEvery == 0) || step == tc.Steps {
			if err := r.eval(quiet); err != nil {
				return nil, err
			}
		}
		byStep := tc.CheckpointEvery > 0 && step%tc.CheckpointEvery == 0
		byTime := tc.CheckpointMinutes > 0 && time.Since(lastCheckpoint).Minutes() >= tc.CheckpointMinutes
		if (byStep || byTime) && step < tc.Steps {
			if err := r.checkpoint(); err != nil {
				return nil, err
			}
			lastCheckpoint = time.Now()
		}
	}
	if r.res.Checkpoint != stepDir(r.out, r.tr.step) {
		if err := r.checkpoint(); err != nil {
			return nil, err
		}
	}
	if r.tr.step == tc.Steps {
		final := filepath.Join(r.out, modelFile)
		if r.tr.dp.lead() {
			if err := r.tr.m.Save(final); err != nil {
				return nil, err
			}
		}
		return r.finish()
	}
	r.res.Step, r.res.Model = r.tr.step, filepath.Join(r.res.Checkpoint, modelFile)
	if ctx.Err() == nil {
		return &r.res, fmt.Errorf("stopped at step %d: another data-parallel rank was cancelled", r.tr.step)
	}
	return &r.res, ctx.Err()
}

// finish is the result of a run at its last step, saving the final model
// if it is missing (a run stopped between its last checkpoint and it).
func (r *run) finish() (*Result, error) {
	final := filepath.Join(r.out, modelFile)
	if _, err := os.Stat(final); errors.Is(err, fs.ErrNotExist) && r.tr.dp.lead() {
		if err := r.tr.m.Save(final); err != nil {
			return nil, err
		}
	}
	r.res.Step, r.res.Done, r.res.Model = r.tr.step, true, final
	r.res.Checkpoint = stepDir(r.out, r.tr.step)
	return &r.res, nil
}

// checkpoint writes one (rank 0 of a data-parallel run: the others' state
// is the same).
func (r *run) checkpoint() error {
	if !r.tr.dp.lead() {
		r.res.Checkpoint = stepDir(r.out, r.tr.step)
		return nil
	}
	dir, err := r.tr.save(r.out)
	r.res.Checkpoint = dir
	return err
}

// eval evaluates the model (rank 0 of a data-parallel run: the others'
// weights are the same).
func (r *run) eval(ctx context.Context) error {
	if !r.tr.dp.lead() {
		return nil
	}
	rec, err := r.tr.evaluate(ctx, r.o.scores)
	if err != nil {
		return fmt.Errorf("evaluation at step %d: %w", r.tr.step, err)
	}
	r.res.Eval = &rec
	return r.write(rec)
}

// throughput counts the tokens and the time of the steps since the last
// train record; evaluations and checkpoints do not count.
type throughput struct {
	tokens int
	time   time.Duration
}

func (w *throughput) add(tokens int, d time.Duration) { w.tokens, w.time = w.tokens+tokens, w.time+d }

func (w *throughput) rate() float64 { return float64(w.tokens) / w.time.Seconds() }
