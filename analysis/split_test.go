package analysis

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
)

// memGroup is size in-process ranks whose SumFloat64 meets the others'
// (each rank a goroutine), as a process group's all-reduce does; the sum
// runs in rank order, as one process would add them.
type memGroup struct {
	rank int
	all  *memRanks
}

type memRanks struct {
	size  int
	mu    sync.Mutex
	vals  [][]float64
	ready *sync.WaitGroup
	done  chan struct{}
}

func newMemGroup(size int) []*memGroup {
	all := &memRanks{size: size, vals: make([][]float64, size), ready: &sync.WaitGroup{}, done: make(chan struct{})}
	all.ready.Add(size)
	var gs []*memGroup
	for r := range size {
		gs = append(gs, &memGroup{r, all})
	}
	return gs
}

func (g *memGroup) Rank() int { return g.rank }
func (g *memGroup) Size() int { return g.all.size }

func (g *memGroup) SumFloat64(_ context.Context, v []float64) error {
	a := g.all
	a.mu.Lock()
	a.vals[g.rank] = append([]float64(nil), v...)
	a.mu.Unlock()
	a.ready.Done()
	if g.rank == 0 {
		a.ready.Wait()
		close(a.done)
	}
	<-a.done
	for i := range v {
		v[i] = 0
		for r := range a.size {
			v[i] += a.vals[r][i]
		}
	}
	return nil
}

// TestSplitSweepsEqualOneProcess: activation patching and the ablation
// table split over 1, 2 and 3 ranks give every rank exactly the result of
// one process.
func TestSplitSweepsEqualOneProcess(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := archModel(t, archCases[0].edit)
	clean, corrupted := randomTokens(t, m, 2, 5, 21), randomTokens(t, m, 2, 5, 22)
	metric := LogitDiff(-1, []int64{3, 4}, []int64{5, 6})
	ctx := context.Background()
	want, err := ActivationPatching(ctx, m, clean, corrupted, metric, HeadOutByPos)
	if err != nil {
		t.Fatal(err)
	}
	wantAbl, err := AblationTable(ctx, m, clean, ResampleAblation, Reference(corrupted), WithSeed(4))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 2, 3} {
		groups := newMemGroup(size)
		ablGroups := newMemGroup(size)
		var wg sync.WaitGroup
		results := make([]*PatchingResult, size)
		abl := make([]*HeadAblation, size)
		errs := make([]error, 2*size)
		for r := range size {
			wg.Add(2)
			go func() {
				defer wg.Done()
				results[r], errs[2*r] = ActivationPatching(ctx, m, clean, corrupted, metric, HeadOutByPos, SplitOver(groups[r]))
			}()
			go func() {
				defer wg.Done()
				abl[r], errs[2*r+1] = AblationTable(ctx, m, clean, ResampleAblation, Reference(corrupted), WithSeed(4), SplitOver(ablGroups[r]))
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for r := range size {
			for i, v := range want.Patched.Data {
				if got := results[r].Patched.Data[i]; got != v {
					t.Fatalf("%d ranks, rank %d: patched[%v] = %v, one process %v", size, r, want.Patched.Index(i), got, v)
				}
			}
			for i, v := range wantAbl.Change.Data {
				if got := abl[r].Change.Data[i]; got != v {
					t.Fatalf("%d ranks, rank %d: ablation change[%d] = %v, one process %v", size, r, i, got, v)
				}
			}
		}
	}
}

func TestSplitOverBadGroup(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := archModel(t, archCases[0].edit)
	tok := randomTokens(t, m, 1, 4, 1)
	g := newMemGroup(2)[1]
	g.rank = 2
	_, err := ActivationPatching(context.Background(), m, tok, tok, LogitDiff(-1, []int64{1}, nil), ResidPre, SplitOver(g))
	if err == nil || !strings.Contains(err.Error(), "rank 2 of 2 ranks") {
		t.Errorf("rank 2 of 2: %v", err)
	}
}
