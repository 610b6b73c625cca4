//go:build cgo

package einops_test

import (
	"math"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/einops"
	"github.com/golens/golens/gotch/gotchtest"
)

// moveCase is a Rearrange or Repeat whose every output element is an input
// element: src maps an output multi-index to the input's, worked out by
// hand from einops's semantics (row-major composition, "(h d)": d fastest).
type moveCase struct {
	name    string
	op      func(*gotch.Tensor, string, ...einops.Axis) (*gotch.Tensor, error)
	in      []int64
	pattern string
	axes    []einops.Axis
	out     []int64
	src     func(o []int) []int
	view    bool // the result shares the input's memory
}

var (
	rearrange = einops.Rearrange
	repeat    = einops.Repeat
)

var moveCases = []moveCase{
	// TransformerLens's uses.
	{"split heads", rearrange, []int64{2, 3, 12}, "b p (h d) -> b p h d", []einops.Axis{einops.Size("h", 3)}, []int64{2, 3, 3, 4},
		func(o []int) []int { return []int{o[0], o[1], o[2]*4 + o[3]} }, true},
	{"split heads, head first", rearrange, []int64{2, 3, 12}, "b p (h d) -> b h p d", []einops.Axis{einops.Size("d", 4)}, []int64{2, 3, 3, 4},
		func(o []int) []int { return []int{o[0], o[2], o[1]*4 + o[3]} }, true},
	{"merge heads", rearrange, []int64{2, 3, 3, 4}, "b p h d -> b p (h d)", nil, []int64{2, 3, 12},
		func(o []int) []int { return []int{o[0], o[1], o[2] / 4, o[2] % 4} }, true},
	{"heads last", rearrange, []int64{2, 3, 4, 5}, "b h q k -> b q k h", nil, []int64{2, 4, 5, 3},
		func(o []int) []int { return []int{o[0], o[3], o[1], o[2]} }, true},
	// Transposes, flattening, composition.
	{"transpose", rearrange, []int64{2, 3}, "h w -> w h", nil, []int64{3, 2},
		func(o []int) []int { return []int{o[1], o[0]} }, true},
	{"flatten", rearrange, []int64{2, 3, 4}, "b h w -> b (h w)", nil, []int64{2, 12},
		func(o []int) []int { return []int{o[0], o[1] / 4, o[1] % 4} }, true},
	{"flatten transposed (a copy)", rearrange, []int64{2, 3, 4}, "b h w -> b (w h)", nil, []int64{2, 12},
		func(o []int) []int { return []int{o[0], o[1] % 3, o[1] / 3} }, false},
	{"decompose one dim into three", rearrange, []int64{24}, "(a b c) -> c b a", []einops.Axis{einops.Size("a", 2), einops.Size("b", 3)}, []int64{4, 3, 2},
		func(o []int) []int { return []int{o[2]*12 + o[1]*4 + o[0]} }, true},
	{"space to depth", rearrange, []int64{4, 6}, "(h h1) (w w1) -> h w (h1 w1)", []einops.Axis{einops.Size("h1", 2), einops.Size("w1", 2)}, []int64{2, 3, 4},
		func(o []int) []int { return []int{o[0]*2 + o[2]/2, o[1]*2 + o[2]%2} }, false},
	{"a one-axis composition", rearrange, []int64{2, 3}, "(a) b -> b (a)", nil, []int64{3, 2},
		func(o []int) []int { return []int{o[1], o[0]} }, true},
	{"identity", rearrange, []int64{2, 3}, "a b -> a b", nil, []int64{2, 3},
		func(o []int) []int { return o }, true},
	{"a given size that agrees", rearrange, []int64{2, 3}, "a b -> b a", []einops.Axis{einops.Size("a", 2), einops.Size("b", 3)}, []int64{3, 2},
		func(o []int) []int { return []int{o[1], o[0]} }, true},
	// Ellipsis.
	{"ellipsis first", rearrange, []int64{2, 3, 4}, "... d -> d ...", nil, []int64{4, 2, 3},
		func(o []int) []int { return []int{o[1], o[2], o[0]} }, true},
	{"ellipsis composed", rearrange, []int64{2, 3, 4}, "b ... -> b (...)", nil, []int64{2, 12},
		func(o []int) []int { return []int{o[0], o[1] / 4, o[1] % 4} }, true},
	{"ellipsis composed with an axis", rearrange, []int64{2, 3, 4}, "... d -> (d ...)", nil, []int64{24},
		func(o []int) []int { return []int{(o[0] % 6) / 3, o[0] % 3, o[0] / 6} }, false},
	{"ellipsis of no dims", rearrange, []int64{2, 3}, "b ... d -> d b ...", nil, []int64{3, 2},
		func(o []int) []int { return []int{o[1], o[0]} }, true},
	{"ellipsis in the middle", rearrange, []int64{2, 3, 4, 5}, "b ... d -> b d ...", nil, []int64{2, 5, 3, 4},
		func(o []int) []int { return []int{o[0], o[2], o[3], o[1]} }, true},
	// Unit dims.
	{"drop a unit dim", rearrange, []int64{2, 1, 3}, "b 1 d -> b d", nil, []int64{2, 3},
		func(o []int) []int { return []int{o[0], 0, o[1]} }, true},
	{"drop a () dim", rearrange, []int64{2, 1, 3}, "b () d -> d b", nil, []int64{3, 2},
		func(o []int) []int { return []int{o[1], 0, o[0]} }, true},
	{"add unit dims", rearrange, []int64{2, 3}, "b d -> b () d 1", nil, []int64{2, 1, 3, 1},
		func(o []int) []int { return []int{o[0], o[2]} }, true},
	{"1 inside a composition", rearrange, []int64{2, 3}, "b d -> (b 1 d)", nil, []int64{6},
		func(o []int) []int { return []int{o[0] / 3, o[0] % 3} }, true},
	{"scalar to unit dims", rearrange, []int64{}, "-> () 1", nil, []int64{1, 1},
		func(o []int) []int { return []int{} }, true},
	{"scalar", rearrange, []int64{}, " -> ", nil, []int64{},
		func(o []int) []int { return []int{} }, true},
	// Repeat.
	{"repeat a vector", repeat, []int64{4}, "d -> b d", []einops.Axis{einops.Size("b", 3)}, []int64{3, 4},
		func(o []int) []int { return []int{o[1]} }, true},
	{"repeat each element", repeat, []int64{2, 3}, "h w -> h (w 3)", nil, []int64{2, 9},
		func(o []int) []int { return []int{o[0], o[1] / 3} }, false},
	{"repeat each row", repeat, []int64{2, 3}, "h w -> (h 2) w", nil, []int64{4, 3},
		func(o []int) []int { return []int{o[0] / 2, o[1]} }, false},
	{"tile", repeat, []int64{2, 3}, "h w -> (2 h) w", nil, []int64{4, 3},
		func(o []int) []int { return []int{o[0] % 2, o[1]} }, false},
	{"new axis last", repeat, []int64{2, 3}, "h w -> h w c", []einops.Axis{einops.Size("c", 2)}, []int64{2, 3, 2},
		func(o []int) []int { return []int{o[0], o[1]} }, true},
	{"upsample", repeat, []int64{2, 3}, "h w -> (h h2) (w w2)", []einops.Axis{einops.Size("h2", 2), einops.Size("w2", 2)}, []int64{4, 6},
		func(o []int) []int { return []int{o[0] / 2, o[1] / 2} }, false},
	{"repeat and transpose", repeat, []int64{2, 3}, "h w -> w r h", []einops.Axis{einops.Size("r", 2)}, []int64{3, 2, 2},
		func(o []int) []int { return []int{o[2], o[0]} }, true},
	{"repeat with an ellipsis", repeat, []int64{2, 3}, "... -> b ...", []einops.Axis{einops.Size("b", 2)}, []int64{2, 2, 3},
		func(o []int) []int { return []int{o[1], o[2]} }, true},
	{"repeat, nothing new", repeat, []int64{2, 3}, "h w -> w h", nil, []int64{3, 2},
		func(o []int) []int { return []int{o[1], o[0]} }, true},
}

