package analysis_test

import (
	"context"
	"fmt"
	"log"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/gotch"
)

// The hand-built induction model shows the workflow on a circuit whose
// answer is known.
func inductionModel() *analysis.InductionModel {
	im, err := analysis.NewInductionModel(analysis.InductionConfig{})
	if err != nil {
		log.Fatal(err)
	}
	return im
}

func ExampleInduction() {
	im := inductionModel()
	defer im.Free()
	res, err := analysis.Induction(context.Background(), im.Model,
		analysis.SeqLen(10), analysis.BatchSize(8), analysis.BOS(im.BOS), analysis.TokenRange(1, 64))
	if err != nil {
		log.Fatal(err)
	}
	best := res.Scores.Argmax()
	fmt.Println("best induction head:", analysis.HeadLabel(best[0], best[1]))
	fmt.Println("second repeat far easier:", res.SecondRepeatLoss < res.FirstRepeatLoss/4)
	// Output:
	// best induction head: L1H2
	// second repeat far easier: true
}

func ExampleDetectHead() {
	im := inductionModel()
	defer im.Free()
	tokens, err := analysis.RepeatedTokens(im.Model, analysis.BOS(im.BOS), analysis.TokenRange(1, 64))
	if err != nil {
		log.Fatal(err)
	}
	defer tokens.Free()
	scores, err := analysis.DetectHead(context.Background(), im.Model, tokens, analysis.PreviousTokenHead, analysis.ExcludeBOS())
	if err != nil {
		log.Fatal(err)
	}
	best := scores.Argmax()
	fmt.Printf("%s scores %.3f\n", analysis.HeadLabel(best[0], best[1]), scores.At(best...))
	// Output:
	// L0H1 scores 1.000
}

func ExampleActivationPatching() {
	im := inductionModel()
	defer im.Free()
	// Clean: BOS, a sequence, the sequence again. Corrupted: the second
	// half is another sequence.
	seq, other := []int64{5, 9, 2, 30, 17, 8}, []int64{40, 51, 33, 62, 45, 37}
	clean := gotch.MustFromSlice(append(append([]int64{0}, seq...), seq...), []int64{1, 13}, gotch.CPU)
	defer clean.Free()
	corrupted := gotch.MustFromSlice(append(append([]int64{0}, seq...), other...), []int64{1, 13}, gotch.CPU)
	defer corrupted.Free()
	// How well the model predicts the clean second half.
	metric := analysis.NextTokenLogProb(clean, 7, 0)

	res, err := analysis.ActivationPatching(context.Background(), im.Model, clean, corrupted, metric, analysis.HeadOut)
	if err != nil {
		log.Fatal(err)
	}
	restored := res.Normalized() // 0: as corrupted, 1: as clean
	for i, v := range restored.Data {
		if idx := restored.Index(i); v > 0.1 {
			fmt.Printf("patching %s restores %.2f\n", analysis.HeadLabel(idx[0], idx[1]), v)
		}
	}
	// Output:
	// patching L1H2 restores 1.00
}

func ExampleCompositionScores() {
	im := inductionModel()
	defer im.Free()
	res, err := analysis.CompositionScores(context.Background(), im.Model)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("K-composition L0H1 -> L1H2: %.3f (random: %.2f)\n", res.K.At(0, 1, 1, 2), res.Baseline)
	// Output:
	// K-composition L0H1 -> L1H2: 0.125 (random: 0.07)
}

func ExampleCircuitAccuracy() {
	im := inductionModel()
	defer im.Free()
	// The induction head's full OV circuit W_E W_V W_O W_U, kept factored:
	// a GPT-2-sized one would be 50257 × 50257.
	ov, err := analysis.FullOVCircuit(im.Model, im.Induction)
	if err != nil {
		log.Fatal(err)
	}
	defer ov.Free()
	top1, err := analysis.CircuitAccuracy(context.Background(), ov, analysis.BlockRows(16))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("the head copies %.0f%% of tokens\n", 100*top1)
	// Output:
	// the head copies 100% of tokens
}
