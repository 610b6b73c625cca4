//go:build cgo

package gotch_test

// Numeric tests of the ops in ops.txt: each result is checked, with its
// dtype and shape, against hand-computed constants or a float64 reference
// written in plain Go (helpers_test.go). Linear algebra is in
// linalg_test.go, autograd in autograd_test.go.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// ---- creation

func TestCreation(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	d := e.dev
	cases := []struct {
		name  string
		make  func() (*gotch.Tensor, error)
		dtype gotch.DType
		shape []int64
		want  []float64
	}{
		{"Zeros", func() (*gotch.Tensor, error) { return gotch.Zeros([]int64{2, 3}, gotch.Float, d) }, gotch.Float, []int64{2, 3}, make([]float64, 6)},
		{"Zeros/empty", func() (*gotch.Tensor, error) { return gotch.Zeros([]int64{0, 3}, gotch.Float, d) }, gotch.Float, []int64{0, 3}, []float64{}},
		{"Ones/int64", func() (*gotch.Tensor, error) { return gotch.Ones([]int64{4}, gotch.Int64, d) }, gotch.Int64, []int64{4}, []float64{1, 1, 1, 1}},
		{"Full", func() (*gotch.Tensor, error) { return gotch.Full([]int64{2, 2}, 2.5, gotch.Float, d) }, gotch.Float, []int64{2, 2}, []float64{2.5, 2.5, 2.5, 2.5}},
		{"Full/int32", func() (*gotch.Tensor, error) { return gotch.Full([]int64{3}, 7, gotch.Int32, d) }, gotch.Int32, []int64{3}, []float64{7, 7, 7}},
		{"Full/scalar", func() (*gotch.Tensor, error) { return gotch.Full(nil, -3, gotch.Float, d) }, gotch.Float, []int64{}, []float64{-3}},
		{"Arange/int64", func() (*gotch.Tensor, error) { return gotch.Arange(0, 5, 1, gotch.Int64, d) }, gotch.Int64, []int64{5}, []float64{0, 1, 2, 3, 4}},
		{"Arange/fraction", func() (*gotch.Tensor, error) { return gotch.Arange(0, 1, 0.25, gotch.Float, d) }, gotch.Float, []int64{4}, []float64{0, 0.25, 0.5, 0.75}},
		{"Arange/down", func() (*gotch.Tensor, error) { return gotch.Arange(5, 0, -2, gotch.Float, d) }, gotch.Float, []int64{3}, []float64{5, 3, 1}},
		{"Eye", func() (*gotch.Tensor, error) { return gotch.Eye(3, gotch.Float, d) }, gotch.Float, []int64{3, 3}, []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}},
	}
	for _, c := range cases {
		x, err := c.make()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		e.own(x)
		e.expect(c.name, x, c.dtype, c.shape, c.want)
	}
	if _, err := gotch.Zeros([]int64{-1}, gotch.Float, d); err == nil {
		t.Error("Zeros([-1]): got no error, want one")
	}
}

// ---- random ops

func TestRandomSeeds(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	draws := []struct {
		name  string
		draw  func(g *gotch.Generator, dev gotch.Device) *gotch.Tensor
		dtype gotch.DType
	}{
		{"Rand", func(g *gotch.Generator, dev gotch.Device) *gotch.Tensor {
			return gotch.MustRand([]int64{4, 8}, g, gotch.Float, dev)
		}, gotch.Float},
		{"Randn", func(g *gotch.Generator, dev gotch.Device) *gotch.Tensor {
			return gotch.MustRandn([]int64{4, 8}, g, gotch.Float, dev)
		}, gotch.Float},
		{"Randint", func(g *gotch.Generator, dev gotch.Device) *gotch.Tensor {
			return gotch.MustRandint(0, 1000, []int64{4, 8}, g, dev)
		}, gotch.Int64},
		{"Randperm", func(g *gotch.Generator, dev gotch.Device) *gotch.Tensor {
			return gotch.MustRandperm(32, g, dev)
		}, gotch.Int64},
	}
	for _, c := range draws {
		// a and b share a seed, o has another; a2 is a's second draw.
		ga, gb, go2 := gotch.MustNewGenerator(42), gotch.MustNewGenerator(42), gotch.MustNewGenerator(43)
		a, b, o := e.own(c.draw(ga, e.dev)), e.own(c.draw(gb, e.dev)), e.own(c.draw(go2, e.dev))
		a2 := e.own(c.draw(ga, e.dev))
		gc := gotch.MustNewGenerator(42)
		onCPU := e.own(c.draw(gc, gotch.CPU))
		for _, g := range []*gotch.Generator{ga, gb, go2, gc} {
			g.Free()
		}
		if a.DType() != c.dtype || a.Device() != e.dev {
			t.Errorf("%s: got %s, want dtype %s on %s", c.name, a, c.dtype, e.dev)
		}
		va, vb, vo, va2 := e.vals(a), e.vals(b), e.vals(o), e.vals(a2)
		if !slices.Equal(va, vb) {
			t.Errorf("%s: the same seed gave different numbers: %v and %v", c.name, va[:4], vb[:4])
		}
		if slices.Equal(va, vo) {
			t.Errorf("%s: seeds 42 and 43 gave the same numbers %v", c.name, va[:4])
		}
		if slices.Equal(va, va2) {
			t.Errorf("%s: a generator's second draw repeats its first", c.name)
		}
		if v := e.vals(onCPU); !slices.Equal(va, v) {
			t.Errorf("%s: seed 42 gave %v on %s but %v on cpu", c.name, va[:4], e.dev, v[:4])
		}
	}
}

func TestRandomDistributions(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	g := gotch.MustNewGenerator(7)
	defer g.Free()
	const n = 4096

	u := e.vals(e.own(gotch.MustRand([]int64{n}, g, gotch.Float, e.dev)))
	if lo, hi := slices.Min(u), slices.Max(u); lo < 0 || hi >= 1 {
		t.Errorf("Rand: got values in [%g, %g], want [0, 1)", lo, hi)
	}
	if m := mean(u); math.Abs(m-0.5) > 0.03 {
		t.Errorf("Rand: mean got %.3f, want 0.5 ± 0.03", m)
	}

	z := e.vals(e.own(gotch.MustRandn([]int64{n}, g, gotch.Float, e.dev)))
	if m, s := mean(z), math.Sqrt(variance(z, true)); math.Abs(m) > 0.06 || math.Abs(s-1) > 0.06 {
		t.Errorf("Randn: mean %.3f, std %.3f; want 0 and 1 (± 0.06)", m, s)
	}
	if e.hasFloat64() {
		zd := e.own(gotch.MustRandn([]int64{2, 3}, g, gotch.Double, e.dev))
		if zd.DType() != gotch.Double || !slices.Equal(zd.Shape(), []int64{2, 3}) {
			t.Errorf("Randn(double): got %s, want float64[2 3]", zd)
		}
	}

	ri := e.own(gotch.MustRandint(-3, 4, []int64{1000}, g, e.dev))
	seen := map[int64]int{}
	for _, v := range e.ints(ri) {
		if v < -3 || v >= 4 {
			t.Fatalf("Randint(-3, 4): got %d", v)
		}
		seen[v]++
	}
	if len(seen) != 7 {
		t.Errorf("Randint(-3, 4): 1000 draws hit only %v", seen)
	}

	for _, n := range []int64{1, 10, 100} {
		p := e.own(gotch.MustRandperm(n, g, e.dev))
		v := e.ints(p)
		slices.Sort(v)
		for i := range v {
			if v[i] != int64(i) {
				t.Errorf("Randperm(%d): sorted got %v, want 0..%d", n, v, n-1)
				break
			}
		}
	}
}

func TestMultinomial(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	g := gotch.MustNewGenerator(3)
	defer g.Free()

	oneHot := from(e, []float32{0, 0, 1, 0, 0, 5, 0, 0}, 2, 4) // unnormalised
	s := oneHot.MustMultinomial(6, true, g)
	e.expect("Multinomial(one-hot)", s, gotch.Int64, []int64{2, 6}, []float64{2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1})

	// Without replacement, three draws from three nonzero entries are a
	// permutation of them.
	p := from(e, []float32{1, 2, 0, 3}, 4)
	v := e.ints(p.MustMultinomial(3, false, g))
	slices.Sort(v)
	if !slices.Equal(v, []int64{0, 1, 3}) {
		t.Errorf("Multinomial(no replacement): sorted got %v, want [0 1 3]", v)
	}

	// Frequencies follow the weights.
	w := from(e, []float32{1, 3}, 2)
	counts := [2]int{}
	for _, i := range e.ints(w.MustMultinomial(4000, true, g)) {
		counts[i]++
	}
	if f := float64(counts[1]) / 4000; math.Abs(f-0.75) > 0.04 {
		t.Errorf("Multinomial([1 3]): index 1 drawn %.3f of the time, want 0.75 ± 0.04", f)
	}

	g1, g2 := gotch.MustNewGenerator(11), gotch.MustNewGenerator(11)
	defer g1.Free()
	defer g2.Free()
	q := from(e, []float32{1, 1, 1, 1, 1, 1, 1, 1}, 8)
	a, b := e.ints(q.MustMultinomial(8, true, g1)), e.ints(q.MustMultinomial(8, true, g2))
	if !slices.Equal(a, b) {
		t.Errorf("Multinomial: the same seed gave %v and %v", a, b)
	}
}

// ---- conversion and copies

func TestAliasCloneDetach(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, 2, 3}, 3)

	a := x.MustAlias()
	c := x.MustClone()
	d := x.MustDetach()
	if a.Scope() != e.s || c.Scope() != e.s || d.Scope() != e.s {
		t.Error("Alias/Clone/Detach: a result did not join its operand's scope")
	}
	a.MustFill_(5) // shared storage: x changes
	e.expect("x after Alias.Fill_", x, gotch.Float, []int64{3}, []float64{5, 5, 5})
	e.expect("Clone keeps its own storage", c, gotch.Float, []int64{3}, []float64{1, 2, 3})
	d.MustMulScalar_(2) // Detach shares storage too
	e.expect("x after Detach.MulScalar_", x, gotch.Float, []int64{3}, []float64{10, 10, 10})

	c.MustZero_()
	e.expect("x after Clone.Zero_", x, gotch.Float, []int64{3}, []float64{10, 10, 10})

	// Contiguous lays a transposed view out row-major.
	m := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	ct := m.MustTranspose(0, 1).MustContiguous()
	e.expect("Contiguous(Transpose)", ct, gotch.Float, []int64{3, 2}, []float64{1, 4, 2, 5, 3, 6})
	if _, err := ct.View([]int64{6}); err != nil {
		t.Errorf("View of a Contiguous result: %v", err)
	}
}

