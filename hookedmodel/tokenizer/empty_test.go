package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestEmptyInputs calls each exported function with empty and nil input:
// each gives its documented empty result or an error saying what was
// empty, and none panics. Gemma 3's tokenizer adds a BOS; GPT-2's adds
// nothing.
func TestEmptyInputs(t *testing.T) {
	gpt2, gemma := GPT2(), loadHF(t, "gemma3")
	want := func(got, want any) error {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	}
	for _, c := range []struct {
		name    string
		call    func() error
		wantErr string
	}{
		{"Load empty path", func() error { _, err := Load(""); return err }, "load tokenizer"},
		{"Parse nil", func() error { _, err := Parse(nil, nil); return err }, "tokenizer.json: top level: byte 0"},
		{"Parse empty config", func() error {
			_, err := Parse([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0}}}`), []byte{})
			return err
		}, "tokenizer_config.json"},
		{"Encode empty", func() error { return want(gpt2.Encode(""), []int{}) }, ""},
		{"EncodeOrdinary empty", func() error { return want(gpt2.EncodeOrdinary(""), []int{}) }, ""},
		{"EncodeSpecial empty", func() error { return want(gemma.EncodeSpecial(""), []int{2}) }, ""},
		{"EncodeOffsets empty", func() error {
			return want(gemma.EncodeOffsets("", true), Encoding{IDs: []int{2}, Offsets: [][2]int{{0, 0}}})
		}, ""},
		{"EncodeBatch nil", func() error { return want(len(gpt2.EncodeBatch(nil, true)), 0) }, ""},
		{"EncodeBatch empty text", func() error { return want(gemma.EncodeBatch([]string{""}, true), [][]int{{2}}) }, ""},
		{"Decode nil", func() error { return want(gemma.Decode(nil), "") }, ""},
		{"DecodeSkipSpecial nil", func() error { return want(gemma.DecodeSkipSpecial(nil), "") }, ""},
		{"ID empty", func() error { _, ok := gemma.ID(""); return want(ok, false) }, ""},
		{"Token negative", func() error { _, err := gemma.Token(-1); return err }, "token id -1 out of range"},
		{"ToTokens nil", func() error {
			ids, mask, err := gpt2.ToTokens(nil)
			return errors.Join(err, want(len(ids)+len(mask), 0))
		}, ""},
		{"ToStrTokens empty", func() error {
			s, err := gpt2.ToStrTokens("")
			return errors.Join(err, want(s, []string{"<|endoftext|>"}))
		}, ""},
		{"ToString nil", func() error { s, err := gpt2.ToString(nil); return errors.Join(err, want(s, "")) }, ""},
		{"ToSingleToken empty", func() error { _, err := gpt2.ToSingleToken(""); return err }, "encodes to 0 tokens"},
		{"GetTokenPosition nil input", func() error { _, err := gpt2.GetTokenPosition(50256, []int(nil), "first"); return err }, "does not occur"},
		{"GetTokenPosition nil token", func() error { _, err := gpt2.GetTokenPosition(nil, "x", "first"); return err }, "token must be"},
		{"GetTokenPosition empty mode", func() error { _, err := gpt2.GetTokenPosition(1, "x", ""); return err }, "mode must be"},
		{"PaddingSide empty", func() error { _, _, err := gpt2.ToTokens([]string{"a"}, PaddingSide("")); return err }, "padding side"},
		{"PrependBOS nil option", func() error {
			_, _, err := gpt2.ToTokens([]string{"a"}, nil, PrependBOS(false), MaxLength(0))
			return err
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			err := c.call()
			switch {
			case c.wantErr == "" && err != nil:
				t.Error(err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error %v, want one with %q", err, c.wantErr)
			}
		})
	}
}
