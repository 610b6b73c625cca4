package tokenizer

import "fmt"

// TransformerLens's tokenisation helpers (HookedTransformer.to_tokens,
// to_str_tokens, to_string, to_single_token, get_token_position), on which
// hookedmodel builds its tensors.

// sequence returns the ids of text as to_tokens makes them: the tokenizer
// called with its special tokens (the template's), then BOS prepended if
// the template does not add one and PrependBOS asks for it, or the
// template's removed if PrependBOS(false), so that there is never a double
// BOS; then truncation.
func (t *Tokenizer) sequence(text string, o options) []int64 {
	ids := t.EncodeSpecial(text)
	prepends := t.PrependsBOS()
	seq := make([]int64, 0, len(ids)+1)
	if o.prependBOS && !prepends {
		seq = append(seq, int64(t.BOS()))
	}
	if !o.prependBOS && prepends {
		ids = ids[1:]
	}
	for _, id := range ids {
		seq = append(seq, int64(id))
	}
	if o.maxLength > 0 && len(seq) > o.maxLength {
		seq = seq[:o.maxLength]
	}
	return seq
}

// PrependsBOS reports whether the tokenizer's template starts each
// sequence with BOS (Llama 2, Gemma), TransformerLens's
// tokenizer_prepends_bos.
func (t *Tokenizer) PrependsBOS() bool {
	return len(t.template) > 0 && !t.template[0].sequence && len(t.template[0].ids) == 1 && int(t.template[0].ids[0]) == t.bos
}

// ToTokens tokenises a batch as to_tokens does: BOS first (PrependBOS),
// truncated (MaxLength), then padded with Pad to the longest sequence
// (PaddingSide). mask is 1 at real tokens, BOS included, and 0 at padding,
// like Hugging Face's attention_mask. The rows of ids, and of mask, share one
// contiguous array.
func (t *Tokenizer) ToTokens(texts []string, opts ...Option) (ids, mask [][]int64, err error) {
	o, err := t.options(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("to tokens: %w", err)
	}
	seqs := make([][]int64, len(texts))
	width := 0
	for i, text := range texts {
		seqs[i] = t.sequence(text, o)
		width = max(width, len(seqs[i]))
	}
	flatIDs := make([]int64, len(texts)*width)
	flatMask := make([]int64, len(texts)*width)
	ids = make([][]int64, len(texts))
	mask = make([][]int64, len(texts))
	for i, seq := range seqs {
		row := flatIDs[i*width : (i+1)*width : (i+1)*width]
		m := flatMask[i*width : (i+1)*width : (i+1)*width]
		for j := range row {
			row[j] = int64(t.Pad())
		}
		start := 0
		if o.paddingSide == "left" {
			start = width - len(seq)
		}
		copy(row[start:], seq)
		for j := start; j < start+len(seq); j++ {
			m[j] = 1
		}
		ids[i], mask[i] = row, m
	}
	return ids, mask, nil
}

// ToStrTokens returns the tokens of text, each decoded on its own as
// to_str_tokens shows them; BOS is first unless PrependBOS(false).
func (t *Tokenizer) ToStrTokens(text string, opts ...Option) ([]string, error) {
	o, err := t.options(opts)
	if err != nil {
		return nil, fmt.Errorf("to str tokens: %w", err)
	}
	seq := t.sequence(text, o)
	out := make([]string, len(seq))
	for i, id := range seq {
		out[i] = t.decode([]int{int(id)}, false)
	}
	return out, nil
}

// ToString decodes ids as to_string does; unlike Decode it rejects ids
// outside the vocabulary.
func (t *Tokenizer) ToString(ids []int64) (string, error) {
	ints := make([]int, len(ids))
	for i, id := range ids {
		if err := t.check(id); err != nil {
			return "", fmt.Errorf("to string: position %d: %w", i, err)
		}
		ints[i] = int(id)
	}
	return t.Decode(ints), nil
}

// ToSingleToken returns the id of text, which must encode to exactly one
// token (without BOS).
func (t *Tokenizer) ToSingleToken(text string) (int, error) {
	ids := t.Encode(text)
	if len(ids) != 1 {
		return 0, fmt.Errorf("text %q is not a single token: it encodes to %d tokens", text, len(ids))
	}
	return ids[0], nil
}

// GetTokenPosition returns the position of token in input, as
// get_token_position does. token is an id (int or int64) or a string that
// must be a single token; input is a text, tokenised with opts (so with BOS
// unless PrependBOS(false)), or ids ([]int64 or []int). mode "first" or
// "last" picks among several occurrences. It is an error if token does not
// occur.
func (t *Tokenizer) GetTokenPosition(token, input any, mode string, opts ...Option) (int, error) {
	if mode != "first" && mode != "last" {
		return 0, fmt.Errorf("get token position: mode must be \"first\" or \"last\", not %q", mode)
	}
	o, err := t.options(opts)
	if err != nil {
		return 0, fmt.Errorf("get token position: %w", err)
	}
	var tok int64
	switch v := token.(type) {
	case string:
		id, err := t.ToSingleToken(v)
		if err != nil {
			return 0, fmt.Errorf("get token position: %w", err)
		}
		tok = int64(id)
	case int:
		tok = int64(v)
	case int64:
		tok = v
	default:
		return 0, fmt.Errorf("get token position: token must be a string, int or int64, not %T", token)
	}
	if err := t.check(tok); err != nil {
		return 0, fmt.Errorf("get token position: %w", err)
	}
	var seq []int64
	switch v := input.(type) {
	case string:
		seq = t.sequence(v, o)
	case []int64:
		seq = v
	case []int:
		seq = make([]int64, len(v))
		for i, id := range v {
			seq[i] = int64(id)
		}
	default:
		return 0, fmt.Errorf("get token position: input must be a string, []int64 or []int, not %T", input)
	}
	pos := -1
	for i, id := range seq {
		if id == tok && (pos < 0 || mode == "last") {
			pos = i
		}
	}
	if pos < 0 {
		return 0, fmt.Errorf("get token position: token %d (%q) does not occur in the input", tok, t.decode([]int{int(tok)}, false))
	}
	return pos, nil
}
