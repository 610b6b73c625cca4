package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// memGroup is one of size in-process ranks (goroutines) meeting in each
// collective, as a process group's are; sums run in rank order.
type memGroup struct {
	rank int
	all  *memRanks
}

type memRanks struct {
	size    int
	mu      sync.Mutex
	cond    *sync.Cond
	arrived int
	gen     int
	vals    [][][]float64 // [rank][tensor] of the collective in progress
	sum     [][]float64
}

func newMemGroup(size int) []Group {
	all := &memRanks{size: size, vals: make([][][]float64, size)}
	all.cond = sync.NewCond(&all.mu)
	var gs []Group
	for r := range size {
		gs = append(gs, &memGroup{r, all})
	}
	return gs
}

func (g *memGroup) Rank() int { return g.rank }
func (g *memGroup) Size() int { return g.all.size }

// meet deposits vals and returns the sums over the ranks, once every rank
// has deposited.
func (g *memGroup) meet(vals [][]float64) [][]float64 {
	a := g.all
	a.mu.Lock()
	defer a.mu.Unlock()
	gen := a.gen
	a.vals[g.rank] = vals
	if a.arrived++; a.arrived == a.size {
		a.sum = make([][]float64, len(vals))
		for i := range vals {
			a.sum[i] = make([]float64, len(vals[i]))
			for r := range a.size {
				for j, v := range a.vals[r][i] {
					a.sum[i][j] += v
				}
			}
		}
		a.arrived, a.gen = 0, a.gen+1
		a.cond.Broadcast()
	}
	for a.gen == gen {
		a.cond.Wait()
	}
	return a.sum
}

func (g *memGroup) SumTensors(_ context.Context, ts []*gotch.Tensor) error {
	vals := make([][]float64, len(ts))
	for i, t := range ts {
		v, err := gotch.ToSlice[float64](t)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	for i, sum := range g.meet(vals) {
		src, err := gotch.FromSlice(sum, ts[i].Shape(), ts[i].Device())
		if err != nil {
			return err
		}
		err = ts[i].Copy_(src)
		src.Free()
		if err != nil {
			return err
		}
	}
	return nil
}

func (g *memGroup) Barrier(context.Context) error { g.meet(nil); return nil }

// runRanks trains cfg over size in-process ranks into dir; rank 0's
// records and every rank's result and error.
func runRanks(t *testing.T, ctx context.Context, cfg Config, dir string, size int, opts ...Option) ([]*Result, []Record, []error) {
	t.Helper()
	groups := newMemGroup(size)
	res, errs := make([]*Result, size), make([]error, size)
	var recs []Record
	var wg sync.WaitGroup
	for r := range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := append([]Option{DataParallel(groups[r]), OnDevice(gotchtest.Device(t))}, opts...)
			if r == 0 {
				res[r], recs, errs[r] = runRecords(t, ctx, cfg, dir, o...)
			} else {
				res[r], errs[r] = Run(ctx, cfg, dir, append(o, WithProgress(nil))...)
			}
		}()
	}
	wg.Wait()
	return res, recs, errs
}

// weightsOf is the saved model's state dict, as float64 values by name.
func weightsOf(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	m, err := hookedmodel.Load(context.Background(), path, hookedmodel.NoProcessing())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string][]float64{}
	for k, v := range sd {
		out[k] = gotchtest.Values(t, v)
	}
	return out
}

// TestDataParallelEqualsOneProcess: 2 and 4 ranks, each with its share of
// the batch of 4, train the weights one process does with the whole batch,
// and log the same losses, up to float32 round-off; only rank 0 writes.
func TestDataParallelEqualsOneProcess(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(6)
	one := t.TempDir()
	_, want, err := runRecords(t, context.Background(), cfg, one, OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	wantW := weightsOf(t, filepath.Join(one, modelFile))
	for _, size := range []int{2, 4} {
		dir := t.TempDir()
		res, recs, errs := runRanks(t, context.Background(), cfg, dir, size)
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("%d ranks: %v", size, err)
		}
		for r, res := range res {
			if !res.Done || res.Step != 6 || res.Model != filepath.Join(dir, modelFile) {
				t.Errorf("%d ranks, rank %d: %+v", size, r, res)
			}
		}
		if len(recs) != len(want) {
			t.Fatalf("%d ranks: %d records, one process %d", size, len(recs), len(want))
		}
		for i, rec := range recs {
			if rec.Kind != want[i].Kind || rec.Step != want[i].Step || rec.Tokens != want[i].Tokens || math.Abs(rec.Loss-want[i].Loss) > 1e-5*math.Abs(want[i].Loss) {
				t.Errorf("%d ranks: record %d %s step %d tokens %d loss %.7f; one process: %s step %d tokens %d loss %.7f",
					size, i, rec.Kind, rec.Step, rec.Tokens, rec.Loss, want[i].Kind, want[i].Step, want[i].Tokens, want[i].Loss)
			}
		}
		for name, w := range weightsOf(t, filepath.Join(dir, modelFile)) {
			if strings.HasSuffix(name, "attn.b_K") {
				// The key bias adds the same amount to all of a query's
				// scores, which softmax ignores: its gradient is zero but
				// for round-off, which AdamW's normalisation turns into
				// steps of order lr, differently for any other summation
				// order. It changes no output.
				continue
			}
			if e := gotchtest.RelErr(w, wantW[name]); e > 1e-5 {
				t.Errorf("%d ranks: %s differs from one process's by %g (relative)", size, name, e)
			}
		}
	}
}

// TestDataParallelStopsTogether: rank 1 cancelled mid-run stops every rank
// after the same step, rank 0 writes the checkpoint, and the resumed run
// (ranks again) finishes with the weights of an uninterrupted one.
func TestDataParallelStopsTogether(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(8)
	whole := t.TempDir()
	if _, _, errs := runRanks(t, context.Background(), cfg, whole, 2); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := OnRecord(func(r Record) {
		if r.Kind == "train" && r.Step == 3 {
			cancel()
		}
	})
	res, _, errs := runRanks(t, ctx, cfg, dir, 2, stop)
	for r, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("rank %d of a cancelled run: %v", r, err)
		}
	}
	if res[0].Step != res[1].Step || res[0].Done {
		t.Fatalf("ranks stopped at steps %d and %d", res[0].Step, res[1].Step)
	}
	if _, err := os.Stat(stepDir(dir, res[0].Step)); err != nil {
		t.Fatalf("the checkpoint at the stop: %v", err)
	}
	if _, _, errs := runRanks(t, context.Background(), cfg, dir, 2); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	want := weightsOf(t, filepath.Join(whole, modelFile))
	for name, w := range weightsOf(t, filepath.Join(dir, modelFile)) {
		if e := gotchtest.RelErr(w, want[name]); e > 1e-6 {
			t.Errorf("resumed: %s differs from the uninterrupted run's by %g", name, e)
		}
	}
}

func TestDataParallelBadSplit(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(2) // a batch of 4
	_, _, errs := runRanks(t, context.Background(), cfg, t.TempDir(), 3)
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "a batch of 4 rows does not split over 3 ranks") {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}
