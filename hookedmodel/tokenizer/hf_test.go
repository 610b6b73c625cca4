package tokenizer

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// The goldens in testdata/hf come from Hugging Face's tokenizers library
// (its Node binding, npm tokenizers 0.23.2) run on the real tokenizer.json
// files, which testdata/hf/fetch.sh caches; see testdata/hf/README.md.

// hfNames are the tokenizers of testdata/hf/tokenizers.txt.
var hfNames = []string{"llama3", "llama2", "qwen3", "gemma", "gemma2", "gemma3", "gpt2"}

type hfCase struct {
	Name string
	Hex  string
	Text string
}

// hfEncodeGolden is what Hugging Face makes of one text.
type hfEncodeGolden struct {
	IDs        []int
	Plain      []int
	Offsets    [][2]int
	Decode     string
	DecodeSkip string
}

type hfGolden struct {
	Tokenizers string
	SHA256     string
	Encode     []hfEncodeGolden
	Decode     []struct {
		IDs      []int
		Text     string
		TextSkip string
	}
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var hfCorpus = sync.OnceValue(func() (c []hfCase) {
	b, err := os.ReadFile("testdata/hf/corpus.json")
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		panic(err)
	}
	return c
})

// hfCached returns the path of a cached Hugging Face file. A missing file
// fails the test unless GOLENS_HF_TOKENIZERS_OPTIONAL=1.
func hfCached(t testing.TB, name, file string) string {
	t.Helper()
	dir := os.Getenv("GOLENS_HF_TOKENIZERS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "golens", "hf-tokenizers")
	}
	path := filepath.Join(dir, name, file)
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("%v: run hookedmodel/tokenizer/testdata/hf/fetch.sh", err)
		if os.Getenv("GOLENS_HF_TOKENIZERS_OPTIONAL") == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return path
}

var hfCache sync.Map // name -> *Tokenizer

