package hookedmodel

import (
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

type textInput struct{ texts []string }

func (textInput) isInput() {}

// Text is an input of one or more strings, tokenized with the model's
// tokenizer: BOS first unless PrependBOS(false) (or the config's
// default_prepend_bos) says otherwise, padded on the right unless
// PaddingSide("left").
func Text(texts ...string) Input { return textInput{texts} }

// PrependBOS overrides default_prepend_bos for a text input.
func PrependBOS(on bool) RunOption { return func(o *runOptions) { o.prependBOS = &on } }

// PaddingSide pads a batch of texts of different lengths on "right" (the
// default) or "left".
func PaddingSide(side string) RunOption { return func(o *runOptions) { o.paddingSide = side } }

func (m *HookedTransformer) tokenizeOptions(o *runOptions) []tokenizer.Option {
	bos := m.Cfg.DefaultPrependBOS
	if o.prependBOS != nil {
		bos = *o.prependBOS
	}
	// Truncated to the context, as to_tokens(truncate=True) does.
	opts := []tokenizer.Option{tokenizer.PrependBOS(bos), tokenizer.MaxLength(m.Cfg.NCtx)}
	if o.paddingSide != "" {
		opts = append(opts, tokenizer.PaddingSide(o.paddingSide))
	}
	return opts
}

// textTokens tokenizes the texts. Like TransformerLens, only left padding
// produces a padding mask: right padding sits after every real token, where
// causal attention never looks.
func (m *HookedTransformer) textTokens(p *pass, in textInput, o *runOptions) (tokens, padMask *gotch.Tensor, err error) {
	if m.Tokenizer == nil {
		return nil, nil, fmt.Errorf("the model has no tokenizer: pass Tokens instead of Text")
	}
	if len(in.texts) == 0 {
		return nil, nil, fmt.Errorf("text input: no texts")
	}
	ids, mask, err := m.Tokenizer.ToTokens(in.texts, m.tokenizeOptions(o)...)
	if err != nil {
		return nil, nil, err
	}
	if tokens, err = m.fromRows(p, ids); err != nil {
		return nil, nil, err
	}
	if tokens.Size(1) == 0 {
		return nil, nil, fmt.Errorf("text input: the texts make no tokens")
	}
	if o.paddingSide == "left" {
		if padMask, err = m.fromRows(p, mask); err != nil {
			return nil, nil, err
		}
		padMask = padMask.MustTo(gotch.Bool)
	}
	return tokens, padMask, nil
}

// fromRows makes a [len(rows) len(rows[0])] int64 tensor on the model's
// device, in the pass's scope.
func (m *HookedTransformer) fromRows(p *pass, rows [][]int64) (*gotch.Tensor, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("text input: no texts")
	}
	flat := make([]int64, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		flat = append(flat, r...)
	}
	t, err := gotch.FromSlice(flat, []int64{int64(len(rows)), int64(len(rows[0]))}, m.device)
	if err != nil {
		return nil, err
	}
	return p.s.Attach(t), nil
}

// tok returns the model's tokenizer or an error saying it has none.
func (m *HookedTransformer) tok() (*tokenizer.Tokenizer, error) {
	if m.Tokenizer == nil {
		return nil, fmt.Errorf("model %s has no tokenizer", m.Cfg.ModelName)
	}
	return m.Tokenizer, nil
}

// ToTokens tokenizes texts as a pass would (PrependBOS and PaddingSide
// apply) into a [batch pos] int64 tensor on the model's device, which the
// caller frees. No texts is an error; texts that make no tokens (""
// without BOS) give pos 0.
func (m *HookedTransformer) ToTokens(texts []string, opts ...RunOption) (*gotch.Tensor, error) {
	tk, err := m.tok()
	if err != nil {
		return nil, err
	}
	if len(texts) == 0 {
		// TransformerLens's to_tokens fails on an empty batch too.
		return nil, fmt.Errorf("to tokens: no texts (an empty batch has no [batch pos] shape)")
	}
	o := runOpts(opts)
	ids, _, err := tk.ToTokens(texts, m.tokenizeOptions(&o)...)
	if err != nil {
		return nil, err
	}
	flat := make([]int64, 0, len(ids)*len(ids[0]))
	for _, r := range ids {
		flat = append(flat, r...)
	}
	return gotch.FromSlice(flat, []int64{int64(len(ids)), int64(len(ids[0]))}, m.device)
}

// ToStrTokens splits text into the strings of its tokens, BOS first unless
// PrependBOS(false).
func (m *HookedTransformer) ToStrTokens(text string, opts ...RunOption) ([]string, error) {
	tk, err := m.tok()
	if err != nil {
		return nil, err
	}
	o := runOpts(opts)
	return tk.ToStrTokens(text, m.tokenizeOptions(&o)...)
}

// ToString decodes token ids into text.
func (m *HookedTransformer) ToString(ids []int64) (string, error) {
	tk, err := m.tok()
	if err != nil {
		return "", err
	}
	return tk.ToString(ids)
}

// ToSingleToken is the id of text, which must be exactly one token.
func (m *HookedTransformer) ToSingleToken(text string) (int, error) {
	tk, err := m.tok()
	if err != nil {
		return 0, err
	}
	return tk.ToSingleToken(text)
}

// GetTokenPosition is the position of token (a string or an id) in input
// (a string or ids), its "first" or "last" occurrence, as TransformerLens's
// get_token_position.
func (m *HookedTransformer) GetTokenPosition(token, input any, mode string, opts ...RunOption) (int, error) {
	tk, err := m.tok()
	if err != nil {
		return 0, err
	}
	o := runOpts(opts)
	return tk.GetTokenPosition(token, input, mode, m.tokenizeOptions(&o)...)
}
