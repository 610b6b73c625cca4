package analysis

import (
	"context"
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// RepeatedTokens is a batch of rows [BOS, seq, seq], each seq SeqLen
// tokens drawn uniformly from TokenRange (seeded by WithSeed), as
// TransformerLens's and ARENA's generate_repeated_tokens make them:
// [batch 1+2·seq_len] int64 on the model's device. The caller frees it.
// Options: SeqLen, BatchSize, BOS, TokenRange, WithSeed.
func RepeatedTokens(m *hookedmodel.HookedTransformer, opts ...Option) (*gotch.Tensor, error) {
	o, err := collect("RepeatedTokens", opts, repeatedOptions)
	if err != nil {
		return nil, err
	}
	return repeatedTokens(m, &o)
}

// repeatedOptions are the options RepeatedTokens and Induction read.
const repeatedOptions = optSeqLen | optBatchSize | optBOS | optTokenRange | optSeed

func repeatedTokens(m *hookedmodel.HookedTransformer, o *options) (tok *gotch.Tensor, err error) {
	if m == nil {
		return nil, fmt.Errorf("repeated tokens: nil model")
	}
	lo, hi := o.lo, o.hi
	if hi < 0 {
		hi = int64(m.Cfg.DVocab)
	}
	bos := o.bos
	if !o.hasBOS && m.Tokenizer != nil {
		bos = int64(m.Tokenizer.BOS())
	}
	switch {
	case o.seqLen < 1 || o.batch < 1:
		return nil, fmt.Errorf("repeated tokens: seq_len %d and batch %d must be positive", o.seqLen, o.batch)
	case lo < 0 || hi > int64(m.Cfg.DVocab) || lo >= hi:
		return nil, fmt.Errorf("repeated tokens: token range [%d, %d) is not within the vocabulary of %d", lo, hi, m.Cfg.DVocab)
	case bos < 0 || bos >= int64(m.Cfg.DVocab):
		return nil, fmt.Errorf("repeated tokens: BOS %d is not in the vocabulary of %d", bos, m.Cfg.DVocab)
	case 1+2*o.seqLen > m.Cfg.NCtx:
		return nil, fmt.Errorf("repeated tokens: 1+2·%d positions exceed n_ctx=%d", o.seqLen, m.Cfg.NCtx)
	}
	gen, err := gotch.NewGenerator(o.seed)
	if err != nil {
		return nil, err
	}
	defer gen.Free()
	err = gotch.Try(func() {
		s := gotch.NewScope()
		defer s.Close()
		b, l := int64(o.batch), int64(o.seqLen)
		// Without a tokenizer BOS is an ordinary id, and it never occurs
		// inside the sequences (as in golens train's repeated-token data):
		// draw from one id fewer and skip it.
		skipBOS := m.Tokenizer == nil && o.hi < 0 && lo <= bos
		if skipBOS {
			hi--
		}
		seq := s.Attach(gotch.MustRandint(lo, hi, []int64{b, l}, gen, m.Device()))
		if skipBOS {
			seq = seq.MustAdd(seq.MustGtScalar(float64(bos) - 1).MustTo(gotch.Int64))
		}
		first := s.Attach(gotch.MustFull([]int64{b, 1}, float64(bos), gotch.Int64, m.Device()))
		tok = s.Keep(gotch.MustCat([]*gotch.Tensor{first, seq, seq}, 1))
	})
	return tok, err
}

// InductionResult is what Induction measures on repeated random tokens.
type InductionResult struct {
	Tokens [][]int64 // the rows [BOS, seq, seq]
	SeqLen int

	// LossPerToken [batch pos-1] is the loss of each next-token prediction.
	// FirstRepeatLoss is its mean over the predictions made at positions
	// [0, seq_len), which predict the first repeat, SecondRepeatLoss over
	// [seq_len, 2·seq_len), the second repeat (whose first token is not
	// predictable), as ARENA splits them.
	LossPerToken                      *Table
	FirstRepeatLoss, SecondRepeatLoss float64

	// Scores [layer head] is each head's induction score: its mean
	// attention from every position to the one seq_len-1 before it (the
	// token after the current token's previous occurrence, in the second
	// repeat), over the whole diagonal and the batch, as ARENA's
	// induction_score_hook computes it.
	Scores *Table
}

// Induction runs the model on a batch of repeated random tokens
// (RepeatedTokens) and measures the per-token loss on each repeat and each
// head's induction score. Options: those of RepeatedTokens.
func Induction(ctx context.Context, m *hookedmodel.HookedTransformer, opts ...Option) (*InductionResult, error) {
	o, err := collect("Induction", opts, repeatedOptions)
	if err != nil {
		return nil, err
	}
	tok, err := repeatedTokens(m, &o)
	if err != nil {
		return nil, fmt.Errorf("induction: %w", err)
	}
	defer tok.Free()
	return InductionOn(ctx, m, tok, o.seqLen)
}

// InductionOn is Induction on given tokens [batch 1+2·seq_len] (BOS, then
// a sequence repeated twice).
func InductionOn(ctx context.Context, m *hookedmodel.HookedTransformer, tokens *gotch.Tensor, seqLen int) (*InductionResult, error) {
	if m == nil {
		return nil, fmt.Errorf("induction: nil model")
	}
	if tokens == nil || tokens.Dim() != 2 || tokens.Size(1) != int64(1+2*seqLen) || seqLen < 1 {
		return nil, fmt.Errorf("induction: tokens must be [batch 1+2·seq_len] = [batch %d], got %v", 1+2*seqLen, tokens.Spec())
	}
	patterns, err := hookedmodel.Regexp(`^blocks\.\d+\.attn\.hook_pattern$`)
	if err != nil {
		return nil, err
	}
	out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(tokens), hookedmodel.NamesFilter(patterns),
		hookedmodel.Return(hookedmodel.ReturnLoss), hookedmodel.LossPerToken())
	if err != nil {
		return nil, fmt.Errorf("induction: %w", err)
	}
	defer out.Free()
	defer cache.Free()

	res := &InductionResult{SeqLen: seqLen}
	ids, err := gotch.ToSlice[int64](out.Tokens)
	if err != nil {
		return nil, err
	}
	b, n := int(tokens.Size(0)), int(tokens.Size(1))
	for r := range b {
		res.Tokens = append(res.Tokens, ids[r*n:(r+1)*n])
	}
	loss, err := gotch.ToSlice[float64](out.Loss)
	if err != nil {
		return nil, err
	}
	res.LossPerToken = &Table{Axes: []string{"batch", "pos"}, Shape: []int{b, n - 1}, Data: loss}
	var first, second float64
	for r := range b {
		for p := range n - 1 {
			if p < seqLen {
				first += loss[r*(n-1)+p]
			} else {
				second += loss[r*(n-1)+p]
			}
		}
	}
	res.FirstRepeatLoss = first / float64(b*seqLen)
	res.SecondRepeatLoss = second / float64(b*seqLen)

	nh := m.Cfg.NHeads
	res.Scores = NewTable([]string{"layer", "head"}, len(m.Blocks), nh)
	for l := range m.Blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pat, err := cache.Get("pattern", l)
		if err != nil {
			return nil, err
		}
		vals, err := gotch.ToSlice[float64](pat) // [batch head query key]
		if err != nil {
			return nil, err
		}
		for h := range nh {
			res.Scores.Set(diagonalMean(vals, b, nh, n, h, 1-seqLen), l, h)
		}
	}
	return res, nil
}

// diagonalMean is the mean over the batch of head h's attention pattern
// ([batch head n n], flat) along the diagonal with offset off (key =
// query + off), torch.diagonal's offset.
func diagonalMean(vals []float64, b, nh, n, h, off int) float64 {
	var sum float64
	var cnt int
	for r := range b {
		base := (r*nh + h) * n * n
		for q := range n {
			k := q + off
			if k < 0 || k >= n {
				continue
			}
			sum += vals[base+q*n+k]
			cnt++
		}
	}
	if cnt == 0 {
		return 0
	}
	return sum / float64(cnt)
}
