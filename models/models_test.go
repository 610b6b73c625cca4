package models

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/train"
)

// The shipped config starts the shipped run: its first 200 steps train
// with the very losses the shipped metrics.jsonl recorded. (Training the
// whole run again takes minutes: cmd/golens's TestRetrainShipped does it
// with GOLENS_RETRAIN=1.)
func TestShippedConfigReproducesTheRun(t *testing.T) {
	gotchtest.CheckLeaks(t)
	const steps = 200
	cfg, err := train.LoadConfig("induction-2l.json")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("the shipped training config is not here (a test binary run elsewhere, as in the GPU bundle):", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg.Train.EvalEvery = 0 // evaluations do not change the trajectory; skip them here
	shipped := map[int]float64{}
	sc := bufio.NewScanner(bytes.NewReader(Induction2LMetrics))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r train.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == "train" && r.Step <= steps {
			shipped[r.Step] = r.Loss
		}
	}
	if len(shipped) < 2 {
		t.Fatalf("the shipped metrics hold %d train records up to step %d", len(shipped), steps)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	got := map[int]float64{}
	_, err = train.Run(ctx, cfg, t.TempDir(), train.WithProgress(nil), train.OnDevice(gotchtest.Device(t)),
		train.OnRecord(func(r train.Record) {
			if r.Kind == "train" {
				got[r.Step] = r.Loss
			}
			if r.Step >= steps {
				stop()
			}
		}))
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	// Bit for bit on the machine that trained it; other BLAS builds and
	// devices sum in other orders, which 200 Adam steps amplify a little.
	tol := 1e-3
	if gotchtest.Device(t) != gotch.CPU {
		tol = 2e-2
	}
	for step, want := range shipped {
		if g, ok := got[step]; !ok || math.Abs(g-want) > tol*want {
			t.Errorf("step %d: loss %.6f, the shipped run %.6f", step, g, want)
		}
	}
}
