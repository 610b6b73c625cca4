package analysis

import (
	"context"
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// FullOVCircuit is head h's full OV circuit W_E W_V W_O W_U [d_vocab
// d_vocab_out] (LayerNorm ignored), kept factored as (W_E W_V)(W_O W_U),
// [d_vocab d_head] × [d_head d_vocab_out]: row t is what the head adds to
// the logits when it attends to token t. ARENA builds it in
// TransformerLens as W_E @ FactoredMatrix(W_V[l, h], W_O[l, h]) @ W_U,
// which factors the same way. The matrix is the caller's to free.
func FullOVCircuit(m *hookedmodel.HookedTransformer, h HeadID) (*hookedmodel.FactoredMatrix, error) {
	if m == nil {
		return nil, fmt.Errorf("full OV circuit: nil model")
	}
	wE, err := m.W_E()
	if err != nil {
		return nil, fmt.Errorf("full OV circuit: %w", err)
	}
	wU, err := m.W_U()
	if err != nil {
		return nil, fmt.Errorf("full OV circuit: %w", err)
	}
	ov, err := m.OV() // [layer head d_model d_model]
	if err != nil {
		return nil, fmt.Errorf("full OV circuit: %w", err)
	}
	defer ov.Free()
	head, err := ov.Get(int64(h.Layer), int64(h.Head))
	if err != nil {
		return nil, fmt.Errorf("full OV circuit of head %d.%d: %w", h.Layer, h.Head, err)
	}
	defer head.Free()
	left, err := head.LeftMul(wE) // [d_vocab d_model]
	if err != nil {
		return nil, fmt.Errorf("full OV circuit: %w", err)
	}
	defer left.Free()
	full, err := left.Mul(wU) // [d_vocab d_vocab_out]
	if err != nil {
		return nil, fmt.Errorf("full OV circuit: %w", err)
	}
	return full, nil
}

// CircuitAccuracy is the share of rows of a square circuit f [n n] whose
// own column is among the row's k largest entries, k = 1 unless TopK says
// otherwise. On a full OV circuit (FullOVCircuit) it is the share of
// tokens the head copies to their own logit: ARENA's top_1_acc, and its
// top_5_acc with TopK(5).
//
// Rows are ranked with ties going to the earlier column, torch.argmax's
// rule (it takes the first of tied maxima): row i is a hit when fewer
// than k entries are larger than its own entry (i, i) or equal to it in a
// column before i. Because f stays factored, BlockRows rows at a time are
// computed as A[rows]·B: memory grows with the block times n, never with
// n² (a 50257-token vocabulary in blocks of 1024 needs 200 MB in float32
// where the dense product would need 10 GB). 16-bit factors are taken in
// float32. ctx is checked between blocks; a cancelled one stops the count
// and its error comes back wrapped. Options: TopK, BlockRows,
// WithProgress.
func CircuitAccuracy(ctx context.Context, f *hookedmodel.FactoredMatrix, opts ...Option) (float64, error) {
	o, err := collect("CircuitAccuracy", opts, optTopK|optBlockRows|optProgress)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("circuit accuracy: %w", err)
	}
	if f == nil || f.Ndim() != 2 || f.LDim() != f.RDim() || f.LDim() == 0 {
		shape := "nil"
		if f != nil {
			shape = fmt.Sprint(f.Shape())
		}
		return 0, fmt.Errorf("circuit accuracy: want a non-empty square matrix [n n], got %s", shape)
	}
	n := f.LDim()
	k := int64(1)
	if o.topKSet {
		k = int64(o.topK)
	}
	if k < 1 || k > n {
		return 0, fmt.Errorf("circuit accuracy: top-k %d is not within [1, %d]", k, n)
	}
	if o.blockRows < 1 {
		return 0, fmt.Errorf("circuit accuracy: blocks of %d rows, want at least 1", o.blockRows)
	}
	block := int64(o.blockRows)

	s := gotch.NewScope()
	defer s.Close()
	var a, b *gotch.Tensor // [n mdim], [mdim n]
	finite := true
	err = gotch.Try(func() {
		a, b = must(s.Borrow(f.A())), must(s.Borrow(f.B()))
		if d := a.DType(); d == gotch.Half || d == gotch.BFloat16 {
			a, b = a.MustTo(gotch.Float), b.MustTo(gotch.Float)
		}
		for _, t := range []*gotch.Tensor{a, b} {
			finite = finite && t.MustIsFinite().MustAll().MustItem() != 0
		}
	})
	if err != nil {
		return 0, fmt.Errorf("circuit accuracy: %w", err)
	}
	if !finite {
		return 0, fmt.Errorf("circuit accuracy: the factors of %v hold NaN or infinite values", f.Shape())
	}

	bar := newBar(&o, int((n+block-1)/block), "circuit accuracy")
	var hits int64
	for lo := int64(0); lo < n; lo += block {
		if err := ctx.Err(); err != nil {
			bar.end(false)
			return 0, fmt.Errorf("circuit accuracy: rows %d of %d done: %w", lo, n, err)
		}
		h, err := blockHits(a, b, lo, min(lo+block, n), k)
		if err != nil {
			bar.end(false)
			return 0, fmt.Errorf("circuit accuracy: rows %d to %d: %w", lo, min(lo+block, n), err)
		}
		hits += h
		bar.add()
	}
	bar.end(true)
	return float64(hits) / float64(n), nil
}

