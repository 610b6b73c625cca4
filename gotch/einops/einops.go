package einops

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golens/golens/gotch"
)

// Axis gives a named axis its size, for an axis the pattern cannot infer
// from the tensor's shape: einops's keyword arguments, so
// rearrange(x, "b p (h d) -> b h p d", h=12) is
// Rearrange(x, "b p (h d) -> b h p d", Size("h", 12)).
type Axis struct {
	name string
	size int
}

// Size gives axis name the size n.
func Size(name string, n int) Axis { return Axis{name: name, size: n} }

// String writes the size as einops's keyword argument, "h=12".
func (a Axis) String() string { return fmt.Sprintf("%s=%d", a.name, a.size) }

// Reduction is how Reduce combines the elements along the axes it removes.
type Reduction string

// The reductions einops knows.
const (
	Sum  Reduction = "sum"
	Mean Reduction = "mean" // floating dtypes only
	Max  Reduction = "max"
	Min  Reduction = "min"
	Prod Reduction = "prod"
	Any  Reduction = "any" // true where any element is nonzero: bool
	All  Reduction = "all" // true where every element is nonzero: bool
)

var reductions = []Reduction{Sum, Mean, Max, Min, Prod, Any, All}

// Rearrange reorders x's dims, splits and merges them, and inserts or
// removes unit dims, as pattern says and as einops.rearrange does: "b p (h d) -> b p h d" with Size("h",
// 12) splits heads, "b h q k -> b q k h" moves an axis, "b ... d -> b (...)
// d" merges whatever dims the ellipsis stands for. Both sides name the same
// axes; a dim of several axes needs the sizes of all but one of them.
//
// The result is a new handle that the caller frees; it shares x's memory
// wherever torch's reshape and permute can make a view (splitting, moving
// and adding or removing unit dims always can; merging dims that are not
// adjacent in memory, as "b h w -> b (w h)" does, cannot), and is
// otherwise a copy. x is never freed, and
// nothing made along the way outlives the call. The result joins x's Scope,
// if it has one, as any op's result does.
func Rearrange(x *gotch.Tensor, pattern string, axes ...Axis) (*gotch.Tensor, error) {
	return transform("Rearrange", rearrangeKind, "", x, pattern, axes)
}

// Reduce rearranges x as pattern says and combines the elements along every
// axis the right side leaves out, as einops.reduce: "b p d -> b d" with Mean
// averages over positions, "b (p 2) d -> b p d" with Max pools pairs of
// positions. The right side may not add axes; a unit dim (1 or ()) keeps a
// reduced dim as size 1.
//
// The result is a new tensor that the caller frees, or, when the pattern
// reduces nothing, a view as Rearrange's. Ownership is as for Rearrange.
func Reduce(x *gotch.Tensor, pattern string, reduction Reduction, axes ...Axis) (*gotch.Tensor, error) {
	return transform("Reduce", reduceKind, reduction, x, pattern, axes)
}

// Repeat rearranges x as pattern says and repeats it along every axis the
// left side lacks, as einops.repeat: "d -> b d" with Size("b", 4) stacks 4
// copies, "h w -> h (w 3)" repeats each element 3 times along w, "h w -> (2
// h) w" tiles x twice. Each new named axis needs a Size; a number is an
// axis of that size.
//
// Ownership is as for Rearrange. A result that needs no merging of the
// repeated axes is a broadcast view of x (an expanded tensor with stride
// 0): writing into it writes into x, and into every copy at once.
func Repeat(x *gotch.Tensor, pattern string, axes ...Axis) (*gotch.Tensor, error) {
	return transform("Repeat", repeatKind, "", x, pattern, axes)
}

