package train_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/train"
)

// Train a one-layer attention-only model on repeated random tokens for a
// few steps, then load the final model.
func ExampleRun() {
	m := hookedmodel.DefaultConfig()
	m.NLayers, m.DModel, m.DHead, m.NCtx, m.DVocab, m.AttnOnly = 1, 16, 4, 9, 10, true
	tc := train.DefaultTrainConfig()
	tc.Steps, tc.Batch, tc.EvalEvery = 20, 4, 10
	cfg := train.Config{Model: m, Train: tc, Data: train.DataConfig{Kind: "repeated_tokens"}}

	out, err := os.MkdirTemp("", "golens-train")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	res, err := train.Run(context.Background(), cfg, out, train.WithProgress(nil))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Done, res.Step, len(res.Eval.LossByPos))

	model, err := hookedmodel.Load(context.Background(), res.Model)
	if err != nil {
		log.Fatal(err)
	}
	defer model.Free()
	fmt.Println(model.Cfg.NLayers, model.Cfg.DVocab)
	// Output:
	// true 20 8
	// 1 10
}
