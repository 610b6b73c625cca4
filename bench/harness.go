package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"time"

	"github.com/golens/golens/cuda"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/reference"
	"github.com/golens/golens/hookedmodel/train"
)

// Size is a batch × sequence length of the grid.
type Size struct{ Batch, Seq int }

func (s Size) String() string { return fmt.Sprintf("%dx%d", s.Batch, s.Seq) }

// Grid selects rows: every shape × dtype × workload × size. Workloads run
// in the order of Workloads() whatever the order here, so that train_step,
// which changes the weights, comes last.
type Grid struct {
	Shapes    []string
	Workloads []string
	Sizes     []Size
	DTypes    []string
	Device    gotch.Device
	// Model, when set, is measured instead of Shapes × DTypes, under its
	// config's model_name, in its dtype and on its device. The harness
	// does not free it; train_step changes its weights.
	Model *hookedmodel.HookedTransformer
}

type options struct {
	reps, warmup, newTokens int
	progress                io.Writer
	seed                    uint64
}

// Option changes how Run measures.
type Option func(*options)

// Reps sets the timed repetitions per row (default 5; at least 1).
func Reps(n int) Option { return func(o *options) { o.reps = max(n, 1) } }

// Warmup sets the untimed repetitions before them (default 2).
func Warmup(n int) Option { return func(o *options) { o.warmup = max(n, 0) } }

// NewTokens sets how many tokens the generation workloads add (default 16).
func NewTokens(n int) Option { return func(o *options) { o.newTokens = max(n, 1) } }

// WithProgress writes a line per row to w as the rows start; nil, the
// default, writes none.
func WithProgress(w io.Writer) Option { return func(o *options) { o.progress = w } }

// env is one model of the grid and what its checks need.
type env struct {
	m        *hookedmodel.HookedTransformer
	dtype    string
	owned    bool // free the model with the env
	stepper  *train.Stepper
	ref      *reference.Model
	refViews *gotch.Scope       // the state dict ref borrows
	refRuns  map[string]refActs // reference runs without edits, by input
}

func (e *env) free() {
	e.weightsChanged()
	if e.stepper != nil {
		e.stepper.Free()
		e.m.SetRequiresGrad(false)
	}
	if e.owned {
		e.m.Free()
	}
}

