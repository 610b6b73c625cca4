package tokenizer

import "fmt"

// Option configures ToTokens, ToStrTokens and GetTokenPosition; a nil one
// is ignored.
type Option func(*options)

type options struct {
	prependBOS  bool
	paddingSide string
	maxLength   int
}

// PrependBOS sets whether each sequence starts with BOS (50256). The default
// is true, TransformerLens's default_prepend_bos.
func PrependBOS(on bool) Option { return func(o *options) { o.prependBOS = on } }

// PaddingSide sets where ToTokens pads sequences shorter than the longest:
// "right" (the default) or "left".
func PaddingSide(side string) Option { return func(o *options) { o.paddingSide = side } }

// MaxLength truncates each sequence to its first n tokens, BOS included, as
// to_tokens does with truncate=True and n = n_ctx. The default, 0, keeps all.
func MaxLength(n int) Option { return func(o *options) { o.maxLength = n } }

func newOptions(opts []Option) (options, error) {
	o := options{prependBOS: true, paddingSide: "right"}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.paddingSide != "right" && o.paddingSide != "left" {
		return o, fmt.Errorf("padding side must be \"right\" or \"left\", not %q", o.paddingSide)
	}
	if o.maxLength < 0 {
		return o, fmt.Errorf("max length must not be negative, got %d", o.maxLength)
	}
	return o, nil
}

// options collects opts for t: a BOS to prepend must exist.
func (t *Tokenizer) options(opts []Option) (options, error) {
	o, err := newOptions(opts)
	if err == nil && o.prependBOS && !t.PrependsBOS() && t.BOS() < 0 {
		err = fmt.Errorf("the tokenizer has no BOS token (tokenizer_config.json names no bos_token nor eos_token): use PrependBOS(false)")
	}
	return o, err
}