// loadHF loads a cached tokenizer (once per test binary).
func loadHF(t testing.TB, name string) *Tokenizer {
	t.Helper()
	path := hfCached(t, name, "tokenizer.json")
	if tk, ok := hfCache.Load(name); ok {
		return tk.(*Tokenizer)
	}
	tk, err := Load(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	hfCache.Store(name, tk)
	return tk
}

// runeOffsets converts byte spans of s to rune spans, as the bindings count.
func runeOffsets(s string, offs [][2]int) [][2]int {
	out := make([][2]int, len(offs))
	for i, o := range offs {
		out[i] = [2]int{utf8.RuneCountInString(s[:o[0]]), utf8.RuneCountInString(s[:o[1]])}
	}
	return out
}

// mismatch counts a mismatch of a kind and reports the first three.
func mismatch(t *testing.T, bad map[string]int, kind string, format string, args ...any) {
	t.Helper()
	if bad[kind]++; bad[kind] <= 3 {
		t.Errorf(kind+": "+format, args...)
	}
}

// checkEncode compares the encodings and decodings of one text with
// Hugging Face's.
func checkEncode(t *testing.T, tk *Tokenizer, c hfCase, want hfEncodeGolden, bad map[string]int) {
	t.Helper()
	if got := tk.Encode(c.Text); !slices.Equal(got, want.Plain) {
		mismatch(t, bad, "encode", "%s %q: got %v, want %v", c.Name, c.Text, got, want.Plain)
	}
	if got := tk.EncodeSpecial(c.Text); !slices.Equal(got, want.IDs) {
		mismatch(t, bad, "encode special", "%s %q: got %v, want %v", c.Name, c.Text, got, want.IDs)
	}
	enc := tk.EncodeOffsets(c.Text, false)
	if !slices.Equal(enc.IDs, want.Plain) {
		mismatch(t, bad, "encode offsets", "%s %q: ids %v, want %v", c.Name, c.Text, enc.IDs, want.Plain)
	}
	if got := runeOffsets(c.Text, enc.Offsets); !slices.Equal(got, want.Offsets) {
		mismatch(t, bad, "offsets", "%s %q: got %v, want %v", c.Name, c.Text, got, want.Offsets)
	}
	if got := tk.Decode(want.IDs); got != want.Decode {
		mismatch(t, bad, "decode", "%s %v: got %q, want %q", c.Name, want.IDs, got, want.Decode)
	}
	if got := tk.DecodeSkipSpecial(want.IDs); got != want.DecodeSkip {
		mismatch(t, bad, "decode skip special", "%s %v: got %q, want %q", c.Name, want.IDs, got, want.DecodeSkip)
	}
}

func TestHFGoldens(t *testing.T) {
	corpus := hfCorpus()
	for _, name := range hfNames {
		t.Run(name, func(t *testing.T) {
			tk := loadHF(t, name)
			var g hfGolden
			readJSON(t, "testdata/hf/golden-"+name+".json", &g)
			b, err := os.ReadFile(hfCached(t, name, "tokenizer.json"))
			if err != nil {
				t.Fatal(err)
			}
			if sum := fmt.Sprintf("%x", sha256.Sum256(b)); sum != g.SHA256 {
				t.Fatalf("tokenizer.json sha256 %s, the goldens were made from %s", sum, g.SHA256)
			}
			if len(g.Encode) != len(corpus) {
				t.Fatalf("%d goldens for %d texts", len(g.Encode), len(corpus))
			}
			bad := map[string]int{}
			for i, c := range corpus {
				checkEncode(t, tk, c, g.Encode[i], bad)
			}
			for _, c := range g.Decode {
				if got := tk.Decode(c.IDs); got != c.Text {
					mismatch(t, bad, "decode ids", "%v: got %q, want %q", c.IDs, got, c.Text)
				}
				if got := tk.DecodeSkipSpecial(c.IDs); got != c.TextSkip {
					mismatch(t, bad, "decode ids skip special", "%v: got %q, want %q", c.IDs, got, c.TextSkip)
				}
			}
			if len(bad) > 0 {
				t.Errorf("mismatches by kind: %v (of %d texts, %d id sequences)", bad, len(corpus), len(g.Decode))
			}
		})
	}
}

// hfVariant is an entry of testdata/hf/variants.json.
type hfVariant struct {
	Name, Base string
	Set        map[string]any
	AddTokens  []any `json:"add_tokens"`
}

// variantJSON applies a variant's edits to its base, as gen.js does.
func variantJSON(t *testing.T, v hfVariant) []byte {
	t.Helper()
	var j map[string]any
	if strings.HasSuffix(v.Base, ".json") {
		readJSON(t, filepath.Join("testdata", "hf", v.Base), &j)
	} else {
		readJSON(t, hfCached(t, v.Base, "tokenizer.json"), &j)
	}
	for key, value := range v.Set {
		if value == nil && !strings.Contains(key, ".") {
			j[key] = nil // gen.js writes null, where set would delete the key
			continue
		}
		set(j, key, value)
	}
	j["added_tokens"] = append(j["added_tokens"].([]any), v.AddTokens...)
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hfKnownDiffs are the variant cases where we differ from Hugging Face on
// purpose, with the reason.
var hfKnownDiffs = map[string]string{
	"gpt2-digits-punctuation random/34": "U+061D ARABIC END OF TEXT MARK is punctuation (Po) since Unicode 14, as in Go's " +
		"tables; HF's Punctuation uses older ones (its punctuationPreTokenizer keeps \"a\u061Db\" whole)",
}

// TestHFVariants checks the components the real tokenizers do not use
// against Hugging Face, on tokenizers that swap them in (variants.json).
func TestHFVariants(t *testing.T) {
	corpus := hfCorpus()
	var variants []hfVariant
	readJSON(t, "testdata/hf/variants.json", &variants)
	var g struct {
		Texts    []int
		Variants map[string]struct{ Encode []hfEncodeGolden }
	}
	readJSON(t, "testdata/hf/golden-variants.json", &g)
	for _, v := range variants {
		t.Run(v.Name, func(t *testing.T) {
			tk, err := Parse(variantJSON(t, v), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := g.Variants[v.Name].Encode
			if len(want) != len(g.Texts) {
				t.Fatalf("%d goldens for %d texts", len(want), len(g.Texts))
			}
			bad := map[string]int{}
			for k, i := range g.Texts {
				if _, ok := hfKnownDiffs[v.Name+" "+corpus[i].Name]; !ok {
					checkEncode(t, tk, corpus[i], want[k], bad)
				}
			}
			if len(bad) > 0 {
				t.Errorf("mismatches by kind: %v (of %d texts)", bad, len(g.Texts))
			}
		})
	}
}
