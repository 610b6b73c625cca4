package hookedmodel

import (
	"fmt"

	"github.com/golens/golens/gotch"
)

// Input is what a pass runs on: Tokens, Text or Residual.
type Input interface{ isInput() }

type tokensInput struct{ t *gotch.Tensor }
type residualInput struct{ t *gotch.Tensor }

func (tokensInput) isInput()   {}
func (residualInput) isInput() {}

// Tokens is an input of token ids [batch pos] (or [pos], read as a batch
// of one), int64 or int32. The caller keeps ownership of t.
func Tokens(t *gotch.Tensor) Input { return tokensInput{t} }

// Residual is a residual stream [batch pos d_model] to start from, with
// StartAtLayer. The caller keeps ownership of t.
func Residual(t *gotch.Tensor) Input { return residualInput{t} }

// inputs turns in into the pass's tokens (or starting residual stream) and
// padding mask, on the model's device and inside the pass's scope.
func (m *HookedTransformer) inputs(p *pass, in Input, o *runOptions) (tokens, padMask, resid *gotch.Tensor, err error) {
	switch in := in.(type) {
	case tokensInput:
		tokens, err = m.checkTokens(p, in.t)
	case residualInput:
		resid, err = m.checkResidual(p, in.t, o.startAt)
	case textInput:
		tokens, padMask, err = m.textTokens(p, in, o)
	case nil:
		err = fmt.Errorf("no input")
	default:
		err = fmt.Errorf("unknown input %T", in)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if resid == nil && o.startAt != 0 {
		return nil, nil, nil, fmt.Errorf("start_at_layer %d needs a Residual input, not tokens", o.startAt)
	}
	if tokens != nil {
		// Checked here, not only where W_pos is read: with a padding mask
		// positions past the context would be clamped, not refused.
		if n := o.pastKV.Len() + tokens.Size(1); n > int64(m.Cfg.NCtx) {
			return nil, nil, nil, fmt.Errorf("%d positions exceed the model's context of n_ctx=%d", n, m.Cfg.NCtx)
		}
	}
	if o.padMask != nil {
		if padMask, err = m.checkMask(p, o.padMask, tokens, resid, o.pastKV.Len()); err != nil {
			return nil, nil, nil, err
		}
	}
	if o.pastKV != nil {
		if len(o.pastKV.entries) != len(m.Blocks) {
			return nil, nil, nil, fmt.Errorf("the key-value cache has %d layers, the model %d", len(o.pastKV.entries), len(m.Blocks))
		}
		if padMask != nil && padMask.Size(1) != tokens.Size(1) {
			padMask = padMask.MustNarrow(1, o.pastKV.Len(), tokens.Size(1)) // the mask covered past and new positions
		}
		padMask = o.pastKV.extendPadMask(p, padMask, tokens.Size(0), tokens.Size(1), m.device)
	}
	return tokens, padMask, resid, nil
}

func (m *HookedTransformer) checkTokens(p *pass, t *gotch.Tensor) (*gotch.Tensor, error) {
	if t == nil || t.Freed() {
		return nil, fmt.Errorf("tokens: nil or freed tensor")
	}
	if t.DType() != gotch.Int64 && t.DType() != gotch.Int32 {
		return nil, fmt.Errorf("tokens must be int64 or int32, got %s", t.Spec())
	}
	x := borrow(p.s, t)
	if x.Dim() == 1 {
		x = x.MustUnsqueeze(0)
	}
	if x.Dim() != 2 || x.Size(0) == 0 || x.Size(1) == 0 {
		return nil, fmt.Errorf("tokens must be [batch pos] with batch > 0 and pos > 0, got %s", t.Spec())
	}
	x = x.MustToDevice(m.device, false).MustTo(gotch.Int64)
	lo, hi := x.MustMin().MustItem(), x.MustMax().MustItem()
	if lo < 0 || hi >= float64(m.Cfg.DVocab) {
		return nil, fmt.Errorf("token ids must be in [0, %d) (d_vocab), got values from %.0f to %.0f", m.Cfg.DVocab, lo, hi)
	}
	return x, nil
}

func (m *HookedTransformer) checkResidual(p *pass, t *gotch.Tensor, startAt int) (*gotch.Tensor, error) {
	if t == nil || t.Freed() {
		return nil, fmt.Errorf("residual: nil or freed tensor")
	}
	if t.Dim() != 3 || t.Size(0) == 0 || t.Size(1) == 0 || t.Size(2) != int64(m.Cfg.DModel) || !t.DType().IsFloat() {
		return nil, fmt.Errorf("a residual stream entering block %d must be float [batch pos %d] with batch > 0 and pos > 0, got %s", startAt, m.Cfg.DModel, t.Spec())
	}
	return borrow(p.s, t).MustToDevice(m.device, false).MustTo(m.dtype), nil
}

func (m *HookedTransformer) checkMask(p *pass, mask, tokens, resid *gotch.Tensor, past int64) (*gotch.Tensor, error) {
	ref := tokens
	if ref == nil {
		ref = resid
	}
	b, n := ref.Size(0), ref.Size(1)
	if mask.Freed() || mask.Dim() != 2 || mask.Size(0) != b || (mask.Size(1) != n && mask.Size(1) != past+n) {
		return nil, fmt.Errorf("attention mask must be [batch pos] = [%d %d] (or [%d %d] with the key-value cache), got %s", b, n, b, past+n, mask.Spec())
	}
	return borrow(p.s, mask).MustToDevice(m.device, false).MustTo(gotch.Bool), nil
}
