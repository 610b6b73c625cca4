package hookedmodel

import (
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// weightView is one stacked view and the StateDict entry each layer's
// slice of it must equal ("" for a view that is not stacked).
type weightView struct {
	name, perLayer string
	get            func(*HookedTransformer) (*gotch.Tensor, error)
}

func weightViewTable() []weightView {
	type h = HookedTransformer
	return []weightView{
		{"embed.W_E", "", (*h).W_E},
		{"pos_embed.W_pos", "", (*h).W_pos},
		{"unembed.W_U", "", (*h).W_U},
		{"unembed.b_U", "", (*h).B_U},
		{"W_Q", "attn.W_Q", (*h).W_Q}, {"W_K", "attn.W_K", (*h).W_K}, {"W_V", "attn.W_V", (*h).W_V}, {"W_O", "attn.W_O", (*h).W_O},
		{"b_Q", "attn.b_Q", (*h).B_Q}, {"b_K", "attn.b_K", (*h).B_K}, {"b_V", "attn.b_V", (*h).B_V}, {"b_O", "attn.b_O", (*h).B_O},
		{"W_in", "mlp.W_in", (*h).W_in}, {"b_in", "mlp.b_in", (*h).B_in}, {"W_out", "mlp.W_out", (*h).W_out}, {"b_out", "mlp.b_out", (*h).B_out},
	}
}

// checkWeightViews compares every view of m with m's StateDict.
func checkWeightViews(t *testing.T, m *HookedTransformer) {
	t.Helper()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, v := range weightViewTable() {
		got, err := v.get(m)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if v.perLayer == "" {
			checkSame(t, v.name, got, sd[v.name])
			continue
		}
		if got.Dim() == 0 || got.Size(0) != int64(m.Cfg.NLayers) {
			t.Fatalf("%s: shape %v, want n_layers = %d first", v.name, got.Shape(), m.Cfg.NLayers)
		}
		for l := range m.Cfg.NLayers {
			key := "blocks." + itoa(l) + "." + v.perLayer
			checkSame(t, v.name+"["+itoa(l)+"]", borrow(s, got).MustSelect(0, int64(l)), sd[key])
		}
	}
}

func checkSame(t *testing.T, name string, got, want *gotch.Tensor) {
	t.Helper()
	if !slices.Equal(got.Shape(), want.Shape()) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape(), want.Shape())
		return
	}
	gotchtest.Close(t, name, gotchtest.Values(t, got), gotchtest.Values(t, want), 0)
}

func TestWeightViewsMatchStateDict(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 11)
	defer m.Free()
	checkWeightViews(t, m)

	wq, err := m.W_Q()
	if err != nil {
		t.Fatal(err)
	}
	c := m.Cfg
	if want := []int64{int64(c.NLayers), int64(c.NHeads), int64(c.DModel), int64(c.DHead)}; !slices.Equal(wq.Shape(), want) {
		t.Errorf("W_Q shape %v, want %v", wq.Shape(), want)
	}
	if again, _ := m.W_Q(); again != wq {
		t.Errorf("W_Q made twice; want it cached")
	}
}

func TestWeightViewsCircuits(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 12)
	defer m.Free()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stack := func(name string) *gotch.Tensor {
		ts := make([]*gotch.Tensor, m.Cfg.NLayers)
		for l := range ts {
			ts[l] = sd["blocks."+itoa(l)+".attn."+name]
		}
		return gotch.MustStack(ts, 0)
	}
	wQ, wK, wV, wO := stack("W_Q"), stack("W_K"), stack("W_V"), stack("W_O")
	c := m.Cfg
	dm := int64(c.DModel)
	cases := []struct {
		name string
		fm   func() (*FactoredMatrix, error)
		want *gotch.Tensor
	}{
		{"QK", m.QK, gotch.MustEinsum("lhmd,lhnd->lhmn", []*gotch.Tensor{wQ, wK})},
		{"OV", m.OV, gotch.MustEinsum("lhmd,lhdn->lhmn", []*gotch.Tensor{wV, wO})},
	}
	for _, tc := range cases {
		f, err := tc.fm()
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{int64(c.NLayers), int64(c.NHeads), dm, dm}; !slices.Equal(f.Shape(), want) || f.MDim() != int64(c.DHead) {
			t.Errorf("%s: shape %v inner %d, want %v inner %d", tc.name, f.Shape(), f.MDim(), want, c.DHead)
		}
		ab, err := f.AB()
		if err != nil {
			t.Fatal(err)
		}
		gotchtest.Close(t, tc.name+" AB", gotchtest.Values(t, s.Attach(ab)), gotchtest.Values(t, tc.want), 1e-5)
		f.Free()
	}
}

