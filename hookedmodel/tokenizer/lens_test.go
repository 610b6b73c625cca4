package tokenizer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// "Hello" = 15496, " world" = 995, "!" = 0, BOS = PAD = 50256.

func TestToTokens(t *testing.T) {
	tk := GPT2()
	texts := []string{"Hello world", "!"}
	for _, c := range []struct {
		name      string
		opts      []Option
		ids, mask [][]int64
	}{
		{"default", nil,
			[][]int64{{50256, 15496, 995}, {50256, 0, 50256}},
			[][]int64{{1, 1, 1}, {1, 1, 0}}},
		{"nil option", []Option{nil},
			[][]int64{{50256, 15496, 995}, {50256, 0, 50256}},
			[][]int64{{1, 1, 1}, {1, 1, 0}}},
		{"left", []Option{PaddingSide("left")},
			[][]int64{{50256, 15496, 995}, {50256, 50256, 0}},
			[][]int64{{1, 1, 1}, {0, 1, 1}}},
		{"no-bos", []Option{PrependBOS(false)},
			[][]int64{{15496, 995}, {0, 50256}},
			[][]int64{{1, 1}, {1, 0}}},
		{"max-length", []Option{MaxLength(2)},
			[][]int64{{50256, 15496}, {50256, 0}},
			[][]int64{{1, 1}, {1, 1}}},
	} {
		ids, mask, err := tk.ToTokens(texts, c.opts...)
		if err != nil {
			t.Errorf("%s: ToTokens: %v", c.name, err)
			continue
		}
		if !slices.EqualFunc(ids, c.ids, slices.Equal) || !slices.EqualFunc(mask, c.mask, slices.Equal) {
			t.Errorf("%s: ToTokens = %v, %v; want %v, %v", c.name, ids, mask, c.ids, c.mask)
		}
	}

	for _, c := range []struct {
		opt  Option
		want string
	}{
		{PaddingSide("middle"), `padding side must be "right" or "left", not "middle"`},
		{MaxLength(-1), "max length must not be negative, got -1"},
	} {
		if _, _, err := tk.ToTokens(texts, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ToTokens with a bad option: error %v, want one containing %q", err, c.want)
		}
	}
}

func TestToStrTokensAndToString(t *testing.T) {
	tk := GPT2()
	got, err := tk.ToStrTokens("Hello world“")
	if want := []string{"<|endoftext|>", "Hello", " world", "\ufffd", "\ufffd"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ToStrTokens = %q, %v; want %q", got, err, want)
	}
	if s, err := tk.ToString([]int64{15496, 995}); err != nil || s != "Hello world" {
		t.Errorf("ToString = %q, %v; want %q", s, err, "Hello world")
	}
	if _, err := tk.ToString([]int64{15496, 60000}); err == nil || !strings.Contains(err.Error(), "position 1: token id 60000 out of range") {
		t.Errorf("ToString with a bad id: error %v", err)
	}
}

func TestToSingleToken(t *testing.T) {
	tk := GPT2()
	if id, err := tk.ToSingleToken(" world"); err != nil || id != 995 {
		t.Errorf("ToSingleToken(%q) = %d, %v; want 995", " world", id, err)
	}
	if id, err := tk.ToSingleToken("<|endoftext|>"); err != nil || id != 50256 {
		t.Errorf("ToSingleToken(%q) = %d, %v; want 50256", "<|endoftext|>", id, err)
	}
	for text, want := range map[string]string{
		"Hello world": `text "Hello world" is not a single token: it encodes to 2 tokens`,
		"":            `text "" is not a single token: it encodes to 0 tokens`,
	} {
		if _, err := tk.ToSingleToken(text); err == nil || err.Error() != want {
			t.Errorf("ToSingleToken(%q): error %v, want %q", text, err, want)
		}
	}
}

func TestGetTokenPosition(t *testing.T) {
	tk := GPT2()
	for _, c := range []struct {
		token, input any
		mode         string
		opts         []Option
		want         int
	}{
		{" world", "Hello world world", "first", nil, 2},
		{" world", "Hello world world", "last", nil, 3},
		{" world", "Hello world world", "first", []Option{PrependBOS(false)}, 1},
		{995, []int64{15496, 995, 995}, "last", nil, 2},
		{int64(50256), []int{50256, 15496}, "first", nil, 0},
	} {
		if got, err := tk.GetTokenPosition(c.token, c.input, c.mode, c.opts...); err != nil || got != c.want {
			t.Errorf("GetTokenPosition(%#v, %#v, %q) = %d, %v; want %d", c.token, c.input, c.mode, got, err, c.want)
		}
	}
	for _, c := range []struct {
		token, input any
		mode, want   string
	}{
		{" world", "Hello", "first", `token 995 (" world") does not occur in the input`},
		{" world", "Hello", "middle", `mode must be "first" or "last", not "middle"`},
		{"Hello world", "Hello", "first", "is not a single token"},
		{1.5, "Hello", "first", "token must be a string, int or int64, not float64"},
		{995, 3, "first", "input must be a string, []int64 or []int, not int"},
		{-1, "Hello", "first", "token id -1 out of range"},
	} {
		if _, err := tk.GetTokenPosition(c.token, c.input, c.mode); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("GetTokenPosition(%#v, %#v, %q): error %v, want one containing %q", c.token, c.input, c.mode, err, c.want)
		}
	}
}

// TestToTokensTemplate: TransformerLens's to_tokens never doubles BOS. Gemma
// 3's template adds <bos> (2): PrependBOS keeps it, PrependBOS(false)
// removes it. Llama 3's (this tokenizer.json) adds none: <|begin_of_text|>
// (128000) is prepended. "Hello" is 9259 for Gemma 3 and 9906 for Llama 3
// (testdata/hf goldens).
func TestToTokensTemplate(t *testing.T) {
	for _, c := range []struct {
		name string
		bos  bool
		want []int64
	}{
		{"gemma3", true, []int64{2, 9259}},
		{"gemma3", false, []int64{9259}},
		{"llama3", true, []int64{128000, 9906}},
		{"llama3", false, []int64{9906}},
	} {
		tk := loadHF(t, c.name)
		ids, _, err := tk.ToTokens([]string{"Hello"}, PrependBOS(c.bos))
		if err != nil || !slices.Equal(ids[0], c.want) {
			t.Errorf("%s: ToTokens(Hello, PrependBOS(%v)) = %v, %v; want %v", c.name, c.bos, ids, err, c.want)
		}
	}
	good, _ := json.Marshal(tinyJSON())
	tk, err := Parse(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	tk.template, tk.bos, tk.eos = nil, -1, -1
	if _, _, err := tk.ToTokens([]string{"a"}); err == nil || !strings.Contains(err.Error(), "no BOS token") {
		t.Errorf("ToTokens without a BOS token: error %v, want one saying so", err)
	}
}
