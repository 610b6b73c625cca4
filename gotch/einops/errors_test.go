//go:build cgo

package einops_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/einops"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestErrors checks that each bad call fails, names the problem, and
// leaves no tensor behind.
func TestErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	x, _ := tensor(t, counting, 2, 3, 12) // [b p d]
	defer x.Free()
	ints, err := gotch.FromSlice([]int64{1, 2, 3, 4}, []int64{2, 2}, gotchtest.Device(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ints.Free()
	w, _ := tensor(t, counting, 12, 5)
	defer w.Free()
	var wide []*gotch.Tensor // 5 operands of 11 unit dims, 55 axes in all
	for range 5 {
		u, _ := tensor(t, counting, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
		defer u.Free()
		wide = append(wide, u)
	}
	h := einops.Size
	cases := []struct {
		name string
		run  func() (*gotch.Tensor, error)
		want []string
	}{
		// The pattern's syntax.
		{"empty pattern", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "") }, []string{"empty pattern"}},
		{"blank pattern", func() (*gotch.Tensor, error) { return einops.Reduce(x, "   ", einops.Sum) }, []string{"empty pattern"}},
		{"no arrow", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d") }, []string{`no "->"`}},
		{"two arrows", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> b d p -> b p d") }, []string{`2 "->"`}},
		{"'(' not closed", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p (h d -> b p h d") }, []string{"left side", "unbalanced parentheses", "'(' not closed"}},
		{"')' without '('", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> b p d)") }, []string{"right side", "unbalanced parentheses", "')' without '('"}},
		{"nested parentheses", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p ((h d)) -> b p h d") }, []string{"nested parentheses"}},
		{"ellipsis twice", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "... b ... -> b") }, []string{"more than one ellipsis"}},
		{"ellipsis twice, adjacent", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b ...... -> b") }, []string{"more than one ellipsis"}},
		{"a stray dot", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b.p d -> d") }, []string{"a dot outside the ellipsis"}},
		{"a dot beside the ellipsis", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b .... -> b") }, []string{"a dot outside the ellipsis"}},
		{"unexpected character", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p-d -> b") }, []string{"unexpected character '-'"}},
		{"a name that is not an identifier", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p 2d -> b p 2d") }, []string{`invalid axis name "2d"`}},
		{"a name with a leading underscore", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p _d -> b p _d") }, []string{`"_d"`, "underscore"}},
		{"anonymous axis 0", func() (*gotch.Tensor, error) { return einops.Repeat(x, "b p d -> b p d 0") }, []string{"anonymous axis 0"}},
		{"anonymous axis 01", func() (*gotch.Tensor, error) { return einops.Repeat(x, "b p d -> b p d 01") }, []string{"01", "unit axis as 1"}},
		{"anonymous axis too large", func() (*gotch.Tensor, error) { return einops.Repeat(x, "b p d -> b p d 99999999999999999999") }, []string{"too large"}},
		// The axes on each side.
		{"repeated axis", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b b d -> b d") }, []string{"left side", "axis b appears twice"}},
		{"repeated axis on the right", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> b p (p d)") }, []string{"right side", "axis p appears twice"}},
		{"axis on the left only", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> b p") }, []string{"one side only", "left only: d"}},
		{"axis on the right only", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> b p d e") }, []string{"one side only", "right only: e"}},
		{"anonymous axis in rearrange", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p (d 3) -> b p d 3") }, []string{"rearrange takes no anonymous axes"}},
		{"reduce adds an axis", func() (*gotch.Tensor, error) { return einops.Reduce(x, "b p d -> b p d e", einops.Sum) }, []string{"right side only: e"}},
		{"repeat drops an axis", func() (*gotch.Tensor, error) { return einops.Repeat(x, "b p d -> b p") }, []string{"left side only: d"}},
		{"ellipsis on the right only", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> b p d ...") }, []string{"ellipsis (...) on the right side only"}},
		{"ellipsis in parentheses on the left", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "(b ...) -> b ...") }, []string{"inside parentheses on the left"}},
		{"missing size for a new axis", func() (*gotch.Tensor, error) { return einops.Repeat(x, "b p d -> b p d c r") }, []string{"new axes need a size: c r"}},
		// Sizes against the tensor.
		{"wrong number of dims", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b d -> d b") }, []string{"the left side has 2 dims, the tensor 3"}},
		{"too few dims for the ellipsis", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "a b c d ... -> ... a b c d") }, []string{"4 dims besides the ellipsis", "only 3"}},
		{"size does not divide", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p (h d) -> b h p d", h("h", 5)) }, []string{`dim 2 "(h d)" has size 12`, "h=5", "does not divide"}},
		{"anonymous size does not divide", func() (*gotch.Tensor, error) { return einops.Reduce(x, "b (p 2) d -> b p d", einops.Max) }, []string{`dim 1 "(p 2)" has size 3`, "which 2 does not divide"}},
		{"given size contradicts the tensor", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> b d p", h("p", 4)) }, []string{`dim 1 "p" has size 3`, "p=4 was given"}},
		{"given sizes of a composition contradict", func() (*gotch.Tensor, error) {
			return einops.Rearrange(x, "b p (h d) -> b p h d", h("h", 5), h("d", 3))
		}, []string{`dim 2 "(h d)" has size 12`, "not h=5 × d=3 = 15"}},
		{"anonymous size contradicts", func() (*gotch.Tensor, error) { return einops.Reduce(x, "b 5 d -> b d", einops.Sum) }, []string{`dim 1 "5" has size 3, not 5`}},
		{"unit dim of size 3", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b () d -> b d") }, []string{`dim 1 "()" has size 3, not 1`}},
		{"two unknown sizes in a dim", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p (h d) -> b p h d") }, []string{"cannot infer the sizes of h d"}},
		{"size of an axis the pattern lacks", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> b d p", h("q", 2)) }, []string{"q=2", "does not use"}},
		{"size given twice", func() (*gotch.Tensor, error) { return einops.Repeat(x, "b p d -> b p d c", h("c", 2), h("c", 3)) }, []string{"size of c given twice"}},
		{"negative size", func() (*gotch.Tensor, error) { return einops.Repeat(x, "b p d -> b p d c", h("c", -2)) }, []string{"c=-2", "not negative"}},
		{"invalid size name", func() (*gotch.Tensor, error) { return einops.Rearrange(x, "b p d -> d b p", h("p_", 3)) }, []string{`"p_"`, "underscore"}},
		// Reductions.
		{"unknown reduction", func() (*gotch.Tensor, error) { return einops.Reduce(x, "b p d -> b d", "median") }, []string{`unknown reduction "median"`, "sum"}},
		{"mean of integers", func() (*gotch.Tensor, error) { return einops.Reduce(ints, "a b -> a", einops.Mean) }, []string{"mean needs a floating dtype, not int64"}},
		// Nil tensors.
		{"nil tensor (rearrange)", func() (*gotch.Tensor, error) { return einops.Rearrange(nil, "a -> a") }, []string{"Tensor(nil)", "nil tensor"}},
		{"nil tensor (reduce)", func() (*gotch.Tensor, error) { return einops.Reduce(nil, "a -> ", einops.Sum) }, []string{"nil tensor"}},
		{"nil tensor (repeat)", func() (*gotch.Tensor, error) { return einops.Repeat(nil, "a -> a 2") }, []string{"nil tensor"}},
		// Einsum.
		{"einsum: too few operands", func() (*gotch.Tensor, error) { return einops.Einsum("b p d, d v -> b p v", x) }, []string{"the pattern has 2 operands, got 1"}},
		{"einsum: too many operands", func() (*gotch.Tensor, error) { return einops.Einsum("b p d -> b p", x, w) }, []string{"the pattern has 1 operands, got 2"}},
		{"einsum: no operands", func() (*gotch.Tensor, error) { return einops.Einsum("a -> a") }, []string{"no operands"}},
		{"einsum: nil operand", func() (*gotch.Tensor, error) { return einops.Einsum("b p d, d v -> b p v", x, nil) }, []string{"operand 1 is nil"}},
		{"einsum: empty pattern", func() (*gotch.Tensor, error) { return einops.Einsum("", x) }, []string{"empty pattern"}},
		{"einsum: no arrow", func() (*gotch.Tensor, error) { return einops.Einsum("b p d", x) }, []string{`no "->"`}},
		{"einsum: wrong number of dims", func() (*gotch.Tensor, error) { return einops.Einsum("b p d, d -> b p", x, w) }, []string{`operand 1 has 2 dims, its pattern "d" 1`}},
		{"einsum: too few dims for the ellipsis", func() (*gotch.Tensor, error) { return einops.Einsum("a b c d ... -> a", x) }, []string{"operand 0 has 3 dims", "4"}},
		{"einsum: axis sizes differ", func() (*gotch.Tensor, error) { return einops.Einsum("b p d, v d -> b p v", x, w) }, []string{"axis d has size 12 in operand 0 and 5 in operand 1"}},
		{"einsum: unknown output axis", func() (*gotch.Tensor, error) { return einops.Einsum("b p d -> b q", x) }, []string{"axis q on the right side is on no operand"}},
		{"einsum: repeated output axis", func() (*gotch.Tensor, error) { return einops.Einsum("b p d -> b b", x) }, []string{"axis b appears twice"}},
		{"einsum: composition", func() (*gotch.Tensor, error) { return einops.Einsum("b p (h d) -> b p", x) }, []string{"no compositions", "(h d)"}},
		{"einsum: ellipsis composition", func() (*gotch.Tensor, error) { return einops.Einsum("... d -> (...) d", x) }, []string{"no compositions"}},
		{"einsum: unit dim", func() (*gotch.Tensor, error) { return einops.Einsum("b p d -> b 1 p", x) }, []string{"no unit dims"}},
		{"einsum: anonymous axis", func() (*gotch.Tensor, error) { return einops.Einsum("b 3 d -> b d", x) }, []string{"no anonymous axes", "3"}},
		{"einsum: ellipsis on the right only", func() (*gotch.Tensor, error) { return einops.Einsum("b p d -> ... d", x) }, []string{"ellipsis (...) on the right side only"}},
		{"einsum: more than 52 axes", func() (*gotch.Tensor, error) { return einops.Einsum(wideNames()+" -> a00", wide...) }, []string{"more than 52 distinct axes"}},
	}
	for _, c := range cases {
		y, err := c.run()
		if err == nil {
			t.Errorf("%s: got %s, want an error", c.name, y.Spec())
			y.Free()
			continue
		}
		if y != nil {
			t.Errorf("%s: got a tensor beside the error", c.name)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "einops: ") {
			t.Errorf("%s: error %q does not start with einops:", c.name, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not mention %q", c.name, msg, w)
			}
		}
	}
}

// TestFreedInput checks that a freed input gives gotch.ErrFreed.
func TestFreedInput(t *testing.T) {
	gotchtest.CheckLeaks(t)
	x, _ := tensor(t, counting, 2, 3)
	x.Free()
	for name, run := range map[string]func() (*gotch.Tensor, error){
		"Rearrange": func() (*gotch.Tensor, error) { return einops.Rearrange(x, "a b -> a b") },
		"Reduce":    func() (*gotch.Tensor, error) { return einops.Reduce(x, "a b -> a", einops.Sum) },
		"Repeat":    func() (*gotch.Tensor, error) { return einops.Repeat(x, "a b -> a b 2") },
		"Einsum":    func() (*gotch.Tensor, error) { return einops.Einsum("a b -> a", x) },
	} {
		if _, err := run(); !errors.Is(err, gotch.ErrFreed) {
			t.Errorf("%s of a freed tensor: %v, want ErrFreed", name, err)
		}
	}
}

// wideNames names the 55 axes of the wide operands: "a00 a01 ... a010, a10 ...".
func wideNames() string {
	specs := make([]string, 5)
	for k := range specs {
		var names []string
		for j := range 11 {
			names = append(names, fmt.Sprintf("a%d%d", k, j))
		}
		specs[k] = strings.Join(names, " ")
	}
	return strings.Join(specs, ", ")
}