func TestTo(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1.7, -1.7, 2.5, 0, 100.25}, 5)

	e.expect("To(int64) truncates", x.MustTo(gotch.Int64), gotch.Int64, []int64{5}, []float64{1, -1, 2, 0, 100})
	e.expect("To(int32)", x.MustTo(gotch.Int32), gotch.Int32, []int64{5}, []float64{1, -1, 2, 0, 100})
	e.expect("To(bool)", x.MustTo(gotch.Bool), gotch.Bool, []int64{5}, []float64{1, 1, 1, 0, 1})
	e.expect("To(uint8) of positives", from(e, []float32{0, 3.9, 255}, 3).MustTo(gotch.Uint8), gotch.Uint8, []int64{3}, []float64{0, 3, 255})
	if e.hasFloat64() {
		dbl := x.MustTo(gotch.Double)
		if dbl.DType() != gotch.Double {
			t.Errorf("To(float64): dtype %s", dbl.DType())
		}
		if got, want := e.vals(dbl), f64([]float32{1.7, -1.7, 2.5, 0, 100.25}); !slices.Equal(got, want) {
			t.Errorf("To(float64): got %v, want exactly %v", got, want)
		}
	}

	// Half and bfloat16 round trips lose at most half a unit in the last
	// place: 2^-11 and 2^-8 relative.
	vals := []float32{1, -2, 0.1, 3.14159265, 1000.5, -0.001, 65504, 1e-3}
	src := from(e, vals, int64(len(vals)))
	for _, c := range []struct {
		dtype gotch.DType
		rel   float64
	}{{gotch.Half, 0x1p-11}, {gotch.BFloat16, 0x1p-8}} {
		low := src.MustTo(c.dtype)
		if low.DType() != c.dtype || !slices.Equal(low.Shape(), src.Shape()) {
			t.Errorf("To(%s): got %s", c.dtype, low)
		}
		back := low.MustTo(gotch.Float)
		for i, v := range e.vals(back) {
			want := float64(vals[i])
			if math.Abs(v-want) > c.rel*math.Abs(want) {
				t.Errorf("To(%s) and back: [%d] got %g, want %g within %g relative", c.dtype, i, v, want, c.rel)
			}
		}
	}
}

func TestToDevice(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, 2, 3, 4}, 2, 2)
	h := x.MustToDevice(gotch.CPU, false)
	if h.Device() != gotch.CPU {
		t.Errorf("ToDevice(cpu): got %s", h)
	}
	back := h.MustToDevice(e.dev, false)
	e.expect("ToDevice round trip", back, gotch.Float, []int64{2, 2}, []float64{1, 2, 3, 4})
	nb := x.MustToDevice(gotch.CPU, true)
	if got := e.vals(nb); !slices.Equal(got, []float64{1, 2, 3, 4}) {
		t.Errorf("ToDevice(cpu, nonBlocking): got %v", got)
	}
}

func TestFromBytesRoundTrip(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	cases := []struct {
		dtype gotch.DType
		bytes []byte // little-endian
		want  []float64
	}{
		// float16: 1 = 0x3c00, -2 = 0xc000, 0.5 = 0x3800, 65504 = 0x7bff
		{gotch.Half, []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b}, []float64{1, -2, 0.5, 65504}},
		// bfloat16: 1 = 0x3f80, -2 = 0xc000, 0.5 = 0x3f00, 3.140625 = 0x4049
		{gotch.BFloat16, []byte{0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 0x49, 0x40}, []float64{1, -2, 0.5, 3.140625}},
		// float32: 1 = 0x3f800000, -0.75 = 0xbf400000
		{gotch.Float, []byte{0, 0, 0x80, 0x3f, 0, 0, 0x40, 0xbf}, []float64{1, -0.75}},
		{gotch.Int32, []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, []float64{1, -1}},
		{gotch.Uint8, []byte{0, 7, 255, 128}, []float64{0, 7, 255, 128}},
		{gotch.Bool, []byte{1, 0, 1, 1}, []float64{1, 0, 1, 1}},
	}
	for _, c := range cases {
		n := int64(len(c.want))
		x, err := gotch.FromBytes(c.bytes, []int64{n}, c.dtype, e.dev)
		if err != nil {
			t.Errorf("FromBytes(%s): %v", c.dtype, err)
			continue
		}
		e.own(x)
		if x.DType() != c.dtype || x.Numel() != n {
			t.Errorf("FromBytes(%s): got %s", c.dtype, x)
		}
		if got := e.vals(x); !slices.Equal(got, c.want) {
			t.Errorf("FromBytes(%s): values got %v, want %v", c.dtype, got, c.want)
		}
		b, err := x.Bytes()
		if err != nil || !slices.Equal(b, c.bytes) {
			t.Errorf("Bytes(%s): got % x, %v; want % x", c.dtype, b, err, c.bytes)
		}
	}
	if _, err := gotch.FromBytes([]byte{1, 2, 3}, []int64{1}, gotch.Half, e.dev); err == nil {
		t.Error("FromBytes(3 bytes of float16): got no error")
	}
}

// TestFromBytesAs checks the conversion on the way in against values
// worked out by hand from the IEEE bit patterns.
func TestFromBytesAs(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	cases := []struct {
		stored, dtype gotch.DType
		bytes         []byte // little-endian, stored
		want          []float64
	}{
		// bfloat16 1, -2, 0.5, 3.140625 widen exactly.
		{gotch.BFloat16, gotch.Float, []byte{0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 0x49, 0x40}, []float64{1, -2, 0.5, 3.140625}},
		// float16 65504 (0x7bff) is 65536 in bfloat16's 8 bits of mantissa.
		{gotch.Half, gotch.BFloat16, []byte{0x00, 0x3c, 0xff, 0x7b}, []float64{1, 65536}},
		// float32 1 + 2^-12 (0x3f800800) rounds to 1 in float16 (ties to even).
		{gotch.Float, gotch.Half, []byte{0x00, 0x08, 0x80, 0x3f}, []float64{1}},
		{gotch.Float, gotch.Double, []byte{0, 0, 0x40, 0xbf}, []float64{-0.75}},
	}
	for _, c := range cases {
		x, err := gotch.FromBytesAs(c.bytes, []int64{int64(len(c.want))}, c.stored, c.dtype, e.dev)
		if err != nil {
			t.Errorf("FromBytesAs(%s -> %s): %v", c.stored, c.dtype, err)
			continue
		}
		e.own(x)
		if x.DType() != c.dtype || x.Device() != e.dev {
			t.Errorf("FromBytesAs(%s -> %s): got %s", c.stored, c.dtype, x)
		}
		if got := e.vals(x); !slices.Equal(got, c.want) {
			t.Errorf("FromBytesAs(%s -> %s): values got %v, want %v", c.stored, c.dtype, got, c.want)
		}
	}
	empty, err := gotch.FromBytesAs(nil, []int64{0, 3}, gotch.BFloat16, gotch.Float, e.dev)
	if err != nil || !slices.Equal(empty.Shape(), []int64{0, 3}) || empty.DType() != gotch.Float {
		t.Errorf("FromBytesAs(empty): %v, %v", empty, err)
	}
	if err == nil {
		e.own(empty)
	}
	if _, err := gotch.FromBytesAs([]byte{1, 2, 3}, []int64{1}, gotch.Half, gotch.Float, e.dev); err == nil || !strings.Contains(err.Error(), "3 bytes") {
		t.Errorf("FromBytesAs(3 bytes of float16): %v", err)
	}
	if _, err := gotch.FromBytesAs(make([]byte, 4), []int64{1}, gotch.Float, gotch.DType(99), e.dev); err == nil || !strings.Contains(err.Error(), "unknown dtype 99") {
		t.Errorf("FromBytesAs(to dtype 99): %v", err)
	}
}

// ---- elementwise

func TestBinaryBroadcast(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	av := []float32{1.5, 2, 3, 0.5, 5, 6} // [2 3], positive for Pow
	bv := []float32{2, 0.5, -1}           // [3], broadcast over rows
	a, b := from(e, av, 2, 3), from(e, bv, 3)
	cases := []struct {
		name string
		op   func(x, y *gotch.Tensor) (*gotch.Tensor, error)
		ref  func(x, y float64) float64
	}{
		{"Add", (*gotch.Tensor).Add, func(x, y float64) float64 { return x + y }},
		{"Sub", (*gotch.Tensor).Sub, func(x, y float64) float64 { return x - y }},
		{"Mul", (*gotch.Tensor).Mul, func(x, y float64) float64 { return x * y }},
		{"Div", (*gotch.Tensor).Div, func(x, y float64) float64 { return x / y }},
		{"Pow", (*gotch.Tensor).Pow, math.Pow},
		{"Maximum", (*gotch.Tensor).Maximum, math.Max},
		{"Minimum", (*gotch.Tensor).Minimum, math.Min},
	}
	for _, c := range cases {
		r, err := c.op(a, b)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		want := make([]float64, 6)
		for i := range want {
			want[i] = c.ref(float64(av[i]), float64(bv[i%3]))
		}
		e.expect(c.name, r, gotch.Float, []int64{2, 3}, want)
	}
	// Broadcasting [2 1] with [3] gives [2 3].
	col := from(e, []float32{10, 20}, 2, 1)
	e.expect("Add([2 1], [3])", col.MustAdd(b), gotch.Float, []int64{2, 3}, []float64{12, 10.5, 9, 22, 20.5, 19})
	// Mixed dtypes promote as in torch: int64 + float32 is float32.
	i := from(e, []int64{1, 2, 3}, 3)
	e.expect("Add(int64, float32)", i.MustAdd(b), gotch.Float, []int64{3}, []float64{3, 2.5, 2})
	e.expect("Div(int64, int64) is true division", i.MustDiv(from(e, []int64{2, 2, 2}, 3)), gotch.Float, []int64{3}, []float64{0.5, 1, 1.5})

	var ge *gotch.Error
	if _, err := a.Add(from(e, []float32{1, 2}, 2)); !errors.As(err, &ge) || ge.Op != "Add" {
		t.Errorf("Add([2 3], [2]): got error %v, want a *gotch.Error from Add", err)
	}
}

