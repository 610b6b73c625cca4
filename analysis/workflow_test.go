package analysis

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

func TestWorkflowOnTheConstruction(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im, err := NewInductionModel(InductionConfig{}, hookedmodel.OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Model.Free()
	prompt, err := RepeatedTokens(im.Model, BatchSize(1), SeqLen(8), WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	defer prompt.Free()
	s, rep, err := Workflow(context.Background(), im.Model, prompt, SeqLen(8), WithSeed(4))
	if err != nil {
		t.Fatal(err)
	}
	best := func(score func(HeadScores) float64) HeadID {
		var b HeadScores
		for _, h := range s.Heads {
			if score(h) > score(b) {
				b = h
			}
		}
		return HeadID{b.Layer, b.Head}
	}
	if got := best(func(h HeadScores) float64 { return h.PreviousToken }); got != im.PrevToken {
		t.Errorf("top previous-token head %v, want %v", got, im.PrevToken)
	}
	if got := best(func(h HeadScores) float64 { return h.Induction }); got != im.Induction {
		t.Errorf("top induction head on the prompt %v, want %v", got, im.Induction)
	}
	ind := im.Induction
	if s.InductionScores[ind.Layer][ind.Head] < 0.5 {
		t.Errorf("induction score of %v is %.3f, want > 0.5", ind, s.InductionScores[ind.Layer][ind.Head])
	}
	if !(s.RepeatLoss.Second < s.RepeatLoss.First/2) {
		t.Errorf("repeat loss %+v: the second repeat should be far easier", s.RepeatLoss)
	}
	prev := im.PrevToken
	k := s.Composition.K[prev.Layer][prev.Head][ind.Layer][ind.Head]
	if k <= s.CompositionBaseline {
		t.Errorf("K-composition of the circuit %.3f is not above the baseline %.3f", k, s.CompositionBaseline)
	}
	if s.AblationChange[ind.Layer][ind.Head] <= 0 {
		t.Errorf("zero-ablating the induction head changes the loss by %.3f, want an increase", s.AblationChange[ind.Layer][ind.Head])
	}
	sum := 0.0
	for _, c := range s.LogitAttrib {
		sum += c.Value
	}
	gotchtest.Close(t, "logit attribution total", []float64{sum}, []float64{s.TopPrediction.Value}, 1e-4)

	dir := t.TempDir()
	if err := rep.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		t.Error(err)
	}
}
