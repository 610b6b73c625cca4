package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyJSON is a small SentencePiece-style tokenizer.json, written for these
// tests: vocabulary a b c ▁ and their merges, <s> added in front.
func tinyJSON() map[string]any {
	return map[string]any{
		"version": "1.0",
		"added_tokens": []any{
			map[string]any{"id": 0, "content": "<s>", "special": true, "normalized": false},
		},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []any{0}}},
		},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{
			"type":      "BPE",
			"vocab":     map[string]any{"<s>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4, "▁": 5, "ab": 6, "▁ab": 7},
			"merges":    []any{"a b", "▁ ab"},
			"unk_token": "<unk>", "fuse_unk": true,
		},
	}
}

// set changes the value at a dotted path of m ("model.merges.0").
func set(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	var cur any = m
	for i, k := range keys {
		last := i == len(keys)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
				return
			}
			cur = c[k]
		case []any:
			n := 0
			for _, d := range k {
				n = n*10 + int(d-'0')
			}
			if last {
				c[n] = v
				return
			}
			cur = c[n]
		}
	}
}

func parseTiny(t *testing.T, m map[string]any) (*Tokenizer, error) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(b, nil)
}

// TestTiny checks the hand-made tokenizer against ids worked out by hand:
// "ab c" normalizes to "▁ab▁c"; a+b, then ▁+ab merge; c is c; "x" is not in
// the vocabulary, so <unk>, and two unknown runes fuse into one.
func TestTiny(t *testing.T) {
	tk, err := parseTiny(t, tinyJSON())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text    string
		special bool
		want    []int
	}{
		{"ab c", true, []int{0, 7, 5, 4}},
		{"ab c", false, []int{7, 5, 4}},
		{"axyb", false, []int{5, 2, 1, 3}},
		{"<s>ab", false, []int{0, 7}},
		{"", true, []int{0}},
	} {
		got := tk.EncodeSpecial(c.text)
		if !c.special {
			got = tk.Encode(c.text)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("encode(%q, special %v) = %v, want %v", c.text, c.special, got, c.want)
		}
	}
	if got, want := tk.Decode([]int{0, 7, 5, 4}), "<s> ab c"; got != want {
		t.Errorf("Decode = %q, want %q", got, want)
	}
	if got, want := tk.DecodeSkipSpecial([]int{0, 7, 5, 4}), "ab c"; got != want {
		t.Errorf("DecodeSkipSpecial = %q, want %q", got, want)
	}
	if tk.BOS() != 0 || tk.EOS() != -1 || tk.Pad() != -1 || tk.VocabSize() != 8 {
		t.Errorf("BOS, EOS, Pad, VocabSize = %d %d %d %d, want 0 -1 -1 8", tk.BOS(), tk.EOS(), tk.Pad(), tk.VocabSize())
	}
}

// TestBadTokenizerJSON: each broken file is refused with an error that
// names the field.
func TestBadTokenizerJSON(t *testing.T) {
	for _, c := range []struct {
		path string
		v    any
		want string
	}{
		{"model", nil, "model: missing"},
		{"model.type", "Unigram", `model.type: "Unigram" is not supported`},
		{"model.type", nil, "model.type: missing"},
		{"model.vocab", map[string]any{}, "model.vocab: missing or empty"},
		{"model.vocab", []any{1}, "model.vocab: want an object"},
		{"model.vocab.a", "x", `model.vocab: token "a"`},
		{"model.vocab.a", -3, `model.vocab: token "a" has negative id -3`},
		{"model.merges.0", "a", `model.merges[0]: "a" is not two tokens`},
		{"model.merges.1", "▁ zz", `model.merges[1]: "▁" "zz" names a token not in model.vocab`},
		{"model.merges.0", []any{"a"}, `model.merges[0]: want [left, right]`},
		{"model.merges", 7, "model.merges"},
		{"model.unk_token", "<nope>", `model.unk_token: "<nope>" is not in model.vocab`},
		{"model.dropout", 0.1, "model.dropout: 0.1 is not supported"},
		{"added_tokens.0", map[string]any{"id": 9}, "added_tokens[0].content: missing"},
		{"added_tokens.0", map[string]any{"content": "x"}, "added_tokens[0].id: missing"},
		{"added_tokens", "x", "added_tokens:"},
		{"normalizer.type", "BertNormalizer", `normalizer.type: normalizer "BertNormalizer" is not supported`},
		{"normalizer.normalizers.1.type", "Precompiled", `normalizer.normalizers[1].type: normalizer "Precompiled"`},
		{"normalizer.normalizers.1.pattern", map[string]any{"Regex": " +"}, "normalizer.normalizers[1].pattern: only"},
		{"normalizer.normalizers.0", map[string]any{"prepend": "x"}, "normalizer.normalizers[0].type: missing"},
		{"pre_tokenizer", map[string]any{"type": "Split", "pattern": map[string]any{"String": " "}, "behavior": "Sideways"}, `pre_tokenizer.behavior: unknown "Sideways"`},
		{"pre_tokenizer", map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `(?<=a)b`}, "behavior": "Isolated"}, "pre_tokenizer.pattern.Regex: regex"},
		{"pre_tokenizer", map[string]any{"type": "Split", "behavior": "Isolated"}, "pre_tokenizer.pattern: missing"},
		{"pre_tokenizer", map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "ByteLevel"}, map[string]any{"type": "Digits"}}}, "pre_tokenizer.pretokenizers[0]: ByteLevel must be the last"},
		{"pre_tokenizer", map[string]any{"type": "Metaspace", "prepend_scheme": "sometimes"}, `pre_tokenizer.prepend_scheme: unknown "sometimes"`},
		{"pre_tokenizer", map[string]any{"type": "BertPreTokenizer"}, `pre_tokenizer.type: pre-tokenizer "BertPreTokenizer"`},
		{"post_processor.single.0", map[string]any{"SpecialToken": map[string]any{"id": "<bos>"}}, `post_processor.single[0]: special token "<bos>" is not in special_tokens`},
		{"post_processor.single.1", map[string]any{}, "post_processor.single[1]: neither"},
		{"post_processor.type", "RobertaProcessing", `post_processor.type: post-processor "RobertaProcessing"`},
		{"post_processor", map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel"}, map[string]any{"type": "ByteLevel", "trim_offsets": true}}}, "post_processor.processors[1]: a second processor of the same kind"},
		{"decoder.decoders.2.content", "ab", "decoder.decoders[2].content: want a one-character string"},
		{"decoder.type", "WordPiece", `decoder.type: decoder "WordPiece" is not supported`},
	} {
		m := tinyJSON()
		set(m, c.path, c.v)
		_, err := parseTiny(t, m)
		if err == nil || !strings.Contains(err.Error(), "tokenizer.json: "+c.want) {
			t.Errorf("%s = %v: error %v, want one with %q", c.path, c.v, err, c.want)
		}
	}
}

