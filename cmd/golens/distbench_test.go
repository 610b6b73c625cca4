package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// TestDistHarvestScaling measures golens harvest's rows/s as one process,
// as a group of one rank and as 2 ranks under torchrun (Gloo), every
// process on one thread, in alternating rounds; it runs only with
// GOLENS_DISTBENCH=1 (a benchmark, not a check: bench/RESULTS.md has the
// numbers). rows/s is rank 0's: from the start of the harvest until every
// rank is done.
func TestDistHarvestScaling(t *testing.T) {
	if os.Getenv("GOLENS_DISTBENCH") == "" {
		t.Skip("a benchmark: set GOLENS_DISTBENCH=1")
	}
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	dir := t.TempDir()
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.NCtx, cfg.DVocab, cfg.ActFn = 4, 256, 64, 4, 64, 1000, "gelu_new"
	m, err := hookedmodel.New(cfg, hookedmodel.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.safetensors")
	err = m.Save(model)
	m.Free()
	if err != nil {
		t.Fatal(err)
	}
	const examples, seq = 768, 64
	var ids []byte
	for i := range examples * seq {
		ids = binary.LittleEndian.AppendUint16(ids, uint16(i*7919%1000))
	}
	data := filepath.Join(dir, "tokens.bin")
	if err := os.WriteFile(data, ids, 0o644); err != nil {
		t.Fatal(err)
	}
	oneThread := []string{"GOLENS_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1"}
	rate := regexp.MustCompile(`\(([0-9.]+) rows/s\)`)
	parse := func(out string) float64 {
		t.Helper()
		m := rate.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no rows/s in %q", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	args := func(out string) []string {
		return []string{"harvest", "--model", model, "--device", "cpu", "--data", data, "--format", "uint16", "--seq-len", strconv.Itoa(seq),
			"--hooks", `^blocks\.3\.hook_resid_post$`, "--out", filepath.Join(dir, out), "--batch", "8", "--shard-examples", "32"}
	}
	results := map[string][]float64{}
	for round := range 3 {
		name := func(kind string) string { return fmt.Sprintf("%s-%d", kind, round) }
		out, stderr, err := runCLIEnv(t, 10*time.Minute, append([]string{"RANK=", "WORLD_SIZE="}, oneThread...), args(name("plain"))...)
		if err != nil {
			t.Fatalf("one process: %v\n%s", err, stderr)
		}
		results["one process"] = append(results["one process"], parse(out))
		for _, n := range []int{1, 2} {
			out := torchrun(t, n, append([]string{asCLI + "=1"}, oneThread...), args(name(fmt.Sprintf("ranks%d", n)))...)
			results[fmt.Sprintf("%d ranks", n)] = append(results[fmt.Sprintf("%d ranks", n)], parse(out))
		}
	}
	median := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	base := median(results["one process"])
	for _, k := range []string{"one process", "1 ranks", "2 ranks"} {
		t.Logf("%-12s rows/s %v, median %.0f, %.3fx one process", k, results[k], median(results[k]), median(results[k])/base)
	}
}
