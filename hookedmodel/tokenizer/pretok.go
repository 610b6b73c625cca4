package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// preTokenizer cuts a text into the words that the model merges on its own.
// It emits the non-empty words in order.
type preTokenizer interface {
	split(t text, emit func(text))
}

type preTokenizers []preTokenizer

func (ps preTokenizers) split(t text, emit func(text)) {
	if len(ps) == 0 {
		emit(t)
		return
	}
	rest := ps[1:]
	ps[0].split(t, func(w text) { rest.split(w, emit) })
}

// matcher yields the non-overlapping matches of a pattern in s, in order.
type matcher func(s string, yield func(start, end int))

// behavior is what a Split pre-tokenizer does with a match, as Hugging
// Face's SplitDelimiterBehavior.
type behavior uint8

const (
	removed behavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

var behaviors = map[string]behavior{
	"Removed": removed, "Isolated": isolated, "MergedWithPrevious": mergedWithPrevious,
	"MergedWithNext": mergedWithNext, "Contiguous": contiguous,
}

// splitter splits at the matches of a pattern and keeps, drops or merges
// them by behavior; invert swaps matches and the text between them.
type splitter struct {
	match    matcher
	end      func(s string, i int) int // match's scanner, for a known pattern
	behavior behavior
	invert   bool
}

func (p splitter) split(t text, emit func(text)) {
	// pendStart:pendEnd is the piece waiting to be emitted or extended;
	// pendEnd is -1 when there is none.
	pendStart, pendEnd := 0, -1
	prevMatch := false
	flush := func() {
		if pendEnd > pendStart {
			emit(t.sub(pendStart, pendEnd))
		}
		pendEnd = -1
	}
	piece := func(start, end int, isMatch bool) {
		if p.invert {
			isMatch = !isMatch
		}
		switch p.behavior {
		case isolated:
			emit(t.sub(start, end))
		case removed:
			if !isMatch {
				emit(t.sub(start, end))
			}
		case mergedWithPrevious:
			if isMatch && !prevMatch && pendEnd >= 0 {
				pendEnd = end
			} else {
				flush()
				pendStart, pendEnd = start, end
			}
		case mergedWithNext:
			if pendEnd >= 0 && !isMatch {
				pendEnd = end
				flush()
			} else {
				flush()
				if isMatch {
					pendStart, pendEnd = start, end
				} else {
					emit(t.sub(start, end))
				}
			}
		case contiguous:
			if isMatch == prevMatch && pendEnd >= 0 {
				pendEnd = end
			} else {
				flush()
				pendStart, pendEnd = start, end
			}
		}
		prevMatch = isMatch
	}
	prev := 0
	p.match(t.s, func(start, end int) {
		if start > prev {
			piece(prev, start, false)
		}
		if end > start {
			piece(start, end, true)
		}
		prev = end
	})
	if prev < len(t.s) {
		piece(prev, len(t.s), false)
	}
	flush()
}

// literal matches each occurrence of s.
func literal(s string) matcher {
	return func(in string, yield func(int, int)) {
		if s == "" {
			return
		}
		for i := 0; ; {
			j := strings.Index(in[i:], s)
			if j < 0 {
				return
			}
			yield(i+j, i+j+len(s))
			i += j + len(s)
		}
	}
}

// eachRune matches each rune for which f is true.
func eachRune(f func(rune) bool) matcher {
	return func(in string, yield func(int, int)) {
		for i, r := range in {
			if f(r) {
				yield(i, i+utf8.RuneLen(r))
			}
		}
	}
}

// byteLevelPre is the ByteLevel pre-tokenizer: an optional leading space and
// GPT-2's split. Mapping bytes to the printable runes of the vocabulary
// files is left out: a byte-level model reads raw bytes.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelPre) split(t text, emit func(text)) {
	if b.addPrefixSpace && !strings.HasPrefix(t.s, " ") {
		t = prepend{" "}.normalize(t)
	}
	if !b.useRegex {
		emit(t)
		return
	}
	for i := 0; i < len(t.s); {
		j := wordEnd(t.s, i)
		emit(t.sub(i, j))
		i = j
	}
}

// metaspace replaces spaces with ▁, prepends one by prepend_scheme and
// splits before each ▁.
type metaspace struct {
	replacement string
	scheme      string // "always", "first" or "never"
	splitWords  bool
}

func (m metaspace) split(t text, emit func(text)) {
	t = replace{" ", m.replacement}.normalize(t)
	if t.s != "" && !strings.HasPrefix(t.s, m.replacement) &&
		(m.scheme == "always" || m.scheme == "first" && t.origin(0, 1).start == 0) {
		t = prepend{m.replacement}.normalize(t)
	}
	if !m.splitWords {
		emit(t)
		return
	}
	splitter{match: literal(m.replacement), behavior: mergedWithNext}.split(t, emit)
}

// isPunctuation is HF's is_punc: ASCII punctuation or a Unicode P category.
func isPunctuation(r rune) bool {
	return r < utf8.RuneSelf && (r >= '!' && r <= '/' || r >= ':' && r <= '@' || r >= '[' && r <= '`' || r >= '{' && r <= '~') ||
		unicode.IsPunct(r)
}

// isWordRune is the regex \w of Rust's regex crate, which HF's Whitespace
// pre-tokenizer uses: alphabetic, marks, decimal digits, connector
// punctuation, joiners.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Other_Alphabetic, r) || unicode.IsMark(r) ||
		unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r) || r == 0x200C || r == 0x200D
}

// wordRuns matches \w+|[^\w\s]+, the Whitespace pre-tokenizer's pattern.
func wordRuns(in string, yield func(int, int)) {
	cls := func(r rune) int {
		switch {
		case isWordRune(r):
			return 1
		case unicode.IsSpace(r):
			return 0
		}
		return 2
	}
	start, c := -1, 0
	for i, r := range in {
		k := cls(r)
		if start >= 0 && k != c {
			yield(start, i)
			start = -1
		}
		if start < 0 && k != 0 {
			start, c = i, k
		}
	}
	if start >= 0 {
		yield(start, len(in))
	}
}

// scanner returns, when p cuts a text exactly where one scanner does (GPT-2's
// ByteLevel split, or a known pattern Isolated followed by a ByteLevel that
// only maps bytes), that scanner; else nil. Encoding uses it directly.
func scanner(p preTokenizer) func(s string, i int) int {
	switch p := p.(type) {
	case byteLevelPre:
		if p.useRegex && !p.addPrefixSpace {
			return wordEnd
		}
	case splitter:
		if p.end != nil && p.behavior == isolated && !p.invert {
			return p.end
		}
	case preTokenizers:
		var end func(string, int) int
		for _, q := range p {
			if b, ok := q.(byteLevelPre); ok && !b.useRegex && !b.addPrefixSpace {
				continue
			}
			if end != nil {
				return nil
			}
			if end = scanner(q); end == nil {
				return nil
			}
		}
		return end
	}
	return nil
}
