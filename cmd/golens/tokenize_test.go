package main

import (
	"os"
	"path/filepath"
	"testing"
)

// tinyTokenizerJSON is a small SentencePiece-style tokenizer.json written
// for this test: "ab c" normalizes to "▁ab▁c", which merges to ▁ab (7),
// ▁ (5), c (4); the template puts <s> (0) first.
const tinyTokenizerJSON = `{
  "added_tokens": [{"id": 0, "content": "<s>", "special": true, "normalized": false}],
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "vocab": {"<s>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4, "▁": 5, "ab": 6, "▁ab": 7},
    "merges": ["a b", "▁ ab"], "unk_token": "<unk>", "fuse_unk": true}
}`

// TestTokenizeTokenizerFlag: tokenize --tokenizer reads a tokenizer.json
// file or its directory; the template's BOS comes once, and --no-bos
// removes it.
func TestTokenizeTokenizerFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(file, []byte(tinyTokenizerJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonl := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(jsonl, []byte(`{"text": "ab c"}`+"\n"+`{"text": ""}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tokenizer", file, "--text", "ab c"}, "0 7 5 4\n"},
		{[]string{"--tokenizer", dir, "--text", "ab c", "--no-bos"}, "7 5 4\n"},
		{[]string{"--tokenizer", dir, "--text", "ab c", "--json", "--str"}, `{"ids":[0,7,5,4],"str_tokens":["<s>","ab","","c"]}` + "\n"},
		{[]string{"--tokenizer", dir, "--jsonl", jsonl}, "[0,7,5,4]\n[0]\n"},
	} {
		out, err := golens(t, append([]string{"tokenize"}, c.args...)...)
		if err != nil || out != c.want {
			t.Errorf("tokenize %q: %q, %v; want %q", c.args, out, err, c.want)
		}
	}
}
