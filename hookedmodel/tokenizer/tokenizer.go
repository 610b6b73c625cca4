package tokenizer

import (
	"fmt"
	"strings"
	"sync"
)

// Tokenizer is GPT-2's byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	v     *vocab
	cache wordCache
}

var gpt2 = sync.OnceValue(func() *Tokenizer {
	v, err := loadGPT2()
	if err != nil {
		// The files are embedded and checked by the tests: only a broken
		// build gets here.
		panic(fmt.Errorf("tokenizer: embedded GPT-2 vocabulary: %w", err))
	}
	return &Tokenizer{v: v}
})

// GPT2 returns the GPT-2 tokenizer (also used by GPT-2's medium, large and
// xl sizes and by DistilGPT2). The vocabulary is parsed on the first call,
// which takes a few tens of milliseconds; later calls return the same
// Tokenizer.
func GPT2() *Tokenizer { return gpt2() }

// VocabSize returns the number of tokens, 50257.
func (t *Tokenizer) VocabSize() int { return len(t.v.tokens) }

// BOS returns the beginning-of-sequence id: <|endoftext|>, 50256.
func (t *Tokenizer) BOS() int { return len(t.v.tokens) - 1 }

// EOS returns the end-of-sequence id: <|endoftext|>, 50256.
func (t *Tokenizer) EOS() int { return len(t.v.tokens) - 1 }

// Pad returns the padding id. GPT-2 has no padding token, so TransformerLens
// pads with EOS: 50256.
func (t *Tokenizer) Pad() int { return len(t.v.tokens) - 1 }

// Encode returns the token ids of text. Each "<|endoftext|>" in text becomes
// the special id 50256, as Hugging Face's tokenizer does by default (and so
// TransformerLens's to_tokens); EncodeOrdinary treats it as plain text.
func (t *Tokenizer) Encode(text string) []int {
	ids := make([]int, 0, len(text)/4+1)
	for {
		before, after, found := strings.Cut(text, endOfText)
		ids = t.appendOrdinary(ids, before)
		if !found {
			return ids
		}
		ids = append(ids, t.EOS())
		text = after
	}
}

// EncodeOrdinary returns the token ids of text, encoding "<|endoftext|>" like
// any other text: use it for untrusted text that must not inject the special
// token.
func (t *Tokenizer) EncodeOrdinary(text string) []int {
	return t.appendOrdinary(make([]int, 0, len(text)/4+1), text)
}

func (t *Tokenizer) appendOrdinary(dst []int, text string) []int {
	for w := range words(text) {
		switch {
		case len(w) == 1:
			dst = append(dst, int(t.v.byteID[w[0]]))
		case len(w) > cacheWordLen:
			dst = t.v.bpe(dst, w)
		default:
			if ids, ok := t.cache.get(w); ok {
				dst = append(dst, ids...)
				continue
			}
			n := len(dst)
			dst = t.v.bpe(dst, w)
			t.cache.put(w, dst[n:])
		}
	}
	return dst
}

// Decode returns the text of ids. Bytes that do not form valid UTF-8 become
// U+FFFD, one per maximal ill-formed subsequence, and ids outside the
// vocabulary are skipped, both as Hugging Face's decode does. Tokens are
// joined as they are: no clean-up of spaces (TransformerLens passes
// clean_up_tokenization_spaces=False).
func (t *Tokenizer) Decode(ids []int) string {
	n := 0
	for _, id := range ids {
		if id >= 0 && id < len(t.v.tokens) {
			n += len(t.v.tokens[id])
		}
	}
	b := make([]byte, 0, n)
	for _, id := range ids {
		if id >= 0 && id < len(t.v.tokens) {
			b = append(b, t.v.tokens[id]...)
		}
	}
	return lossyString(b)
}

// Token returns the text of one token as to_str_tokens shows it: a token that
// holds part of a multi-byte character decodes to U+FFFD.
func (t *Tokenizer) Token(id int) (string, error) {
	if err := t.check(int64(id)); err != nil {
		return "", err
	}
	return lossyString(t.v.tokens[id]), nil
}

func (t *Tokenizer) check(id int64) error {
	if id < 0 || id >= int64(len(t.v.tokens)) {
		return fmt.Errorf("token id %d out of range [0, %d)", id, len(t.v.tokens))
	}
	return nil
}
