package hookedmodel

import (
	"fmt"
	"sync"

	"github.com/golens/golens/gotch"
)

// TransformerLens's weight properties, stacked over layers because
// circuit analysis reads every layer at once. They are lent: ownership and
// lifetime are in HookedTransformer's doc. The stacks are made under
// NoGrad, so gradients flow through the model's own weights, not through
// them.

// W_E is the token embedding [d_vocab d_model].
func (m *HookedTransformer) W_E() (*gotch.Tensor, error) { return m.WE, nil }

// W_pos is the positional embedding [n_ctx d_model].
func (m *HookedTransformer) W_pos() (*gotch.Tensor, error) {
	if m.WPos == nil && m.Cfg.PositionalEmbeddingType == "rotary" {
		return nil, fmt.Errorf("weight view W_pos: a rotary model has no positional embedding matrix")
	}
	return m.WPos, nil
}

// W_U is the unembedding [d_model d_vocab_out]: WU transposed, a view.
func (m *HookedTransformer) W_U() (*gotch.Tensor, error) {
	// A view shares WU's memory, so it is never stale: version 0 always.
	return m.weightViews.get("W_U", 0, func(s *gotch.Scope) *gotch.Tensor { return borrow(s, m.WU).MustTranspose(0, 1) })
}

// B_U is the unembedding bias [d_vocab_out].
func (m *HookedTransformer) B_U() (*gotch.Tensor, error) { return m.BU, nil }

// W_Q is the query weights [n_layers n_heads d_model d_head].
func (m *HookedTransformer) W_Q() (*gotch.Tensor, error) {
	return m.attnStack("W_Q", func(a *Attention) *gotch.Tensor { return a.views.wHead[0] })
}

// W_K is the key weights [n_layers n_heads d_model d_head].
func (m *HookedTransformer) W_K() (*gotch.Tensor, error) {
	return m.attnStack("W_K", func(a *Attention) *gotch.Tensor { return a.wHead(1) })
}

// W_V is the value weights [n_layers n_heads d_model d_head].
func (m *HookedTransformer) W_V() (*gotch.Tensor, error) {
	return m.attnStack("W_V", func(a *Attention) *gotch.Tensor { return a.wHead(2) })
}

// W_O is the output weights [n_layers n_heads d_head d_model].
func (m *HookedTransformer) W_O() (*gotch.Tensor, error) {
	return m.attnStack("W_O", func(a *Attention) *gotch.Tensor { return a.views.wOHead })
}

// B_Q is the query biases [n_layers n_heads d_head].
func (m *HookedTransformer) B_Q() (*gotch.Tensor, error) {
	return m.attnStack("b_Q", func(a *Attention) *gotch.Tensor { return a.views.bHead[0] })
}

// B_K is the key biases [n_layers n_heads d_head].
func (m *HookedTransformer) B_K() (*gotch.Tensor, error) {
	return m.attnStack("b_K", func(a *Attention) *gotch.Tensor { return a.bHead(1) })
}

// B_V is the value biases [n_layers n_heads d_head].
func (m *HookedTransformer) B_V() (*gotch.Tensor, error) {
	return m.attnStack("b_V", func(a *Attention) *gotch.Tensor { return a.bHead(2) })
}

// B_O is the output biases [n_layers d_model].
func (m *HookedTransformer) B_O() (*gotch.Tensor, error) {
	return m.attnStack("b_O", func(a *Attention) *gotch.Tensor { return a.BO })
}

// W_in is the MLP input weights [n_layers d_model d_mlp].
func (m *HookedTransformer) W_in() (*gotch.Tensor, error) {
	return m.mlpStack("W_in", func(p *MLP) *gotch.Tensor { return p.WIn }, true)
}

// W_gate is a gated MLP's gate weights [n_layers d_model d_mlp].
func (m *HookedTransformer) W_gate() (*gotch.Tensor, error) {
	if !m.Cfg.GatedMLP {
		return nil, fmt.Errorf("weight view W_gate: the model's MLPs are not gated (gated_mlp is off)")
	}
	return m.mlpStack("W_gate", func(p *MLP) *gotch.Tensor { return p.WGate }, true)
}

// B_in is the MLP input biases [n_layers d_mlp].
func (m *HookedTransformer) B_in() (*gotch.Tensor, error) {
	return m.mlpStack("b_in", func(p *MLP) *gotch.Tensor { return p.BIn }, false)
}

// W_out is the MLP output weights [n_layers d_mlp d_model].
func (m *HookedTransformer) W_out() (*gotch.Tensor, error) {
	return m.mlpStack("W_out", func(p *MLP) *gotch.Tensor { return p.WOut }, true)
}

// B_out is the MLP output biases [n_layers d_model].
func (m *HookedTransformer) B_out() (*gotch.Tensor, error) {
	return m.mlpStack("b_out", func(p *MLP) *gotch.Tensor { return p.BOut }, false)
}

