package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/backend/dist"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// torchrunWorks says why Debian's torchrun cannot run here ("" when it
// can), found once by launching one trivial worker: no python3-torch, or a
// torch 2.x built without libuv, which its static rendezvous's TCPStore
// asks for whatever USE_LIBUV says (Debian 13's 2.6: the 2.6 lane, where
// backend/dist's Go-Python group tests cover the same engine).
var torchrunWorks = sync.OnceValue(func() string {
	if err := exec.Command("/usr/bin/python3", "-c", "import numpy, torch.distributed.run").Run(); err != nil {
		return fmt.Sprintf("no torchrun and numpy (Debian: python3-torch, which ./build.sh test installs): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err.Error()
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	out, err := exec.Command("/usr/bin/python3", "-m", "torch.distributed.run", "--nproc_per_node", "1", "--no_python",
		"--master_addr", "127.0.0.1", "--master_port", port, "true").CombinedOutput()
	if err != nil && strings.Contains(string(out), "use_libuv was requested but PyTorch was build without libuv") {
		return "this torch's torchrun cannot start: it was built without libuv, which its rendezvous store asks for"
	}
	return "" // any other failure is the test's to report

})

func needTorchrun(t *testing.T) {
	t.Helper()
	if why := torchrunWorks(); why != "" {
		t.Skip(why)
	}
}

// torchrun runs the test binary under Debian's torchrun (torch 1.13: the
// underscore options; Python 3.11 needs --redirects and --tee) as n ranks,
// with env added, and returns its output.
func torchrun(t *testing.T, n int, env []string, args ...string) string {
	t.Helper()
	needTorchrun(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"-m", "torch.distributed.run",
		"--nproc_per_node", fmt.Sprint(n), "--no_python", "--redirects", "2", "--tee", "2",
		"--master_addr", "127.0.0.1", "--master_port", freePort(t), os.Args[0]}, args...)...)
	cmd.Env = append(append(os.Environ(), "OMP_NUM_THREADS=1", "GLOO_SOCKET_IFNAME=lo", "USE_LIBUV=0"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("torchrun: %v\n%s", err, out)
	}
	return string(out)
}

// TestTrainDataParallelTorchrun: golens train under torchrun with 2 ranks
// (each half of every batch, gradients all-reduced by Gloo) trains the
// weights one process trains, up to float32 round-off, and only rank 0
// writes the run.
func TestTrainDataParallelTorchrun(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "train.json")
	os.WriteFile(cfg, []byte(`{"model": {"n_layers": 1, "d_model": 16, "d_head": 4, "n_heads": 4, "n_ctx": 13, "d_vocab": 20, "d_mlp": 32, "act_fn": "gelu_new"},
		"train": {"steps": 6, "batch": 4, "lr": 0.01, "warmup": 2, "eval_every": 0, "eval_batches": 1, "log_every": 1, "seed": 7},
		"data": {"kind": "repeated_tokens", "repeats": 2}}`), 0o644)
	args := func(out string) []string {
		return []string{"train", "--config", cfg, "--out", filepath.Join(dir, out), "--device", "cpu"}
	}
	if _, stderr, err := runCLIEnv(t, 60*time.Second, []string{"RANK=", "WORLD_SIZE="}, args("one")...); err != nil {
		t.Fatalf("one process: %v\n%s", err, stderr)
	}
	torchrun(t, 2, []string{asCLI + "=1"}, args("two")...)
	one, two := savedWeights(t, filepath.Join(dir, "one")), savedWeights(t, filepath.Join(dir, "two"))
	for name, w := range one {
		if strings.HasSuffix(name, "attn.b_K") {
			continue // its gradient is round-off only (see train's TestDataParallelEqualsOneProcess)
		}
		if e := gotchtest.RelErr(two[name], w); e > 1e-5 {
			t.Errorf("%s: 2 ranks differ from one process by %g (relative)", name, e)
		}
	}
	a, errA := os.ReadFile(filepath.Join(dir, "one", "metrics.jsonl"))
	b, errB := os.ReadFile(filepath.Join(dir, "two", "metrics.jsonl"))
	if errA != nil || errB != nil || strings.Count(string(a), "\n") != strings.Count(string(b), "\n") {
		t.Errorf("metrics.jsonl: one process %d lines (%v), 2 ranks %d (%v)", strings.Count(string(a), "\n"), errA, strings.Count(string(b), "\n"), errB)
	}
}

// savedWeights is the state dict of the model a training run saved in
// its out folder, as float64 values by name.
func savedWeights(t *testing.T, out string) map[string][]float64 {
	t.Helper()
	m, err := hookedmodel.Load(context.Background(), filepath.Join(out, "model.safetensors"), hookedmodel.NoProcessing())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vals := map[string][]float64{}
	for k, v := range sd {
		vals[k] = gotchtest.Values(t, v)
	}
	return vals
}

// asSweepRank makes the test binary a rank of a split sweep (TestMain): it
// joins the launcher's group, runs sweepOf with analysis.SplitOver and
// writes its result to the folder the variable names, as rank-R.json.
const asSweepRank = "GOLENS_TEST_SWEEP_RANK_OUT"

