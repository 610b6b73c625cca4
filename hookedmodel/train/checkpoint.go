package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/weights"
)

// A checkpoint is a folder checkpoints/step-NNNNNNNN of the out folder:
//
//	model.safetensors      the model and its config, as HookedTransformer.Save writes (Load reads it)
//	optimizer.safetensors  AdamW's moments "m.<name>" and "v.<name>" per parameter,
//	                       the training state as JSON in the header metadata ("golens_train")
//
// It is written under a temporary name and renamed, so a folder with the
// step name is always complete.
const (
	checkpointsDir = "checkpoints"
	modelFile      = "model.safetensors"
	optimizerFile  = "optimizer.safetensors"
	stateKey       = "golens_train"
)

// state is the training state a checkpoint keeps beside the weights and
// the moments: with them, a run goes on exactly as if never stopped.
type state struct {
	Step      int     `json:"step"`       // steps done: the next batch is Dataset.Batch(step)
	Tokens    int64   `json:"tokens"`     // training tokens seen
	DataSeed  uint64  `json:"data_seed"`  // the dataset's seed (train.seed)
	NextLR    float64 `json:"next_lr"`    // the schedule's rate for the next step
	AdamSteps []int64 `json:"adam_steps"` // AdamW's updates per parameter, in Parameters order
	Config    Config  `json:"config"`     // the run, schedule included
}

func stepDir(out string, step int) string {
	return filepath.Join(out, checkpointsDir, fmt.Sprintf("step-%08d", step))
}

// save writes a checkpoint of the run's current step and returns its
// folder.
func (tr *trainer) save(out string) (string, error) {
	dir := stepDir(out, tr.step)
	tmp := dir + ".tmp"
	err := os.RemoveAll(tmp)
	if err == nil {
		err = os.MkdirAll(tmp, 0o755)
	}
	if err == nil {
		err = tr.m.Save(filepath.Join(tmp, modelFile))
	}
	if err == nil {
		err = tr.saveOptimizer(filepath.Join(tmp, optimizerFile))
	}
	if err == nil {
		err = os.RemoveAll(dir) // a checkpoint of this step from a run that stopped before its next
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint at step %d: %w", tr.step, err)
	}
	return dir, nil
}

func (tr *trainer) saveOptimizer(path string) error {
	st := state{
		Step: tr.step, Tokens: tr.tokens, DataSeed: tr.cfg.Train.Seed,
		NextLR: tr.cfg.Train.LearningRate(tr.step), AdamSteps: tr.st.opt.steps, Config: tr.cfg,
	}
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	var names []string
	ts := map[string]*gotch.Tensor{}
	for i, p := range tr.st.opt.params {
		for _, mo := range []struct {
			prefix string
			t      *gotch.Tensor
		}{{"m.", tr.st.opt.m[i]}, {"v.", tr.st.opt.v[i]}} {
			names = append(names, mo.prefix+p.Name)
			ts[mo.prefix+p.Name] = mo.t
		}
	}
	return hookedmodel.WriteSafetensors(path, names, ts, map[string]string{"format": "golens-train", stateKey: string(js)})
}

// latestCheckpoint is the folder of out's checkpoint with the most steps,
// or "" when there is none.
func latestCheckpoint(out string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(out, checkpointsDir))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	best, latest := -1, ""
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "step-")
		step, err := strconv.Atoi(n)
		if ok && err == nil && e.IsDir() && step > best {
			best, latest = step, filepath.Join(out, checkpointsDir, e.Name())
		}
	}
	return latest, nil
}

// resume loads the checkpoint in dir into a trainer for cfg, which must
// describe the same run.
func resume(ctx context.Context, dir string, cfg Config, data Dataset, dev gotch.Device, dp parallel) (*trainer, error) {
	ck, err := weights.Open(filepath.Join(dir, optimizerFile))
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	var st state
	if err := json.Unmarshal([]byte(ck.Metadata()[stateKey]), &st); err != nil {
		return nil, fmt.Errorf("training state in %s: %w", dir, err)
	}
	if st.Step < 0 || st.Tokens < 0 {
		return nil, fmt.Errorf("training state in %s: step %d, tokens %d: a checkpoint never holds negative counts (the file is damaged)", dir, st.Step, st.Tokens)
	}
	if !sameRun(st.Config, cfg) {
		return nil, fmt.Errorf("%s was written by a run with another config (model, data, seed or schedule); use a new out folder", dir)
	}
	m, err := hookedmodel.Load(ctx, filepath.Join(dir, modelFile), hookedmodel.OnDevice(dev))
	if err != nil {
		return nil, err
	}
	tr, err := newTrainer(m, cfg, data, dp)
	if err != nil {
		m.Free()
		return nil, err
	}
	if len(st.AdamSteps) != len(tr.st.opt.params) {
		err = fmt.Errorf("%d AdamW step counts for %d parameters", len(st.AdamSteps), len(tr.st.opt.params))
	} else {
		err = tr.st.opt.load(ck)
	}
	if err != nil {
		tr.free()
		return nil, fmt.Errorf("optimizer state in %s: %w", dir, err)
	}
	copy(tr.st.opt.steps, st.AdamSteps)
	tr.step, tr.tokens = st.Step, st.Tokens
	return tr, nil
}

// sameRun reports whether two configs make the same trajectory: they may
// differ only in how often a run evaluates, logs and checkpoints.
func sameRun(a, b Config) bool {
	for _, t := range []*TrainConfig{&a.Train, &b.Train} {
		t.EvalEvery, t.EvalBatches, t.CheckpointEvery, t.CheckpointMinutes, t.LogEvery = 0, 0, 0, 0, 0
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

var momentDTypes = map[gotch.DType]weights.DType{gotch.Float: weights.F32, gotch.Double: weights.F64, gotch.Half: weights.F16, gotch.BFloat16: weights.BF16}

// load replaces the moments with those in ck.
func (a *adamW) load(ck *weights.Checkpoint) error {
	for i, p := range a.params {
		for _, mo := range []struct {
			key string
			dst **gotch.Tensor
		}{{"m." + p.Name, &a.m[i]}, {"v." + p.Name, &a.v[i]}} {
			w, err := ck.Get(mo.key)
			if err != nil {
				return err
			}
			if want := momentDTypes[p.Tensor.DType()]; w.DType != want || !slices.Equal(w.Shape, p.Tensor.Shape()) {
				return fmt.Errorf("%s is %s%v, want %s%v", mo.key, w.DType, w.Shape, want, p.Tensor.Shape())
			}
			t, err := gotch.FromBytes(w.Data, w.Shape, p.Tensor.DType(), p.Tensor.Device())
			if err != nil {
				return fmt.Errorf("%s: %w", mo.key, err)
			}
			(*mo.dst).Free()
			*mo.dst = t
		}
	}
	return nil
}
