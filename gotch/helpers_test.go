//go:build cgo

package gotch_test

// Shared helpers of the op tests: a per-test scope on the device under
// test, checks that say got/want, and float64 references in plain Go.

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// tol is the relative tolerance of float32 results against float64
// references.
const tol = 1e-4

// env is one test's device and scope.
type env struct {
	t   *testing.T
	s   *gotch.Scope
	dev gotch.Device
}

// newEnv returns the test's device and a fresh scope. Call it right after
// gotchtest.CheckLeaks, and defer done.
func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, s: gotch.NewScope(), dev: gotchtest.Device(t)}
}

// done frees the scope and turns a panic of a Must op into a test failure,
// so one failing op does not take the whole test binary down.
func (e *env) done() {
	e.s.Close()
	if r := recover(); r != nil {
		e.t.Fatalf("%v", gotch.PanicError(r))
	}
}

// hasFloat64 reports whether the device has float64 tensors (MPS has not).
func (e *env) hasFloat64() bool { return e.dev.Type != gotch.MPSType }

// own puts tensors made outside any scope (creation ops, Cat, Stack,
// Einsum) into the test's scope and returns the first.
func (e *env) own(ts ...*gotch.Tensor) *gotch.Tensor {
	for _, x := range ts {
		e.s.Attach(x)
	}
	if len(ts) == 0 {
		return nil
	}
	return ts[0]
}

// from makes a tensor of data and shape on the device under test, owned by
// the test's scope.
func from[T gotch.Elem](e *env, data []T, shape ...int64) *gotch.Tensor {
	e.t.Helper()
	x, err := gotch.FromSlice(data, shape, e.dev)
	if err != nil {
		e.t.Fatalf("FromSlice(%v): %v", shape, err)
	}
	return e.s.Attach(x)
}

// expect checks x's dtype, shape, device and values: exactly for integer
// and bool dtypes, within tol (relative, the whole tensor) for floats.
func (e *env) expect(name string, x *gotch.Tensor, dtype gotch.DType, shape []int64, want []float64) {
	e.t.Helper()
	if x == nil {
		e.t.Errorf("%s: got a nil tensor", name)
		return
	}
	if x.DType() != dtype {
		e.t.Errorf("%s: dtype got %s, want %s", name, x.DType(), dtype)
	}
	if !slices.Equal(x.Shape(), shape) {
		e.t.Errorf("%s: shape got %v, want %v", name, x.Shape(), shape)
		return
	}
	if x.Device() != e.dev {
		e.t.Errorf("%s: device got %s, want %s", name, x.Device(), e.dev)
	}
	got := gotchtest.Values(e.t, x)
	if dtype.IsFloat() {
		gotchtest.Close(e.t, name, got, want, tol)
		return
	}
	if !slices.Equal(got, want) {
		e.t.Errorf("%s: got %v, want %v", name, got, want)
	}
}

// ints reads an integer tensor.
func (e *env) ints(x *gotch.Tensor) []int64 {
	e.t.Helper()
	v, err := gotch.ToSlice[int64](x)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// vals reads a tensor as float64s.
func (e *env) vals(x *gotch.Tensor) []float64 {
	e.t.Helper()
	return gotchtest.Values(e.t, x)
}

// randf returns n deterministic float32 values in [lo, hi).
func randf(seed uint64, n int, lo, hi float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return v
}

// f64 widens float32 data for a reference computation.
func f64(x []float32) []float64 {
	v := make([]float64, len(x))
	for i, a := range x {
		v[i] = float64(a)
	}
	return v
}

// i2f converts int64 data to float64s.
func i2f[T int64 | int32 | bool](x []T) []float64 {
	v := make([]float64, len(x))
	for i, a := range x {
		switch a := any(a).(type) {
		case int64:
			v[i] = float64(a)
		case int32:
			v[i] = float64(a)
		case bool:
			if a {
				v[i] = 1
			}
		}
	}
	return v
}

// mapf applies f to every element.
func mapf(x []float64, f func(float64) float64) []float64 {
	v := make([]float64, len(x))
	for i, a := range x {
		v[i] = f(a)
	}
	return v
}

func prod(shape []int64) int {
	n := 1
	for _, s := range shape {
		n *= int(s)
	}
	return n
}

// coords are the row-major coordinates of flat index i in shape.
func coords(shape []int64, i int) []int {
	c := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		c[d] = i % int(shape[d])
		i /= int(shape[d])
	}
	return c
}

// offset is the flat row-major index of coordinates c in shape.
func offset(shape []int64, c []int) int {
	o := 0
	for d := range shape {
		o = o*int(shape[d]) + c[d]
	}
	return o
}