func TestScalarOps(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	xv := []float32{1.5, 2, 3, 0.5, 5, 6}
	x := from(e, xv, 2, 3)
	cases := []struct {
		name string
		op   func() (*gotch.Tensor, error)
		ref  func(float64) float64
	}{
		{"AddScalar", func() (*gotch.Tensor, error) { return x.AddScalar(2.5) }, func(v float64) float64 { return v + 2.5 }},
		{"SubScalar", func() (*gotch.Tensor, error) { return x.SubScalar(1) }, func(v float64) float64 { return v - 1 }},
		{"MulScalar", func() (*gotch.Tensor, error) { return x.MulScalar(-3) }, func(v float64) float64 { return -3 * v }},
		{"DivScalar", func() (*gotch.Tensor, error) { return x.DivScalar(4) }, func(v float64) float64 { return v / 4 }},
		{"PowScalar(2)", func() (*gotch.Tensor, error) { return x.PowScalar(2) }, func(v float64) float64 { return v * v }},
		{"PowScalar(0.5)", func() (*gotch.Tensor, error) { return x.PowScalar(0.5) }, math.Sqrt},
		{"PowScalar(-1)", func() (*gotch.Tensor, error) { return x.PowScalar(-1) }, func(v float64) float64 { return 1 / v }},
	}
	for _, c := range cases {
		r, err := c.op()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		e.expect(c.name, r, gotch.Float, []int64{2, 3}, mapf(f64(xv), c.ref))
	}
	// An integral scalar keeps an integer tensor integer; a fractional one
	// or true division makes it float32, as in torch.
	i := from(e, []int64{1, 2, 3}, 3)
	e.expect("int64.AddScalar(2)", i.MustAddScalar(2), gotch.Int64, []int64{3}, []float64{3, 4, 5})
	e.expect("int64.MulScalar(3)", i.MustMulScalar(3), gotch.Int64, []int64{3}, []float64{3, 6, 9})
	e.expect("int64.PowScalar(2)", i.MustPowScalar(2), gotch.Int64, []int64{3}, []float64{1, 4, 9})
	e.expect("int64.MulScalar(0.5)", i.MustMulScalar(0.5), gotch.Float, []int64{3}, []float64{0.5, 1, 1.5})
	e.expect("int64.DivScalar(2)", i.MustDivScalar(2), gotch.Float, []int64{3}, []float64{0.5, 1, 1.5})
}

func TestComparisons(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	a := from(e, []float32{1, 2, 3, 4}, 4)
	b := from(e, []float32{4, 2, 2, 5}, 4)
	p := from(e, []bool{true, true, false, false}, 4)
	q := from(e, []bool{true, false, true, false}, 4)
	cases := []struct {
		name string
		op   func() (*gotch.Tensor, error)
		want []float64
	}{
		{"Eq", func() (*gotch.Tensor, error) { return a.Eq(b) }, bools(0, 1, 0, 0)},
		{"Ne", func() (*gotch.Tensor, error) { return a.Ne(b) }, bools(1, 0, 1, 1)},
		{"Lt", func() (*gotch.Tensor, error) { return a.Lt(b) }, bools(1, 0, 0, 1)},
		{"Le", func() (*gotch.Tensor, error) { return a.Le(b) }, bools(1, 1, 0, 1)},
		{"Gt", func() (*gotch.Tensor, error) { return a.Gt(b) }, bools(0, 0, 1, 0)},
		{"Ge", func() (*gotch.Tensor, error) { return a.Ge(b) }, bools(0, 1, 1, 0)},
		{"EqScalar", func() (*gotch.Tensor, error) { return a.EqScalar(2) }, bools(0, 1, 0, 0)},
		{"GtScalar", func() (*gotch.Tensor, error) { return a.GtScalar(2.5) }, bools(0, 0, 1, 1)},
		{"LtScalar", func() (*gotch.Tensor, error) { return a.LtScalar(2.5) }, bools(1, 1, 0, 0)},
		{"LogicalAnd", func() (*gotch.Tensor, error) { return p.LogicalAnd(q) }, bools(1, 0, 0, 0)},
		{"LogicalOr", func() (*gotch.Tensor, error) { return p.LogicalOr(q) }, bools(1, 1, 1, 0)},
		{"LogicalNot", func() (*gotch.Tensor, error) { return p.LogicalNot() }, bools(0, 0, 1, 1)},
		{"LogicalAnd(float)", func() (*gotch.Tensor, error) { return from(e, []float32{0, 2, 0, -1}, 4).LogicalAnd(a) }, bools(0, 1, 0, 1)},
	}
	for _, c := range cases {
		r, err := c.op()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		e.expect(c.name, r, gotch.Bool, []int64{4}, c.want)
	}
	// Comparing with broadcasting: [2 1] < [3] is [2 3].
	col := from(e, []float32{1.5, 3.5}, 2, 1)
	row := from(e, []float32{1, 2, 3}, 3)
	e.expect("Lt([2 1], [3])", col.MustLt(row), gotch.Bool, []int64{2, 3}, bools(0, 1, 1, 0, 0, 0))
}

