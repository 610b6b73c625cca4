package train

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// trainer is one run's state: the model, its Stepper (AdamW's moments),
// the steps done and the tokens seen. The step count is also the data
// position: step k trains on Dataset.Batch(k).
type trainer struct {
	m      *hookedmodel.HookedTransformer
	cfg    Config
	data   Dataset
	st     *Stepper
	dp     parallel
	step   int
	tokens int64 // over all ranks
}

// newTrainer makes a trainer that owns m.
func newTrainer(m *hookedmodel.HookedTransformer, cfg Config, data Dataset, dp parallel) (*trainer, error) {
	st, err := NewStepper(m, cfg.Train)
	if err != nil {
		return nil, err
	}
	st.dp = dp
	return &trainer{m: m, cfg: cfg, data: data, st: st, dp: dp}, nil
}

// free releases the optimiser state and the model.
func (tr *trainer) free() {
	tr.st.Free()
	tr.m.Free()
}

// stepStats is what one optimisation step reports.
type stepStats struct {
	loss, lr, gradNorm float64
	tokens             int
	stop               bool // a data-parallel rank asked to stop after this step
}

// trainStep runs one optimisation step on the next batch (see Stepper.Step);
// wantStop tells the other data-parallel ranks that this one stops after it.
func (tr *trainer) trainStep(ctx context.Context, wantStop bool) (st stepStats, err error) {
	batch, err := tr.data.Batch(ctx, tr.step)
	if err != nil {
		return st, fmt.Errorf("batch: %w", err)
	}
	rows, err := tr.dp.rows(batch)
	if err != nil {
		return st, err
	}
	s := gotch.NewScope()
	defer s.Close()
	tokens, err := tokensTensor(s, rows, tr.m.Device())
	if err != nil {
		return st, fmt.Errorf("batch: %w", err)
	}
	st = stepStats{lr: tr.cfg.Train.LearningRate(tr.step), tokens: int(tokens.Numel()) * tr.dp.size()}
	if st.loss, st.gradNorm, st.stop, err = tr.st.step(ctx, tokens, st.lr, wantStop); err != nil {
		return st, err
	}
	tr.step++
	tr.tokens += int64(st.tokens)
	return st, nil
}

// tokensTensor turns rows of equal length into tokens [batch seq] on dev,
// in s.
func tokensTensor(s *gotch.Scope, rows [][]int64, dev gotch.Device) (*gotch.Tensor, error) {
	if len(rows) == 0 || len(rows[0]) < 2 {
		return nil, errors.New("a batch needs at least one row of two tokens")
	}
	n := len(rows[0])
	flat := make([]int64, 0, len(rows)*n)
	for i, r := range rows {
		if len(r) != n {
			return nil, fmt.Errorf("row %d has %d tokens, row 0 has %d", i, len(r), n)
		}
		flat = append(flat, r...)
	}
	t, err := gotch.FromSlice(flat, []int64{int64(len(rows)), int64(n)}, dev)
	if err != nil {
		return nil, err
	}
	return s.Attach(t), nil
}

// evaluate measures the model on cfg.Train.EvalBatches held-out batches and
// runs the head score functions. The weights do not record gradients
// meanwhile.
func (tr *trainer) evaluate(ctx context.Context, scores []headScore) (ev Record, err error) {
	if err := tr.m.SetRequiresGrad(false); err != nil {
		return ev, err
	}
	defer func() {
		if e := tr.m.SetRequiresGrad(true); e != nil && err == nil {
			err = e
		}
	}()
	var sum []float64
	for i := range tr.cfg.Train.EvalBatches {
		byPos, err := tr.evalBatch(ctx, i)
		if err != nil {
			return ev, fmt.Errorf("eval batch %d: %w", i, err)
		}
		if sum == nil {
			sum = make([]float64, len(byPos))
		}
		if len(byPos) != len(sum) {
			return ev, fmt.Errorf("eval batch %d has rows of %d tokens, batch 0 of %d", i, len(byPos)+1, len(sum)+1)
		}
		for j, x := range byPos {
			sum[j] += x
		}
	}
	for j := range sum {
		sum[j] /= float64(tr.cfg.Train.EvalBatches)
		ev.Loss += sum[j] / float64(len(sum))
	}
	ev.Kind, ev.Step, ev.Tokens, ev.LossByPos = "eval", tr.step, tr.tokens, sum
	icl := iclScore(sum)
	if d, ok := tr.data.(iclProbe); ok {
		rows, early, late, err := d.ICLRows(ctx)
		var byPos []float64
		if err == nil {
			byPos, err = tr.lossByPos(ctx, rows)
		}
		if err != nil {
			return ev, fmt.Errorf("in-context learning rows: %w", err)
		}
		icl = meanAt(byPos, late) - meanAt(byPos, early)
	}
	if !math.IsNaN(icl) {
		ev.ICL = &icl
	}
	for _, hs := range scores {
		v, err := hs.score(ctx, tr.m)
		if err != nil {
			return ev, fmt.Errorf("head score %s: %w", hs.name, err)
		}
		if ev.HeadScores == nil {
			ev.HeadScores = map[string][][]float64{}
		}
		ev.HeadScores[hs.name] = v
	}
	return ev, nil
}

// iclProbe is a Dataset whose rows show in-context learning at known
// positions (RepeatedTokens): the score is the mean loss of predicting
// ICLRows' late tokens minus that of its early ones, instead of Olsson's
// fixed fractions of the context.
type iclProbe interface {
	ICLRows(ctx context.Context) (rows [][]int64, early, late []int, err error)
}

// meanAt is the mean loss of predicting the tokens at positions, from the
// loss of predicting each token i+1 [seq-1]; NaN without positions.
func meanAt(lossByPos []float64, positions []int) float64 {
	s := 0.0
	for _, p := range positions {
		s += lossByPos[p-1]
	}
	return s / float64(len(positions))
}

// evalBatch is the loss of each position of held-out batch i, averaged
// over its rows [seq-1].
func (tr *trainer) evalBatch(ctx context.Context, i int) ([]float64, error) {
	rows, err := tr.data.EvalBatch(ctx, i)
	if err != nil {
		return nil, err
	}
	return tr.lossByPos(ctx, rows)
}

// lossByPos is the loss of each position of rows, averaged over the rows
// [seq-1].
func (tr *trainer) lossByPos(ctx context.Context, rows [][]int64) ([]float64, error) {
	s := gotch.NewScope()
	defer s.Close()
	tokens, err := tokensTensor(s, rows, tr.m.Device())
	if err != nil {
		return nil, err
	}
	out, err := tr.m.Forward(ctx, hookedmodel.Tokens(tokens), hookedmodel.Return(hookedmodel.ReturnLoss), hookedmodel.LossPerToken())
	if err != nil {
		return nil, err
	}
	defer out.Free()
	var byPos []float64
	err = gotch.Try(func() {
		byPos = gotch.MustToSlice[float64](borrow(s, out.Loss).MustMeanDims([]int64{0}, false))
	})
	return byPos, err
}

// iclScore is the loss at token 500/512 of the context minus the loss at
// token 50/512, from the loss of predicting each token i+1 [seq-1]; NaN
// when the two are the same token.
func iclScore(lossByPos []float64) float64 {
	n := len(lossByPos) + 1 // tokens per row
	early := max(1, int(math.Round(float64(n)*50/512)))
	late := min(n-1, int(math.Round(float64(n)*500/512)))
	if late <= early {
		return math.NaN()
	}
	return lossByPos[late-1] - lossByPos[early-1]
}