func transform(fn string, k kind, red Reduction, x *gotch.Tensor, pattern string, axes []Axis) (*gotch.Tensor, error) {
	fail := func(err error) error {
		args := []string{x.Spec(), fmt.Sprintf("%q", pattern)}
		if k == reduceKind {
			args = append(args, fmt.Sprintf("%q", string(red)))
		}
		for _, a := range axes {
			args = append(args, a.String())
		}
		return fmt.Errorf("einops: %s(%s): %w", fn, strings.Join(args, ", "), err)
	}
	switch {
	case x == nil:
		return nil, fail(errors.New("nil tensor"))
	case x.Freed():
		return nil, fail(fmt.Errorf("tensor %w", gotch.ErrFreed))
	case k == reduceKind && !validReduction(red):
		return nil, fail(fmt.Errorf("unknown reduction %q: want one of %v", string(red), reductions))
	}
	p, err := makePlan(k, pattern, x.Shape(), axes)
	if err != nil {
		return nil, fail(err)
	}
	if red == Mean && p.nReduced > 0 && !x.DType().IsFloat() {
		return nil, fail(fmt.Errorf("mean needs a floating dtype, not %s", x.DType()))
	}
	y, err := p.apply(x, red)
	if err != nil {
		return nil, fail(err)
	}
	return y, nil
}

func validReduction(r Reduction) bool {
	for _, v := range reductions {
		if r == v {
			return true
		}
	}
	return false
}

// apply runs the plan on x: reshape into elementary axes, permute, reduce
// the trailing reduced dims, insert and expand new axes, reshape into the
// output dims. Each intermediate is freed once the next exists.
func (p *plan) apply(x *gotch.Tensor, red Reduction) (*gotch.Tensor, error) {
	cur := x
	var err error
	step := func(what string, f func(*gotch.Tensor) (*gotch.Tensor, error)) {
		if err != nil {
			return
		}
		next, e := f(cur)
		if e != nil {
			err = fmt.Errorf("%s: %w", what, e)
			return
		}
		if cur != x {
			cur.Free()
		}
		cur = next
	}
	if p.initShape != nil {
		step("split into axes", func(t *gotch.Tensor) (*gotch.Tensor, error) { return t.Reshape(p.initShape) })
	}
	if p.perm != nil {
		step("permute", func(t *gotch.Tensor) (*gotch.Tensor, error) { return t.Permute(p.perm) })
	}
	if p.nReduced > 0 {
		step(string(red), func(t *gotch.Tensor) (*gotch.Tensor, error) { return reduceTrailing(t, red, p.nReduced) })
	}
	if p.unsqueezed != nil {
		step("insert new axes", func(t *gotch.Tensor) (*gotch.Tensor, error) { return t.Reshape(p.unsqueezed) })
		step("repeat new axes", func(t *gotch.Tensor) (*gotch.Tensor, error) { return t.Expand(p.expanded) })
	}
	if p.finalShape != nil {
		step("compose axes", func(t *gotch.Tensor) (*gotch.Tensor, error) { return t.Reshape(p.finalShape) })
	}
	switch {
	case err != nil:
		if cur != x {
			cur.Free()
		}
		return nil, err
	case cur == x: // the pattern changes nothing: the caller still gets a handle of its own
		return x.Alias()
	}
	return cur, nil
}

// reduceTrailing reduces t's last n dims.
func reduceTrailing(t *gotch.Tensor, red Reduction, n int) (*gotch.Tensor, error) {
	d := t.Dim()
	dims := make([]int64, n)
	for i := range dims {
		dims[i] = int64(d - n + i)
	}
	switch red {
	case Sum:
		return t.SumDims(dims, false)
	case Mean:
		return t.MeanDims(dims, false)
	case Max:
		return t.Amax(dims, false)
	case Min:
		return t.Amin(dims, false)
	}
	// torch reduces these along one dim at a time; the last first, so the
	// others keep their numbers.
	one := map[Reduction]func(*gotch.Tensor, int64, bool) (*gotch.Tensor, error){
		Prod: (*gotch.Tensor).ProdDim, Any: (*gotch.Tensor).AnyDim, All: (*gotch.Tensor).AllDim,
	}[red]
	cur := t
	for dim := d - 1; dim >= d-n; dim-- {
		next, err := one(cur, int64(dim), false)
		if cur != t {
			cur.Free()
		}
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}
