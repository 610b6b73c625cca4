package analysis

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// circuit is the factored matrix of a [n m] and b [m n], given row-major,
// on the test device in dtype; it is freed when the test ends.
func circuit(t testing.TB, a, b []float64, n, m int64, dtype gotch.DType) *hookedmodel.FactoredMatrix {
	t.Helper()
	dev := gotchtest.Device(t)
	ta, err := gotch.FromSlice(a, []int64{n, m}, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Free()
	tb, err := gotch.FromSlice(b, []int64{m, n}, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Free()
	ca, cb := ta.MustTo(dtype), tb.MustTo(dtype)
	defer ca.Free()
	defer cb.Free()
	f, err := hookedmodel.NewFactoredMatrix(ca, cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Free)
	return f
}

// refHits is the reference count in plain Go, on the float64 product of a
// [n m] and b [m n]: row i is a hit when fewer than k entries are larger
// than its own entry (i, i) or equal to it in an earlier column.
func refHits(a, b []float64, n, m, k int) int {
	hits := 0
	row := make([]float64, n)
	for i := range n {
		for j := range n {
			row[j] = 0
			for l := range m {
				row[j] += a[i*m+l] * b[l*n+j]
			}
		}
		rank := 0
		for j, v := range row {
			if v > row[i] || (v == row[i] && j < i) {
				rank++
			}
		}
		if rank < k {
			hits++
		}
	}
	return hits
}

// smallInts are n values drawn from -3..3: their products and sums are
// exact in every dtype, so the reference is exact too and ties are common.
func smallInts(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(r.IntN(7) - 3)
	}
	return v
}

func TestCircuitAccuracyMatchesReference(t *testing.T) {
	gotchtest.CheckLeaks(t)
	const n, m = 300, 6
	r := rand.New(rand.NewPCG(1, 2))
	a, b := smallInts(r, n*m), smallInts(r, m*n)
	for _, dtype := range []gotch.DType{gotch.Float, gotch.Double, gotch.Half} {
		f := circuit(t, a, b, n, m, dtype)
		for _, k := range []int{1, 2, 5, n} {
			want := float64(refHits(a, b, n, m, k)) / n
			for _, block := range []int{1, 7, 128, n, 1000} {
				got, err := CircuitAccuracy(context.Background(), f, TopK(k), BlockRows(block))
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s, k %d, blocks of %d: accuracy %v, want %v", dtype, k, block, got, want)
				}
			}
		}
	}
}

// TestCircuitAccuracyTies checks the tie rule on a hand-made product A·I
// whose rows are A's.
func TestCircuitAccuracyTies(t *testing.T) {
	gotchtest.CheckLeaks(t)
	a := []float64{
		0, 0, 0, 0, 0, // all tied: the first column, its own, wins
		0, 0, 0, 0, 0, // all tied: column 0 wins; its own is second
		0, 1, 1, 0, 0, // columns 1 and 2 tie: 1 wins; its own is second
		0, 0, 0, 1, 1, // columns 3 and 4 tie: 3, its own, wins
		0, 0, 0, 1, 0, // 3 wins; its own ties with 0, 1, 2 and comes fifth
	}
	eye := make([]float64, 25)
	for i := range 5 {
		eye[i*5+i] = 1
	}
	f := circuit(t, a, eye, 5, 5, gotch.Float)
	dense := NewTable([]string{"row", "col"}, 5, 5)
	copy(dense.Data, a)
	for _, tc := range []struct {
		k    int
		want float64
	}{{1, 2.0 / 5}, {2, 4.0 / 5}, {4, 4.0 / 5}, {5, 1}} {
		got, err := CircuitAccuracy(context.Background(), f, TopK(tc.k), BlockRows(2))
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("k %d: accuracy %v, want %v", tc.k, got, tc.want)
		}
	}
	if got, want := DiagonalShare(dense), 2.0/5; got != want {
		t.Errorf("DiagonalShare of the dense product %v, want %v: the two rules differ", got, want)
	}
}

// angleCode is an analytic circuit whose answer is known without forming
// it. Token j has the code (cos θ_j, sin θ_j, cos φ_j, sin φ_j), padded
// with zeros to m dims, with θ_j = 2π(j mod P)/P and φ_j = 2π⌊j/P⌋/Q for
// a period P, a power of two, above the number of groups Q = ⌈n/P⌉. Then
// code(i)·code(j) = cos(θ_i−θ_j) + cos(φ_i−φ_j) is 2 for j = i, at most
// 1 + cos(2π/P) for any other j (3·10⁻⁴ less at n = 50257, far above
// float32 rounding), and that much only for j = i±1 in i's group. B's
// columns are the codes of 0..n-1; row i of A is the code of i, except
// that every seventh row (i ≡ 3) whose next token is in its group holds
// the code of i+1. Those rows, and only those, miss at k = 1, and their
// own column is second or third (tied with i+2), so all hit at k = 3.
func angleCode(n, m int) (a, b []float64, hits int) {
	period := 1
	for period*period < n {
		period *= 2
	}
	groups := (n + period - 1) / period
	code := func(j int) [4]float64 {
		th := 2 * math.Pi * float64(j%period) / float64(period)
		ph := 2 * math.Pi * float64(j/period) / float64(groups)
		return [4]float64{math.Cos(th), math.Sin(th), math.Cos(ph), math.Sin(ph)}
	}
	a, b = make([]float64, n*m), make([]float64, m*n)
	for i := range n {
		src := i
		if i%7 == 3 && i+1 < n && (i+1)%period != 0 {
			src = i + 1
		} else {
			hits++
		}
		for l, v := range code(src) {
			a[i*m+l] = v
		}
		for l, v := range code(i) {
			b[l*n+i] = v
		}
	}
	return a, b, hits
}