// TestMoves compares each Rearrange and Repeat with its index map, then
// negates the input in place: a view must follow, a copy must not.
func TestMoves(t *testing.T) {
	gotchtest.CheckLeaks(t)
	for _, c := range moveCases {
		t.Run(c.name, func(t *testing.T) {
			x, in := tensor(t, counting, c.in...)
			defer x.Free()
			y, err := c.op(x, c.pattern, c.axes...)
			if err != nil {
				t.Fatal(err)
			}
			defer y.Free()
			if y == x {
				t.Fatal("the result is the input's handle, not a new one")
			}
			if !slices.Equal(y.Shape(), c.out) {
				t.Fatalf("shape %v, want %v", y.Shape(), c.out)
			}
			want := make([]float64, numel(c.out))
			each(c.out, func(o []int) { want[flat(c.out, o)] = in[flat(c.in, c.src(o))] })
			if got := values(t, y); !slices.Equal(got, want) {
				t.Fatalf("values\n got %v\nwant %v", got, want)
			}
			if err := x.MulScalar_(-1); err != nil {
				t.Fatal(err)
			}
			got, negated := values(t, y), make([]float64, len(want))
			for i, w := range want {
				negated[i] = -w
			}
			switch {
			case c.view && !slices.Equal(got, negated):
				t.Errorf("not a view of the input: after negating the input, got %v", got)
			case !c.view && !slices.Equal(got, want):
				t.Errorf("shares the input's memory, want a copy: after negating the input, got %v", got)
			}
			if x.Freed() {
				t.Error("the input was freed")
			}
		})
	}
}

