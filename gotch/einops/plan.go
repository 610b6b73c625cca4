package einops

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// kind is what a pattern may do to axes: rearrange keeps every axis,
// repeat adds axes, reduce removes them.
type kind int

const (
	rearrangeKind kind = iota
	repeatKind
	reduceKind
)

// plan is a pattern worked out for one input shape: the torch calls that
// carry it out, in einops's order, each left out when it would change
// nothing.
type plan struct {
	initShape  []int64 // the input split into its elementary axes; nil when each dim is one axis
	perm       []int64 // the kept axes in output order, then the reduced ones; nil when in order
	nReduced   int     // how many trailing dims after perm to reduce
	unsqueezed []int64 // the shape with a unit dim where each new axis goes; nil when none
	expanded   []int64 // the sizes to expand those unit dims to (-1 keeps a dim)
	finalShape []int64 // the output dims, composed; nil when each is one axis
}

// makePlan parses pattern and infers every axis's size from shape and the
// given sizes, checking the pattern as einops does.
func makePlan(k kind, pattern string, shape []int64, given []Axis) (*plan, error) {
	l, r, err := splitArrow(pattern)
	if err != nil {
		return nil, err
	}
	var anon int
	left, err := parseSide("left", l, parseOptions{}, &anon)
	if err != nil {
		return nil, err
	}
	right, err := parseSide("right", r, parseOptions{}, &anon)
	if err != nil {
		return nil, err
	}
	if right.ellipsis && !left.ellipsis {
		return nil, errors.New("ellipsis (...) on the right side only")
	}
	if left.ellipsisParen {
		return nil, errors.New("ellipsis (...) inside parentheses on the left side")
	}
	onlyLeft, onlyRight := missing(left, right), missing(right, left)
	switch k {
	case rearrangeKind:
		if left.nonUnitAnon || right.nonUnitAnon {
			return nil, errors.New("rearrange takes no anonymous axes (numbers) other than 1")
		}
		var only []string
		if len(onlyLeft) > 0 {
			only = append(only, "left only: "+names(onlyLeft))
		}
		if len(onlyRight) > 0 {
			only = append(only, "right only: "+names(onlyRight))
		}
		if only != nil {
			return nil, fmt.Errorf("axes on one side only (rearrange needs the same axes on both): %s", strings.Join(only, "; "))
		}
	case repeatKind:
		if len(onlyLeft) > 0 {
			return nil, fmt.Errorf("axes on the left side only: %s (repeat only adds axes)", names(onlyLeft))
		}
		var unsized []axisID
		for _, a := range onlyRight {
			if a.anon == 0 && !slices.ContainsFunc(given, func(g Axis) bool { return g.name == a.name }) {
				unsized = append(unsized, a)
			}
		}
		if len(unsized) > 0 {
			return nil, fmt.Errorf("new axes need a size: %s (give einops.Size)", names(unsized))
		}
	case reduceKind:
		if len(onlyRight) > 0 {
			return nil, fmt.Errorf("axes on the right side only: %s (a reduction only removes axes)", names(onlyRight))
		}
	}

	size := map[axisID]int64{}
	for _, s := range []*side{left, right} {
		for a, n := range s.anonymousSizes {
			size[a] = n
		}
	}
	for i, g := range given {
		if err := checkName(g.name, false); err != nil {
			return nil, fmt.Errorf("size %s: %w", g, err)
		}
		if g.size < 0 {
			return nil, fmt.Errorf("size %s: sizes are not negative", g)
		}
		if slices.ContainsFunc(given[:i], func(h Axis) bool { return h.name == g.name }) {
			return nil, fmt.Errorf("size of %s given twice", g.name)
		}
		id := axisID{name: g.name}
		if !left.ids[id] && !right.ids[id] {
			return nil, fmt.Errorf("size %s for an axis the pattern does not use", g)
		}
		size[id] = int64(g.size)
	}

	dims := len(left.groups)
	var ell []axisID
	if left.ellipsis {
		dims--
		if len(shape) < dims {
			return nil, fmt.Errorf("the left side has %d dims besides the ellipsis, the tensor only %d", dims, len(shape))
		}
		for i := range len(shape) - dims {
			ell = append(ell, axisID{name: ellipsis + strconv.Itoa(i)})
		}
	} else if len(shape) != dims {
		return nil, fmt.Errorf("the left side has %d dims, the tensor %d", dims, len(shape))
	}
	lefts, rights := expand(left.groups, ell), expand(right.groups, ell)
	for i, g := range lefts {
		if err := infer(size, g, i, shape[i]); err != nil {
			return nil, err
		}
	}

	leftAxes, rightAxes := slices.Concat(lefts...), slices.Concat(rights...)
	p := &plan{}
	if slices.ContainsFunc(lefts, func(g []axisID) bool { return len(g) != 1 }) {
		p.initShape = sizesOf(size, leftAxes)
	}
	var order []axisID // the kept axes in output order, then the reduced ones
	for _, a := range rightAxes {
		if slices.Contains(leftAxes, a) {
			order = append(order, a)
		}
	}
	for _, a := range leftAxes {
		if !slices.Contains(rightAxes, a) {
			order = append(order, a)
			p.nReduced++
		}
	}
	perm, moved := make([]int64, len(order)), false
	for i, a := range order {
		perm[i] = int64(slices.Index(leftAxes, a))
		moved = moved || perm[i] != int64(i)
	}
	if moved {
		p.perm = perm
	}
	if len(onlyRight) > 0 {
		for _, a := range rightAxes {
			if slices.Contains(leftAxes, a) {
				p.unsqueezed = append(p.unsqueezed, size[a])
				p.expanded = append(p.expanded, -1)
			} else {
				p.unsqueezed = append(p.unsqueezed, 1)
				p.expanded = append(p.expanded, size[a])
			}
		}
	}
	if slices.ContainsFunc(rights, func(g []axisID) bool { return len(g) != 1 }) {
		for _, g := range rights {
			p.finalShape = append(p.finalShape, product(sizesOf(size, g)))
		}
	}
	return p, nil
}