func gelu(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func TestUnary(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	anyv := []float32{-3, -2, -0.5, 0, 0.3, 1, 2.5, 4}
	posv := []float32{0.1, 0.5, 1, 2, 4, 9, 16, 100}
	x, pos := from(e, anyv, 2, 4), from(e, posv, 2, 4)
	cases := []struct {
		name string
		in   *gotch.Tensor
		op   func(*gotch.Tensor) (*gotch.Tensor, error)
		ref  func(float64) float64
	}{
		{"Neg", x, (*gotch.Tensor).Neg, func(v float64) float64 { return -v }},
		{"Abs", x, (*gotch.Tensor).Abs, math.Abs},
		{"Exp", x, (*gotch.Tensor).Exp, math.Exp},
		{"Log", pos, (*gotch.Tensor).Log, math.Log},
		{"Sqrt", pos, (*gotch.Tensor).Sqrt, math.Sqrt},
		{"Rsqrt", pos, (*gotch.Tensor).Rsqrt, func(v float64) float64 { return 1 / math.Sqrt(v) }},
		{"Reciprocal", pos, (*gotch.Tensor).Reciprocal, func(v float64) float64 { return 1 / v }},
		{"Sin", x, (*gotch.Tensor).Sin, math.Sin},
		{"Cos", x, (*gotch.Tensor).Cos, math.Cos},
		{"Tanh", x, (*gotch.Tensor).Tanh, math.Tanh},
		{"Sigmoid", x, (*gotch.Tensor).Sigmoid, sigmoid},
		{"Relu", x, (*gotch.Tensor).Relu, func(v float64) float64 { return math.Max(v, 0) }},
		{"Silu", x, (*gotch.Tensor).Silu, func(v float64) float64 { return v * sigmoid(v) }},
		{"Gelu(none)", x, func(t *gotch.Tensor) (*gotch.Tensor, error) { return t.Gelu("none") }, gelu},
		{"Gelu(tanh)", x, func(t *gotch.Tensor) (*gotch.Tensor, error) { return t.Gelu("tanh") }, geluTanh},
		{"Sign", x, (*gotch.Tensor).Sign, func(v float64) float64 {
			if v == 0 {
				return 0
			}
			return math.Copysign(1, v)
		}},
		{"Clamp", x, func(t *gotch.Tensor) (*gotch.Tensor, error) { return t.Clamp(-1, 1.5) }, func(v float64) float64 { return math.Min(math.Max(v, -1), 1.5) }},
	}
	for _, c := range cases {
		r, err := c.op(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		in := anyv
		if c.in == pos {
			in = posv
		}
		e.expect(c.name, r, gotch.Float, []int64{2, 4}, mapf(f64(in), c.ref))
	}
	// The two GELUs differ (by about 1e-3 near ±2), so the tanh flag is
	// really passed.
	d := e.vals(x.MustGelu("none").MustSub(x.MustGelu("tanh")).MustAbs())
	if slices.Max(d) < 1e-5 {
		t.Errorf("Gelu: none and tanh agree to %g; the approximation flag is ignored", slices.Max(d))
	}
	if _, err := x.Gelu("fast"); err == nil {
		t.Error(`Gelu("fast"): got no error`)
	}
	// Integer inputs keep their dtype where torch does.
	i := from(e, []int64{-2, 0, 3}, 3)
	e.expect("int64.Abs", i.MustAbs(), gotch.Int64, []int64{3}, []float64{2, 0, 3})
	e.expect("int64.Neg", i.MustNeg(), gotch.Int64, []int64{3}, []float64{2, 0, -3})
	e.expect("int64.Clamp", i.MustClamp(-1, 1), gotch.Int64, []int64{3}, []float64{-1, 0, 1})
}

func TestNanInfWhere(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{1, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0}, 5)
	e.expect("IsNan", x.MustIsNan(), gotch.Bool, []int64{5}, bools(0, 1, 0, 0, 0))
	e.expect("IsFinite", x.MustIsFinite(), gotch.Bool, []int64{5}, bools(1, 0, 0, 0, 1))

	cond := from(e, []bool{true, false, true, false, false, true}, 2, 3)
	a := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := from(e, []float32{-1, -2, -3}, 3) // broadcast over rows
	e.expect("Where", gotch.MustWhere(cond, a, b), gotch.Float, []int64{2, 3}, []float64{1, -2, 3, -1, -2, 6})
	// Where replaces NaNs: the usual way to clean a tensor.
	zero := from(e, []float32{0}, 1)
	e.expect("Where(IsNan)", gotch.MustWhere(x.MustIsNan(), zero, x).MustClamp(-9, 9), gotch.Float, []int64{5}, []float64{1, 0, 9, -9, 0})

	// MaskedFill with a causal mask, as attention uses it.
	scores := from(e, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3)
	future := e.own(gotch.MustOnes([]int64{3, 3}, gotch.Bool, e.dev)).MustTriu(1)
	e.expect("MaskedFill", scores.MustMaskedFill(future, -100), gotch.Float, []int64{3, 3},
		[]float64{1, -100, -100, 4, 5, -100, 7, 8, 9})
	// A broadcast mask [3] over [3 3].
	col := from(e, []bool{false, true, false}, 3)
	e.expect("MaskedFill(broadcast)", scores.MustMaskedFill(col, 0), gotch.Float, []int64{3, 3},
		[]float64{1, 0, 3, 4, 0, 6, 7, 0, 9})
	inf := scores.MustMaskedFill(future, math.Inf(-1))
	if v := e.vals(inf); !math.IsInf(v[1], -1) || v[3] != 4 {
		t.Errorf("MaskedFill(-Inf): got %v", v)
	}
}

// ---- matrices

func TestMatmul(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	av, bv := randf(1, 2*2*3, -2, 2), randf(2, 3*4, -2, 2)
	a, b := from(e, av, 2, 2, 3), from(e, bv, 3, 4)
	want := append(matmul(f64(av[:6]), f64(bv), 2, 3, 4), matmul(f64(av[6:]), f64(bv), 2, 3, 4)...)
	e.expect("Matmul([2 2 3], [3 4])", a.MustMatmul(b), gotch.Float, []int64{2, 2, 4}, want)

	a2 := from(e, av[:6], 2, 3)
	e.expect("Mm", a2.MustMm(b), gotch.Float, []int64{2, 4}, matmul(f64(av[:6]), f64(bv), 2, 3, 4))
	if _, err := a.Mm(b); err == nil {
		t.Error("Mm of a 3-D tensor: got no error")
	}

	v := from(e, []float32{1, 2, 3}, 3)
	e.expect("Matmul(vector, vector)", v.MustMatmul(v), gotch.Float, []int64{}, []float64{14})
	e.expect("Matmul(matrix, vector)", a2.MustMatmul(v), gotch.Float, []int64{2}, matmul(f64(av[:6]), []float64{1, 2, 3}, 2, 3, 1))

	cv := randf(3, 2*3*2, -2, 2)
	c := from(e, cv, 2, 3, 2)
	wantB := append(matmul(f64(av[:6]), f64(cv[:6]), 2, 3, 2), matmul(f64(av[6:]), f64(cv[6:]), 2, 3, 2)...)
	e.expect("Bmm", a.MustBmm(c), gotch.Float, []int64{2, 2, 2}, wantB)

	// Linear: x W^T + b.
	xv, wv, biasv := randf(4, 2*3, -1, 1), randf(5, 4*3, -1, 1), []float32{0.5, -1, 2, 0}
	x, w, bias := from(e, xv, 2, 3), from(e, wv, 4, 3), from(e, biasv, 4)
	lin := matmul(f64(xv), transpose2(f64(wv), 4, 3), 2, 3, 4)
	e.expect("Linear(no bias)", x.MustLinear(w, nil), gotch.Float, []int64{2, 4}, lin)
	for i := range lin {
		lin[i] += float64(biasv[i%4])
	}
	e.expect("Linear", x.MustLinear(w, bias), gotch.Float, []int64{2, 4}, lin)
	// One row takes a matrix-vector product on the CPU (gt::linear): the
	// same values and shapes, whatever the leading dimensions.
	for _, shape := range [][]int64{{3}, {1, 3}, {1, 1, 3}} {
		row := from(e, xv[:3], shape...)
		want := append(append([]int64(nil), shape[:len(shape)-1]...), 4)
		e.expect(fmt.Sprintf("Linear(one row %v)", shape), row.MustLinear(w, bias), gotch.Float, want, lin[:4])
		e.expect(fmt.Sprintf("Linear(one row %v, no bias)", shape), row.MustLinear(w, nil), gotch.Float, want,
			matmul(f64(xv[:3]), transpose2(f64(wv), 4, 3), 1, 3, 4))
	}
	if _, err := from(e, xv[:2], 1, 2).Linear(w, bias); err == nil {
		t.Error("Linear of one row of the wrong width: got no error")
	}

	e.expect("Outer", v.MustOuter(from(e, []float32{1, -1}, 2)), gotch.Float, []int64{3, 2}, []float64{1, -1, 2, -2, 3, -3})
	if _, err := a2.Matmul(a2); err == nil {
		t.Error("Matmul([2 3], [2 3]): got no error")
	}
}

func TestEinsum(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	cases := []struct {
		eq     string
		shapes [][]int64
	}{
		{"ij,jk->ik", [][]int64{{2, 3}, {3, 4}}},
		{"bij,bjk->bik", [][]int64{{2, 2, 3}, {2, 3, 2}}},
		{"ij->ji", [][]int64{{2, 3}}},
		{"ii->i", [][]int64{{3, 3}}},
		{"ii->", [][]int64{{3, 3}}},
		{"i,j->ij", [][]int64{{3}, {2}}},
		{"bqhd,bkhd->bhqk", [][]int64{{1, 3, 2, 4}, {1, 3, 2, 4}}}, // TransformerLens's attention scores
		{"bpd,dv->bpv", [][]int64{{2, 3, 4}, {4, 5}}},
		{"hdm,hmn->hdn", [][]int64{{2, 3, 2}, {2, 2, 3}}}, // an OV circuit
	}
	for k, c := range cases {
		ops := make([]*gotch.Tensor, len(c.shapes))
		data := make([][]float64, len(c.shapes))
		for i, s := range c.shapes {
			v := randf(uint64(10*k+i), prod(s), -1, 1)
			ops[i], data[i] = from(e, v, s...), f64(v)
		}
		r, err := gotch.Einsum(c.eq, ops)
		if err != nil {
			t.Errorf("Einsum(%q): %v", c.eq, err)
			continue
		}
		e.own(r)
		shape, want := einsum(c.eq, c.shapes, data)
		e.expect("Einsum("+c.eq+")", r, gotch.Float, shape, want)
	}
	if r, err := gotch.Einsum("ij,jk->ik", []*gotch.Tensor{from(e, []float32{1, 2}, 1, 2), from(e, []float32{1, 2, 3}, 3, 1)}); err == nil {
		e.own(r)
		t.Error("Einsum with mismatched sizes: got no error")
	}
}

// ---- neural-network maths

func TestSoftmax(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	shape := []int64{2, 3, 4}
	xv := randf(20, 24, -3, 3)
	x := from(e, xv, shape...)
	for dim := range 3 {
		sm := along(shape, dim, f64(xv), softmax)
		e.expect("Softmax", x.MustSoftmax(int64(dim)), gotch.Float, shape, sm)
		lsm := along(shape, dim, f64(xv), func(l []float64) []float64 {
			z := logsumexp(l)
			return mapf(l, func(v float64) float64 { return v - z })
		})
		e.expect("LogSoftmax", x.MustLogSoftmax(int64(dim)), gotch.Float, shape, lsm)
	}
	e.expect("Softmax(-1)", x.MustSoftmax(-1), gotch.Float, shape, along(shape, 2, f64(xv), softmax))
	// Large logits stay finite.
	big := from(e, []float32{1000, 1001, 1002}, 3)
	e.expect("Softmax(large)", big.MustSoftmax(0), gotch.Float, []int64{3}, softmax([]float64{0, 1, 2}))
	e.expect("LogSoftmax(large)", big.MustLogSoftmax(0), gotch.Float, []int64{3},
		mapf([]float64{0, 1, 2}, func(v float64) float64 { return v - logsumexp([]float64{0, 1, 2}) }))
}

func TestLayerNorm(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	shape := []int64{2, 3, 4}
	xv, wv, bv := randf(30, 24, -2, 2), randf(31, 4, 0.5, 1.5), randf(32, 4, -1, 1)
	x, w, b := from(e, xv, shape...), from(e, wv, 4), from(e, bv, 4)
	const eps = 1e-5
	norm := func(l []float64) []float64 {
		m, v := mean(l), variance(l, false)
		return mapf(l, func(a float64) float64 { return (a - m) / math.Sqrt(v+eps) })
	}
	plain := along(shape, 2, f64(xv), norm)
	e.expect("LayerNorm(no affine)", x.MustLayerNorm([]int64{4}, nil, nil, eps), gotch.Float, shape, plain)
	affine := make([]float64, len(plain))
	for i, v := range plain {
		affine[i] = v*float64(wv[i%4]) + float64(bv[i%4])
	}
	e.expect("LayerNorm", x.MustLayerNorm([]int64{4}, w, b, eps), gotch.Float, shape, affine)
	// Over the last two dims.
	flat := along([]int64{2, 12}, 1, f64(xv), norm)
	e.expect("LayerNorm([3 4])", x.MustLayerNorm([]int64{3, 4}, nil, nil, eps), gotch.Float, shape, flat)
	// eps counts: a large one shrinks the output.
	bigEps := along(shape, 2, f64(xv), func(l []float64) []float64 {
		m, v := mean(l), variance(l, false)
		return mapf(l, func(a float64) float64 { return (a - m) / math.Sqrt(v+0.5) })
	})
	e.expect("LayerNorm(eps 0.5)", x.MustLayerNorm([]int64{4}, nil, nil, 0.5), gotch.Float, shape, bigEps)
	// A constant row normalises to zero thanks to eps.
	c := from(e, []float32{2, 2, 2, 2}, 1, 4)
	e.expect("LayerNorm(constant)", c.MustLayerNorm([]int64{4}, nil, b, eps), gotch.Float, []int64{1, 4}, f64(bv))
	if _, err := x.LayerNorm([]int64{5}, nil, nil, eps); err == nil {
		t.Error("LayerNorm over a size-5 dim of a size-4 tensor: got no error")
	}
}

func TestEmbedding(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	wv := randf(40, 5*3, -1, 1)
	w := from(e, wv, 5, 3)
	idx := from(e, []int64{4, 0, 2, 2}, 2, 2)
	var want []float64
	for _, i := range []int{4, 0, 2, 2} {
		want = append(want, f64(wv[3*i:3*i+3])...)
	}
	e.expect("Embedding", gotch.MustEmbedding(w, idx), gotch.Float, []int64{2, 2, 3}, want)
	if _, err := gotch.Embedding(w, from(e, []int64{5}, 1)); err == nil {
		t.Error("Embedding with an index out of range: got no error")
	}
}

func TestCrossEntropy(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	lv := randf(50, 3*4, -2, 2)
	logits := from(e, lv, 3, 4)
	targets := []int64{0, 3, 1}
	per := make([]float64, 3)
	for n, c := range targets {
		row := f64(lv[4*n : 4*n+4])
		per[n] = logsumexp(row) - row[c]
	}
	tg := from(e, targets, 3)
	e.expect("CrossEntropy(none)", logits.MustCrossEntropy(tg, gotch.ReductionNone, -100), gotch.Float, []int64{3}, per)
	e.expect("CrossEntropy(sum)", logits.MustCrossEntropy(tg, gotch.ReductionSum, -100), gotch.Float, []int64{}, []float64{sum(per)})
	e.expect("CrossEntropy(mean)", logits.MustCrossEntropy(tg, gotch.ReductionMean, -100), gotch.Float, []int64{}, []float64{mean(per)})

	// An ignored target contributes 0 and does not count in the mean.
	ig := from(e, []int64{0, -100, 1}, 3)
	e.expect("CrossEntropy(ignore, none)", logits.MustCrossEntropy(ig, gotch.ReductionNone, -100), gotch.Float, []int64{3}, []float64{per[0], 0, logsumexp(f64(lv[8:12])) - float64(lv[9])})
	ign := (per[0] + logsumexp(f64(lv[8:12])) - float64(lv[9])) / 2
	e.expect("CrossEntropy(ignore, mean)", logits.MustCrossEntropy(ig, gotch.ReductionMean, -100), gotch.Float, []int64{}, []float64{ign})

	// Any class can be the ignored one: ignoring class 3 drops sample 1.
	e.expect("CrossEntropy(ignore 3, sum)", logits.MustCrossEntropy(tg, gotch.ReductionSum, 3), gotch.Float, []int64{}, []float64{per[0] + per[2]})

	// [N C d] logits against [N d] targets: the class dim is 1.
	kv := randf(51, 2*3*2, -2, 2)
	k := from(e, kv, 2, 3, 2)
	kt := []int64{2, 0, 1, 1}
	want := make([]float64, 4)
	for n := range 2 {
		for d := range 2 {
			row := []float64{float64(kv[n*6+d]), float64(kv[n*6+2+d]), float64(kv[n*6+4+d])}
			want[n*2+d] = logsumexp(row) - row[kt[n*2+d]]
		}
	}
	e.expect("CrossEntropy([N C d])", k.MustCrossEntropy(from(e, kt, 2, 2), gotch.ReductionNone, -100), gotch.Float, []int64{2, 2}, want)
	if _, err := logits.CrossEntropy(from(e, []int64{0, 4, 1}, 3), gotch.ReductionMean, -100); err == nil {
		t.Error("CrossEntropy with a target out of range: got no error")
	}
}

// attention is softmax(q kᵀ/√d + mask) v for [B H L D] inputs; allowed
// says which key positions a query may see.
func attention(q, k, v []float64, B, H, L, S, D int, allowed func(b, h, i, j int) bool) []float64 {
	out := make([]float64, B*H*L*D)
	for b := range B {
		for h := range H {
			qo, ko := (b*H+h)*L*D, (b*H+h)*S*D
			for i := range L {
				scores := make([]float64, S)
				for j := range S {
					if !allowed(b, h, i, j) {
						scores[j] = math.Inf(-1)
						continue
					}
					for d := range D {
						scores[j] += q[qo+i*D+d] * k[ko+j*D+d]
					}
					scores[j] /= math.Sqrt(float64(D))
				}
				p := softmax(scores)
				for j := range S {
					for d := range D {
						out[qo+i*D+d] += p[j] * v[ko+j*D+d]
					}
				}
			}
		}
	}
	return out
}

func TestScaledDotProductAttention(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	const B, H, L, D = 2, 2, 4, 3
	qv, kv, vv := randf(60, B*H*L*D, -1, 1), randf(61, B*H*L*D, -1, 1), randf(62, B*H*L*D, -1, 1)
	q, k, v := from(e, qv, B, H, L, D), from(e, kv, B, H, L, D), from(e, vv, B, H, L, D)
	shape := []int64{B, H, L, D}
	all := func(b, h, i, j int) bool { return true }
	causal := func(b, h, i, j int) bool { return j <= i }

	e.expect("SDPA", gotch.MustScaledDotProductAttention(q, k, v, nil, false), gotch.Float, shape,
		attention(f64(qv), f64(kv), f64(vv), B, H, L, L, D, all))
	wantCausal := attention(f64(qv), f64(kv), f64(vv), B, H, L, L, D, causal)
	e.expect("SDPA(causal)", gotch.MustScaledDotProductAttention(q, k, v, nil, true), gotch.Float, shape, wantCausal)
	tril := e.own(gotch.MustOnes([]int64{L, L}, gotch.Bool, e.dev)).MustTril(0)
	e.expect("SDPA(tril bool mask)", gotch.MustScaledDotProductAttention(q, k, v, tril, false), gotch.Float, shape, wantCausal)

	// An arbitrary bool mask [L S], every row with an allowed key.
	pattern := []bool{
		true, false, true, false,
		false, true, false, false,
		true, true, true, true,
		false, false, false, true,
	}
	mask := from(e, pattern, L, L)
	e.expect("SDPA(bool mask)", gotch.MustScaledDotProductAttention(q, k, v, mask, false), gotch.Float, shape,
		attention(f64(qv), f64(kv), f64(vv), B, H, L, L, D, func(b, h, i, j int) bool { return pattern[i*L+j] }))

	// A float mask is added to the scores: 0 where allowed, -1e9 elsewhere.
	add := make([]float32, L*L)
	for i, ok := range pattern {
		if !ok {
			add[i] = -1e9
		}
	}
	e.expect("SDPA(additive mask)", gotch.MustScaledDotProductAttention(q, k, v, from(e, add, L, L), false), gotch.Float, shape,
		attention(f64(qv), f64(kv), f64(vv), B, H, L, L, D, func(b, h, i, j int) bool { return pattern[i*L+j] }))

	// More keys than queries (a KV cache): S = 6.
	const S = 6
	k2v, v2v := randf(63, B*H*S*D, -1, 1), randf(64, B*H*S*D, -1, 1)
	k2, v2 := from(e, k2v, B, H, S, D), from(e, v2v, B, H, S, D)
	e.expect("SDPA(S > L)", gotch.MustScaledDotProductAttention(q, k2, v2, nil, false), gotch.Float, shape,
		attention(f64(qv), f64(k2v), f64(v2v), B, H, L, S, D, all))
}

func TestDropout(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	xv := randf(70, 2000, 0.5, 1.5)
	x := from(e, xv, 2000)
	e.expect("Dropout(eval)", x.MustDropout(0.5, false), gotch.Float, []int64{2000}, f64(xv))
	e.expect("Dropout(p=0)", x.MustDropout(0, true), gotch.Float, []int64{2000}, f64(xv))
	e.expect("Dropout(p=1)", x.MustDropout(1, true), gotch.Float, []int64{2000}, make([]float64, 2000))
	// Dropout draws from torch's global generator: ManualSeed replays it.
	if err := gotch.ManualSeed(5); err != nil {
		t.Fatal(err)
	}
	d1 := e.vals(x.MustDropout(0.5, true))
	gotch.ManualSeed(5)
	d2 := e.vals(x.MustDropout(0.5, true))
	if !slices.Equal(d1, d2) {
		t.Error("Dropout: the same ManualSeed gave different masks")
	}
	zeros := 0
	for i, v := range e.vals(x.MustDropout(0.25, true)) {
		switch {
		case v == 0:
			zeros++
		case math.Abs(v-float64(xv[i])/0.75) > 1e-5*v:
			t.Fatalf("Dropout(0.25): [%d] got %g, want 0 or %g", i, v, float64(xv[i])/0.75)
		}
	}
	if f := float64(zeros) / 2000; math.Abs(f-0.25) > 0.05 {
		t.Errorf("Dropout(0.25): %.3f of the elements dropped, want 0.25 ± 0.05", f)
	}
}

// ---- selection and indexing

func TestTopkSortMax(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{
		3, 1, 4, 1.5, 9,
		2, 7, 1, 8, 2.5,
	}, 2, 5)
	type pair struct {
		name         string
		vals, idx    *gotch.Tensor
		shape        []int64
		wantV, wantI []float64
	}
	tv, ti := x.MustTopk(2, 1, true, true)
	sv, si := x.MustTopk(3, 1, false, true)
	cv, ci := x.MustTopk(1, 0, true, true)
	dv, di := x.MustSort(1, true)
	av, ai := x.MustSort(1, false)
	mv, mi := x.MustMaxDim(1, false)
	kv, ki := x.MustMaxDim(0, true)
	for _, c := range []pair{
		{"Topk(2, largest)", tv, ti, []int64{2, 2}, []float64{9, 4, 8, 7}, []float64{4, 2, 3, 1}},
		{"Topk(3, smallest)", sv, si, []int64{2, 3}, []float64{1, 1.5, 3, 1, 2, 2.5}, []float64{1, 3, 0, 2, 0, 4}},
		{"Topk(dim 0)", cv, ci, []int64{1, 5}, []float64{3, 7, 4, 8, 9}, []float64{0, 1, 0, 1, 0}},
		{"Sort(descending)", dv, di, []int64{2, 5}, []float64{9, 4, 3, 1.5, 1, 8, 7, 2.5, 2, 1}, []float64{4, 2, 0, 3, 1, 3, 1, 4, 0, 2}},
		{"Sort(ascending)", av, ai, []int64{2, 5}, []float64{1, 1.5, 3, 4, 9, 1, 2, 2.5, 7, 8}, []float64{1, 3, 0, 2, 4, 2, 0, 4, 1, 3}},
		{"MaxDim(1)", mv, mi, []int64{2}, []float64{9, 8}, []float64{4, 3}},
		{"MaxDim(0, keepdim)", kv, ki, []int64{1, 5}, []float64{3, 7, 4, 8, 9}, []float64{0, 1, 0, 1, 0}},
	} {
		e.expect(c.name+" values", c.vals, gotch.Float, c.shape, c.wantV)
		e.expect(c.name+" indices", c.idx, gotch.Int64, c.shape, c.wantI)
	}
	e.expect("Argmax(1)", x.MustArgmax(1, false), gotch.Int64, []int64{2}, []float64{4, 3})
	e.expect("Argmax(0, keepdim)", x.MustArgmax(0, true), gotch.Int64, []int64{1, 5}, []float64{0, 1, 0, 1, 0})
	e.expect("Argmin(1)", x.MustArgmin(1, false), gotch.Int64, []int64{2}, []float64{1, 2})
	e.expect("Argmin(-1, keepdim)", x.MustArgmin(-1, true), gotch.Int64, []int64{2, 1}, []float64{1, 2})
	if _, _, err := x.Topk(6, 1, true, true); err == nil {
		t.Error("Topk(6) of 5 elements: got no error")
	}
}

