package tokenizer

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncodeDecode checks that encoding loses nothing: the tokens' bytes
// spell the input exactly, even where it is not UTF-8, so Decode(Encode(s))
// == s for valid UTF-8. The golden texts are the seed corpus.
func FuzzEncodeDecode(f *testing.F) {
	for _, c := range readGolden(f).Encode {
		f.Add(c.Text)
	}
	f.Add("\xff\xfe a\xe2\x82 \xf0\x9f\x98")
	tk := GPT2()
	f.Fuzz(func(t *testing.T, s string) {
		var spelled []byte
		for w := range words(s) {
			if w == "" {
				t.Fatalf("words(%q) yields an empty word", s)
			}
			spelled = append(spelled, w...)
		}
		if string(spelled) != s {
			t.Fatalf("words(%q) spell %q", s, spelled)
		}

		ordinary := tk.EncodeOrdinary(s)
		spelled = spelled[:0]
		for _, id := range ordinary {
			if id < 0 || id >= tk.VocabSize() {
				t.Fatalf("EncodeOrdinary(%q) yields id %d", s, id)
			}
			spelled = append(spelled, tk.raw.at(id)...)
		}
		if !bytes.Equal(spelled, []byte(s)) {
			t.Fatalf("EncodeOrdinary(%q) spells %q", s, spelled)
		}

		ids := tk.Encode(s)
		if !strings.Contains(s, endOfText) && !slices.Equal(ids, ordinary) {
			t.Fatalf("Encode(%q) = %v, EncodeOrdinary = %v", s, ids, ordinary)
		}
		if utf8.ValidString(s) {
			if got := tk.Decode(ids); got != s {
				t.Fatalf("Decode(Encode(%q)) = %q", s, got)
			}
		}
	})
}