func TestBadFiles(t *testing.T) {
	for _, c := range []struct {
		name, data, want string
	}{
		{"empty", "", "tokenizer.json: top level: byte 0: want '{', got the end"},
		{"not json", "{\"model\": {\"vocab\": {\"a\" 1}}}", `tokenizer.json: model: byte 25: want ':', got '1'`},
		{"trailing", "{} x", "tokenizer.json: top level: byte 3: trailing 'x'"},
		{"unterminated", `{"model": {"vocab": {"a`, "unterminated string"},
	} {
		if _, err := Parse([]byte(c.data), nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
	good, _ := json.Marshal(tinyJSON())
	for _, c := range []struct {
		config, want string
	}{
		{`{"padding_side": "middle"}`, `tokenizer_config.json: padding_side: "middle" is neither`},
		{`{"bos_token": 3}`, "tokenizer_config.json: bos_token: want null, a string or"},
		{`{"add_bos_token": "yes"}`, "tokenizer_config.json:"},
	} {
		if _, err := Parse(good, []byte(c.config)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s: error %v, want one with %q", c.config, err, c.want)
		}
	}
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("Load of a missing file: error %v, want one naming it", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("Load of a directory without tokenizer.json: error %v, want one naming it", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "tokenizer.json")) || !strings.Contains(err.Error(), "model: missing") {
		t.Errorf("Load of an empty object: error %v, want one naming the file and the model", err)
	}
}

// TestConfig reads tokenizer_config.json's fields.
func TestConfig(t *testing.T) {
	good, _ := json.Marshal(tinyJSON())
	tk, err := Parse(good, []byte(`{"add_bos_token": true, "add_eos_token": false, "model_max_length": 1e30,
		"padding_side": "left", "bos_token": {"content": "<s>"}, "eos_token": "c", "pad_token": null, "unk_token": "<unk>",
		"tokenizer_class": "LlamaTokenizer"}`))
	if err != nil {
		t.Fatal(err)
	}
	c := tk.Config()
	if c.AddBOS == nil || !*c.AddBOS || c.AddEOS == nil || *c.AddEOS || c.ModelMaxLength != 0 || c.PaddingSide != "left" ||
		c.BOS != "<s>" || c.EOS != "c" || c.Pad != "" || c.Unk != "<unk>" || c.Class != "LlamaTokenizer" {
		t.Errorf("Config = %+v", c)
	}
	if tk.BOS() != 0 || tk.EOS() != 4 || tk.Pad() != 4 {
		t.Errorf("BOS, EOS, Pad = %d %d %d, want 0 4 4 (pad falls back to EOS)", tk.BOS(), tk.EOS(), tk.Pad())
	}
	// transformers' LlamaTokenizerFast rebuilds the template from
	// add_bos_token and add_eos_token; other classes keep tokenizer.json's.
	for _, c := range []struct {
		config string
		want   []int
	}{
		{`{"tokenizer_class": "LlamaTokenizer", "eos_token": "c", "add_eos_token": true}`, []int{0, 7, 4}},
		{`{"tokenizer_class": "GemmaTokenizer", "eos_token": "c", "add_bos_token": false, "add_eos_token": true}`, []int{7, 4}},
		{`{"tokenizer_class": "LlamaTokenizer", "eos_token": "c", "add_bos_token": false}`, []int{7}},
		{`{"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "c", "add_eos_token": true}`, []int{0, 7}},
	} {
		tk, err := Parse(good, []byte(c.config))
		if err != nil {
			t.Fatal(err)
		}
		if got := tk.EncodeSpecial("ab"); !slices.Equal(got, c.want) {
			t.Errorf("config %s: EncodeSpecial(ab) = %v, want %v", c.config, got, c.want)
		}
	}
}