// reduceCase is a Reduce: dst maps an input multi-index to the output
// element it goes into, worked out by hand.
type reduceCase struct {
	name    string
	in      []int64
	pattern string
	red     einops.Reduction
	axes    []einops.Axis
	out     []int64
	dst     func(i []int) []int
	data    func(i int) float64 // nil: mixed values in [0.5, 1.5]
}

// mixed are values in [0.5, 1.5], not in order, so that a product of many
// stays near 1 and max and min are not at the ends.
func mixed(i int) float64 { return 0.5 + float64((i*7)%11)/10 }

// someZero is zero at every third element, for any and all.
func someZero(i int) float64 {
	if i%3 == 0 {
		return 0
	}
	return mixed(i)
}

var reduceCases = []reduceCase{
	{"mean over positions", []int64{2, 3, 4}, "b p d -> b d", einops.Mean, nil, []int64{2, 4},
		func(i []int) []int { return []int{i[0], i[2]} }, nil},
	{"sum over positions", []int64{2, 3, 4}, "b p d -> b d", einops.Sum, nil, []int64{2, 4},
		func(i []int) []int { return []int{i[0], i[2]} }, nil},
	{"max over positions", []int64{2, 3, 4}, "b p d -> b d", einops.Max, nil, []int64{2, 4},
		func(i []int) []int { return []int{i[0], i[2]} }, nil},
	{"min over positions", []int64{2, 3, 4}, "b p d -> b d", einops.Min, nil, []int64{2, 4},
		func(i []int) []int { return []int{i[0], i[2]} }, nil},
	{"prod over positions", []int64{2, 3, 4}, "b p d -> b d", einops.Prod, nil, []int64{2, 4},
		func(i []int) []int { return []int{i[0], i[2]} }, nil},
	{"max pooling pairs", []int64{2, 4, 3}, "b (p 2) d -> b p d", einops.Max, nil, []int64{2, 2, 3},
		func(i []int) []int { return []int{i[0], i[1] / 2, i[2]} }, nil},
	{"mean pooling 2x2", []int64{4, 6}, "(h h2) (w w2) -> h w", einops.Mean, []einops.Axis{einops.Size("h2", 2), einops.Size("w2", 2)}, []int64{2, 3},
		func(i []int) []int { return []int{i[0] / 2, i[1] / 2} }, nil},
	{"adaptive max pooling", []int64{6, 2}, "(h1 h2) w -> h1", einops.Max, []einops.Axis{einops.Size("h1", 2)}, []int64{2},
		func(i []int) []int { return []int{i[0] / 3} }, nil},
	{"sum of two axes", []int64{2, 3, 4}, "b p d -> b", einops.Sum, nil, []int64{2},
		func(i []int) []int { return []int{i[0]} }, nil},
	{"prod of two axes", []int64{2, 3, 4}, "a b c -> b", einops.Prod, nil, []int64{3},
		func(i []int) []int { return []int{i[1]} }, nil},
	{"reduce and transpose", []int64{2, 3, 4}, "b p d -> d b", einops.Mean, nil, []int64{4, 2},
		func(i []int) []int { return []int{i[2], i[0]} }, nil},
	{"keep unit dims", []int64{2, 3, 2, 2}, "b c h w -> b c 1 ()", einops.Mean, nil, []int64{2, 3, 1, 1},
		func(i []int) []int { return []int{i[0], i[1], 0, 0} }, nil},
	{"over an ellipsis", []int64{2, 3, 4}, "... d -> d", einops.Sum, nil, []int64{4},
		func(i []int) []int { return []int{i[2]} }, nil},
	{"everything", []int64{2, 3}, "a b ->", einops.Sum, nil, []int64{},
		func(i []int) []int { return []int{} }, nil},
	{"nothing reduced", []int64{2, 3}, "a b -> b a", einops.Max, nil, []int64{3, 2},
		func(i []int) []int { return []int{i[1], i[0]} }, nil},
	{"any", []int64{2, 3, 2}, "a b c -> a c", einops.Any, nil, []int64{2, 2},
		func(i []int) []int { return []int{i[0], i[2]} }, someZero},
	{"all", []int64{2, 3, 2}, "a b c -> b", einops.All, nil, []int64{3},
		func(i []int) []int { return []int{i[1]} }, someZero},
}