// Run measures every row of g and hands each to emit as it is done. A row
// that fails is an ERROR row, not an error: Run returns an error only for
// a bad grid, a cancelled context or an error from emit.
func Run(ctx context.Context, g Grid, emit func(Row) error, opts ...Option) error {
	o := options{reps: 5, warmup: 2, newTokens: 16, seed: 1}
	for _, f := range opts {
		f(&o)
	}
	var ws []workload
	for _, name := range g.Workloads {
		w, err := workloadByName(name)
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	order := Workloads()
	sort.SliceStable(ws, func(i, j int) bool { return slices.Index(order, ws[i].name) < slices.Index(order, ws[j].name) })
	if m := g.Model; m != nil {
		g.Device = m.Device()
		return runModel(ctx, m.Cfg.ModelName, m.Cfg.DType, func() (*env, error) { return &env{m: m, dtype: m.Cfg.DType}, nil }, g, ws, emit, &o)
	}
	for _, name := range g.Shapes {
		sh, err := ShapeByName(name)
		if err != nil {
			return err
		}
		for _, dt := range g.DTypes {
			d, err := gotch.ParseDType(dt)
			if err != nil {
				return err
			}
			newEnv := func() (*env, error) {
				m, err := hookedmodel.New(sh.Config, hookedmodel.OnDevice(g.Device), hookedmodel.WithDType(d), hookedmodel.WithSeed(o.seed))
				return &env{m: m, dtype: dt, owned: true}, err
			}
			if err := runModel(ctx, sh.Name, dt, newEnv, g, ws, emit, &o); err != nil {
				return err
			}
		}
	}
	return nil
}

// runModel runs the rows of one model, named shape: it times every row,
// then checks each against the float64 reference. A check touches and
// frees memory after the model's weights (a float64 copy of them, 12 GB for
// llama-1b, before the reference borrowed them), and on the VMs here a
// process that did so ran its CPU passes 8-15% slower afterwards (the same
// with the memory mapped and unmapped by hand, not with it made before the
// weights, as the PyTorch peer's reference is).
func runModel(ctx context.Context, shape, dtype string, newEnv func() (*env, error), g Grid, ws []workload, emit func(Row) error, o *options) error {
	e, err := newEnv()
	if err == nil {
		defer e.free()
	}
	type cell struct {
		w   workload
		row Row
	}
	var cells []cell
	for _, w := range ws {
		for _, size := range g.Sizes {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if o.progress != nil {
				fmt.Fprintf(o.progress, "bench: golens %s %s %s %s on %s\n", shape, w.name, size, dtype, g.Device)
			}
			row := newRow(shape, w, size, dtype, g.Device, o)
			if err != nil {
				row.fail(fmt.Errorf("model: %w", err))
			} else {
				timeRow(ctx, e, w, size, &row, o)
			}
			cells = append(cells, cell{w, row})
		}
	}
	if err == nil && o.progress != nil {
		fmt.Fprintf(o.progress, "bench: checking golens %s %s against the float64 reference\n", shape, dtype)
	}
	for _, c := range cells {
		if c.row.Status == OK {
			checkRow(ctx, e, c.w, &c.row, o)
		}
		if err := emit(c.row); err != nil {
			return err
		}
	}
	return nil
}

func newRow(shape string, w workload, size Size, dtype string, dev gotch.Device, o *options) Row {
	r := Row{
		Impl: "golens", Workload: w.name, Shape: shape, Batch: size.Batch, Seq: size.Seq, DType: dtype,
		Device: dev.String(), Reps: o.reps, Warmup: o.warmup, ThroughputUnit: w.unit,
		Torch: gotch.TorchVersion(), Threads: gotch.NumThreads(), Machine: machine(), Time: now(),
	}
	if dev.Type == gotch.CUDAType {
		if p, err := cuda.Properties(dev.Index); err == nil {
			r.GPU = p.Name
		}
	}
	return r
}

func (r *Row) fail(err error) { r.Status, r.Error = Error, err.Error() }

// measure times the workload on the row's input, then checks it on the
// small input; it fills row in.
func measure(ctx context.Context, e *env, w workload, size Size, row *Row, o *options) {
	timeRow(ctx, e, w, size, row, o)
	if row.Status == OK {
		checkRow(ctx, e, w, row, o)
	}
}

// timeRow times the workload on the row's input: Status OK and the timings,
// or an error.
func timeRow(ctx context.Context, e *env, w workload, size Size, row *Row, o *options) {
	in, err := newInputs(e.m, size.Batch, size.Seq, o.newTokens, o.seed+1)
	if err != nil {
		row.fail(err)
		return
	}
	defer in.free()
	row.FLOPs = w.flops(e.m.Cfg, in)
	times, peak, err := timeReps(ctx, e, w, in, o)
	if err != nil {
		row.fail(err)
		return
	}
	med, fastest := Median(times), slices.Min(times)
	row.Status = OK
	row.MedianMS, row.MinMS = ptr(med*1e3), ptr(fastest*1e3)
	row.Throughput = ptr(w.items(e.m.Cfg, in) / med)
	row.TFLOPs = ptr(row.FLOPs / med / 1e12)
	row.PeakMemMB = ptr(peak)
}

// checkRow checks a timed row's workload on the small input against the
// reference; a row that fails it keeps no timings, as only a correct
// workload's speed means anything.
func checkRow(ctx context.Context, e *env, w workload, row *Row, o *options) {
	small, err := newInputs(e.m, checkBatch, checkSeq, checkNewTokens, o.seed)
	if err != nil {
		row.fail(err)
	} else {
		defer small.free()
		var v verdict
		if v, err = check(ctx, e, w, small); err != nil {
			row.fail(fmt.Errorf("check: %w", err))
		} else {
			row.MaxRelErr = ptr(v.relErr)
			if v.wrong != "" {
				row.Status, row.Error = Wrong, v.wrong
			}
		}
	}
	if row.Status != OK {
		row.MedianMS, row.MinMS, row.Throughput, row.TFLOPs, row.PeakMemMB = nil, nil, nil, nil, nil
	}
	// A reference pass reads every weight as float64 and drops it (10 GB
	// in all for gemma2-2b): give the garbage back before the next model is
	// made.
	runtime.GC()
	debug.FreeOSMemory()
}

// check runs w once on the small input and compares with the reference of
// the weights as they were before it ran.
func check(ctx context.Context, e *env, w workload, small *inputs) (v verdict, err error) {
	plain, err := e.refForward(small.rows, nil)
	if err != nil {
		return v, err
	}
	err = w.run(ctx, e, small, func(r result) error {
		v, err = w.check(e, small, r, plain)
		return err
	})
	return v, err
}

// timeReps runs o.warmup untimed and o.reps timed repetitions and returns
// their wall times in seconds (waiting for the device after each) and the
// peak memory in MiB over them: the device allocator's on CUDA, the
// process's resident memory elsewhere.
func timeReps(ctx context.Context, e *env, w workload, in *inputs, o *options) (times []float64, peakMB float64, err error) {
	dev := e.m.Device()
	onCUDA := dev.Type == gotch.CUDAType
	sync := func() error {
		if onCUDA {
			return cuda.Synchronize(dev.Index)
		}
		return nil
	}
	if onCUDA {
		err = cuda.ResetPeak(dev.Index)
	} else {
		resetPeakRSS()
	}
	if err != nil {
		return nil, 0, err
	}
	for i := range o.warmup + o.reps {
		start := time.Now()
		if err := w.run(ctx, e, in, nil); err != nil {
			return nil, 0, err
		}
		if err := sync(); err != nil {
			return nil, 0, err
		}
		if i >= o.warmup {
			times = append(times, time.Since(start).Seconds())
		}
	}
	if !onCUDA {
		return times, peakRSSMB(), nil
	}
	mem, err := cuda.Memory(dev.Index)
	return times, float64(mem.PeakAllocated) / (1 << 20), err
}

// Median is the median of v (v itself is left unsorted): the statistic the
// harness reports, and bench/floor's side-by-side benchmark too.
func Median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// newInputs draws [batch seq] clean and corrupted tokens from seed.
func newInputs(m *hookedmodel.HookedTransformer, batch, seq, newTokens int, seed uint64) (*inputs, error) {
	if batch < 1 || seq < 1 {
		return nil, fmt.Errorf("batch %d x seq %d: both must be at least 1", batch, seq)
	}
	if seq > m.Cfg.NCtx {
		return nil, fmt.Errorf("seq %d is longer than the model's context (n_ctx %d)", seq, m.Cfg.NCtx)
	}
	in := &inputs{batch: batch, seq: seq, newTokens: newTokens}
	gen, err := gotch.NewGenerator(seed)
	if err != nil {
		return nil, err
	}
	defer gen.Free()
	err = gotch.Try(func() {
		shape := []int64{int64(batch), int64(seq)}
		in.tokens = gotch.MustRandint(0, int64(m.Cfg.DVocab), shape, gen, m.Device())
		in.corrupted = gotch.MustRandint(0, int64(m.Cfg.DVocab), shape, gen, m.Device())
	})
	if err == nil {
		in.rows, err = rowsOf(in.tokens)
	}
	if err == nil {
		in.corruptedRows, err = rowsOf(in.corrupted)
	}
	if err != nil {
		in.free()
		return nil, fmt.Errorf("inputs: %w", err)
	}
	return in, nil
}

func (in *inputs) free() {
	in.tokens.Free()
	in.corrupted.Free()
}

func rowsOf(t *gotch.Tensor) ([][]int64, error) {
	flat, err := gotch.ToSlice[int64](t)
	if err != nil {
		return nil, err
	}
	n := int(t.Size(1))
	rows := make([][]int64, 0, len(flat)/n)
	for i := 0; i < len(flat); i += n {
		rows = append(rows, flat[i:i+n])
	}
	return rows, nil
}