// blockHits counts the rows lo ≤ i < hi of A·B whose own entry ranks
// below k, computing only those rows [hi-lo n], in a scope of their own.
func blockHits(a, b *gotch.Tensor, lo, hi, k int64) (hits int64, err error) {
	s := gotch.NewScope()
	defer s.Close()
	err = gotch.Try(func() {
		rows := must(s.Borrow(a)).MustNarrow(0, lo, hi-lo).MustMatmul(b) // [block n]
		own := s.Attach(gotch.MustArange(float64(lo), float64(hi), 1, gotch.Int64, a.Device())).MustUnsqueeze(-1)
		if k == 1 {
			// max's index is the first of tied maxima, the rank rule at k = 1,
			// as argmax's is; on libtorch 1.13's CPU it is 2-3x faster.
			_, first := rows.MustMaxDim(-1, true)
			hits = int64(first.MustEq(own).MustSum().MustItem())
			return
		}
		// An own entry above the row's k-th largest value ranks below k, one
		// beneath it does not; only one equal to it needs its rank counted.
		top, _ := rows.MustTopk(k, -1, true, true)
		kth := top.MustNarrow(-1, k-1, 1) // [block 1]
		diag := rows.MustGather(-1, own)  // [block 1]
		hits = int64(diag.MustGt(kth).MustSum().MustItem())
		tied := diag.MustEq(kth).MustNonzero().MustSelect(1, 0) // [t]
		hits += rankedBelow(rows.MustIndexSelect(0, tied), own.MustIndexSelect(0, tied), k)
	})
	return hits, err
}

// rankedBelow counts the rows of rows [t n] whose entry at column own [t
// 1] has fewer than k entries larger than it or equal to it in an earlier
// column.
func rankedBelow(rows, own *gotch.Tensor, k int64) int64 {
	diag := rows.MustGather(-1, own)
	cols := gotch.MustArange(0, float64(rows.Size(-1)), 1, gotch.Int64, rows.Device())
	defer cols.Free()
	larger := rows.MustGt(diag).MustSumDims([]int64{-1}, false)
	tiedBefore := rows.MustEq(diag).MustLogicalAnd(cols.MustLt(own)).MustSumDims([]int64{-1}, false)
	return int64(larger.MustAdd(tiedBefore).MustLtScalar(float64(k)).MustSum().MustItem())
}
