package train

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/weights"
)

// snapshot is every file under dir with its content, to show a refused
// run changed nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == safefile.LockName {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sameFiles(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, were %d", what, len(got), len(want))
	}
	for p, b := range want {
		if got[p] != b {
			t.Errorf("%s: %s changed", what, p)
		}
	}
}

// An out folder that is not this run's is never written into: a Hugging
// Face model directory (its config.json is not a training config), a
// folder of other files, a run of another config; --force overrides.
func TestRunRefusesFoldersNotItsOwn(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(2)
	dev := OnDevice(gotchtest.Device(t))
	other := tinyConfig(2)
	other.Train.Seed = 99
	otherRun := t.TempDir()
	if _, _, err := runRecords(t, context.Background(), other, otherRun, dev); err != nil {
		t.Fatal(err)
	}
	hfModel := t.TempDir()
	os.WriteFile(filepath.Join(hfModel, "config.json"), []byte(`{"model_type": "gpt2", "n_layer": 12}`), 0o644)
	os.WriteFile(filepath.Join(hfModel, "model.safetensors"), []byte("weights"), 0o644)
	photos := t.TempDir()
	os.WriteFile(filepath.Join(photos, "holiday.jpg"), []byte("jpeg"), 0o644)
	aFile := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(aFile, []byte("notes"), 0o644)

	for _, tc := range []struct {
		name, dir, want string
	}{
		{"a Hugging Face model", hfModel, "its config.json is not a training config"},
		{"other files", photos, "is not empty (holiday.jpg) and holds no golens run"},
		{"a run of another config", otherRun, "holds a run of another config"},
		{"a file", aFile, "it is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, filepath.Dir(tc.dir))
			_, _, err := runRecords(t, context.Background(), cfg, tc.dir, dev)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.dir) {
				t.Fatalf("Run into %s: %v, want an error naming it and %q", tc.dir, err, tc.want)
			}
			sameFiles(t, "after a refused run", snapshot(t, filepath.Dir(tc.dir)), before)
		})
	}

	res, _, err := runRecords(t, context.Background(), cfg, photos, dev, Force())
	if err != nil || !res.Done {
		t.Fatalf("with Force: %+v, %v", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(photos, "holiday.jpg")); string(b) != "jpeg" {
		t.Error("with Force the run touched a file not its own")
	}
}

// Two runs on one folder: the second fails at once, naming the first, and
// the first finishes undisturbed.
func TestRunLocksItsFolder(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(4)
	dev := OnDevice(gotchtest.Device(t))
	dir := t.TempDir()
	var second error
	once := OnRecord(func(r Record) {
		if r.Step == 2 && second == nil {
			_, _, second = runRecords(t, context.Background(), cfg, dir, dev)
			if second == nil {
				second = errors.New("the second run succeeded")
			}
		}
	})
	res, _, err := runRecords(t, context.Background(), cfg, dir, dev, once)
	if err != nil || !res.Done {
		t.Fatalf("the first run: %+v, %v", res, err)
	}
	if want := fmt.Sprintf("pid %d", os.Getpid()); second == nil || !strings.Contains(second.Error(), "is in use") || !strings.Contains(second.Error(), want) {
		t.Errorf("a second run on the folder: %v, want an error that it is in use by %s", second, want)
	}
	if _, _, err := runRecords(t, context.Background(), cfg, dir, dev); err != nil {
		t.Errorf("after the first run ended, the folder is still locked: %v", err)
	}
}

// A finished run run again returns it as it is; metrics, model and
// checkpoints stay untouched.
func TestRunFinishedAgain(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(3)
	dev := OnDevice(gotchtest.Device(t))
	dir := t.TempDir()
	if _, _, err := runRecords(t, context.Background(), cfg, dir, dev); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	res, recs, err := runRecords(t, context.Background(), cfg, dir, dev)
	if err != nil || !res.Done || res.Step != 3 || res.Eval != nil || len(recs) != 0 || res.Model != filepath.Join(dir, modelFile) {
		t.Fatalf("a finished run again: %+v, %d records, %v", res, len(recs), err)
	}
	sameFiles(t, "a finished run again", snapshot(t, dir), before)
}

// Checkpoints come every CheckpointMinutes too, whatever CheckpointEvery.
func TestCheckpointByTime(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(3)
	cfg.Train.CheckpointEvery, cfg.Train.CheckpointMinutes = 0, 1e-9 // every step takes longer
	dir := t.TempDir()
	if _, _, err := runRecords(t, context.Background(), cfg, dir, OnDevice(gotchtest.Device(t))); err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 3; step++ {
		if _, err := os.Stat(stepDir(dir, step)); err != nil {
			t.Errorf("no checkpoint at step %d: %v", step, err)
		}
	}
	bad := tinyConfig(3)
	bad.Train.CheckpointMinutes = -1
	if _, _, err := runRecords(t, context.Background(), bad, t.TempDir()); err == nil || !strings.Contains(err.Error(), "checkpoint_minutes") {
		t.Errorf("checkpoint_minutes -1: %v", err)
	}
}

// A checkpoint whose training state says step -5 is damaged: resuming
// from it is an error naming it.
func TestResumeRefusesNegativeStep(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := tinyConfig(4)
	cfg.Train.CheckpointEvery = 2
	dev := OnDevice(gotchtest.Device(t))
	dir := t.TempDir()
	if _, _, err := runRecords(t, context.Background(), cfg, dir, dev); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(stepDir(dir, 4))
	path := filepath.Join(stepDir(dir, 2), optimizerFile)
	ck, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	meta := ck.Metadata()
	meta[stateKey] = strings.Replace(meta[stateKey], `"step":2,`, `"step":-5,`, 1)
	var ts []*weights.Tensor
	for _, k := range ck.Keys() {
		w, err := ck.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, &weights.Tensor{Name: k, DType: w.DType, Shape: w.Shape, Data: append([]byte(nil), w.Data...)})
	}
	ck.Close()
	if err := weights.WriteSafetensors(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runRecords(t, context.Background(), cfg, dir, dev); err == nil || !strings.Contains(err.Error(), "step -5") || !strings.Contains(err.Error(), stepDir(dir, 2)) {
		t.Errorf("resuming a checkpoint at step -5: %v", err)
	}
}
