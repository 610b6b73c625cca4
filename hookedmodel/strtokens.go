package hookedmodel

import (
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

// TransformerLens's to_str_tokens takes a string, a list of strings, a
// list of ids or a tensor of ids. Go has no union types, so each input has
// its own method: ToStrTokens (one text), TextsToStrTokens (a batch of
// texts), IDsToStrTokens (ids) and TensorToStrTokens (a tensor of ids, a
// batch included).

// TextsToStrTokens is ToStrTokens of each text, as to_str_tokens of a list
// of strings: each text is tokenized on its own (BOS first unless
// PrependBOS(false)) and not padded, so rows may differ in length. No texts
// gives an empty result, as to_str_tokens([]) does.
func (m *HookedTransformer) TextsToStrTokens(texts []string, opts ...RunOption) ([][]string, error) {
	tk, err := m.tok()
	if err != nil {
		return nil, err
	}
	o := runOpts(opts)
	out := make([][]string, len(texts))
	for i, text := range texts {
		if out[i], err = tk.ToStrTokens(text, m.tokenizeOptions(&o)...); err != nil {
			return nil, fmt.Errorf("to str tokens: text %d: %w", i, err)
		}
	}
	return out, nil
}

// IDsToStrTokens is the string of each token id, each decoded on its own
// as to_str_tokens of a list of ids shows it (a token holding part of a
// multi-byte character shows as U+FFFD). An id outside the tokenizer's
// vocabulary is an error naming its position; no ids give an empty result.
func (m *HookedTransformer) IDsToStrTokens(ids []int64) ([]string, error) {
	tk, err := m.tok()
	if err != nil {
		return nil, err
	}
	out, err := strTokens(tk, ids)
	if err != nil {
		return nil, fmt.Errorf("to str tokens: %w", err)
	}
	return out, nil
}

// strTokens is the string of each id, or an error naming the first id out
// of the vocabulary and its position.
func strTokens(tk *tokenizer.Tokenizer, ids []int64) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		if id < 0 || id >= int64(tk.VocabSize()) {
			return nil, fmt.Errorf("position %d: token id %d out of range [0, %d)", i, id, tk.VocabSize())
		}
		var err error
		if out[i], err = tk.Token(int(id)); err != nil {
			return nil, fmt.Errorf("position %d: %w", i, err)
		}
	}
	return out, nil
}

// TensorToStrTokens is IDsToStrTokens of each row of an integer tensor of
// token ids: a [batch pos] tensor gives batch rows, a [pos] tensor one row
// and a scalar one row of one token. It reads t (on any device) and leaves
// it to the caller. Unlike TransformerLens, whose to_str_tokens of a tensor
// accepts one sequence only (a batch of one is squeezed), a batch of
// several rows is accepted. A tensor with no elements is no error: [2 0]
// gives two empty rows, [0] (a sequence of no tokens) one empty row and
// [0 5] no rows. nil, freed, floating-point, bool and 3-or-more-dimensional
// tensors are errors.
func (m *HookedTransformer) TensorToStrTokens(t *gotch.Tensor) ([][]string, error) {
	tk, err := m.tok()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("to str tokens: tokens: nil tensor")
	}
	if t.Freed() {
		return nil, fmt.Errorf("to str tokens: tokens: %s is freed", t.Spec())
	}
	if dt := t.DType(); dt.IsFloat() || dt == gotch.Bool {
		return nil, fmt.Errorf("to str tokens: tokens: %s, want an integer dtype", t.Spec())
	}
	var rows, width int64
	switch t.Dim() {
	case 0:
		rows, width = 1, 1
	case 1:
		rows, width = 1, t.Size(0)
	case 2:
		rows, width = t.Size(0), t.Size(1)
	default:
		return nil, fmt.Errorf("to str tokens: tokens: %s, want [pos] or [batch pos]", t.Spec())
	}
	var flat []int64
	if rows*width > 0 {
		if flat, err = gotch.ToSlice[int64](t); err != nil {
			return nil, fmt.Errorf("to str tokens: %w", err)
		}
	}
	out := make([][]string, rows)
	for b := range out {
		if out[b], err = strTokens(tk, flat[int64(b)*width:int64(b+1)*width]); err != nil {
			if t.Dim() == 2 {
				return nil, fmt.Errorf("to str tokens: batch row %d: %w", b, err)
			}
			return nil, fmt.Errorf("to str tokens: %w", err)
		}
	}
	return out, nil
}