// along applies f to every line of x along dim and writes its results back
// in place of the line: the reference for softmax, cumsum and the like.
func along(shape []int64, dim int, x []float64, f func([]float64) []float64) []float64 {
	out := make([]float64, len(x))
	n, stride := int(shape[dim]), prod(shape[dim+1:])
	outer := len(x) / max(n*stride, 1)
	line := make([]float64, n)
	for o := range outer {
		for i := range stride {
			for k := range n {
				line[k] = x[o*n*stride+k*stride+i]
			}
			for k, v := range f(line) {
				out[o*n*stride+k*stride+i] = v
			}
		}
	}
	return out
}

// reduce applies f to the elements of x grouped by their coordinates
// outside dims, in row-major order of the result.
func reduce(shape []int64, dims []int, x []float64, f func([]float64) float64) []float64 {
	red := make([]bool, len(shape))
	for _, d := range dims {
		red[d] = true
	}
	var kept []int64
	for d, s := range shape {
		if !red[d] {
			kept = append(kept, s)
		}
	}
	groups := make([][]float64, prod(kept))
	for i, v := range x {
		c := coords(shape, i)
		var kc []int
		for d := range shape {
			if !red[d] {
				kc = append(kc, c[d])
			}
		}
		k := offset(kept, kc)
		groups[k] = append(groups[k], v)
	}
	out := make([]float64, len(groups))
	for i, g := range groups {
		out[i] = f(g)
	}
	return out
}

// permute is x with its dims reordered as torch.permute does.
func permute(shape []int64, perm []int, x []float64) ([]int64, []float64) {
	outShape := make([]int64, len(perm))
	for i, p := range perm {
		outShape[i] = shape[p]
	}
	out := make([]float64, len(x))
	in := make([]int, len(shape))
	for i := range out {
		c := coords(outShape, i)
		for k, p := range perm {
			in[p] = c[k]
		}
		out[i] = x[offset(shape, in)]
	}
	return outShape, out
}

// einsum evaluates an explicit equation ("ij,jk->ik"; single letters, no
// ellipsis) by summing over every assignment of its indices.
func einsum(eq string, shapes [][]int64, xs [][]float64) ([]int64, []float64) {
	lhs, rhs, _ := strings.Cut(eq, "->")
	ins := strings.Split(lhs, ",")
	size := map[byte]int64{}
	var letters []byte
	for k, in := range ins {
		for d := range len(in) {
			if _, ok := size[in[d]]; !ok {
				letters = append(letters, in[d])
			}
			size[in[d]] = shapes[k][d]
		}
	}
	outShape := make([]int64, len(rhs))
	for d := range len(rhs) {
		outShape[d] = size[rhs[d]]
	}
	all := make([]int64, len(letters))
	for i, l := range letters {
		all[i] = size[l]
	}
	out := make([]float64, prod(outShape))
	val := map[byte]int{}
	pick := func(spec string, shape []int64) int {
		c := make([]int, len(spec))
		for d := range len(spec) {
			c[d] = val[spec[d]]
		}
		return offset(shape, c)
	}
	for i := range prod(all) {
		for k, c := range coords(all, i) {
			val[letters[k]] = c
		}
		p := 1.0
		for k, in := range ins {
			p *= xs[k][pick(in, shapes[k])]
		}
		out[pick(rhs, outShape)] += p
	}
	return outShape, out
}

// matmul multiplies row-major matrices a [n m] and b [m p].
func matmul(a, b []float64, n, m, p int) []float64 {
	out := make([]float64, n*p)
	for i := range n {
		for j := range p {
			for k := range m {
				out[i*p+j] += a[i*m+k] * b[k*p+j]
			}
		}
	}
	return out
}

// transpose2 transposes a row-major matrix [n m].
func transpose2(a []float64, n, m int) []float64 {
	out := make([]float64, n*m)
	for i := range n {
		for j := range m {
			out[j*n+i] = a[i*m+j]
		}
	}
	return out
}

func softmax(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	out := make([]float64, len(x))
	var z float64
	for i, v := range x {
		out[i] = math.Exp(v - m)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

func logsumexp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	var z float64
	for _, v := range x {
		z += math.Exp(v - m)
	}
	return m + math.Log(z)
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

func mean(x []float64) float64 { return sum(x) / float64(len(x)) }

// variance divides by n-1 when unbiased, else by n.
func variance(x []float64, unbiased bool) float64 {
	m := mean(x)
	var s float64
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	if unbiased {
		return s / float64(len(x)-1)
	}
	return s / float64(len(x))
}

// bools turns 0/1 values into a readable list for failure messages.
func bools(x ...int) []float64 { return i2f(toInt64(x)) }

func toInt64(x []int) []int64 {
	v := make([]int64, len(x))
	for i, a := range x {
		v[i] = int64(a)
	}
	return v
}
