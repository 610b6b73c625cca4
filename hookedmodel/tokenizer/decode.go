package tokenizer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder turns the token strings of a sequence into text pieces, as a
// Hugging Face decoder's decode_chain; the pieces are then joined.
type decoder interface {
	decode(tokens []string) []string
}

type decoders []decoder

func (ds decoders) decode(tokens []string) []string {
	for _, d := range ds {
		tokens = d.decode(tokens)
	}
	return tokens
}

// byteLevelDecoder maps the printable runes of a byte-level vocabulary back
// to bytes; a token with a rune that stands for no byte keeps its UTF-8.
type byteLevelDecoder struct{}

func (byteLevelDecoder) decode(tokens []string) []string {
	var b []byte
	for _, tok := range tokens {
		b = appendByteLevel(b, tok)
	}
	return []string{lossyString(b)}
}

// appendByteLevel appends the bytes that tok spells in a byte-level
// vocabulary, or tok itself if a rune of it stands for no byte.
func appendByteLevel(b []byte, tok string) []byte {
	n := len(b)
	for _, r := range tok {
		c, ok := runeToByte(r)
		if !ok {
			return append(b[:n], tok...)
		}
		b = append(b, c)
	}
	return b
}

// byteFallbackDecoder turns runs of <0xXX> tokens into their bytes: valid
// UTF-8 stays, else each byte becomes one U+FFFD.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decode(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, tok := range tokens {
		if c, ok := fallbackByte(tok); ok {
			pending = append(pending, c)
			continue
		}
		flush()
		out = append(out, tok)
	}
	flush()
	return out
}

// fallbackByte parses a byte-fallback token "<0xXX>".
func fallbackByte(tok string) (byte, bool) {
	if len(tok) != 6 || !strings.HasPrefix(tok, "<0x") || tok[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(tok[3:5], 16, 8)
	return byte(v), err == nil
}

// fuseDecoder joins all tokens into one.
type fuseDecoder struct{}

func (fuseDecoder) decode(tokens []string) []string { return []string{strings.Join(tokens, "")} }

// stripDecoder removes up to start leading and stop trailing copies of
// content from each token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		rs := []rune(tok)
		lo, hi := 0, len(rs)
		for lo < d.start && lo < hi && rs[lo] == d.content {
			lo++
		}
		for n := 0; n < d.stop && hi > lo && rs[hi-1] == d.content; n++ {
			hi--
		}
		out[i] = string(rs[lo:hi])
	}
	return out
}

// replaceDecoder replaces a literal pattern in each token.
type replaceDecoder struct{ pattern, content string }

func (d replaceDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		out[i] = strings.ReplaceAll(tok, d.pattern, d.content)
	}
	return out
}

// metaspaceDecoder turns ▁ back into spaces. Where the pre-tokenizer
// prepends one, it drops every ▁ of the first token, as Hugging Face's
// does (not only the leading one).
type metaspaceDecoder struct {
	replacement string
	prepend     bool // prepend_scheme is not "never"
}

func (d metaspaceDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		repl := " "
		if i == 0 && d.prepend {
			repl = ""
		}
		out[i] = strings.ReplaceAll(tok, d.replacement, repl)
	}
	return out
}

// bpeSuffixDecoder replaces the end-of-word suffix with a space, as HF's
// BPEDecoder, and drops it after the last token.
type bpeSuffixDecoder struct{ suffix string }

func (d bpeSuffixDecoder) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		repl := " "
		if i == len(tokens)-1 {
			repl = ""
		}
		out[i] = strings.ReplaceAll(tok, d.suffix, repl)
	}
	return out
}
