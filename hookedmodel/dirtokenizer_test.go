package hookedmodel

import (
	"context"
	"github.com/golens/golens/hookedmodel/hftest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// dirTokenizerJSON is a small SentencePiece-style tokenizer.json written for
// this test, its ids below the 20 of the hftest.Small vocabulary: "ab c"
// normalizes to "▁ab▁c", which merges to ▁ab (7), ▁ (5), c (4); the
// template puts <s> (0) first.
const dirTokenizerJSON = `{
  "added_tokens": [{"id": 0, "content": "<s>", "special": true, "normalized": false},
                   {"id": 8, "content": "</s>", "special": true, "normalized": false}],
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "vocab": {"<s>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4, "▁": 5, "ab": 6, "▁ab": 7, "</s>": 8},
    "merges": ["a b", "▁ ab"], "unk_token": "<unk>", "fuse_unk": true}
}`

const dirTokenizerConfig = `{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true}`

// TestDirTokenizer: a checkpoint directory's tokenizer.json is the model's
// tokenizer, for Load and TokenizerOf, and TransformerLens's to_tokens
// semantics hold on it (the template's BOS, never twice; none with
// PrependBOS(false)).
func TestDirTokenizer(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ck := hftest.Write(t, "mistral", hftest.Opts{Seed: 3})
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(ck.Dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tokenizer.json", dirTokenizerJSON)
	write("tokenizer_config.json", dirTokenizerConfig)

	tk, err := TokenizerOf(ck.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Encode("ab c"); !slices.Equal(got, []int{7, 5, 4}) || tk.EOS() != 8 {
		t.Errorf("TokenizerOf: Encode(ab c) = %v, EOS %d; want [7 5 4], 8", got, tk.EOS())
	}
	m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	for _, c := range []struct {
		opts []RunOption
		want []int64
	}{
		{nil, []int64{0, 7, 5, 4}},
		{[]RunOption{PrependBOS(false)}, []int64{7, 5, 4}},
	} {
		toks, err := m.ToTokens([]string{"ab c"}, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := gotch.ToSlice[int64](toks)
		toks.Free()
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ToTokens(ab c, %d options) = %v, want %v", len(c.opts), got, c.want)
		}
	}
	if s, err := m.ToStrTokens("ab c"); err != nil || !slices.Equal(s, []string{"<s>", "ab", "", "c"}) {
		t.Errorf("ToStrTokens = %q, %v", s, err)
	}
}

// TestDirTokenizerErrors: a broken tokenizer.json, or one with more ids
// than the model's vocabulary, fails Load and TokenizerOf naming it.
func TestDirTokenizerErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	for _, c := range []struct {
		name, data, want string
	}{
		{"broken", `{"model": {"type": "Unigram"}}`, `tokenizer.json: model.type: "Unigram" is not supported`},
		{"too big", strings.Replace(dirTokenizerJSON, `"</s>": 8}`, `"</s>": 8, "x": 25}`, 1), "tokenizer.json has 26 token ids, more than the model's d_vocab 20"},
	} {
		ck := hftest.Write(t, "mistral", hftest.Opts{Seed: 4})
		if err := os.WriteFile(filepath.Join(ck.Dir, "tokenizer.json"), []byte(c.data), 0o644); err != nil {
			t.Fatal(err)
		}
		want := ck.Dir + ": " + c.want
		if _, err := TokenizerOf(ck.Dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: TokenizerOf error %v, want one with %q", c.name, err, want)
		}
		m, err := Load(context.Background(), ck.Dir, NoProcessing(), OnDevice(gotchtest.Device(t)))
		if err == nil {
			m.Free()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Load error %v, want one with %q", c.name, err, want)
		}
	}
}
