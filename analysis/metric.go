package analysis

import (
	"fmt"

	"github.com/golens/golens/gotch"
)

// Metric maps a pass's logits [batch pos d_vocab_out] to a scalar (0-d)
// tensor, as TransformerLens's patching_metric does: a logit difference,
// the log-probability of the answers. Activation patching reads its value;
// attribution patching also differentiates it, so build it from logits
// with tensor ops. The analyses call it with logits in a scope of theirs,
// so what it makes from logits is freed with that scope; what it makes
// from other tensors (an index, the tokens) it frees itself. LogitDiff and
// NextTokenLogProb work in a Child of logits' scope and Keep their result,
// so it lands where an op's on logits would and nothing else is left.
type Metric func(logits *gotch.Tensor) (*gotch.Tensor, error)

// LogitDiff is the metric of the logit of correct[b] minus that of
// incorrect[b] at position pos (negative counts from the end), averaged
// over the batch rows b. A nil incorrect measures the logit of correct
// alone.
func LogitDiff(pos int, correct, incorrect []int64) Metric {
	return func(logits *gotch.Tensor) (m *gotch.Tensor, err error) {
		switch {
		case logits == nil || logits.Dim() != 3:
			return nil, fmt.Errorf("logit diff: logits %s, want [batch pos d_vocab]", logits.Spec())
		case logits.Size(0) != int64(len(correct)):
			return nil, fmt.Errorf("logit diff: %d answer tokens for a batch of %d", len(correct), logits.Size(0))
		case incorrect != nil && len(incorrect) != len(correct):
			return nil, fmt.Errorf("logit diff: %d correct and %d incorrect tokens", len(correct), len(incorrect))
		}
		err = gotch.Try(func() {
			s := logits.Scope().Child() // keeps into logits' scope, or to the caller
			defer s.Close()
			at := selectPos(must(s.Borrow(logits)), pos) // [batch d_vocab]
			m = gatherRows(at, correct)
			if incorrect != nil {
				m = m.MustSub(gatherRows(at, incorrect))
			}
			m = s.Keep(m.MustMean())
		})
		return m, err
	}
}

// NextTokenLogProb is the metric of the mean log-probability the model
// gives each next token of tokens ([batch pos], the tokens of the pass),
// over the predictions made at positions [from, to) of every row (to 0
// means to the last prediction, pos-1). It is the negative of the mean
// next-token loss there.
func NextTokenLogProb(tokens *gotch.Tensor, from, to int) Metric {
	return func(logits *gotch.Tensor) (m *gotch.Tensor, err error) {
		if logits == nil || tokens == nil {
			return nil, fmt.Errorf("next-token log-prob: logits %s, tokens %s: want both", logits.Spec(), tokens.Spec())
		}
		err = gotch.Try(func() {
			n := logits.Size(1)
			end := to
			if end <= 0 {
				end += int(n) - 1
			}
			if from < 0 || end > int(n)-1 || from >= end {
				panic(fmt.Errorf("next-token log-prob: positions [%d, %d) are not within the %d predictions", from, end, n-1))
			}
			s := logits.Scope().Child() // keeps into logits' scope, or to the caller
			defer s.Close()
			lg, tok := must(s.Borrow(logits)), must(s.Borrow(tokens))
			if !equalShape(tok.Shape(), logits.Shape()[:2]) {
				panic(fmt.Errorf("next-token log-prob: tokens %v do not match logits %v", tok.Shape(), logits.Shape()))
			}
			k := int64(end - from)
			next := tok.MustNarrow(1, int64(from)+1, k).MustToDevice(lg.Device(), false).MustTo(gotch.Int64).MustUnsqueeze(-1) // [batch k 1]
			lp := lg.MustNarrow(1, int64(from), k).MustLogSoftmax(-1)                                                          // [batch k d_vocab]
			m = s.Keep(lp.MustGather(-1, next).MustMean())
		})
		return m, err
	}
}

// selectPos is x[:, pos] of a [batch pos ...] tensor; negative pos counts
// from the end.
func selectPos(x *gotch.Tensor, pos int) *gotch.Tensor {
	n := x.Size(1)
	p := int64(pos)
	if p < 0 {
		p += n
	}
	if p < 0 || p >= n {
		panic(fmt.Errorf("position %d is out of range for %d positions", pos, n))
	}
	return x.MustSelect(1, p)
}

// gatherRows is x[b, ids[b]] for a [batch n] tensor x: [batch].
func gatherRows(x *gotch.Tensor, ids []int64) *gotch.Tensor {
	idx := gotch.MustFromSlice(ids, []int64{int64(len(ids)), 1}, x.Device())
	defer idx.Free()
	return x.MustGather(1, idx).MustSqueeze(1)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
