package hookedmodel

import (
	"context"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// The ownership rule as a user meets it: golens lends tensors in no scope
// (a hook's act, an Output's fields, the cache's entries, weight views), so
// what you make from them is yours, or your scope's, whatever the operand
// order, and nothing you made dies with golens's Free.

const ownPoint = "blocks.0.hook_resid_mid" // [batch pos d_model]

func ownModel(t *testing.T) (*HookedTransformer, *gotch.Tensor) {
	t.Helper()
	m := newTestModel(t, smallConfig(), 91)
	t.Cleanup(m.Free)
	_, tok := randomTokens(t, 2, 5, m.Cfg.DVocab, 92)
	t.Cleanup(tok.Free)
	return m, tok
}

// hooked runs one pass with fn on ownPoint and frees its output.
func hooked(t *testing.T, m *HookedTransformer, tok *gotch.Tensor, fn HookFunc) []float64 {
	t.Helper()
	return forwardValues(t, m, Tokens(tok), []Hook{FwdHook(Name(ownPoint), fn)})
}

// Everything golens lends is in no scope: forward and backward hooks' act,
// an Output's fields, cache entries, weight views and a FactoredMatrix's
// factors.
func TestNothingLentIsScoped(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, tok := ownModel(t)
	lent := map[string]*gotch.Scope{}
	record := func(dir string) HookFunc {
		return func(act *gotch.Tensor, name string) (*gotch.Tensor, error) {
			lent[dir+" hook's act at "+name] = act.Scope()
			return nil, nil
		}
	}
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok), Return(ReturnBoth), InclBwd())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	defer cache.Free()
	if err := out.Backward(); err != nil {
		t.Fatal(err)
	}
	hookedOut, err := m.RunWithHooks(context.Background(), Tokens(tok),
		[]Hook{FwdHook(Name(ownPoint), record("fwd")), BwdHook(Name(ownPoint), record("bwd"))}, Return(ReturnLoss))
	if err != nil {
		t.Fatal(err)
	}
	defer hookedOut.Free()
	if err := hookedOut.Backward(); err != nil {
		t.Fatal(err)
	}
	if len(lent) != 2 {
		t.Fatalf("the hooks saw %d activations, want the forward and the backward one", len(lent))
	}
	lent["Output.Logits"], lent["Output.Loss"], lent["Output.Tokens"] = out.Logits.Scope(), out.Loss.Scope(), out.Tokens.Scope()
	for _, k := range []string{ownPoint, ownPoint + "_grad"} {
		lent["cache "+k] = cache.MustGet(k).Scope()
	}
	for name, view := range map[string]func() (*gotch.Tensor, error){
		"W_E": m.W_E, "W_U": m.W_U, "W_Q": m.W_Q, "W_in": m.W_in,
		"blocks.0.attn.W_Q": m.Blocks[0].Attn.W_Q, "blocks.0.mlp.W_out": m.Blocks[0].MLP.W_out,
	} {
		w, err := view()
		if err != nil {
			t.Fatal(err)
		}
		lent[name] = w.Scope()
	}
	qk, err := m.QK()
	if err != nil {
		t.Fatal(err)
	}
	defer qk.Free()
	lent["QK().A()"], lent["QK().B()"] = qk.A().Scope(), qk.B().Scope()
	for name, s := range lent {
		if s != nil {
			t.Errorf("%s is lent in a scope", name)
		}
	}
}

// An op on an Output's field, or on a cache entry, is the caller's: it
// outlives the Output's and the cache's Free.
func TestOpsOnLentTensorsSurviveTheirFree(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, tok := ownModel(t)
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	top := out.Logits.MustArgmax(-1, false) // [batch pos]
	defer top.Free()
	resid := cache.MustGet(ownPoint).MustMulScalar(1)
	defer resid.Free()
	wantTop, wantResid := gotchtest.Values(t, top), gotchtest.Values(t, cache.MustGet(ownPoint))
	out.Free()
	cache.Free()
	if !out.Logits.Freed() {
		t.Errorf("Output.Free left its logits")
	}
	if got := gotchtest.Values(t, top); !slices.Equal(got, wantTop) {
		t.Errorf("argmax of the logits after out.Free: %v, want %v", got, wantTop)
	}
	gotchtest.Close(t, "an op on a cache entry after cache.Free", gotchtest.Values(t, resid), wantResid, 0)
}