// QK is every head's query-key circuit W_Q·W_Kᵀ [n_layers n_heads d_model
// d_model], whose entry (i, j) is the attention score a query residual
// direction i gives a key direction j (before scaling and biases). The
// matrix is the caller's to free; it keeps the factors of the weights as
// they are now.
func (m *HookedTransformer) QK() (*FactoredMatrix, error) {
	return m.circuit("QK", m.W_Q, m.W_K, true)
}

// OV is every head's output-value circuit W_V·W_O [n_layers n_heads
// d_model d_model]: what the head writes to the residual stream for each
// direction it attends to. The matrix is the caller's to free; it keeps
// the factors of the weights as they are now.
func (m *HookedTransformer) OV() (*FactoredMatrix, error) {
	return m.circuit("OV", m.W_V, m.W_O, false)
}

// circuit is the factored product of two stacked weights, the right one
// transposed when transpose says so.
func (m *HookedTransformer) circuit(name string, left, right func() (*gotch.Tensor, error), transpose bool) (*FactoredMatrix, error) {
	a, err := left()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b, err := right()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if transpose {
		s := gotch.NewScope()
		defer s.Close()
		if b, err = s.Borrow(b); err == nil {
			b, err = b.Transpose(-2, -1)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	f, err := NewFactoredMatrix(a, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// attnStack stacks one attention weight of every layer.
func (m *HookedTransformer) attnStack(name string, pick func(*Attention) *gotch.Tensor) (*gotch.Tensor, error) {
	return m.stacked(name, func(s *gotch.Scope) *gotch.Tensor {
		ts := make([]*gotch.Tensor, len(m.Blocks))
		for l, b := range m.Blocks {
			ts[l] = borrow(s, pick(b.Attn))
		}
		return gotch.MustStack(ts, 0)
	})
}

// mlpStack stacks one MLP weight of every layer, turning nn.Linear's [out
// in] into TransformerLens's [in out] when transpose says so.
func (m *HookedTransformer) mlpStack(name string, pick func(*MLP) *gotch.Tensor, transpose bool) (*gotch.Tensor, error) {
	if m.Cfg.AttnOnly {
		return nil, fmt.Errorf("weight view %s: an attention-only model has no MLP", name)
	}
	return m.stacked(name, func(s *gotch.Scope) *gotch.Tensor {
		ts := make([]*gotch.Tensor, len(m.Blocks))
		for l, b := range m.Blocks {
			ts[l] = borrow(s, pick(b.MLP))
			if transpose {
				ts[l] = ts[l].MustTranspose(0, 1)
			}
		}
		return gotch.MustStack(ts, 0)
	})
}

// weightViews caches the stacked weight views by TransformerLens name.
// prepare drops them whenever the weights are replaced, and Free when the
// model goes; a write into the weights in place (through StateDict, a
// block's views or a hook on a parameter) moves their version counters,
// and get then refreshes the view in place, so a handle it lent before
// shows the new values from the next get on.
type weightViews struct {
	mu     sync.Mutex
	byName map[string]*cachedView
}

type cachedView struct {
	t       *gotch.Tensor
	version int64 // the weights' version (weightsVersion) t was computed at
}

// get returns the view called name of the weights at version, computing it
// with compute on first use and again when version moved. compute works on
// handles borrowed into s and returns a tensor of s (never a model weight
// itself), which the cache then keeps.
func (v *weightViews) get(name string, version int64, compute func(s *gotch.Scope) *gotch.Tensor) (*gotch.Tensor, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old, ok := v.byName[name]
	if ok && old.version == version {
		return old.t, nil
	}
	s := gotch.NewScope()
	defer s.Close()
	var t *gotch.Tensor
	err := gotch.NoGrad(func() error {
		return gotch.Try(func() {
			t = compute(s)
			if ok {
				old.t.MustCopy_(t)
				t = old.t
			} else {
				t = s.Keep(t)
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("weight view %s: %w", name, err)
	}
	if v.byName == nil {
		v.byName = map[string]*cachedView{}
	}
	v.byName[name] = &cachedView{t, version}
	return t, nil
}

// stacked is a view that copies the weights (a stack of every layer's),
// cached and refreshed when the weights moved.
func (m *HookedTransformer) stacked(name string, compute func(s *gotch.Scope) *gotch.Tensor) (*gotch.Tensor, error) {
	version, err := m.weightsVersion()
	if err != nil {
		return nil, fmt.Errorf("weight view %s: %w", name, err)
	}
	return m.weightViews.get(name, version, compute)
}

// weightsVersion sums the weights' version counters: it moves with every
// in-place write to any of them.
func (m *HookedTransformer) weightsVersion() (int64, error) {
	var sum int64
	for _, p := range m.params() {
		if *p.ptr == nil {
			continue
		}
		v, err := (*p.ptr).Version()
		if err != nil {
			return 0, fmt.Errorf("weight %s: %w", p.name, err)
		}
		sum += v
	}
	return sum, nil
}

// drop frees every cached view.
func (v *weightViews) drop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, w := range v.byName {
		w.t.Free()
	}
	v.byName = nil
}
