package train

import "math"

// LearningRate is the learning rate of step (0-based): a linear warm-up
// from lr/warmup to lr over the first warmup steps, then a cosine decay
// from lr to min_lr that reaches min_lr after the last step.
//
//	step < warmup:  lr · (step+1) / warmup
//	otherwise:      min_lr + (lr - min_lr) · (1 + cos(π · (step+1-warmup) / (steps-warmup))) / 2
//
// The warm-up starts above zero (TransformerLens's train.py starts at 0,
// wasting the first step), and the cosine phase counts from the first step
// after it, so the last step runs at exactly min_lr.
func (t *TrainConfig) LearningRate(step int) float64 {
	if step < t.Warmup {
		return t.LR * float64(step+1) / float64(t.Warmup)
	}
	if t.Steps == t.Warmup {
		return t.LR
	}
	progress := float64(step+1-t.Warmup) / float64(t.Steps-t.Warmup)
	return t.MinLR + (t.LR-t.MinLR)*(1+math.Cos(math.Pi*min(progress, 1)))/2
}
