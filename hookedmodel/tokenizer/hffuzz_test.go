package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// hfRoundTrips are the texts on which Hugging Face's decode(encode(s))
// gives s back, by what each tokenizer's normalizer and decoder do: byte-level
// ones always; Qwen3 up to NFC; Gemma unless s has a ▁ (which decodes to a
// space); Llama 2 also unless an added token splits s (each piece gets its
// own ▁, and only the first loses it again).
var hfRoundTrips = map[string]func(tk *Tokenizer, s string) (string, bool){
	"llama3": func(_ *Tokenizer, s string) (string, bool) { return s, true },
	"gpt2":   func(_ *Tokenizer, s string) (string, bool) { return s, true },
	"qwen3":  func(_ *Tokenizer, s string) (string, bool) { return norm.NFC.String(s), true },
	"gemma3": func(_ *Tokenizer, s string) (string, bool) { return s, !strings.Contains(s, "▁") },
	"llama2": func(tk *Tokenizer, s string) (string, bool) {
		for _, a := range tk.added.tokens {
			if strings.Contains(s, a.content) {
				return "", false
			}
		}
		return s, !strings.Contains(s, "▁")
	},
}

// FuzzHF checks on random text that encoding never panics and gives ids of
// the vocabulary, that the offset path gives the fast path's ids, with
// spans in order inside the text, that EncodeSpecial only adds the
// template's tokens, and that decode(encode(s)) round-trips where Hugging
// Face's does. The corpus texts are the seeds.
func FuzzHF(f *testing.F) {
	for _, c := range hfCorpus() {
		f.Add(c.Text)
	}
	f.Add("\xff\xfe a\xe2\x82 <s>\xf0\x9f\x98")
	names := []string{"llama3", "gpt2", "qwen3", "gemma3", "llama2"}
	tks := make([]*Tokenizer, len(names))
	for i, name := range names {
		tks[i] = loadHF(f, name)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, tk := range tks {
			ids := tk.Encode(s)
			for _, id := range ids {
				if id < 0 || id >= tk.VocabSize() {
					t.Fatalf("%s: Encode(%q) gives id %d", names[i], s, id)
				}
			}
			enc := tk.EncodeOffsets(s, false)
			if !slices.Equal(enc.IDs, ids) {
				t.Fatalf("%s: EncodeOffsets(%q) ids %v, Encode %v", names[i], s, enc.IDs, ids)
			}
			prev := 0
			for _, o := range enc.Offsets {
				if o[0] < prev || o[0] > o[1] || o[1] > len(s) {
					t.Fatalf("%s: EncodeOffsets(%q) spans %v", names[i], s, enc.Offsets)
				}
				prev = o[0]
			}
			if special := tk.EncodeSpecial(s); len(special) < len(ids) || !slices.Contains([]int{len(ids), len(ids) + 1, len(ids) + 2}, len(special)) {
				t.Fatalf("%s: EncodeSpecial(%q) = %v, Encode %v", names[i], s, special, ids)
			}
			if !utf8.ValidString(s) {
				continue
			}
			if want, ok := hfRoundTrips[names[i]](tk, s); ok {
				if got := tk.Decode(ids); got != want {
					t.Fatalf("%s: Decode(Encode(%q)) = %q, want %q", names[i], s, got, want)
				}
			}
		}
	})
}
