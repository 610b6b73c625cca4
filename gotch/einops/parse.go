package einops

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ellipsis stands for "..." once a side is parsed, as in einops: a single
// character, so that "a..." reads as one (invalid) name, not two tokens.
const ellipsis = "…"

// axisID is one elementary axis of a pattern. Named axes are equal by name;
// every anonymous axis (a number such as the 2 in "(p 2)") is distinct from
// every other, even one of the same size, so anon numbers them.
type axisID struct {
	name string // the name, the digits of an anonymous axis, "…" or "…i" for an ellipsis dim
	anon int    // > 0 for an anonymous axis
}

func (a axisID) String() string { return a.name }

// group is one dim of a side: a single axis, a parenthesised composition
// (empty for "()" and a bare "1"), or bare, the ellipsis standing alone.
type group struct {
	axes []axisID
	bare bool // the top-level ellipsis, which stands for any number of dims
}

// side is one side of a pattern, parsed.
type side struct {
	text           string
	groups         []group
	ids            map[axisID]bool
	ellipsis       bool // "..." occurs
	ellipsisParen  bool // ... inside parentheses, as in "b (...)"
	nonUnitAnon    bool // an anonymous axis other than 1 occurs
	anonymousSizes map[axisID]int64
}

// parseOptions are einsum's relaxations: "_" as a name, and an axis that
// occurs twice (a trace, "i i ->").
type parseOptions struct {
	underscore, duplicates bool
}

// splitArrow splits a pattern at its one "->".
func splitArrow(pattern string) (left, right string, err error) {
	if strings.TrimSpace(pattern) == "" {
		return "", "", errors.New("empty pattern: want \"left -> right\"")
	}
	switch n := strings.Count(pattern, "->"); {
	case n == 0:
		return "", "", errors.New(`pattern has no "->"`)
	case n > 1:
		return "", "", fmt.Errorf(`pattern has %d "->", want one`, n)
	}
	left, right, _ = strings.Cut(pattern, "->")
	return left, right, nil
}

// parseSide parses one side of a pattern by einops's rules: axes are
// separated by spaces; a name is an identifier that neither starts nor ends
// with "_"; a number other than 1 is an anonymous axis of that size; 1 and
// "()" are unit dims; parentheses compose axes into one dim, one level
// deep; "..." occurs at most once. anon numbers anonymous axes across both
// sides of a pattern.
func parseSide(which, text string, opt parseOptions, anon *int) (*side, error) {
	s := &side{text: text, ids: map[axisID]bool{}, anonymousSizes: map[axisID]int64{}}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s side %q: %s", which, strings.TrimSpace(text), fmt.Sprintf(format, args...))
	}
	expr := text
	if strings.Contains(expr, ".") {
		switch {
		case strings.Count(expr, "...") > 1:
			return nil, fail("more than one ellipsis (...)")
		case strings.Count(expr, "...") == 0 || strings.Count(expr, ".") != 3:
			return nil, fail("a dot outside the ellipsis (...)")
		}
		expr = strings.Replace(expr, "...", ellipsis, 1)
	}

	var open *group // the parenthesised group being read, if any
	add := func(tok string) error {
		if tok == ellipsis {
			if s.ellipsis {
				return fail("more than one ellipsis (...)")
			}
			s.ellipsis = true
			s.ids[axisID{name: ellipsis}] = true
			if open == nil {
				s.groups = append(s.groups, group{axes: []axisID{{name: ellipsis}}, bare: true})
			} else {
				open.axes = append(open.axes, axisID{name: ellipsis})
				s.ellipsisParen = true
			}
			return nil
		}
		if tok == "1" { // a unit dim; inside parentheses it changes nothing
			if open == nil {
				s.groups = append(s.groups, group{})
			}
			return nil
		}
		var id axisID
		if isDigits(tok) {
			n, err := strconv.ParseInt(tok, 10, 64)
			switch {
			case err != nil:
				return fail("anonymous axis %s is too large", tok)
			case n == 0:
				return fail("anonymous axis 0: sizes are positive")
			case n == 1:
				return fail("anonymous axis %s: write a unit axis as 1", tok)
			}
			*anon++
			id = axisID{name: tok, anon: *anon}
			s.nonUnitAnon = true
			s.anonymousSizes[id] = n
		} else {
			if err := checkName(tok, opt.underscore); err != nil {
				return fail("%v", err)
			}
			id = axisID{name: tok}
			if s.ids[id] && !opt.duplicates && !(opt.underscore && tok == "_") {
				return fail("axis %s appears twice", tok)
			}
		}
		s.ids[id] = true
		if open == nil {
			s.groups = append(s.groups, group{axes: []axisID{id}})
		} else {
			open.axes = append(open.axes, id)
		}
		return nil
	}

	var tok strings.Builder
	flush := func() error {
		if tok.Len() == 0 {
			return nil
		}
		t := tok.String()
		tok.Reset()
		return add(t)
	}
	for _, r := range expr {
		switch {
		case r == ' ' || r == '(' || r == ')':
			if err := flush(); err != nil {
				return nil, err
			}
			switch r {
			case '(':
				if open != nil {
					return nil, fail("nested parentheses: a composition is one level deep")
				}
				open = &group{}
			case ')':
				if open == nil {
					return nil, fail("unbalanced parentheses: ')' without '('")
				}
				s.groups = append(s.groups, *open)
				open = nil
			}
		case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || string(r) == ellipsis:
			tok.WriteRune(r)
		default:
			return nil, fail("unexpected character %q", r)
		}
	}
	if open != nil {
		return nil, fail("unbalanced parentheses: '(' not closed")
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return s, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// checkName reports whether name may name an axis: an identifier (a letter
// or "_", then letters, digits or "_") that neither starts nor ends with
// "_", except "_" itself where underscore allows it.
func checkName(name string, underscore bool) error {
	for i, r := range name {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return fmt.Errorf("invalid axis name %q: not an identifier", name)
		}
	}
	switch {
	case name == "":
		return errors.New("empty axis name")
	case name == "_" && underscore:
		return nil
	case strings.HasPrefix(name, "_") || strings.HasSuffix(name, "_"):
		return fmt.Errorf("invalid axis name %q: starts or ends with an underscore", name)
	}
	return nil
}