func TestGatherIndexSelect(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33}, 3, 4)
	// Gather along dim 1: out[i][j] = x[i][idx[i][j]], e.g. the logit of
	// each position's next token.
	idx := from(e, []int64{3, 0, 1, 1, 2, 3}, 3, 2)
	e.expect("Gather(1)", x.MustGather(1, idx), gotch.Float, []int64{3, 2}, []float64{13, 10, 21, 21, 32, 33})
	idx0 := from(e, []int64{2, 0, 1, 0}, 1, 4)
	e.expect("Gather(0)", x.MustGather(0, idx0), gotch.Float, []int64{1, 4}, []float64{30, 11, 22, 13})
	rows := from(e, []int64{2, 0, 2}, 3)
	e.expect("IndexSelect(0)", x.MustIndexSelect(0, rows), gotch.Float, []int64{3, 4}, []float64{30, 31, 32, 33, 10, 11, 12, 13, 30, 31, 32, 33})
	cols := from(e, []int64{3, 1}, 2)
	e.expect("IndexSelect(1)", x.MustIndexSelect(1, cols), gotch.Float, []int64{3, 2}, []float64{13, 11, 23, 21, 33, 31})
	if _, err := x.Gather(1, from(e, []int64{4}, 1, 1)); err == nil {
		t.Error("Gather with an index out of range: got no error")
	}
}

