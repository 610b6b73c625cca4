package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// text is a piece of the input on its way through normalizers and
// pre-tokenizers: its current string and, for each byte of it, the span of
// the input it came from, as Hugging Face's NormalizedString keeps them.
// While nothing has changed the string, align is nil and byte i came from
// input byte base+i. With noAlign, nobody asked for offsets and align is
// not kept.
type text struct {
	s       string
	align   []span // nil: identity from base
	base    int
	noAlign bool
}

// span is a half-open byte range of the input.
type span struct{ start, end int32 }

// origin returns the input span of the bytes s[i:j], i < j.
func (t text) origin(i, j int) span {
	if t.align == nil {
		return span{int32(t.base + i), int32(t.base + j)}
	}
	return span{t.align[i].start, t.align[j-1].end}
}

// sub returns the bytes s[i:j].
func (t text) sub(i, j int) text {
	if t.align == nil {
		return text{s: t.s[i:j], base: t.base + i, noAlign: t.noAlign}
	}
	return text{s: t.s[i:j], align: t.align[i:j]}
}

// spans returns align, materialised when it is the identity: each byte
// takes its rune's span.
func (t text) spans() []span {
	if t.align != nil || t.noAlign {
		return t.align
	}
	a := make([]span, 0, len(t.s))
	for i := 0; i < len(t.s); {
		_, n := utf8.DecodeRuneInString(t.s[i:])
		for range n {
			a = append(a, span{int32(t.base + i), int32(t.base + i + n)})
		}
		i += n
	}
	return a
}

// rebuild is a text being written rune by rune, each new rune taking the
// input span of the old rune it came from.
type rebuild struct {
	b       strings.Builder
	align   []span
	noAlign bool
}

func newRebuild(t text) *rebuild { return &rebuild{noAlign: t.noAlign} }

func (r *rebuild) add(s string, from span) {
	r.b.WriteString(s)
	r.addSpans(len(s), from)
}

// addSpans gives n bytes the span from.
func (r *rebuild) addSpans(n int, from span) {
	if r.noAlign {
		return
	}
	for range n {
		r.align = append(r.align, from)
	}
}

// keep appends t's bytes i to j with their spans.
func (r *rebuild) keep(t text, spans []span, i, j int) {
	r.b.WriteString(t.s[i:j])
	if !r.noAlign {
		r.align = append(r.align, spans[i:j]...)
	}
}

func (r *rebuild) text() text { return text{s: r.b.String(), align: r.align, noAlign: r.noAlign} }

// runeSpan returns the input span of the rune of t at byte i, n bytes long.
func (t text) runeSpan(i, n int) span {
	if t.align == nil || t.noAlign {
		return span{int32(t.base + i), int32(t.base + i + n)}
	}
	return span{t.align[i].start, t.align[i+n-1].end}
}

// normalizer rewrites a text, keeping track of where each byte came from.
type normalizer interface {
	normalize(t text) text
}

type normalizers []normalizer

func (ns normalizers) normalize(t text) text {
	for _, n := range ns {
		t = n.normalize(t)
	}
	return t
}

// mapRunes rewrites t rune by rune with f, which returns the replacement of
// a rune; unchanged texts are returned as they are.
func mapRunes(t text, f func(r rune) string) text {
	changed := false
	for _, r := range t.s {
		if f(r) != string(r) {
			changed = true
			break
		}
	}
	if !changed {
		return t
	}
	out := newRebuild(t)
	for i, r := range t.s {
		n := utf8.RuneLen(r)
		if r == utf8.RuneError {
			_, n = utf8.DecodeRuneInString(t.s[i:])
		}
		out.add(f(r), t.runeSpan(i, n))
	}
	return out.text()
}

// unicodeNorm is NFC, NFD, NFKC or NFKD. Each segment of a starter and its
// combining marks is rewritten as a whole. Its new runes take spans as
// Hugging Face's do: the last ones those of the old segment's last runes,
// one each, and the others that of the old first rune (so a composition
// eats the runes right after the first).
type unicodeNorm struct{ form norm.Form }

func (u unicodeNorm) normalize(t text) text {
	if u.form.IsNormalString(t.s) {
		return t
	}
	out := newRebuild(t)
	var it norm.Iter
	it.InitString(u.form, t.s)
	var old []span
	var seg string
	for pos := 0; !it.Done(); {
		// A long decomposition comes in several pieces before Pos moves.
		seg += string(it.Next())
		end := it.Pos()
		if end == pos && !it.Done() {
			continue
		}
		old = old[:0]
		for i, r := range t.s[pos:end] {
			n := utf8.RuneLen(r)
			if r == utf8.RuneError {
				_, n = utf8.DecodeRuneInString(t.s[pos+i:])
			}
			old = append(old, t.runeSpan(pos+i, n))
		}
		n, k := utf8.RuneCountInString(seg), 0
		for _, r := range seg {
			j := 0
			if k > 0 {
				j = max(len(old)-n+k, 0)
			}
			out.add(string(r), old[j])
			k++
		}
		pos, seg = end, ""
	}
	return out.text()
}

type lowercase struct{}

func (lowercase) normalize(t text) text {
	return mapRunes(t, func(r rune) string { return strings.ToLower(string(r)) })
}

// prepend puts s before a non-empty text; its bytes take the span of the
// first rune.
type prepend struct{ s string }

func (p prepend) normalize(t text) text {
	if t.s == "" {
		return t
	}
	_, n := utf8.DecodeRuneInString(t.s)
	out := newRebuild(t)
	out.add(p.s, t.runeSpan(0, n))
	out.keep(t, t.spans(), 0, len(t.s))
	return out.text()
}

// replace substitutes content for each match of a literal pattern; the new
// bytes take the span of the match.
type replace struct{ pattern, content string }

func (p replace) normalize(t text) text {
	if !strings.Contains(t.s, p.pattern) || p.pattern == "" {
		return t
	}
	out := newRebuild(t)
	spans := t.spans()
	for i := 0; i < len(t.s); {
		j := strings.Index(t.s[i:], p.pattern)
		if j < 0 {
			j = len(t.s) - i
		}
		out.keep(t, spans, i, i+j)
		i += j
		if i == len(t.s) {
			break
		}
		out.b.WriteString(p.content)
		if !out.noAlign {
			out.addSpans(len(p.content), span{spans[i].start, spans[i+len(p.pattern)-1].end})
		}
		i += len(p.pattern)
	}
	return out.text()
}

// strip removes white space at the start and end.
type strip struct{ left, right bool }

func (s strip) normalize(t text) text {
	i, j := 0, len(t.s)
	if s.left {
		i = len(t.s) - len(strings.TrimLeftFunc(t.s, unicode.IsSpace))
	}
	if s.right {
		j = len(strings.TrimRightFunc(t.s, unicode.IsSpace))
	}
	if i >= j {
		return t.sub(0, 0)
	}
	return t.sub(i, j)
}

// stripAccents removes combining marks (categories Mn, Mc and Me), as HF's
// StripAccents does; it is meant to follow NFD.
type stripAccents struct{}

func (stripAccents) normalize(t text) text {
	return mapRunes(t, func(r rune) string {
		if unicode.IsMark(r) {
			return ""
		}
		return string(r)
	})
}
