package tokenizer

import (
	"iter"
	"unicode"
	"unicode/utf8"
)

// class is a rune's class in GPT-2's pre-tokenisation pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Go's regexp has no lookahead, so words splits text by hand, in one pass.
type class uint8

const (
	other  class = iota // [^\s\p{L}\p{N}], and bytes that are not UTF-8
	letter              // \p{L}
	number              // \p{N}
	space               // \s: Unicode White_Space, as Oniguruma's \s in Hugging Face's tokenizers
)

var asciiClass = func() (t [utf8.RuneSelf]class) {
	for r := range rune(utf8.RuneSelf) {
		t[r] = classOf(r)
	}
	return t
}()

func classOf(r rune) class {
	switch {
	case unicode.IsLetter(r):
		return letter
	case unicode.IsNumber(r):
		return number
	case unicode.IsSpace(r):
		return space
	}
	return other
}

// next returns the class and width of the rune at s[i:]. An invalid byte is
// one rune of width 1 in class other (as U+FFFD would be).
func next(s string, i int) (class, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return classOf(r), n
}

// runEnd returns the end of the run of class c that starts at i.
func runEnd(s string, i int, c class) int {
	for i < len(s) {
		ci, n := next(s, i)
		if ci != c {
			break
		}
		i += n
	}
	return i
}

// contraction returns the length of the contraction ('s 't 're 've 'm 'll 'd)
// that s starts with, or 0.
func contraction(s string) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	switch s[1] {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if len(s) >= 3 && s[2] == 'e' {
			return 3
		}
	case 'l':
		if len(s) >= 3 && s[2] == 'l' {
			return 3
		}
	}
	return 0
}

// wordEnd returns the end of the pattern's match at i, trying the
// alternatives in the pattern's order.
func wordEnd(s string, i int) int {
	if n := contraction(s[i:]); n > 0 {
		return i + n
	}
	c, _ := next(s, i)
	if s[i] == ' ' && i+1 < len(s) {
		// ` ?\p{L}+`, ` ?\p{N}+` and ` ?[^\s\p{L}\p{N}]+` take one leading space.
		if c2, _ := next(s, i+1); c2 != space {
			return runEnd(s, i+1, c2)
		}
	}
	if c != space {
		return runEnd(s, i, c)
	}
	end := runEnd(s, i, space)
	if end == len(s) {
		return end
	}
	// `\s+(?!\S)` backs off one rune so that the last space can lead the next
	// word; a single space before a non-space is `\s+` on its own.
	_, last := utf8.DecodeLastRuneInString(s[i:end])
	if end-last > i {
		return end - last
	}
	return end
}

// words yields the pre-tokens of s in order; they concatenate to s.
func words(s string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := 0; i < len(s); {
			j := wordEnd(s, i)
			if !yield(s[i:j]) {
				return
			}
			i = j
		}
	}
}