// missing lists the axes of a that b lacks, in a's order.
func missing(a, b *side) []axisID {
	var out []axisID
	for _, g := range a.groups {
		for _, x := range g.axes {
			if !b.ids[x] {
				out = append(out, x)
			}
		}
	}
	return out
}

// expand replaces the ellipsis by the axes ell: a bare ellipsis becomes one
// dim per axis, a parenthesised one their composition.
func expand(groups []group, ell []axisID) [][]axisID {
	var out [][]axisID
	for _, g := range groups {
		if g.bare {
			for _, a := range ell {
				out = append(out, []axisID{a})
			}
			continue
		}
		var axes []axisID
		for _, a := range g.axes {
			if a.name == ellipsis {
				axes = append(axes, ell...)
			} else {
				axes = append(axes, a)
			}
		}
		out = append(out, axes)
	}
	return out
}

// infer sets the size of the one axis of input dim i (of size n) whose size
// is not yet known, or checks the known sizes against n.
func infer(size map[axisID]int64, g []axisID, i int, n int64) error {
	var unknown []axisID
	var known []string
	prod := int64(1)
	for _, a := range g {
		s, ok := size[a]
		switch {
		case !ok:
			unknown = append(unknown, a)
			continue
		case a.anon > 0:
			known = append(known, a.name)
		default:
			known = append(known, fmt.Sprintf("%s=%d", a.name, s))
		}
		prod *= s
	}
	what := fmt.Sprintf("dim %d %q has size %d", i, groupText(g), n)
	switch {
	case len(unknown) > 1:
		return fmt.Errorf("%s: cannot infer the sizes of %s: give all but one with einops.Size", what, names(unknown))
	case len(unknown) == 0 && prod != n && len(g) == 1 && g[0].anon == 0:
		return fmt.Errorf("%s, but %s was given", what, known[0])
	case len(unknown) == 0 && prod != n:
		return fmt.Errorf("%s, not %s", what, sizes(known, prod))
	case len(unknown) == 1 && prod == 0:
		return fmt.Errorf("%s: cannot infer %s when %s", what, unknown[0], sizes(known, prod))
	case len(unknown) == 1 && n%prod != 0:
		return fmt.Errorf("%s, which %s does not divide", what, sizes(known, prod))
	case len(unknown) == 1:
		size[unknown[0]] = n / prod
	}
	return nil
}

// sizes writes the known sizes of a dim's axes and their product:
// "h=5 × d=3 = 15", "h=5", "2", "1" for none.
func sizes(known []string, prod int64) string {
	switch len(known) {
	case 0:
		return strconv.FormatInt(prod, 10)
	case 1:
		return known[0]
	}
	return fmt.Sprintf("%s = %d", strings.Join(known, " × "), prod)
}

// groupText writes a dim of a side as in the pattern: "h", "(h d)", "()".
func groupText(g []axisID) string {
	if len(g) == 1 {
		return g[0].name
	}
	return "(" + names(g) + ")"
}

func names(axes []axisID) string {
	s := make([]string, len(axes))
	for i, a := range axes {
		s[i] = a.name
		if a.name == ellipsis {
			s[i] = "..."
		}
	}
	return strings.Join(s, " ")
}

func sizesOf(size map[axisID]int64, axes []axisID) []int64 {
	out := make([]int64, len(axes))
	for i, a := range axes {
		out[i] = size[a]
	}
	return out
}

func product(s []int64) int64 {
	p := int64(1)
	for _, n := range s {
		p *= n
	}
	return p
}
