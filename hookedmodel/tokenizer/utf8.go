package tokenizer

import "unicode/utf8"

// lossyString converts b to a string, replacing each maximal ill-formed
// subsequence with one U+FFFD, as Hugging Face's decoders (Rust's
// String::from_utf8_lossy) and Python's errors="replace" do. Go's own
// conversions differ: utf8.DecodeRune replaces byte by byte and
// strings.ToValidUTF8 a whole run at once.
func lossyString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			n = illFormedLen(b[i:])
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return string(out)
}

// illFormedLen returns the length of the maximal subpart at the start of b,
// which does not begin a valid rune: its lead byte and the continuation bytes
// that could still have completed it (Unicode §3.9, Table 3-7).
func illFormedLen(b []byte) int {
	need, lo, hi := 0, byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEF:
		need = 2
		if c == 0xED {
			hi = 0x9F // no surrogates
		}
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	}
	n := 1
	for n <= need && n < len(b) && b[n] >= lo && b[n] <= hi {
		n++
		lo, hi = 0x80, 0xBF
	}
	return n
}
