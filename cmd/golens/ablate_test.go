package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/weights"
)

// TestAblateIsAnalysisAblation: golens ablate is analysis.NewAblation, with
// its modes (zero, mean, resample) and their meaning: mean and resample
// take the reference tokens' activations, the input's by default or
// --reference-tokens-file's.
func TestAblateIsAnalysisAblation(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ctx := context.Background()
	model := tinyGPT2(t)
	dir := t.TempDir()
	dev := "cpu"
	if d := os.Getenv(gotchtest.DeviceEnv); d != "" {
		dev = d
	}
	input := [][]int64{{50256, 464, 3290, 318}, {50256, 40, 588, 7043}}
	refRows := [][]int64{{50256, 11, 262, 13}, {50256, 314, 198, 1110}, {50256, 257, 286, 290}}
	write := func(name string, rows [][]int64) string {
		b, err := json.Marshal(rows)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inFile, refFile := write("in.json", input), write("ref.json", refRows)

	m, err := hookedmodel.Load(ctx, model, hookedmodel.OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	tensor := func(rows [][]int64) *gotch.Tensor {
		flat := []int64{}
		for _, r := range rows {
			flat = append(flat, r...)
		}
		return gotch.MustFromSlice(flat, []int64{int64(len(rows)), int64(len(rows[0]))}, gotchtest.Device(t))
	}
	inT, refT := tensor(input), tensor(refRows)
	defer inT.Free()
	defer refT.Free()
	// want is analysis's ablation of head 1.0 on the input.
	want := func(mode analysis.AblationMode, ref *gotch.Tensor, seed uint64) []float64 {
		a, err := analysis.NewAblation(ctx, m, mode, []analysis.Component{analysis.Head(1, 0)}, analysis.Reference(ref), analysis.WithSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		out, err := m.RunWithHooks(ctx, hookedmodel.Tokens(inT), a.Hooks())
		if err != nil {
			t.Fatal(err)
		}
		defer out.Free()
		return gotchtest.Values(t, out.Logits)
	}
	got := func(args ...string) []float64 {
		out := filepath.Join(dir, "ablated.safetensors")
		args = append([]string{"ablate", "--model", model, "--device", dev, "--tokens-file", inFile, "--head", "1.0", "--out", out}, args...)
		if msg, err := golens(t, args...); err != nil {
			t.Fatalf("golens %v: %q, %v", args, msg, err)
		}
		ck, err := weights.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		x, err := ck.Get("logits")
		if err != nil {
			t.Fatal(err)
		}
		if x.DType != weights.F32 {
			t.Fatalf("logits are %s", x.DType)
		}
		v := make([]float64, len(x.Data)/4)
		for i := range v {
			v[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(x.Data[4*i:])))
		}
		return v
	}

	gotchtest.Close(t, "zero", got("--mode", "zero"), want(analysis.ZeroAblation, nil, 0), 1e-6)
	gotchtest.Close(t, "mean over the input", got("--mode", "mean"), want(analysis.MeanAblation, inT, 0), 1e-6)
	meanRef := got("--mode", "mean", "--reference-tokens-file", refFile)
	gotchtest.Close(t, "mean over the reference", meanRef, want(analysis.MeanAblation, refT, 0), 1e-6)
	if e := gotchtest.RelErr(meanRef, want(analysis.MeanAblation, inT, 0)); e < 1e-6 {
		t.Errorf("--reference-tokens-file changed nothing (%.3g)", e)
	}
	gotchtest.Close(t, "resample", got("--mode", "resample", "--reference-tokens-file", refFile, "--seed", "3"), want(analysis.ResampleAblation, refT, 3), 1e-6)

	_, err = golens(t, "ablate", "--model", model, "--tokens-file", inFile, "--head", "1.0", "--mode", "average", "--out", filepath.Join(dir, "x"))
	if err == nil || !strings.Contains(err.Error(), `"average"`) || !strings.Contains(err.Error(), "zero, mean or resample") {
		t.Errorf("--mode average: %v; want an error naming it and the modes", err)
	}
}