// Ops in a hook on act are the hook author's: a hook that frees what it
// made, or makes it in a scope of its own, leaves nothing behind; one that
// forgets leaves exactly what it forgot, alive, for its author to free.
func TestHookOpsAreTheHookAuthors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, tok := ownModel(t)
	want := hooked(t, m, tok, func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil })
	for _, tc := range []struct {
		name string
		fn   HookFunc
	}{
		{"frees its temporaries", func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
			sq := act.MustMul(act)
			defer sq.Free()
			sum := sq.MustSum()
			defer sum.Free()
			return nil, nil
		}},
		{"in a scope of its own", func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
			s := gotch.NewScope()
			defer s.Close()
			x := s.Attach(act.MustAlias())
			x.MustMul(x).MustSum().MustItem()
			return nil, nil
		}},
	} {
		before := gotch.LiveHandles()
		got := hooked(t, m, tok, tc.fn)
		if after := gotch.LiveHandles(); after != before {
			t.Errorf("a hook that %s: %d live handles after the pass, %d before", tc.name, after, before)
		}
		gotchtest.Close(t, tc.name, got, want, 0)
	}

	var forgot []*gotch.Tensor
	before := gotch.LiveHandles()
	hooked(t, m, tok, func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		forgot = append(forgot, act.MustMulScalar(2))
		return nil, nil
	})
	if after := gotch.LiveHandles(); after != before+1 || len(forgot) != 1 || forgot[0].Freed() {
		t.Errorf("a hook that forgets one tensor: %d live handles after the pass, %d before; the pass must neither free it nor leak more", after, before)
	}
	for _, x := range forgot {
		x.Free()
	}
}

// A replacement the hook made is handed to the pass, which frees it; one in
// a scope of the user's is borrowed and stays the user's. Both give the
// same logits.
func TestHookReplacementOwnership(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, tok := ownModel(t)
	var owned *gotch.Tensor
	want := hooked(t, m, tok, func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		owned = act.MustMulScalar(2)
		return owned, nil
	})
	if !owned.Freed() {
		t.Errorf("the pass did not free the replacement handed to it")
	}

	s := gotch.NewScope()
	defer s.Close()
	var scoped *gotch.Tensor
	got := hooked(t, m, tok, func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		scoped = s.Attach(act.MustMulScalar(2))
		return scoped, nil
	})
	if scoped.Freed() || scoped.Scope() != s {
		t.Errorf("the pass took a replacement from the user's scope: freed %v", scoped.Freed())
	}
	gotchtest.Close(t, "logits with a scoped replacement", got, want, 0)
}

// w.MustAdd(act) and act.MustAdd(w) land in the same place: w's scope when
// it has one, else nowhere (the hook's to free).
func TestHookOperandOrder(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, tok := ownModel(t)
	dModel := int64(m.Cfg.DModel)
	s := gotch.NewScope()
	defer s.Close()
	scopedW := s.Attach(gotch.MustOnes([]int64{dModel}, m.DType(), m.Device()))
	ownW := gotch.MustOnes([]int64{dModel}, m.DType(), m.Device())
	defer ownW.Free()
	hooked(t, m, tok, func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		for _, tc := range []struct {
			name string
			w    *gotch.Tensor
			want *gotch.Scope
		}{{"a scoped w", scopedW, s}, {"an unscoped w", ownW, nil}} {
			wa, aw := tc.w.MustAdd(act), act.MustAdd(tc.w)
			if wa.Scope() != tc.want || aw.Scope() != tc.want {
				t.Errorf("%s: w+act in %p, act+w in %p, want both in %p", tc.name, wa.Scope(), aw.Scope(), tc.want)
			}
			if tc.want == nil {
				wa.Free()
				aw.Free()
			}
		}
		return nil, nil
	})
}
