package analysis

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// inductionModel builds the hand-made induction model on the test device.
func inductionModel(t *testing.T) *InductionModel {
	t.Helper()
	im, err := NewInductionModel(InductionConfig{}, hookedmodel.OnDevice(gotchtest.Device(t)), hookedmodel.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(im.Free)
	return im
}

// repeatOpts are the options of the repeated-token batches the tests use:
// real tokens only (BOS excluded), BOS first.
func repeatOpts(im *InductionModel, seed uint64) []Option {
	return []Option{SeqLen(10), BatchSize(4), BOS(im.BOS), TokenRange(1, int64(im.Model.Cfg.DVocab)), WithSeed(seed)}
}

func TestInductionModel(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	res, err := Induction(context.Background(), im.Model, repeatOpts(im, 3)...)
	if err != nil {
		t.Fatal(err)
	}
	logV := math.Log(float64(im.Model.Cfg.DVocab))
	t.Logf("loss: first repeat %.4f, second repeat %.4f (log V = %.3f)", res.FirstRepeatLoss, res.SecondRepeatLoss, logV)
	t.Logf("induction scores\n%v", res.Scores)
	if res.FirstRepeatLoss < 0.8*logV {
		t.Errorf("first-repeat loss %.3f, want about log V = %.3f: nothing predicts unseen tokens", res.FirstRepeatLoss, logV)
	}
	if res.SecondRepeatLoss > res.FirstRepeatLoss/4 {
		t.Errorf("second-repeat loss %.3f, want far below the first's %.3f", res.SecondRepeatLoss, res.FirstRepeatLoss)
	}
	// Every token of the second repeat but its first follows a unique
	// earlier context unless the random sequence repeats a token: most
	// are predicted almost surely.
	if med := median(secondRepeat(res)); med > 0.01 {
		t.Errorf("median second-repeat loss per token %.4f, want about (V-2)e^-10", med)
	}
	if got := res.Scores.Argmax(); got[0] != im.Induction.Layer || got[1] != im.Induction.Head {
		t.Errorf("highest induction score at %v, want the induction head %v", got, im.Induction)
	}
}

// secondRepeat lists the per-token losses of the second repeat's
// predictable tokens (all but its first).
func secondRepeat(res *InductionResult) []float64 {
	var out []float64
	n := res.LossPerToken.Shape[1]
	for r := range res.LossPerToken.Shape[0] {
		out = append(out, res.LossPerToken.Data[r*n+res.SeqLen+1:(r+1)*n]...)
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
