package hookedmodel

import (
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// blockViewTable pairs each per-block view with the model-wide stack whose
// slice [l] it must equal, and TransformerLens's shape for it.
func blockViewTable(c Config) []struct {
	name  string
	block func(*Block) (*gotch.Tensor, error)
	stack func(*HookedTransformer) (*gotch.Tensor, error)
	shape []int64
} {
	type h = HookedTransformer
	nh, dm, dh, dmlp := int64(c.NHeads), int64(c.DModel), int64(c.DHead), int64(c.DMLP)
	return []struct {
		name  string
		block func(*Block) (*gotch.Tensor, error)
		stack func(*HookedTransformer) (*gotch.Tensor, error)
		shape []int64
	}{
		{"attn.W_Q", func(b *Block) (*gotch.Tensor, error) { return b.Attn.W_Q() }, (*h).W_Q, []int64{nh, dm, dh}},
		{"attn.W_K", func(b *Block) (*gotch.Tensor, error) { return b.Attn.W_K() }, (*h).W_K, []int64{nh, dm, dh}},
		{"attn.W_V", func(b *Block) (*gotch.Tensor, error) { return b.Attn.W_V() }, (*h).W_V, []int64{nh, dm, dh}},
		{"attn.W_O", func(b *Block) (*gotch.Tensor, error) { return b.Attn.W_O() }, (*h).W_O, []int64{nh, dh, dm}},
		{"attn.b_Q", func(b *Block) (*gotch.Tensor, error) { return b.Attn.B_Q() }, (*h).B_Q, []int64{nh, dh}},
		{"attn.b_K", func(b *Block) (*gotch.Tensor, error) { return b.Attn.B_K() }, (*h).B_K, []int64{nh, dh}},
		{"attn.b_V", func(b *Block) (*gotch.Tensor, error) { return b.Attn.B_V() }, (*h).B_V, []int64{nh, dh}},
		{"attn.b_O", func(b *Block) (*gotch.Tensor, error) { return b.Attn.B_O() }, (*h).B_O, []int64{dm}},
		{"mlp.W_in", func(b *Block) (*gotch.Tensor, error) { return b.MLP.W_in() }, (*h).W_in, []int64{dm, dmlp}},
		{"mlp.W_out", func(b *Block) (*gotch.Tensor, error) { return b.MLP.W_out() }, (*h).W_out, []int64{dmlp, dm}},
		{"mlp.b_in", func(b *Block) (*gotch.Tensor, error) { return b.MLP.B_in() }, (*h).B_in, []int64{dmlp}},
		{"mlp.b_out", func(b *Block) (*gotch.Tensor, error) { return b.MLP.B_out() }, (*h).B_out, []int64{dm}},
	}
}

// TestBlockWeightViews checks every per-block view against layer l of the
// model-wide stack, in TransformerLens's shape, after loading and after
// processing; that the views share the weights' memory; and that a layer
// out of range and an attention-only model's MLP are errors.
func TestBlockWeightViews(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 17)
	defer m.Free()
	check := func(when string) {
		t.Helper()
		for _, v := range blockViewTable(m.Cfg) {
			stack, err := v.stack(m)
			if err != nil {
				t.Fatalf("%s: %s: %v", when, v.name, err)
			}
			for l := range m.Cfg.NLayers {
				b, err := m.Block(l)
				if err != nil {
					t.Fatal(err)
				}
				if b != m.Blocks[l] {
					t.Fatalf("Block(%d) is not Blocks[%d]", l, l)
				}
				got, err := v.block(b)
				if err != nil {
					t.Fatalf("%s: blocks[%d].%s: %v", when, l, v.name, err)
				}
				if !slices.Equal(got.Shape(), v.shape) {
					t.Errorf("%s: blocks[%d].%s shape %v, want %v", when, l, v.name, got.Shape(), v.shape)
					continue
				}
				s := gotch.NewScope()
				want := borrow(s, stack).MustSelect(0, int64(l))
				gotchtest.Close(t, when+": blocks["+itoa(l)+"]."+v.name, gotchtest.Values(t, got), gotchtest.Values(t, want), 0)
				s.Close()
			}
		}
	}
	check("loaded")
	if err := m.Process(DefaultProcessing); err != nil {
		t.Fatal(err)
	}
	check("processed")

	// Negative layers count from the last, as Python's blocks[-1].
	if b, err := m.Block(-1); err != nil || b != m.Blocks[m.Cfg.NLayers-1] {
		t.Errorf("Block(-1) = %p, %v; want the last block", b, err)
	}
	for _, l := range []int{m.Cfg.NLayers, -m.Cfg.NLayers - 1, 100} {
		if b, err := m.Block(l); err == nil || b != nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("Block(%d) = %p, %v; want an out-of-range error", l, b, err)
		}
	}

	// The views are the weights' memory: a write into the weights shows.
	wq, err := m.Blocks[1].Attn.W_Q()
	if err != nil {
		t.Fatal(err)
	}
	win, err := m.Blocks[1].MLP.W_in()
	if err != nil {
		t.Fatal(err)
	}
	err = gotch.NoGrad(func() error {
		return gotch.Try(func() {
			m.Blocks[1].Attn.WQKV.MustFill_(0.25)
			m.Blocks[1].MLP.WIn.MustFill_(-0.5)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		t    *gotch.Tensor
		want float64
	}{"W_Q": {wq, 0.25}, "W_in": {win, -0.5}} {
		for i, x := range gotchtest.Values(t, c.t) {
			if x != c.want {
				t.Errorf("blocks[1] %s[%d] = %v after writing %v into the weights: not a view", name, i, x, c.want)
				break
			}
		}
	}

	cfg := smallConfig()
	cfg.AttnOnly = true
	ao := newTestModel(t, cfg, 3)
	defer ao.Free()
	if _, err := ao.Blocks[0].MLP.W_in(); err == nil || !strings.Contains(err.Error(), "attention-only") {
		t.Errorf("attention-only blocks[0].mlp.W_in: %v, want an error", err)
	}
	if _, err := ao.Blocks[0].Attn.W_O(); err != nil {
		t.Errorf("attention-only blocks[0].attn.W_O: %v", err)
	}
}