// TestReduce compares each Reduce with explicit loops over the input.
func TestReduce(t *testing.T) {
	gotchtest.CheckLeaks(t)
	for _, c := range reduceCases {
		t.Run(c.name, func(t *testing.T) {
			data := c.data
			if data == nil {
				data = mixed
			}
			x, in := tensor(t, data, c.in...)
			defer x.Free()
			y, err := einops.Reduce(x, c.pattern, c.red, c.axes...)
			if err != nil {
				t.Fatal(err)
			}
			defer y.Free()
			if !slices.Equal(y.Shape(), c.out) {
				t.Fatalf("shape %v, want %v", y.Shape(), c.out)
			}
			want := make([]float64, numel(c.out))
			count := make([]int, len(want))
			each(c.in, func(i []int) {
				o, v := flat(c.out, c.dst(i)), in[flat(c.in, i)]
				if count[o] == 0 {
					want[o] = v
				} else {
					switch c.red {
					case einops.Sum, einops.Mean:
						want[o] += v
					case einops.Prod:
						want[o] *= v
					case einops.Max:
						want[o] = math.Max(want[o], v)
					case einops.Min:
						want[o] = math.Min(want[o], v)
					case einops.Any:
						want[o] = math.Max(want[o], v)
					case einops.All:
						want[o] = math.Min(want[o], v)
					}
				}
				count[o]++
			})
			for o := range want {
				switch c.red {
				case einops.Mean:
					want[o] /= float64(count[o])
				case einops.Any, einops.All:
					want[o] = map[bool]float64{false: 0, true: 1}[want[o] != 0]
				}
			}
			gotchtest.Close(t, c.name, values(t, y), want, 1e-6)
		})
	}
}

