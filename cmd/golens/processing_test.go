package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/models"
)

// run --json says which processing steps the weights went through, and
// why a step was skipped; processing never changes the loss.
func TestRunJSONProcessing(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dir := t.TempDir()
	shipped := filepath.Join(dir, "induction-2l.safetensors")
	if err := os.WriteFile(shipped, models.Induction2L, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := hookedmodel.Load(t.Context(), shipped, hookedmodel.WithProcessing(hookedmodel.DefaultProcessing))
	if err != nil {
		t.Fatal(err)
	}
	processed := filepath.Join(dir, "processed.safetensors")
	err = m.Save(processed)
	m.Free()
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.json")
	os.WriteFile(tokens, []byte("[[0, 5, 9, 17, 33, 2, 61, 5, 9, 17, 33, 2, 61]]"), 0o644)
	run := func(model string) runResult {
		t.Helper()
		out, err := golens(t, "run", "--model", model, "--device", testDevice(), "--tokens-file", tokens, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var res runResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("run --json printed %q: %v", out, err)
		}
		return res
	}
	raw, proc := run(shipped), run(processed)
	if raw.Processing == nil || len(raw.Processing) != 0 {
		t.Errorf("run --json of the shipped model: processing %+v, want []", raw.Processing)
	}
	want := []struct {
		step string
		ran  bool
	}{{hookedmodel.StepFoldLN, false}, {hookedmodel.StepCenterWritingWeights, true}, {hookedmodel.StepCenterUnembed, true}, {hookedmodel.StepFoldValueBiases, true}}
	ok := len(proc.Processing) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = proc.Processing[i].Step == want[i].step && proc.Processing[i].Ran == want[i].ran
	}
	if !ok || proc.Processing[0].Note == "" {
		t.Errorf("run --json of the processed shortformer model: processing %+v, want fold_ln skipped with its reason, the rest run", proc.Processing)
	}
	if d := raw.Loss - proc.Loss; d > 1e-4 || d < -1e-4 {
		t.Errorf("loss %.6f unprocessed, %.6f processed", raw.Loss, proc.Loss)
	}
}