func TestTriangles(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	m := from(e, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3)
	cases := []struct {
		name string
		r    *gotch.Tensor
		want []float64
	}{
		{"Triu(0)", m.MustTriu(0), []float64{1, 2, 3, 0, 5, 6, 0, 0, 9}},
		{"Triu(1)", m.MustTriu(1), []float64{0, 2, 3, 0, 0, 6, 0, 0, 0}},
		{"Triu(-1)", m.MustTriu(-1), []float64{1, 2, 3, 4, 5, 6, 0, 8, 9}},
		{"Tril(0)", m.MustTril(0), []float64{1, 0, 0, 4, 5, 0, 7, 8, 9}},
		{"Tril(-1)", m.MustTril(-1), []float64{0, 0, 0, 4, 0, 0, 7, 8, 0}},
		{"Tril(1)", m.MustTril(1), []float64{1, 2, 0, 4, 5, 6, 7, 8, 9}},
	}
	for _, c := range cases {
		e.expect(c.name, c.r, gotch.Float, []int64{3, 3}, c.want)
	}
	// Batched: the last two dims of [2 2 3].
	b := from(e, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 2, 2, 3)
	e.expect("Tril(batched)", b.MustTril(0), gotch.Float, []int64{2, 2, 3}, []float64{1, 0, 0, 4, 5, 0, 7, 0, 0, 10, 11, 0})
}

func TestSelectNarrowSlice(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{0, 1, 2, 3, 4, 10, 11, 12, 13, 14}, 2, 5)
	e.expect("Select(0, 1)", x.MustSelect(0, 1), gotch.Float, []int64{5}, []float64{10, 11, 12, 13, 14})
	e.expect("Select(1, -1)", x.MustSelect(1, -1), gotch.Float, []int64{2}, []float64{4, 14})
	e.expect("Narrow(1, 1, 3)", x.MustNarrow(1, 1, 3), gotch.Float, []int64{2, 3}, []float64{1, 2, 3, 11, 12, 13})
	e.expect("Slice(1, 0, 5, 2)", x.MustSlice(1, 0, 5, 2), gotch.Float, []int64{2, 3}, []float64{0, 2, 4, 10, 12, 14})
	e.expect("Slice(1, 3, 100, 1)", x.MustSlice(1, 3, 100, 1), gotch.Float, []int64{2, 2}, []float64{3, 4, 13, 14})
	e.expect("Slice(0, -1, 2, 1)", x.MustSlice(0, -1, 2, 1), gotch.Float, []int64{1, 5}, []float64{10, 11, 12, 13, 14})
	// Views share storage: writing into a narrowed view changes x.
	x.MustNarrow(1, 1, 2).MustFill_(-1)
	e.expect("x after Narrow.Fill_", x, gotch.Float, []int64{2, 5}, []float64{0, -1, -1, 3, 4, 10, -1, -1, 13, 14})
	if _, err := x.Select(0, 2); err == nil {
		t.Error("Select(0, 2) of size 2: got no error")
	}
	if _, err := x.Narrow(1, 3, 3); err == nil {
		t.Error("Narrow past the end: got no error")
	}
}

// ---- shapes

func TestShapes(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	shape := []int64{2, 3, 4}
	xv := randf(80, 24, -1, 1)
	x := from(e, xv, shape...)
	xf := f64(xv)
	ps, pv := permute(shape, []int{2, 0, 1}, xf)
	ts, tv := permute(shape, []int{1, 0, 2}, xf)
	fs, fv := permute(shape, []int{0, 2, 1}, xf)
	cases := []struct {
		name  string
		op    func() (*gotch.Tensor, error)
		shape []int64
		want  []float64
	}{
		{"Reshape", func() (*gotch.Tensor, error) { return x.Reshape([]int64{4, -1}) }, []int64{4, 6}, xf},
		{"View", func() (*gotch.Tensor, error) { return x.View([]int64{24}) }, []int64{24}, xf},
		{"Permute", func() (*gotch.Tensor, error) { return x.Permute([]int64{2, 0, 1}) }, ps, pv},
		{"Transpose(0, 1)", func() (*gotch.Tensor, error) { return x.Transpose(0, 1) }, ts, tv},
		{"Transpose(-1, -2)", func() (*gotch.Tensor, error) { return x.Transpose(-1, -2) }, fs, fv},
		{"Reshape(Transpose)", func() (*gotch.Tensor, error) { return x.MustTranspose(0, 1).Reshape([]int64{-1}) }, []int64{24}, tv},
		{"Unsqueeze(0)", func() (*gotch.Tensor, error) { return x.Unsqueeze(0) }, []int64{1, 2, 3, 4}, xf},
		{"Unsqueeze(-1)", func() (*gotch.Tensor, error) { return x.Unsqueeze(-1) }, []int64{2, 3, 4, 1}, xf},
		{"Squeeze(1)", func() (*gotch.Tensor, error) { return x.MustUnsqueeze(1).Squeeze(1) }, shape, xf},
		{"Squeeze(size>1)", func() (*gotch.Tensor, error) { return x.Squeeze(0) }, shape, xf},
		{"Flatten(1, 2)", func() (*gotch.Tensor, error) { return x.Flatten(1, 2) }, []int64{2, 12}, xf},
		{"Flatten(0, -1)", func() (*gotch.Tensor, error) { return x.Flatten(0, -1) }, []int64{24}, xf},
		{"Flatten(Permute)", func() (*gotch.Tensor, error) { return x.MustPermute([]int64{2, 0, 1}).Flatten(0, 1) }, []int64{8, 3}, pv},
	}
	for _, c := range cases {
		r, err := c.op()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		e.expect(c.name, r, gotch.Float, c.shape, c.want)
	}
	// View needs compatible strides; Reshape copies instead.
	var ge *gotch.Error
	if _, err := x.MustTranspose(0, 1).View([]int64{24}); !errors.As(err, &ge) || ge.Op != "View" {
		t.Errorf("View of a transposed tensor: got %v, want a *gotch.Error from View", err)
	}
	if _, err := x.Reshape([]int64{5, -1}); err == nil {
		t.Error("Reshape(24 elements to [5 -1]): got no error")
	}
}

func TestExpandRepeatFlip(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	row := from(e, []float32{1, 2, 3}, 1, 3)
	col := from(e, []float32{1, 2}, 2, 1)
	m := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	cases := []struct {
		name  string
		r     *gotch.Tensor
		shape []int64
		want  []float64
	}{
		{"Expand(row)", row.MustExpand([]int64{2, 3}), []int64{2, 3}, []float64{1, 2, 3, 1, 2, 3}},
		{"Expand(col, -1)", col.MustExpand([]int64{-1, 3}), []int64{2, 3}, []float64{1, 1, 1, 2, 2, 2}},
		{"Expand(new dim)", row.MustExpand([]int64{2, 1, 3}), []int64{2, 1, 3}, []float64{1, 2, 3, 1, 2, 3}},
		{"Repeat([2 1])", m.MustRepeat([]int64{2, 1}), []int64{4, 3}, []float64{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}},
		{"Repeat([1 2])", m.MustRepeat([]int64{1, 2}), []int64{2, 6}, []float64{1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}},
		{"Repeat([2 1 1])", m.MustRepeat([]int64{2, 1, 1}), []int64{2, 2, 3}, []float64{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}},
		{"Flip([1])", m.MustFlip([]int64{1}), []int64{2, 3}, []float64{3, 2, 1, 6, 5, 4}},
		{"Flip([0])", m.MustFlip([]int64{0}), []int64{2, 3}, []float64{4, 5, 6, 1, 2, 3}},
		{"Flip([0 1])", m.MustFlip([]int64{0, 1}), []int64{2, 3}, []float64{6, 5, 4, 3, 2, 1}},
	}
	for _, c := range cases {
		e.expect(c.name, c.r, gotch.Float, c.shape, c.want)
	}
	if _, err := m.Expand([]int64{4, 3}); err == nil {
		t.Error("Expand([2 3] to [4 3]): got no error")
	}
}