// TestEinsum compares each Einsum with explicit loops.
func TestEinsum(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cases := []struct {
		name    string
		pattern string
		shapes  [][]int64
		out     []int64
		ref     func(in [][]float64) []float64
	}{
		{"unembed", "batch pos d_model, d_model d_vocab -> batch pos d_vocab", [][]int64{{2, 3, 4}, {4, 5}}, []int64{2, 3, 5},
			func(in [][]float64) []float64 {
				out := make([]float64, 2*3*5)
				for b := range 2 {
					for p := range 3 {
						for v := range 5 {
							for d := range 4 {
								out[(b*3+p)*5+v] += in[0][(b*3+p)*4+d] * in[1][d*5+v]
							}
						}
					}
				}
				return out
			}},
		{"per-head result", "b p h d, h d m -> b p h m", [][]int64{{2, 3, 2, 4}, {2, 4, 5}}, []int64{2, 3, 2, 5},
			func(in [][]float64) []float64 {
				out := make([]float64, 2*3*2*5)
				for b := range 2 {
					for p := range 3 {
						for h := range 2 {
							for m := range 5 {
								for d := range 4 {
									out[((b*3+p)*2+h)*5+m] += in[0][((b*3+p)*2+h)*4+d] * in[1][(h*4+d)*5+m]
								}
							}
						}
					}
				}
				return out
			}},
		{"dot over the last dim", "... i, ... i -> ...", [][]int64{{2, 3, 4}, {2, 3, 4}}, []int64{2, 3},
			func(in [][]float64) []float64 {
				out := make([]float64, 6)
				for r := range 6 {
					for i := range 4 {
						out[r] += in[0][r*4+i] * in[1][r*4+i]
					}
				}
				return out
			}},
		{"broadcast ellipsis", "... i, i j -> ... j", [][]int64{{2, 3, 4}, {4, 5}}, []int64{2, 3, 5},
			func(in [][]float64) []float64 {
				out := make([]float64, 2*3*5)
				for r := range 6 {
					for j := range 5 {
						for i := range 4 {
							out[r*5+j] += in[0][r*4+i] * in[1][i*5+j]
						}
					}
				}
				return out
			}},
		{"sum of an axis left out", "i j -> i", [][]int64{{3, 4}}, []int64{3},
			func(in [][]float64) []float64 {
				out := make([]float64, 3)
				for i := range 3 {
					for j := range 4 {
						out[i] += in[0][i*4+j]
					}
				}
				return out
			}},
		{"everything summed", "i j, j k ->", [][]int64{{2, 3}, {3, 4}}, []int64{},
			func(in [][]float64) []float64 {
				var s float64
				for i := range 2 {
					for j := range 3 {
						for k := range 4 {
							s += in[0][i*3+j] * in[1][j*4+k]
						}
					}
				}
				return []float64{s}
			}},
		{"trace", "i i ->", [][]int64{{3, 3}}, []int64{},
			func(in [][]float64) []float64 { return []float64{in[0][0] + in[0][4] + in[0][8]} }},
		{"transpose", "i j -> j i", [][]int64{{2, 3}}, []int64{3, 2},
			func(in [][]float64) []float64 {
				out := make([]float64, 6)
				for i := range 2 {
					for j := range 3 {
						out[j*2+i] = in[0][i*3+j]
					}
				}
				return out
			}},
		{"underscore and a one-axis composition", "_ (j) -> j", [][]int64{{2, 3}}, []int64{3},
			func(in [][]float64) []float64 {
				out := make([]float64, 3)
				for i := range 2 {
					for j := range 3 {
						out[j] += in[0][i*3+j]
					}
				}
				return out
			}},
		{"three operands", "a b, b c, c d -> a d", [][]int64{{2, 3}, {3, 2}, {2, 2}}, []int64{2, 2},
			func(in [][]float64) []float64 {
				out := make([]float64, 4)
				for a := range 2 {
					for d := range 2 {
						for b := range 3 {
							for c := range 2 {
								out[a*2+d] += in[0][a*3+b] * in[1][b*2+c] * in[2][c*2+d]
							}
						}
					}
				}
				return out
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ops []*gotch.Tensor
			var in [][]float64
			for k, shape := range c.shapes {
				x, v := tensor(t, func(i int) float64 { return mixed(i+5*k) - 1 }, shape...)
				defer x.Free()
				ops, in = append(ops, x), append(in, v)
			}
			y, err := einops.Einsum(c.pattern, ops...)
			if err != nil {
				t.Fatal(err)
			}
			defer y.Free()
			if !slices.Equal(y.Shape(), c.out) {
				t.Fatalf("shape %v, want %v", y.Shape(), c.out)
			}
			gotchtest.Close(t, c.name, values(t, y), c.ref(in), 1e-6)
		})
	}
}

// TestScope checks that the result joins the input's scope and that the
// call leaves nothing else in it.
func TestScope(t *testing.T) {
	gotchtest.CheckLeaks(t)
	s := gotch.NewScope()
	defer s.Close()
	x, _ := tensor(t, counting, 2, 3, 4)
	s.Attach(x)
	y, err := einops.Rearrange(x, "b h w -> b (w h)")
	if err != nil {
		t.Fatal(err)
	}
	if y.Scope() != s {
		t.Error("the result is not in the input's scope")
	}
	live := gotch.LiveHandles()
	s.Close()
	if got := gotch.LiveHandles(); got != live-2 {
		t.Errorf("closing the scope freed %d handles, want 2 (the input and the result)", live-got)
	}
}