// sweepOf is the sweep the ranks split and one process runs whole: every
// head at every position patched, on a fixed random model and prompts.
func sweepOf(ctx context.Context, opts ...analysis.Option) ([]float64, error) {
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.NKeyValueHeads, cfg.DMLP = 2, 16, 4, 4, 2, 32
	cfg.NCtx, cfg.DVocab, cfg.ActFn, cfg.GatedMLP = 16, 30, "silu", true
	cfg.NormalizationType, cfg.PositionalEmbeddingType = "RMS", "rotary"
	m, err := hookedmodel.New(cfg, hookedmodel.OnDevice(gotch.CPU), hookedmodel.WithSeed(5))
	if err != nil {
		return nil, err
	}
	defer m.Free()
	clean := gotch.MustFromSlice([]int64{1, 5, 9, 2, 7, 3, 4, 8, 6, 2}, []int64{2, 5}, gotch.CPU)
	defer clean.Free()
	corrupted := gotch.MustFromSlice([]int64{1, 5, 11, 2, 7, 3, 4, 12, 6, 2}, []int64{2, 5}, gotch.CPU)
	defer corrupted.Free()
	r, err := analysis.ActivationPatching(ctx, m, clean, corrupted, analysis.LogitDiff(-1, []int64{3, 4}, []int64{5, 6}), analysis.HeadOutByPos, opts...)
	if err != nil {
		return nil, err
	}
	return r.Patched.Data, nil
}

func sweepRank(out string) int {
	ctx := context.Background()
	g, err := dist.Join(ctx, dist.WithTimeout(30*time.Second))
	if err == nil {
		var vals []float64
		if vals, err = sweepOf(ctx, analysis.SplitOver(g)); err == nil {
			var b []byte
			b, _ = json.Marshal(vals)
			err = os.WriteFile(filepath.Join(out, fmt.Sprintf("rank-%d.json", g.Rank())), b, 0o644)
		}
		if cerr := g.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep rank:", err)
		return 1
	}
	return 0
}

// TestSplitSweepTorchrun: an activation-patching sweep split over 3
// processes under torchrun (Gloo) gives every rank the single-process
// result, bit for bit.
func TestSplitSweepTorchrun(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	want, err := sweepOf(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	torchrun(t, 3, []string{asSweepRank + "=" + out})
	for r := range 3 {
		b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("rank-%d.json", r)))
		if err != nil {
			t.Fatal(err)
		}
		var got []float64
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("rank %d: %d values, want %d", r, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("rank %d: value %d is %v, one process %v", r, i, got[i], want[i])
			}
		}
	}
}

// TestTrainRestartResumes kills rank 1 of a data-parallel golens train
// under torchrun --max_restarts 1 once rank 0 has written a checkpoint:
// rank 0 fails in the next all-reduce naming its lost peer, torchrun
// restarts the group, and the ranks resume from rank 0's latest
// checkpoint to the weights of an uninterrupted 2-rank run.
func TestTrainRestartResumes(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	needTorchrun(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "train.json")
	os.WriteFile(cfg, []byte(`{"model": {"n_layers": 1, "d_model": 16, "d_head": 4, "n_heads": 4, "n_ctx": 13, "d_vocab": 20, "d_mlp": 32, "act_fn": "gelu_new"},
		"train": {"steps": 1500, "batch": 4, "lr": 0.001, "warmup": 2, "eval_every": 0, "eval_batches": 1, "log_every": 100, "checkpoint_every": 100, "seed": 7},
		"data": {"kind": "repeated_tokens", "repeats": 2}}`), 0o644)
	args := func(out string) []string {
		return []string{"train", "--config", cfg, "--out", filepath.Join(dir, out), "--device", "cpu", "--timeout", "20s"}
	}
	torchrun(t, 2, []string{asCLI + "=1"}, args("whole")...)

	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"-m", "torch.distributed.run",
		"--nproc_per_node", "2", "--max_restarts", "1", "--no_python", "--redirects", "2", "--tee", "2",
		"--master_addr", "127.0.0.1", "--master_port", freePort(t), os.Args[0]}, args("restarted")...)...)
	cmd.Env = append(os.Environ(), asCLI+"=1", "OMP_NUM_THREADS=1", "GLOO_SOCKET_IFNAME=lo", "USE_LIBUV=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if cks, _ := filepath.Glob(filepath.Join(dir, "restarted", "checkpoints", "step-*")); len(cks) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after 90s:\n%s", out.String())
		}
	}
	if err := syscall.Kill(workerOf(t, cmd.Process.Pid, 1), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("torchrun after a restart: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "rank 1") {
		t.Errorf("no error named the lost rank 1:\n%s", out.String())
	}
	whole, restarted := savedWeights(t, filepath.Join(dir, "whole")), savedWeights(t, filepath.Join(dir, "restarted"))
	for name, w := range whole {
		if e := gotchtest.RelErr(restarted[name], w); e > 1e-6 {
			t.Errorf("%s: the restarted run differs from the uninterrupted one by %g", name, e)
		}
	}
}
