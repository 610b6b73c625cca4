package analysis

import (
	"fmt"
	"math"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// InductionCircuits are the three matrices that show an induction circuit
// in the weights, as in Elhage et al.'s "A Mathematical Framework"
// (ignoring LayerNorm):
type InductionCircuits struct {
	// PrevQK [query_pos key_pos] is the previous-token head's positional
	// QK circuit, W_pos W_Q W_Kᵀ W_posᵀ: a stripe below the diagonal.
	PrevQK *Table
	// KComposition [query_token key_token] is the induction head's QK
	// circuit when its keys read the previous-token head's output,
	// W_E W_Q (W_E W_OV,prev W_K)ᵀ: large on the diagonal, where the
	// key's previous token is the query's token.
	KComposition *Table
	// OV [source_token logit_token] is the induction head's OV circuit,
	// W_E W_V W_O W_U: large on the diagonal, as it copies.
	OV *Table
}

// Circuits computes the InductionCircuits of the heads prev and ind over
// the first nPos positions.
func Circuits(m *hookedmodel.HookedTransformer, prev, ind HeadID, nPos int) (c *InductionCircuits, err error) {
	if m == nil {
		return nil, fmt.Errorf("induction circuits: nil model")
	}
	s := gotch.NewScope()
	defer s.Close()
	err = gotch.Try(func() {
		view := func(get func() (*gotch.Tensor, error)) *gotch.Tensor {
			t, err := get()
			if err != nil {
				panic(err)
			}
			b, err := s.Borrow(t)
			if err != nil {
				panic(err)
			}
			return b
		}
		head := func(w *gotch.Tensor, h HeadID) *gotch.Tensor { // [layer head ...] -> [...]
			return w.MustSelect(0, int64(h.Layer)).MustSelect(0, int64(h.Head))
		}
		wE, wPos, wU := view(m.W_E), view(m.W_pos), view(m.W_U)
		wQ, wK, wV, wO := view(m.W_Q), view(m.W_K), view(m.W_V), view(m.W_O)
		if nPos > int(wPos.Size(0)) {
			panic(fmt.Errorf("%d positions exceed n_ctx %d", nPos, wPos.Size(0)))
		}
		pos := wPos.MustNarrow(0, 0, int64(nPos))
		posQ, posK := pos.MustMatmul(head(wQ, prev)), pos.MustMatmul(head(wK, prev))
		prevQK := posQ.MustMatmul(posK.MustTranspose(0, 1))
		prevOV := head(wV, prev).MustMatmul(head(wO, prev)) // [d_model d_model]
		q := wE.MustMatmul(head(wQ, ind))                   // [vocab d_head]
		k := wE.MustMatmul(prevOV).MustMatmul(head(wK, ind))
		kComp := q.MustMatmul(k.MustTranspose(0, 1))
		ov := wE.MustMatmul(head(wV, ind)).MustMatmul(head(wO, ind)).MustMatmul(wU)
		c = &InductionCircuits{
			PrevQK:       tableOf(prevQK, "query_pos", "key_pos"),
			KComposition: tableOf(kComp, "query_token", "key_token"),
			OV:           tableOf(ov, "source_token", "logit_token"),
		}
	})
	return c, err
}

// tableOf copies a matrix into a Table.
func tableOf(t *gotch.Tensor, rows, cols string) *Table {
	tab := NewTable([]string{rows, cols}, int(t.Size(0)), int(t.Size(1)))
	copy(tab.Data, gotch.MustToSlice[float64](t))
	return tab
}

// DiagonalShare is the share of rows of a square table whose largest
// entry is on the diagonal: 1 for a perfect copying (OV) or matching (QK)
// circuit. It is NaN for a nil table, one without rows or one that is not
// two-dimensional.
func DiagonalShare(t *Table) float64 {
	if t == nil || len(t.Shape) != 2 || t.Shape[0] == 0 {
		return math.NaN()
	}
	n, hits := t.Shape[0], 0
	for r := range n {
		best := 0
		for c := range t.Shape[1] {
			if t.At(r, c) > t.At(r, best) {
				best = c
			}
		}
		if best == r {
			hits++
		}
	}
	return float64(hits) / float64(n)
}
