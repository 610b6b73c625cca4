package hookedmodel

import (
	"errors"
	"fmt"

	"github.com/golens/golens/gotch"
)

// TransformerLens's per-block weight properties (model.blocks[l].attn.W_Q,
// model.blocks[l].mlp.W_in, ...), in TransformerLens's shapes:
//
//	m.Blocks[l].Attn.W_Q(), W_K(), W_V()   [n_heads d_model d_head]
//	m.Blocks[l].Attn.W_O()                 [n_heads d_head d_model]
//	m.Blocks[l].Attn.B_Q(), B_K(), B_V()   [n_heads d_head]
//	m.Blocks[l].Attn.B_O()                 [d_model]
//	m.Blocks[l].MLP.W_in()                 [d_model d_mlp]
//	m.Blocks[l].MLP.W_out()                [d_mlp d_model]
//	m.Blocks[l].MLP.B_in()                 [d_mlp]
//	m.Blocks[l].MLP.B_out()                [d_model]
//
// Each equals layer l of the model-wide stack (m.W_Q() ...), but unlike
// the stack it is a view of the weights themselves, sharing their memory
// (as TransformerLens's are its parameters): a write into it changes the
// model, and when the model's weights record gradients so does the view.
// The views are lent: they belong to the model (do not free them) and are
// in no scope, so ops on them make tensors that are yours. They are valid until
// the weights change (Process, SetRequiresGrad) or the model is freed;
// ask again afterwards. m.Block(l) is m.Blocks[l] with an error, not a
// panic, for a layer out of range.

// Block is layer l's block, TransformerLens's model.blocks[l]; a negative
// l counts from the last layer, as a Python index does (-1 is the last).
// A layer out of range is an error.
func (m *HookedTransformer) Block(l int) (*Block, error) {
	n := len(m.Blocks)
	i := l
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		return nil, fmt.Errorf("block %d: out of range: the model has %d layers (0 to %d, or -%d to -1)", l, n, n-1, n)
	}
	return m.Blocks[i], nil
}

// errFreed is the error for a view of a model that was freed.
var errFreed = errors.New("the model's weights were freed")

func (a *Attention) view(name string, t *gotch.Tensor) (*gotch.Tensor, error) {
	if a == nil {
		return nil, fmt.Errorf("attn.%s: no attention layer (nil)", name)
	}
	if t == nil {
		return nil, fmt.Errorf("attn.%s: %w", name, errFreed)
	}
	return t, nil
}

// W_Q is the block's query weights [n_heads d_model d_head], a view of WQKV.
func (a *Attention) W_Q() (*gotch.Tensor, error) { return a.view("W_Q", a.wHead(0)) }

// W_K is the block's key weights [n_heads d_model d_head], a view of WQKV;
// with grouped-query attention, each key head repeated for the query
// heads that share it, as TransformerLens's W_K: a copy, made when the
// weights were last set (New, a loader, LoadStateDict, Process), which
// in-place writes into StateDict's views do not reach.
func (a *Attention) W_K() (*gotch.Tensor, error) { return a.view("W_K", a.wHead(1)) }

// W_V is the block's value weights [n_heads d_model d_head], a view of WQKV.
func (a *Attention) W_V() (*gotch.Tensor, error) { return a.view("W_V", a.wHead(2)) }

// W_O is the block's output weights [n_heads d_head d_model], a view of WO.
func (a *Attention) W_O() (*gotch.Tensor, error) {
	if a == nil {
		return a.view("W_O", nil)
	}
	return a.view("W_O", a.views.wOHead)
}

// B_Q is the block's query biases [n_heads d_head], a view of BQKV.
func (a *Attention) B_Q() (*gotch.Tensor, error) { return a.view("b_Q", a.bHead(0)) }

// B_K is the block's key biases [n_heads d_head], a view of BQKV.
func (a *Attention) B_K() (*gotch.Tensor, error) { return a.view("b_K", a.bHead(1)) }

// B_V is the block's value biases [n_heads d_head], a view of BQKV.
func (a *Attention) B_V() (*gotch.Tensor, error) { return a.view("b_V", a.bHead(2)) }

// B_O is the block's output bias [d_model]: BO itself.
func (a *Attention) B_O() (*gotch.Tensor, error) {
	if a == nil {
		return a.view("b_O", nil)
	}
	return a.view("b_O", a.BO)
}

func (a *Attention) wHead(i int) *gotch.Tensor {
	if a == nil {
		return nil
	}
	if e := a.expanded(i, false); e != nil {
		return e
	}
	return a.views.wHead[i]
}

func (a *Attention) bHead(i int) *gotch.Tensor {
	if a == nil {
		return nil
	}
	if e := a.expanded(i, true); e != nil {
		return e
	}
	return a.views.bHead[i]
}

func (p *MLP) view(name string, pick func(*MLP) *gotch.Tensor) (*gotch.Tensor, error) {
	if p == nil {
		return nil, fmt.Errorf("mlp.%s: an attention-only model has no MLP", name)
	}
	t := pick(p)
	if t == nil {
		return nil, fmt.Errorf("mlp.%s: %w", name, errFreed)
	}
	return t, nil
}

// W_in is the block's MLP input weights [d_model d_mlp], a view of WIn
// (transposed).
func (p *MLP) W_in() (*gotch.Tensor, error) {
	return p.view("W_in", func(p *MLP) *gotch.Tensor { return p.views.wIn })
}

// W_out is the block's MLP output weights [d_mlp d_model], a view of WOut
// (transposed).
func (p *MLP) W_out() (*gotch.Tensor, error) {
	return p.view("W_out", func(p *MLP) *gotch.Tensor { return p.views.wOut })
}

// W_gate is a gated MLP's gate weights [d_model d_mlp], a view of WGate
// (transposed).
func (p *MLP) W_gate() (*gotch.Tensor, error) {
	if p != nil && !p.gated {
		return nil, fmt.Errorf("mlp.W_gate: the MLP is not gated (gated_mlp is off)")
	}
	return p.view("W_gate", func(p *MLP) *gotch.Tensor { return p.views.wGate })
}

// B_in is the block's MLP input bias [d_mlp]: BIn itself.
func (p *MLP) B_in() (*gotch.Tensor, error) {
	return p.view("b_in", func(p *MLP) *gotch.Tensor { return p.BIn })
}

// B_out is the block's MLP output bias [d_model]: BOut itself.
func (p *MLP) B_out() (*gotch.Tensor, error) {
	return p.view("b_out", func(p *MLP) *gotch.Tensor { return p.BOut })
}

// mlpViews are TransformerLens's [in out] views of the MLP's nn.Linear
// [out in] weights, made by prepare.
type mlpViews struct{ wIn, wOut, wGate *gotch.Tensor }

// prepare (re)makes the weight views after the weights change.
func (p *MLP) prepare() {
	p.free()
	s := gotch.NewScope()
	defer s.Close()
	wIn := borrow(s, p.WIn).MustTranspose(0, 1)
	wOut := borrow(s, p.WOut).MustTranspose(0, 1)
	var wGate *gotch.Tensor
	if p.gated {
		wGate = borrow(s, p.WGate).MustTranspose(0, 1)
	}
	p.views = mlpViews{s.Keep(wIn), s.Keep(wOut), nil}
	if wGate != nil {
		p.views.wGate = s.Keep(wGate)
	}
}

func (p *MLP) free() {
	p.views.wIn.Free()
	p.views.wOut.Free()
	p.views.wGate.Free()
	p.views = mlpViews{}
}