// Changing the weights drops the stacked views; the next call stacks the
// new weights.
func TestWeightViewsFreshAfterChanges(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 13)
	defer m.Free()
	changes := []struct {
		name   string
		change func() error
	}{
		{"Process", func() error { return m.Process(DefaultProcessing) }},
		{"SetRequiresGrad", func() error { return m.SetRequiresGrad(false) }},
	}
	for _, ch := range changes {
		before := make([]*gotch.Tensor, 0)
		for _, v := range weightViewTable() {
			got, err := v.get(m)
			if err != nil {
				t.Fatal(err)
			}
			before = append(before, got)
		}
		if err := ch.change(); err != nil {
			t.Fatal(err)
		}
		for i, v := range weightViewTable() {
			if v.perLayer != "" && !before[i].Freed() {
				t.Errorf("%s: %s made before is still live", ch.name, v.name)
			}
		}
		checkWeightViews(t, m)
	}
}

func TestWeightViewsAttnOnly(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	cfg.AttnOnly = true
	m := newTestModel(t, cfg, 14)
	defer m.Free()
	if _, err := m.W_in(); err == nil || !strings.Contains(err.Error(), "weight view W_in: an attention-only model has no MLP") {
		t.Errorf("W_in of an attention-only model: error %v", err)
	}
	f, err := m.OV()
	if err != nil {
		t.Fatal(err)
	}
	f.Free()
}

// TestWeightViewsFreshAfterInPlaceWrites: views handed out before the
// weights were written in place (through StateDict, as a user edits a
// model) show the new weights from the next call on, and the handle lent
// before is refreshed rather than replaced. Grouped-query W_K/W_V, copies
// repeated per query head, are checked against the state dict's _W_K/_W_V
// head h / (n_heads / n_key_value_heads).
func TestWeightViewsFreshAfterInPlaceWrites(t *testing.T) {
	gotchtest.CheckLeaks(t)
	write := func(m *HookedTransformer) {
		sd, s, err := m.StateDict()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, w := range sd {
			w.MustMulScalar_(1.5)
		}
	}
	t.Run("multi-head", func(t *testing.T) {
		m := newTestModel(t, smallConfig(), 14)
		defer m.Free()
		wq, err := m.W_Q()
		if err != nil {
			t.Fatal(err)
		}
		checkWeightViews(t, m)
		write(m)
		checkWeightViews(t, m)
		if again, _ := m.W_Q(); again != wq || wq.Freed() {
			t.Errorf("W_Q after a write: a new handle (%p, was %p) or the old one freed (%v)", again, wq, wq.Freed())
		}
	})
	t.Run("grouped-query", func(t *testing.T) {
		m := editedModel(t, func(c *Config) { c.NKeyValueHeads = 2 }, 15)
		defer m.Free()
		check := func() {
			t.Helper()
			sd, s, err := m.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, kv := range []struct {
				name string
				get  func(*HookedTransformer) (*gotch.Tensor, error)
				blk  func(*Attention) (*gotch.Tensor, error)
			}{{"K", (*HookedTransformer).W_K, (*Attention).W_K}, {"V", (*HookedTransformer).W_V, (*Attention).W_V}} {
				stack, err := kv.get(m)
				if err != nil {
					t.Fatal(err)
				}
				for l := range m.Cfg.NLayers {
					block, err := kv.blk(m.Blocks[l].Attn)
					if err != nil {
						t.Fatal(err)
					}
					for h := range m.Cfg.NHeads {
						want := sd["blocks."+itoa(l)+".attn._W_"+kv.name].MustSelect(0, int64(h/2))
						checkSame(t, "W_"+kv.name+" stacked", borrow(s, stack).MustSelect(0, int64(l)).MustSelect(0, int64(h)), want)
						checkSame(t, "W_"+kv.name+" of the block", borrow(s, block).MustSelect(0, int64(h)), want)
					}
				}
			}
		}
		check()
		write(m)
		check()
	})
}