func TestCatStack(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	a := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := from(e, []float32{7, 8, 9}, 1, 3)
	c := from(e, []float32{-1, -2, -3, -4, -5, -6}, 2, 3)
	cases := []struct {
		name  string
		op    func() (*gotch.Tensor, error)
		shape []int64
		want  []float64
	}{
		{"Cat(0)", func() (*gotch.Tensor, error) { return gotch.Cat([]*gotch.Tensor{a, b}, 0) }, []int64{3, 3}, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"Cat(1)", func() (*gotch.Tensor, error) { return gotch.Cat([]*gotch.Tensor{a, c}, 1) }, []int64{2, 6}, []float64{1, 2, 3, -1, -2, -3, 4, 5, 6, -4, -5, -6}},
		{"Cat(-1, three)", func() (*gotch.Tensor, error) { return gotch.Cat([]*gotch.Tensor{a, c, a}, -1) }, []int64{2, 9}, []float64{1, 2, 3, -1, -2, -3, 1, 2, 3, 4, 5, 6, -4, -5, -6, 4, 5, 6}},
		{"Stack(0)", func() (*gotch.Tensor, error) { return gotch.Stack([]*gotch.Tensor{a, c}, 0) }, []int64{2, 2, 3}, []float64{1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6}},
		{"Stack(2)", func() (*gotch.Tensor, error) { return gotch.Stack([]*gotch.Tensor{a, c}, 2) }, []int64{2, 3, 2}, []float64{1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6}},
		{"Stack(1)", func() (*gotch.Tensor, error) { return gotch.Stack([]*gotch.Tensor{a, c}, 1) }, []int64{2, 2, 3}, []float64{1, 2, 3, -1, -2, -3, 4, 5, 6, -4, -5, -6}},
	}
	for _, k := range cases {
		r, err := k.op()
		if err != nil {
			t.Errorf("%s: %v", k.name, err)
			continue
		}
		e.own(r)
		e.expect(k.name, r, gotch.Float, k.shape, k.want)
	}
	if r, err := gotch.Cat([]*gotch.Tensor{a, b}, 1); err == nil {
		e.own(r)
		t.Error("Cat([2 3], [1 3]) along dim 1: got no error")
	}
	if r, err := gotch.Stack([]*gotch.Tensor{a, b}, 0); err == nil {
		e.own(r)
		t.Error("Stack of different shapes: got no error")
	}
}

// TestListOperandScope: the result of an op whose tensors come in a list
// (Cat, Stack, Einsum) joins its operands' scope (the newest, when they
// have several), as the Scope documentation promises for every op.
func TestListOperandScope(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	a := from(e, []float32{1, 2}, 2)
	b := from(e, []float32{3, 4}, 2)
	ops := []struct {
		name string
		op   func() (*gotch.Tensor, error)
	}{
		{"Cat", func() (*gotch.Tensor, error) { return gotch.Cat([]*gotch.Tensor{a, b}, 0) }},
		{"Stack", func() (*gotch.Tensor, error) { return gotch.Stack([]*gotch.Tensor{a, b}, 0) }},
		{"Einsum", func() (*gotch.Tensor, error) { return gotch.Einsum("i,i->", []*gotch.Tensor{a, b}) }},
	}
	for _, c := range ops {
		r, err := c.op()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.Scope() != e.s {
			t.Errorf("%s: the result belongs to scope %p, want its operands' scope %p", c.name, r.Scope(), e.s)
			e.own(r) // free it anyway
		}
	}
}

func TestSplitChunkUnbind(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	x := from(e, []float32{0, 1, 2, 3, 4, 10, 11, 12, 13, 14}, 2, 5)
	type piece struct {
		shape []int64
		want  []float64
	}
	check := func(name string, got []*gotch.Tensor, want []piece) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: got %d pieces, want %d", name, len(got), len(want))
			return
		}
		for i, p := range want {
			if got[i].Scope() != e.s {
				t.Errorf("%s[%d]: the piece did not join its operand's scope", name, i)
			}
			e.expect(name, got[i], gotch.Float, p.shape, p.want)
		}
	}
	check("Split(2, 1)", x.MustSplit(2, 1), []piece{
		{[]int64{2, 2}, []float64{0, 1, 10, 11}},
		{[]int64{2, 2}, []float64{2, 3, 12, 13}},
		{[]int64{2, 1}, []float64{4, 14}},
	})
	check("SplitSizes([1 4], 1)", x.MustSplitSizes([]int64{1, 4}, 1), []piece{
		{[]int64{2, 1}, []float64{0, 10}},
		{[]int64{2, 4}, []float64{1, 2, 3, 4, 11, 12, 13, 14}},
	})
	check("Chunk(3, 1)", x.MustChunk(3, 1), []piece{
		{[]int64{2, 2}, []float64{0, 1, 10, 11}},
		{[]int64{2, 2}, []float64{2, 3, 12, 13}},
		{[]int64{2, 1}, []float64{4, 14}},
	})
	check("Chunk(2, 0)", x.MustChunk(2, 0), []piece{
		{[]int64{1, 5}, []float64{0, 1, 2, 3, 4}},
		{[]int64{1, 5}, []float64{10, 11, 12, 13, 14}},
	})
	check("Unbind(0)", x.MustUnbind(0), []piece{
		{[]int64{5}, []float64{0, 1, 2, 3, 4}},
		{[]int64{5}, []float64{10, 11, 12, 13, 14}},
	})
	check("Unbind(1)", x.MustUnbind(1), []piece{
		{[]int64{2}, []float64{0, 10}}, {[]int64{2}, []float64{1, 11}}, {[]int64{2}, []float64{2, 12}},
		{[]int64{2}, []float64{3, 13}}, {[]int64{2}, []float64{4, 14}},
	})
	// The pieces are views: the QKV split of a fused projection writes
	// through.
	if parts := x.MustSplit(3, 1); len(parts) == 2 {
		parts[1].MustFill_(0)
		e.expect("x after Split[1].Fill_", x, gotch.Float, []int64{2, 5}, []float64{0, 1, 2, 0, 0, 10, 11, 12, 0, 0})
	} else {
		t.Errorf("Split(3, 1): got %d pieces, want 2", len(parts))
	}
	if _, err := x.SplitSizes([]int64{1, 1}, 1); err == nil {
		t.Error("SplitSizes summing to 2 of 5: got no error")
	}
}

// ---- reductions

