package train

import (
	"context"
	"fmt"
	"math/rand/v2"
)

// Dataset gives a run its token batches. Both methods are functions of
// their argument alone, so a resumed run sees the very batches the
// uninterrupted run would have. The trainer only reads the rows.
type Dataset interface {
	// Batch returns the training batch of step (0-based): rows of token
	// ids of equal length, [batch seq].
	Batch(ctx context.Context, step int) ([][]int64, error)
	// EvalBatch returns held-out batch i (0-based), [batch seq], drawn
	// apart from every training batch.
	EvalBatch(ctx context.Context, i int) ([][]int64, error)
}

// RepeatedTokens is the induction task: every row is BOS, Prefix random
// tokens, then one random segment of Length tokens written Repeats times,
//
//	[BOS, p₁ … p_P, x₁ … x_L, x₁ … x_L, …]
//
// so that from the second repeat on each token is predictable from the
// earlier ones. With MinLength < Length each row draws its segment length
// from [MinLength, Length] and its prefix length from [0, Prefix], and
// ends in random tokens, so the repeats sit at varying distances. Tokens are uniform over [0, Vocab) without BOS. A batch is
// drawn from a PCG stream of (Seed, step), so batches are reproducible
// and independent of one another; held-out batches use other streams.
type RepeatedTokens struct {
	Vocab     int   // tokens are drawn from [0, Vocab) less BOS
	Length    int   // tokens per segment (the longest, with MinLength)
	MinLength int   // the shortest segment; 0 or Length: all are Length
	Repeats   int   // segments per row
	Prefix    int   // random tokens before the first segment
	BOS       int64 // the first token of every row; negative for none
	Rows      int   // rows per batch
	Seed      uint64
}

// SeqLen is the length of a row.
func (d RepeatedTokens) SeqLen() int {
	n := d.Prefix + d.Repeats*d.Length
	if d.BOS >= 0 {
		n++
	}
	return n
}

// Batch returns the training batch of step [Rows SeqLen].
func (d RepeatedTokens) Batch(_ context.Context, step int) ([][]int64, error) {
	return d.draw(2*uint64(step), d.SeqLen()), nil
}

// EvalBatch returns held-out batch i [Rows SeqLen].
func (d RepeatedTokens) EvalBatch(_ context.Context, i int) ([][]int64, error) {
	return d.draw(2*uint64(i)+1, d.SeqLen()), nil
}

// ICLRows returns rows whose structure is fixed, with the token positions
// the in-context-learning score compares: early, the tokens of the first
// segment after its first; late, those of the last repeat after its first,
// each predictable only from its earlier copy. The rows are drawn as the
// held-out ones, but with segments of the middle length after a prefix of
// half the longest, so that every row has its repeats at the same places,
// at a distance training saw often.
func (d RepeatedTokens) ICLRows(context.Context) (rows [][]int64, early, late []int, err error) {
	fixed := d
	if d.MinLength > 0 && d.MinLength < d.Length {
		fixed.Length = (d.MinLength + d.Length) / 2
		fixed.Prefix = d.Prefix / 2
		fixed.MinLength = 0
	}
	start := fixed.Prefix // the first segment's first token
	if d.BOS >= 0 {
		start++
	}
	for i := 1; i < fixed.Length; i++ {
		early = append(early, start+i)
		late = append(late, start+(fixed.Repeats-1)*fixed.Length+i)
	}
	return fixed.draw(1<<62, d.SeqLen()), early, late, nil
}

// draw makes the rows of a batch from stream, n tokens each (the last
// ones random).
func (d RepeatedTokens) draw(stream uint64, n int) [][]int64 {
	r := rand.New(rand.NewPCG(d.Seed, stream))
	token := func() int64 {
		if d.BOS < 0 || d.BOS >= int64(d.Vocab) {
			return r.Int64N(int64(d.Vocab))
		}
		x := r.Int64N(int64(d.Vocab - 1)) // skip BOS
		if x >= d.BOS {
			x++
		}
		return x
	}
	rows := make([][]int64, d.Rows)
	for i := range rows {
		row := make([]int64, 0, n)
		if d.BOS >= 0 {
			row = append(row, d.BOS)
		}
		prefix, length := d.Prefix, d.Length
		if d.MinLength > 0 && d.MinLength < d.Length {
			length = d.MinLength + r.IntN(d.Length-d.MinLength+1)
			prefix = r.IntN(d.Prefix + 1)
		}
		for range prefix {
			row = append(row, token())
		}
		seg := make([]int64, length)
		for j := range seg {
			seg[j] = token()
		}
		for range d.Repeats {
			row = append(row, seg...)
		}
		for len(row) < n {
			row = append(row, token())
		}
		rows[i] = row
	}
	return rows
}

// newDataset makes the dataset cfg.Data describes; cfg is initialised.
func newDataset(cfg *Config) (Dataset, error) {
	d := cfg.Data
	switch d.Kind {
	case "repeated_tokens":
		return RepeatedTokens{Vocab: d.Vocab, Length: d.Length, MinLength: d.MinLength, Repeats: d.Repeats, Prefix: d.Prefix, BOS: *d.BOS, Rows: cfg.Train.Batch, Seed: cfg.Train.Seed}, nil
	case "text":
		return NewText(d.Path, d.SeqLen, cfg.Train.Batch, d.EvalFraction, cfg.Train.Seed)
	}
	return nil, fmt.Errorf("data kind %q is not known", d.Kind)
}