// peakGrowth runs fn and reports how far the memory tensors live in rose
// above where it stood: the CUDA allocator's peak on CUDA, else the
// process's peak resident set (VmHWM, restarted through
// /proc/self/clear_refs). ok is false where neither can be read.
func peakGrowth(dev gotch.Device, fn func()) (bytes int64, ok bool) {
	if dev.Type == gotch.CUDAType {
		before, err := gotch.CUDAMemory(dev.Index)
		if err != nil || gotch.CUDAResetPeak(dev.Index) != nil {
			return 0, false
		}
		fn()
		after, err := gotch.CUDAMemory(dev.Index)
		return after.PeakAllocated - before.Allocated, err == nil
	}
	if dev.Type != gotch.CPUType {
		fn()
		return 0, false
	}
	kb := func(field string) int64 {
		s, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return -1
		}
		m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(s)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return v << 10
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		fn()
		return 0, false
	}
	before := kb("VmRSS")
	fn()
	after := kb("VmHWM")
	return after - before, before >= 0 && after >= 0
}

// TestCircuitAccuracyBlocked runs a circuit too large to form comfortably
// in ragged blocks, on the analytic construction, and checks that memory
// grows with a block, not with the dense product: a run in one block of
// every row shows that the measurement sees the dense product.
func TestCircuitAccuracyBlocked(t *testing.T) {
	gotchtest.CheckLeaks(t)
	const n, m, block = 8000, 16, 512 // 16 blocks, the last of 320 rows
	a, b, hits := angleCode(n, m)
	f := circuit(t, a, b, n, m, gotch.Float)
	dense, blockBytes := int64(n*n*4), int64(block*n*4)
	for _, tc := range []struct {
		k, block int
		want     float64
	}{
		{1, block, float64(hits) / n},
		{3, block, 1},
		{1, n, float64(hits) / n},
	} {
		var got float64
		var err error
		grew, ok := peakGrowth(gotchtest.Device(t), func() {
			got, err = CircuitAccuracy(context.Background(), f, BlockRows(tc.block), TopK(tc.k))
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("k %d, blocks of %d: accuracy %v, want %v", tc.k, tc.block, got, tc.want)
		}
		t.Logf("k %d, blocks of %d: memory grew by %.1f MB (measured: %v; a block is %d MB, the dense product %d MB)",
			tc.k, tc.block, float64(grew)/(1<<20), ok, blockBytes>>20, dense>>20)
		switch {
		case !ok:
		case tc.block < n && grew > dense/2:
			t.Errorf("k %d, blocks of %d: memory grew by %d MB, want under half the dense product's %d MB", tc.k, tc.block, grew>>20, dense>>20)
		case tc.block == n && grew < dense*3/4:
			t.Errorf("one block: memory grew by %d MB, far less than the dense product's %d MB: the measurement is broken", grew>>20, dense>>20)
		}
	}
}

// cancelAfter is a context that reports cancellation from its n+1-th
// check on: a cancellation at a known point of the loop.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestCircuitAccuracyCancel(t *testing.T) {
	gotchtest.CheckLeaks(t)
	a, b, _ := angleCode(1000, 4)
	f := circuit(t, a, b, 1000, 4, gotch.Float)
	// One check before the loop, then one per block: 3 checks pass, so the
	// fourth, before the third block, cancels.
	_, err := CircuitAccuracy(&cancelAfter{context.Background(), 3}, f, BlockRows(100))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "rows 200 of 1000 done") {
		t.Errorf("cancelled in the loop: error %v, want context.Canceled after 200 rows", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CircuitAccuracy(ctx, f); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: error %v, want context.Canceled", err)
	}
}

func TestCircuitAccuracyProgress(t *testing.T) {
	gotchtest.CheckLeaks(t)
	a, b, _ := angleCode(300, 4)
	f := circuit(t, a, b, 300, 4, gotch.Float)
	var w bytes.Buffer
	if _, err := CircuitAccuracy(context.Background(), f, BlockRows(100), WithProgress(&w)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.String(), "circuit accuracy") || !strings.Contains(w.String(), "3/3") {
		t.Errorf("progress %q, want a bar of 3 blocks", w.String())
	}
}

func TestCircuitAccuracyErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	sq := circuit(t, make([]float64, 12), make([]float64, 12), 4, 3, gotch.Float)
	dev := gotchtest.Device(t)
	wide := gotch.MustZeros([]int64{4, 5}, gotch.Float, dev)
	defer wide.Free()
	rect, err := sq.Mul(wide) // [4 5]
	if err != nil {
		t.Fatal(err)
	}
	defer rect.Free()
	stack := gotch.MustZeros([]int64{2, 4, 3}, gotch.Float, dev)
	defer stack.Free()
	lead, err := hookedmodel.NewFactoredMatrix(stack, sq.B()) // [2 4 4]
	if err != nil {
		t.Fatal(err)
	}
	defer lead.Free()
	nan := circuit(t, []float64{1, math.NaN(), 0, 1}, []float64{1, 0, 0, 1}, 2, 2, gotch.Float)
	bg := context.Background()
	for _, tc := range []struct {
		name, want string
		f          *hookedmodel.FactoredMatrix
		opts       []Option
	}{
		{"nil", "want a non-empty square matrix [n n], got nil", nil, nil},
		{"not square", "got [4 5]", rect, nil},
		{"leading dims", "got [2 4 4]", lead, nil},
		{"k 0", "top-k 0 is not within [1, 4]", sq, []Option{TopK(0)}},
		{"k past n", "top-k 5 is not within [1, 4]", sq, []Option{TopK(5)}},
		{"block", "blocks of 0 rows", sq, []Option{BlockRows(0)}},
		{"NaN", "factors of [2 2] hold NaN or infinite values", nan, nil},
	} {
		_, err := CircuitAccuracy(bg, tc.f, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestFullOVCircuitOfTheConstruction compares the factored full OV
// circuit with the dense one Circuits forms, and its accuracy with
// DiagonalShare's.
func TestFullOVCircuitOfTheConstruction(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im, err := NewInductionModel(InductionConfig{}, hookedmodel.OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Free()
	full, err := FullOVCircuit(im.Model, im.Induction)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Free()
	ab, err := full.AB()
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Free()
	c, err := Circuits(im.Model, im.PrevToken, im.Induction, 4)
	if err != nil {
		t.Fatal(err)
	}
	if ab.Size(0) != int64(c.OV.Shape[0]) || ab.Size(1) != int64(c.OV.Shape[1]) {
		t.Fatalf("full OV circuit %v, dense %v", ab.Shape(), c.OV.Shape)
	}
	gotchtest.Close(t, "full OV circuit", gotchtest.Values(t, ab), c.OV.Data, 1e-4)
	got, err := CircuitAccuracy(context.Background(), full, BlockRows(10))
	if err != nil {
		t.Fatal(err)
	}
	if want := DiagonalShare(c.OV); got != want || got != 1 {
		t.Errorf("accuracy %v, DiagonalShare %v; want both 1 (the head copies every token; BOS's row is all zero and ties go to column 0)", got, want)
	}
	if _, err := FullOVCircuit(im.Model, HeadID{Layer: 2, Head: 0}); err == nil || !strings.Contains(err.Error(), "head 2.0") {
		t.Errorf("layer 2 of 2: error %v", err)
	}
	if _, err := FullOVCircuit(nil, im.Induction); err == nil || !strings.Contains(err.Error(), "nil model") {
		t.Errorf("nil model: error %v", err)
	}
}

// gpt2Vocab is GPT-2's vocabulary: a full circuit of this size would take
// 10 GB in float32.
const gpt2Vocab = 50257

// BenchmarkFullCircuitAccuracy50k counts a GPT-2-sized circuit, d_head 64
// (the analytic code's four dims padded with zeros), in the default
// blocks, checks the answer and reports how far memory grew: a block of
// 1024 rows is 196 MB, the dense product would be 9.4 GB. It is a
// benchmark rather than a test because it takes tens of seconds on two
// cores (about 2·50257²·64 = 323 GFLOP for the products alone).
func BenchmarkFullCircuitAccuracy50k(b *testing.B) {
	a, bb, hits := angleCode(gpt2Vocab, 64)
	f := circuit(b, a, bb, gpt2Vocab, 64, gotch.Float)
	var got float64
	var err error
	grew, ok := peakGrowth(gotchtest.Device(b), func() {
		for b.Loop() {
			if got, err = CircuitAccuracy(context.Background(), f); err != nil {
				b.Fatal(err)
			}
		}
	})
	if want := float64(hits) / gpt2Vocab; got != want {
		b.Errorf("accuracy %v, want %v", got, want)
	}
	if ok {
		b.ReportMetric(float64(grew)/(1<<20), "MB-grown")
		if grew > 1<<30 {
			b.Errorf("memory grew by %d MB, want under 1 GB", grew>>20)
		}
	}
}