func TestReductions(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	shape := []int64{2, 3, 4}
	xv := randf(90, 24, -2, 2)
	x, xf := from(e, xv, shape...), f64(xv)
	minf := func(g []float64) float64 { return slices.Min(g) }
	maxf := func(g []float64) float64 { return slices.Max(g) }
	varU := func(g []float64) float64 { return variance(g, true) }
	varB := func(g []float64) float64 { return variance(g, false) }
	stdU := func(g []float64) float64 { return math.Sqrt(variance(g, true)) }
	stdB := func(g []float64) float64 { return math.Sqrt(variance(g, false)) }
	norm := func(p float64) func([]float64) float64 {
		return func(g []float64) float64 {
			var s float64
			for _, v := range g {
				if math.IsInf(p, 1) {
					s = math.Max(s, math.Abs(v))
				} else {
					s += math.Pow(math.Abs(v), p)
				}
			}
			if math.IsInf(p, 1) {
				return s
			}
			return math.Pow(s, 1/p)
		}
	}
	all := []int{0, 1, 2}
	cases := []struct {
		name  string
		op    func() (*gotch.Tensor, error)
		shape []int64
		want  []float64
	}{
		{"Sum", x.Sum, []int64{}, reduce(shape, all, xf, sum)},
		{"Mean", x.Mean, []int64{}, reduce(shape, all, xf, mean)},
		{"Max", x.Max, []int64{}, reduce(shape, all, xf, maxf)},
		{"Min", x.Min, []int64{}, reduce(shape, all, xf, minf)},
		{"SumDims([1])", func() (*gotch.Tensor, error) { return x.SumDims([]int64{1}, false) }, []int64{2, 4}, reduce(shape, []int{1}, xf, sum)},
		{"SumDims([0 2], keepdim)", func() (*gotch.Tensor, error) { return x.SumDims([]int64{0, 2}, true) }, []int64{1, 3, 1}, reduce(shape, []int{0, 2}, xf, sum)},
		{"SumDims([-1])", func() (*gotch.Tensor, error) { return x.SumDims([]int64{-1}, false) }, []int64{2, 3}, reduce(shape, []int{2}, xf, sum)},
		{"MeanDims([2])", func() (*gotch.Tensor, error) { return x.MeanDims([]int64{2}, false) }, []int64{2, 3}, reduce(shape, []int{2}, xf, mean)},
		{"MeanDims([0 1], keepdim)", func() (*gotch.Tensor, error) { return x.MeanDims([]int64{0, 1}, true) }, []int64{1, 1, 4}, reduce(shape, []int{0, 1}, xf, mean)},
		{"Amax([1])", func() (*gotch.Tensor, error) { return x.Amax([]int64{1}, false) }, []int64{2, 4}, reduce(shape, []int{1}, xf, maxf)},
		{"Amax([0 2], keepdim)", func() (*gotch.Tensor, error) { return x.Amax([]int64{0, 2}, true) }, []int64{1, 3, 1}, reduce(shape, []int{0, 2}, xf, maxf)},
		{"Amin([2])", func() (*gotch.Tensor, error) { return x.Amin([]int64{2}, false) }, []int64{2, 3}, reduce(shape, []int{2}, xf, minf)},
		{"Var(unbiased)", func() (*gotch.Tensor, error) { return x.Var([]int64{2}, true, false) }, []int64{2, 3}, reduce(shape, []int{2}, xf, varU)},
		{"Var(biased, keepdim)", func() (*gotch.Tensor, error) { return x.Var([]int64{2}, false, true) }, []int64{2, 3, 1}, reduce(shape, []int{2}, xf, varB)},
		{"Var([0 1])", func() (*gotch.Tensor, error) { return x.Var([]int64{0, 1}, true, false) }, []int64{4}, reduce(shape, []int{0, 1}, xf, varU)},
		{"Std(unbiased)", func() (*gotch.Tensor, error) { return x.Std([]int64{1}, true, false) }, []int64{2, 4}, reduce(shape, []int{1}, xf, stdU)},
		{"Std(biased)", func() (*gotch.Tensor, error) { return x.Std([]int64{2}, false, false) }, []int64{2, 3}, reduce(shape, []int{2}, xf, stdB)},
		{"Logsumexp([2])", func() (*gotch.Tensor, error) { return x.Logsumexp([]int64{2}, false) }, []int64{2, 3}, reduce(shape, []int{2}, xf, logsumexp)},
		{"Logsumexp([0 1], keepdim)", func() (*gotch.Tensor, error) { return x.Logsumexp([]int64{0, 1}, true) }, []int64{1, 1, 4}, reduce(shape, []int{0, 1}, xf, logsumexp)},
		{"Cumsum(1)", func() (*gotch.Tensor, error) { return x.Cumsum(1) }, shape, along(shape, 1, xf, cumsum)},
		{"Cumsum(-1)", func() (*gotch.Tensor, error) { return x.Cumsum(-1) }, shape, along(shape, 2, xf, cumsum)},
		{"VectorNorm(2, all)", func() (*gotch.Tensor, error) { return x.VectorNorm(2, nil, false) }, []int64{}, reduce(shape, all, xf, norm(2))},
		{"VectorNorm(2, Frobenius)", func() (*gotch.Tensor, error) { return x.VectorNorm(2, []int64{1, 2}, false) }, []int64{2}, reduce(shape, []int{1, 2}, xf, norm(2))},
		{"VectorNorm(1, [2], keepdim)", func() (*gotch.Tensor, error) { return x.VectorNorm(1, []int64{2}, true) }, []int64{2, 3, 1}, reduce(shape, []int{2}, xf, norm(1))},
		{"VectorNorm(3, [0])", func() (*gotch.Tensor, error) { return x.VectorNorm(3, []int64{0}, false) }, []int64{3, 4}, reduce(shape, []int{0}, xf, norm(3))},
		{"VectorNorm(inf, [1])", func() (*gotch.Tensor, error) { return x.VectorNorm(math.Inf(1), []int64{1}, false) }, []int64{2, 4}, reduce(shape, []int{1}, xf, norm(math.Inf(1)))},
	}
	for _, c := range cases {
		r, err := c.op()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		e.expect(c.name, r, gotch.Float, c.shape, c.want)
	}

	// Logsumexp is stable where exp overflows float32.
	big := from(e, []float32{1000, 1000, -1000}, 3)
	e.expect("Logsumexp(large)", big.MustLogsumexp([]int64{0}, false), gotch.Float, []int64{}, []float64{1000 + math.Ln2})
	// Integer and bool sums are int64, as in torch.
	i := from(e, []int32{1, 2, 3, 4}, 2, 2)
	e.expect("int32.Sum", i.MustSum(), gotch.Int64, []int64{}, []float64{10})
	e.expect("int32.Cumsum", i.MustCumsum(1), gotch.Int64, []int64{2, 2}, []float64{1, 3, 3, 7})
	e.expect("int32.Max", i.MustMax(), gotch.Int32, []int64{}, []float64{4})
	b := from(e, []bool{true, false, true}, 3)
	e.expect("bool.Sum", b.MustSum(), gotch.Int64, []int64{}, []float64{2})
	if _, err := i.Mean(); err == nil {
		t.Error("Mean of an int32 tensor: got no error (torch wants a float dtype)")
	}
}

func cumsum(l []float64) []float64 {
	out := make([]float64, len(l))
	var s float64
	for i, v := range l {
		s += v
		out[i] = s
	}
	return out
}

// ---- in place

func TestInPlace(t *testing.T) {
	gotchtest.CheckLeaks(t)
	e := newEnv(t)
	defer e.done()
	xv := []float32{1, -2, 3, 4, 0.5, -6}
	ov := []float32{2, 4, -1} // broadcast over rows
	t1v, t2v := []float32{1, 2, 3, 4, 5, 6}, []float32{2, 2, 4, 4, 8, 8}
	ref := func(f func(i int, x float64) float64) []float64 {
		out := make([]float64, len(xv))
		for i, v := range xv {
			out[i] = f(i, float64(v))
		}
		return out
	}
	o := func(i int) float64 { return float64(ov[i%3]) }
	cases := []struct {
		name string
		op   func(x *gotch.Tensor) error
		want []float64
	}{
		{"Add_", func(x *gotch.Tensor) error { return x.Add_(from(e, ov, 3)) }, ref(func(i int, x float64) float64 { return x + o(i) })},
		{"AddScaled_", func(x *gotch.Tensor) error { return x.AddScaled_(from(e, ov, 3), -0.5) }, ref(func(i int, x float64) float64 { return x - 0.5*o(i) })},
		{"Sub_", func(x *gotch.Tensor) error { return x.Sub_(from(e, ov, 3)) }, ref(func(i int, x float64) float64 { return x - o(i) })},
		{"Mul_", func(x *gotch.Tensor) error { return x.Mul_(from(e, ov, 3)) }, ref(func(i int, x float64) float64 { return x * o(i) })},
		{"MulScalar_", func(x *gotch.Tensor) error { return x.MulScalar_(0.25) }, ref(func(i int, x float64) float64 { return x * 0.25 })},
		{"Div_", func(x *gotch.Tensor) error { return x.Div_(from(e, ov, 3)) }, ref(func(i int, x float64) float64 { return x / o(i) })},
		{"Addcmul_", func(x *gotch.Tensor) error { return x.Addcmul_(from(e, t1v, 2, 3), from(e, t2v, 2, 3), 0.5) },
			ref(func(i int, x float64) float64 { return x + 0.5*float64(t1v[i])*float64(t2v[i]) })},
		{"Addcdiv_", func(x *gotch.Tensor) error { return x.Addcdiv_(from(e, t1v, 2, 3), from(e, t2v, 2, 3), -2) },
			ref(func(i int, x float64) float64 { return x - 2*float64(t1v[i])/float64(t2v[i]) })},
		{"Lerp_", func(x *gotch.Tensor) error { return x.Lerp_(from(e, t1v, 2, 3), 0.25) },
			ref(func(i int, x float64) float64 { return x + 0.25*(float64(t1v[i])-x) })},
		{"Copy_", func(x *gotch.Tensor) error { return x.Copy_(from(e, t1v, 2, 3)) }, f64(t1v)},
		{"Copy_(broadcast)", func(x *gotch.Tensor) error { return x.Copy_(from(e, ov, 3)) }, ref(func(i int, x float64) float64 { return o(i) })},
		{"Copy_(from int64)", func(x *gotch.Tensor) error { return x.Copy_(from(e, []int64{7, 8, 9}, 3)) }, []float64{7, 8, 9, 7, 8, 9}},
		{"Copy_(from uint8)", func(x *gotch.Tensor) error { return x.Copy_(from(e, []uint8{0, 1, 2, 3, 4, 255}, 2, 3)) }, []float64{0, 1, 2, 3, 4, 255}},
		{"Zero_", (*gotch.Tensor).Zero_, make([]float64, 6)},
		{"Fill_", func(x *gotch.Tensor) error { return x.Fill_(3.5) }, ref(func(int, float64) float64 { return 3.5 })},
		{"MaskedFill_", func(x *gotch.Tensor) error {
			return x.MaskedFill_(from(e, []bool{true, false, false, false, false, true}, 2, 3), -9)
		}, []float64{-9, -2, 3, 4, 0.5, -9}},
		{"Clamp_", func(x *gotch.Tensor) error { return x.Clamp_(-1, 2) }, ref(func(i int, x float64) float64 { return math.Min(math.Max(x, -1), 2) })},
	}
	for _, c := range cases {
		x := from(e, xv, 2, 3)
		if err := c.op(x); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		e.expect(c.name, x, gotch.Float, []int64{2, 3}, c.want)
	}

	// No new handle comes from an in-place op.
	x := from(e, xv, 2, 3)
	y := from(e, xv, 2, 3)
	live := gotch.LiveHandles()
	x.MustAdd_(y)
	x.MustMulScalar_(2)
	x.MustClamp_(-3, 3)
	if got := gotch.LiveHandles(); got != live {
		t.Errorf("in-place ops changed the live handles from %d to %d", live, got)
	}
	// The result type must fit the receiver: an int tensor cannot take a
	// float in place, and a broadcast cannot grow the receiver.
	i := from(e, []int64{1, 2, 3}, 3)
	if err := i.Add_(from(e, []float32{0.5, 0.5, 0.5}, 3)); err == nil {
		t.Error("int64.Add_(float32): got no error")
	}
	if err := from(e, []float32{1, 2, 3}, 1, 3).Add_(x); err == nil {
		t.Error("[1 3].Add_([2 3]): got no error")
	}
	// Integer in-place arithmetic stays integer.
	i.MustMulScalar_(3)
	e.expect("int64.MulScalar_(3)", i, gotch.Int64, []int64{3}, []float64{3, 6, 9})
	i.MustFill_(-4)
	e.expect("int64.Fill_(-4)", i, gotch.Int64, []int64{3}, []float64{-4, -4, -4})
	// Writing through a view changes the base: a patched activation.
	act := from(e, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	act.MustSelect(1, 1).MustCopy_(from(e, []float32{-1, -2}, 2))
	e.expect("Select.Copy_", act, gotch.Float, []int64{2, 3}, []float64{1, -1, 3, 4, -2, 6})
}
