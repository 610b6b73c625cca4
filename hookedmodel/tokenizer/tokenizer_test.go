package tokenizer

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestVocabFilesAreGPT2s(t *testing.T) {
	// The sha256 of Hugging Face's gpt2 vocab.json and merges.txt, and of
	// OpenAI's encoder.json and vocab.bpe (tiktoken pins the same).
	for _, f := range []struct {
		name string
		data []byte
		want string
	}{
		{"encoder.json", encoderJSON, "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"},
		{"vocab.bpe", vocabBPE, "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"},
	} {
		if got := fmt.Sprintf("%x", sha256.Sum256(f.data)); got != f.want {
			t.Errorf("sha256(%s) = %s, want %s", f.name, got, f.want)
		}
	}
	tk := GPT2()
	if tk.VocabSize() != 50257 || tk.BOS() != 50256 || tk.EOS() != 50256 || tk.Pad() != 50256 {
		t.Errorf("VocabSize, BOS, EOS, Pad = %d, %d, %d, %d; want 50257, 50256, 50256, 50256",
			tk.VocabSize(), tk.BOS(), tk.EOS(), tk.Pad())
	}
}

// TestWords checks splits derived by hand from the pattern with Oniguruma's
// \s (Unicode White_Space), which Hugging Face's tokenizers use.
func TestWords(t *testing.T) {
	for _, c := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"Hello world", []string{"Hello", " world"}},
		{"  a", []string{" ", " a"}},
		{"a  ", []string{"a", "  "}},
		{"a  \tb", []string{"a", "  ", "\t", "b"}},
		{"a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"it's", []string{"it", "'s"}},
		{"IT'S", []string{"IT", "'", "S"}},
		{" 's", []string{" '", "s"}},
		{"we'll've", []string{"we", "'ll", "'ve"}},
		{"'l", []string{"'", "l"}},
		{"a1b 23", []string{"a", "1", "b", " 23"}},
		{"e\u0301", []string{"e", "\u0301"}},
		{"x!\u0085", []string{"x", "!", "\u0085"}},
		{" \u0085", []string{" \u0085"}},
		{"\u0085 x", []string{"\u0085", " x"}},
		{" \ufeffx", []string{" \ufeff", "x"}},
		{"a\u00a0\u00a0b", []string{"a", "\u00a0", "\u00a0", "b"}},
		{"\xff\xfe", []string{"\xff\xfe"}},
		{"a \xffb", []string{"a", " \xff", "b"}},
	} {
		if got := slices.Collect(words(c.text)); !slices.Equal(got, c.want) {
			t.Errorf("words(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestSpecialToken(t *testing.T) {
	tk := GPT2()
	// Hugging Face's GPT2TokenizerFast: "hello <|endoftext|>" -> [31373, 220, 50256].
	if got, want := tk.Encode("hello <|endoftext|>"), []int{31373, 220, 50256}; !slices.Equal(got, want) {
		t.Errorf("Encode(%q) = %v, want %v", "hello <|endoftext|>", got, want)
	}
	// Text on either side is encoded on its own, as HF splits on added tokens
	// before pre-tokenising.
	for _, text := range []string{"<|endoftext|>", "a<|endoftext|>b", "  <|endoftext|>  x", "<|endoftext|><|endoftext|>", "x<|endoftext"} {
		var want []int
		for i, part := range strings.Split(text, endOfText) {
			if i > 0 {
				want = append(want, 50256)
			}
			want = append(want, tk.EncodeOrdinary(part)...)
		}
		if got := tk.Encode(text); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", text, got, want)
		}
	}
	if got := tk.EncodeOrdinary(endOfText); slices.Contains(got, 50256) {
		t.Errorf("EncodeOrdinary(%q) = %v, want no special id", endOfText, got)
	}
}

func TestDecode(t *testing.T) {
	tk := GPT2()
	if got, want := tk.Decode([]int{15496, -1, 50257, 995}), "Hello world"; got != want {
		t.Errorf("Decode with ids outside the vocabulary = %q, want %q (skipped)", got, want)
	}
	if got, want := tk.Decode([]int{15496, 50256}), "Hello<|endoftext|>"; got != want {
		t.Errorf("Decode = %q, want %q", got, want)
	}
	for _, id := range []int{-1, 50257} {
		if _, err := tk.Token(id); err == nil || !strings.Contains(err.Error(), fmt.Sprint(id)) {
			t.Errorf("Token(%d): error %v, want one naming the id", id, err)
		}
	}
}

// TestPathological checks that inputs which defeat naive BPE or regex
// splitting still round-trip; BenchmarkEncodePathological times them.
func TestPathological(t *testing.T) {
	tks := map[string]*Tokenizer{"gpt2": GPT2()}
	for _, name := range []string{"llama3", "qwen3", "llama2", "gemma3"} {
		tks[name] = loadHF(t, name)
	}
	for tname, tk := range tks {
		for name, text := range pathological() {
			if got := tk.Decode(tk.Encode(text)); got != text {
				t.Errorf("%s %s: Decode(Encode(text)) differs from text", tname, name)
			}
		}
	}
}

// TestEncodeBatch: the batch, on every core, is the texts encoded one by one.
func TestEncodeBatch(t *testing.T) {
	var texts []string
	for _, c := range hfCorpus() {
		texts = append(texts, c.Text)
	}
	for _, name := range []string{"llama3", "gemma3"} {
		tk := loadHF(t, name)
		for _, special := range []bool{false, true} {
			got := tk.EncodeBatch(texts, special)
			for i, text := range texts {
				want := tk.Encode(text)
				if special {
					want = tk.EncodeSpecial(text)
				}
				if !slices.Equal(got[i], want) {
					t.Fatalf("%s: EncodeBatch[%d] (special %v) = %v, want %v", name, i, special, got[i], want)
				}
			}
		}
	}
}

func pathological() map[string]string {
	return map[string]string{
		"newlines-50k": strings.Repeat("\n", 50_000),
		"a-100k":       strings.Repeat("a", 100_000),
		"spaces-100k":  strings.Repeat(" ", 100_000) + "x",
		"digits-100k":  strings.Repeat("7", 100_000),
		"bang-100k":    strings.Repeat("!", 100_000),
		"mixed-ws-50k": strings.Repeat(" \t\n", 50_000/3),
		"emoji-20k":    strings.Repeat("👨‍👩‍👧‍👦", 20_000/25),
	}
}

func TestConcurrentEncode(t *testing.T) {
	g := readGolden(t)
	tk := GPT2()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, c := range g.Encode {
				if _, quirk := jsQuirks[c.Name]; quirk {
					continue
				}
				if got := tk.EncodeOrdinary(c.Text); !slices.Equal(got, c.IDs) {
					t.Errorf("%s: concurrent EncodeOrdinary differs", c.Name)
				}
			}
		})
	}
	wg.Wait()
}
