package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

// Text is a text file tokenized with GPT-2's BPE and packed into rows as
// TransformerLens's tokenize_and_concatenate does: the whole file's tokens
// ("<|endoftext|>" marks document boundaries) are cut into pieces of
// seqLen-1 and each row is BOS and one piece; the tail that does not fill
// a piece is dropped. A seeded shuffle puts a share of the rows aside for
// evaluation; training visits the rest in a fresh seeded order each epoch.
type Text struct {
	train, eval [][]int64
	rows        int
	seed        uint64

	mu    sync.Mutex
	epoch int   // the epoch perm is for, or -1
	perm  []int // the training order of that epoch
}

// NewText reads and packs path; batches have rows rows, and evalFraction
// of the packed rows (at least one) are held out.
func NewText(path string, seqLen, rows int, evalFraction float64, seed uint64) (*Text, error) {
	b, err := safefile.Read(path, safefile.TokensLimit)
	if err != nil {
		return nil, fmt.Errorf("text data: %w", err)
	}
	tok := tokenizer.GPT2()
	ids := tok.Encode(string(b))
	n := len(ids) / (seqLen - 1)
	if n < 2 {
		return nil, fmt.Errorf("text data %q: %d tokens make fewer than 2 sequences of %d", path, len(ids), seqLen)
	}
	packed := make([][]int64, n)
	for i := range packed {
		row := make([]int64, seqLen)
		row[0] = int64(tok.BOS())
		for j, id := range ids[i*(seqLen-1) : (i+1)*(seqLen-1)] {
			row[j+1] = int64(id)
		}
		packed[i] = row
	}
	r := rand.New(rand.NewPCG(seed, math.MaxUint64))
	r.Shuffle(n, func(i, j int) { packed[i], packed[j] = packed[j], packed[i] })
	nEval := min(max(1, int(math.Round(evalFraction*float64(n)))), n-1)
	return &Text{eval: packed[:nEval], train: packed[nEval:], rows: rows, seed: seed, epoch: -1}, nil
}

// Len is the number of training and held-out rows.
func (d *Text) Len() (train, eval int) { return len(d.train), len(d.eval) }

// Batch returns the training batch of step [rows seqLen]: the rows
// step·rows onwards in the order of the epochs they fall in.
func (d *Text) Batch(_ context.Context, step int) ([][]int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([][]int64, d.rows)
	n := len(d.train)
	for i := range out {
		k := step*d.rows + i
		if e := k / n; e != d.epoch {
			d.epoch = e
			d.perm = rand.New(rand.NewPCG(d.seed, uint64(e))).Perm(n)
		}
		out[i] = d.train[d.perm[k%n]]
	}
	return out, nil
}

// EvalBatch returns held-out batch i [rows seqLen], going round the
// held-out rows.
func (d *Text) EvalBatch(_ context.Context, i int) ([][]int64, error) {
	out := make([][]int64, d.rows)
	for j := range out {
		out[j] = d.eval[(i*d.rows+j)%len(d.eval)]
	}
	return out, nil
}
