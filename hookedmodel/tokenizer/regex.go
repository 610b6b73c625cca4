package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// The split patterns of the tokenizers we know, which Go's regexp cannot run
// (they look ahead with (?!\S)) and which hand-written scanners run much
// faster than a general engine would. Hugging Face runs them with
// Oniguruma, whose \s is Unicode's White_Space, as Go's unicode.IsSpace.
const (
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// scan turns a function giving the end of the match at i into a matcher,
// for patterns that match every rune of the text.
func scan(end func(s string, i int) int) matcher {
	return func(s string, yield func(int, int)) {
		for i := 0; i < len(s); {
			j := end(s, i)
			yield(i, j)
			i = j
		}
	}
}

// knownScanner returns the scanner of a pattern we know (the end of its
// match at i; these patterns match every rune), or nil.
func knownScanner(p string) func(s string, i int) int {
	switch p {
	case gpt2Pattern:
		return wordEnd
	case llama3Pattern:
		return func(s string, i int) int { return llamaWordEnd(s, i, 3) }
	case qwen2Pattern:
		return func(s string, i int) int { return llamaWordEnd(s, i, 1) }
	}
	return nil
}

// compileRegex returns a matcher for an Oniguruma pattern of a tokenizer.json:
// a scanner for the known patterns, else Go's regexp with \s, \d and \w
// given their Unicode meaning. Patterns that regexp cannot run (lookaround,
// backreferences) are an error.
func compileRegex(p string) (matcher, error) {
	if end := knownScanner(p); end != nil {
		return scan(end), nil
	}
	q, err := translateRegex(p)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("regex %q is not supported: %w", p, err)
	}
	return func(s string, yield func(int, int)) {
		for _, m := range re.FindAllStringIndex(s, -1) {
			yield(m[0], m[1])
		}
	}, nil
}

// Oniguruma's Unicode classes, spelled for Go's regexp.
const (
	spaceClass = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`
	wordClass  = `\p{L}\p{M}\p{Nd}\p{Pc}`
	digitClass = `\p{Nd}`
)

// translateRegex rewrites \s \S \d \D \w \W as Unicode classes.
func translateRegex(p string) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			e := p[i+1]
			i++
			class, negated := "", false
			switch e {
			case 's', 'S':
				class, negated = spaceClass, e == 'S'
			case 'd', 'D':
				class, negated = digitClass, e == 'D'
			case 'w', 'W':
				class, negated = wordClass, e == 'W'
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
				continue
			}
			switch {
			case !inClass && negated:
				b.WriteString("[^" + class + "]")
			case !inClass:
				b.WriteString("[" + class + "]")
			case negated:
				return "", fmt.Errorf("regex %q: \\%c inside a class is not supported", p, e)
			default:
				b.WriteString(class)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// A ] right after [ or [^ is a literal.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// contractionFold returns the length of the contraction ('s 't 're 've 'm
// 'll 'd, in any case) that s starts with, or 0.
func contractionFold(s string) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	lower := func(i int) byte { return s[i] | 0x20 }
	switch lower(1) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if len(s) >= 3 && lower(2) == 'e' {
			return 3
		}
	case 'l':
		if len(s) >= 3 && lower(2) == 'l' {
			return 3
		}
	}
	return 0
}

// llamaWordEnd returns the end of the match at i of Llama 3's pattern
// (maxDigits 3) or Qwen2's (maxDigits 1), trying the alternatives in order:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)
//	[^\r\n\p{L}\p{N}]?\p{L}+
//	\p{N}{1,maxDigits}
//	 ?[^\s\p{L}\p{N}]+[\r\n]*
//	\s*[\r\n]+
//	\s+(?!\S)
//	\s+
func llamaWordEnd(s string, i, maxDigits int) int {
	if n := contractionFold(s[i:]); n > 0 {
		return i + n
	}
	c, w := next(s, i)
	if c == letter {
		return runEnd(s, i, letter)
	}
	if c != number && s[i] != '\r' && s[i] != '\n' && i+w < len(s) {
		if c2, _ := next(s, i+w); c2 == letter {
			return runEnd(s, i+w, letter)
		}
	}
	if c == number {
		j := i
		for k := 0; k < maxDigits && j < len(s); k++ {
			cj, wj := next(s, j)
			if cj != number {
				break
			}
			j += wj
		}
		return j
	}
	start := i
	if s[i] == ' ' && i+1 < len(s) {
		if c2, _ := next(s, i+1); c2 == other {
			start = i + 1
		}
	}
	if cs, _ := next(s, start); cs == other {
		j := runEnd(s, start, other)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// c is white space.
	end := runEnd(s, i, space)
	if k := strings.LastIndexAny(s[i:end], "\r\n"); k >= 0 {
		return i + k + 1
	}
	if end == len(s) {
		return end
	}
	_, last := utf8.DecodeLastRuneInString(s[i:end])
	if end-last > i {
		return end - last
	}
	return end
}
