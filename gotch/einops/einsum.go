package einops

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golens/golens/gotch"
)

// letters are torch.einsum's axis names, given out in order of first use.
const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Einsum multiplies operands and sums over every axis the right side of
// pattern leaves out, as einops.einsum, whose patterns TransformerLens
// writes: axes have names of any length, separated by spaces, operands are
// separated by commas, "->" is required, and "..." stands for the same
// leading or trailing dims in each operand, broadcast:
//
//	Einsum("batch pos d_model, d_model d_vocab -> batch pos d_vocab", resid, wU)
//	Einsum("... i, ... i -> ...", a, b) // a dot product over the last dim
//
// An axis named twice in one operand takes its diagonal ("i i ->" is the
// trace), and "_" is a name like any other. As in einops, compositions,
// numbers and unit dims (1, ()) are not allowed. The names become letters
// for torch.einsum, so at most 52 distinct axes.
//
// The result is a new handle that the caller frees (it may share memory
// with an operand where torch.einsum returns a view); the operands are
// never freed. It joins the newest Scope among the operands', as any op's result.
func Einsum(pattern string, operands ...*gotch.Tensor) (*gotch.Tensor, error) {
	fail := func(err error) error {
		args := []string{fmt.Sprintf("%q", pattern)}
		for _, t := range operands {
			args = append(args, t.Spec())
		}
		return fmt.Errorf("einops: Einsum(%s): %w", strings.Join(args, ", "), err)
	}
	eq, err := einsumEquation(pattern, operands)
	if err != nil {
		return nil, fail(err)
	}
	y, err := gotch.Einsum(eq, operands)
	if err != nil {
		return nil, fail(fmt.Errorf("torch.einsum %q: %w", eq, err))
	}
	return y, nil
}

// einsumEquation translates pattern into torch.einsum's one-letter
// equation, checking it against the operands' dims.
func einsumEquation(pattern string, operands []*gotch.Tensor) (string, error) {
	l, r, err := splitArrow(pattern)
	if err != nil {
		return "", err
	}
	specs := strings.Split(l, ",")
	if len(operands) == 0 {
		return "", errors.New("no operands")
	}
	if len(specs) != len(operands) {
		return "", fmt.Errorf("the pattern has %d operands, got %d", len(specs), len(operands))
	}
	letter := map[string]byte{}
	type seen struct {
		size    int64
		operand int
	}
	sizes := map[string]seen{}
	anyEllipsis := false
	var anon int
	var eq strings.Builder
	for i, spec := range specs {
		t := operands[i]
		switch {
		case t == nil:
			return "", fmt.Errorf("operand %d is nil", i)
		case t.Freed():
			return "", fmt.Errorf("operand %d %w", i, gotch.ErrFreed)
		}
		s, err := parseSide(fmt.Sprintf("operand %d", i), spec, parseOptions{underscore: true, duplicates: true}, &anon)
		if err != nil {
			return "", err
		}
		named := len(s.groups)
		if s.ellipsis {
			named--
			anyEllipsis = true
		}
		if t.Dim() < named || (!s.ellipsis && t.Dim() != named) {
			return "", fmt.Errorf("operand %d has %d dims, its pattern %q %d", i, t.Dim(), strings.TrimSpace(spec), named)
		}
		if i > 0 {
			eq.WriteByte(',')
		}
		dim := 0 // the operand's dim that group j names
		for _, g := range s.groups {
			if g.bare {
				eq.WriteString("...")
				dim += t.Dim() - named
				continue
			}
			name, err := einsumAxis(g, fmt.Sprintf("operand %d", i))
			if err != nil {
				return "", err
			}
			if _, ok := letter[name]; !ok {
				if len(letter) == len(letters) {
					return "", fmt.Errorf("more than %d distinct axes", len(letters))
				}
				letter[name] = letters[len(letter)]
			}
			eq.WriteByte(letter[name])
			n := t.Size(dim)
			if prev, ok := sizes[name]; ok && prev.size != n && prev.size != 1 && n != 1 {
				return "", fmt.Errorf("axis %s has size %d in operand %d and %d in operand %d", name, prev.size, prev.operand, n, i)
			}
			sizes[name] = seen{n, i}
			dim++
		}
	}
	eq.WriteString("->")
	s, err := parseSide("right", r, parseOptions{underscore: true}, &anon)
	if err != nil {
		return "", err
	}
	for _, g := range s.groups {
		if g.bare {
			if !anyEllipsis {
				return "", errors.New("ellipsis (...) on the right side only")
			}
			eq.WriteString("...")
			continue
		}
		name, err := einsumAxis(g, "right side")
		if err != nil {
			return "", err
		}
		if _, ok := letter[name]; !ok {
			return "", fmt.Errorf("axis %s on the right side is on no operand", name)
		}
		eq.WriteByte(letter[name])
	}
	return eq.String(), nil
}

// einsumAxis is the name of the one axis a dim of an einsum pattern must
// be.
func einsumAxis(g group, where string) (string, error) {
	switch {
	case len(g.axes) == 0:
		return "", fmt.Errorf("%s: einsum takes no unit dims (1 or ())", where)
	case len(g.axes) > 1 || g.axes[0].name == ellipsis:
		return "", fmt.Errorf("%s: einsum takes no compositions, found (%s)", where, names(g.axes))
	case g.axes[0].anon > 0:
		return "", fmt.Errorf("%s: einsum takes no anonymous axes (numbers), found %s", where, g.axes[0].name)
	}
	return g.axes[0].name, nil
}
