package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/weights"
)

// tinyGPT2 saves a small model with GPT-2's vocabulary, so text prompts
// work, and returns its path.
func tinyGPT2(t *testing.T) string {
	t.Helper()
	c := hookedmodel.DefaultConfig()
	c.NLayers, c.DModel, c.DHead, c.NHeads, c.NCtx, c.DVocab, c.ActFn = 2, 8, 4, 2, 32, 50257, "gelu_new"
	m, err := hookedmodel.New(c, hookedmodel.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	path := filepath.Join(t.TempDir(), "tiny.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// golens runs the CLI in-process and returns its standard output.
func golens(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCommands(t *testing.T) {
	gotchtest.CheckLeaks(t)
	model := tinyGPT2(t)
	dir := t.TempDir()
	dev := "cpu"
	if d := os.Getenv(gotchtest.DeviceEnv); d != "" {
		dev = d
	}
	tokens := filepath.Join(dir, "tokens.json")
	os.WriteFile(tokens, []byte("[[50256, 464, 3290, 318], [50256, 40, 588, 7043]]"), 0o644)

	out, err := golens(t, "run", "--model", model, "--device", dev, "--prompt", "The cat sat", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res runResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("run --json printed %q: %v", out, err)
	}
	if !slices.Equal(res.Tokens[0], []int64{50256, 464, 3797, 3332}) || len(res.Next[0]) != 5 || res.Loss <= 0 {
		t.Errorf("run --json: %+v", res)
	}

	cachePath := filepath.Join(dir, "cache.safetensors")
	if _, err := golens(t, "cache", "--model", model, "--device", dev, "--tokens-file", tokens, "--set", "use_attn_result=true", "--out", cachePath); err != nil {
		t.Fatal(err)
	}
	ck, err := weights.Open(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	for key, shape := range map[string][]int64{
		"blocks.0.attn.hook_pattern": {2, 2, 4, 4}, "blocks.1.attn.hook_result": {2, 4, 2, 8},
		"logits": {2, 4, 50257}, "loss_per_token": {2, 3}, "tokens": {2, 4}, "ln_final.hook_scale": {2, 4, 1},
	} {
		if err := ck.Expect(key, shape...); err != nil {
			t.Errorf("cache file: %v", err)
		}
	}

	if _, err := golens(t, "cache", "--model", model, "--device", dev, "--tokens-file", tokens, "--names", `hook_z$`, "--out", cachePath); err != nil {
		t.Fatal(err)
	}
	ck2, err := weights.Open(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	if got := ck2.Keys(); len(got) != 5 { // two hook_z, logits, loss_per_token, tokens
		t.Errorf("cache --names hook_z$ wrote %v", got)
	}
	ck2.Close()

	ablated := filepath.Join(dir, "ablated.safetensors")
	out, err = golens(t, "ablate", "--model", model, "--device", dev, "--tokens-file", tokens, "--head", "1.0", "--mode", "mean", "--out", ablated)
	if err != nil || !strings.Contains(out, "mean-ablating head 1.0") {
		t.Fatalf("ablate: %q, %v", out, err)
	}

	jsonl := filepath.Join(dir, "texts.jsonl")
	os.WriteFile(jsonl, []byte(`{"text": "Hello world"}`+"\n"+`{"text": ""}`+"\n"), 0o644)
	out, err = golens(t, "tokenize", "--model", "gpt2", "--jsonl", jsonl)
	if err != nil || out != "[50256,15496,995]\n[50256]\n" {
		t.Errorf("tokenize --jsonl: %q, %v", out, err)
	}
	// A golens checkpoint with GPT-2's vocabulary loads with GPT-2's
	// tokenizer (run --prompt above used it), so tokenize uses it too.
	out, err = golens(t, "tokenize", "--model", model, "--text", "Hello world", "--no-bos")
	if err != nil || out != "15496 995\n" {
		t.Errorf("tokenize with a GPT-2-vocabulary golens checkpoint: %q, %v", out, err)
	}

	out, err = golens(t, "generate", "--model", model, "--device", dev, "--prompt", "Hello", "--max-new-tokens", "3", "--temperature", "0")
	if err != nil || !strings.HasPrefix(out, "<|endoftext|>Hello") {
		t.Errorf("generate: %q, %v", out, err)
	}
}

func TestCommandErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	model := tinyGPT2(t)
	dir := t.TempDir()
	ragged := filepath.Join(dir, "ragged.json")
	os.WriteFile(ragged, []byte("[[1, 2, 3], [4]]"), 0o644)
	fifo := filepath.Join(dir, "fifo.json") // read, it would wait for a writer forever
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--model", filepath.Join(dir, "nothing"), "--prompt", "x"}, `no such file or directory: "` + dir + `" has no "nothing"`},
		{[]string{"run", "--model", "nothing", "--prompt", "x"}, "not a known model name"},
		{[]string{"run", "--model", model, "--tokens-file", ragged}, "row 1 has 1 tokens"},
		{[]string{"run", "--model", model, "--prompt", "x", "--set", "no_such_field=1"}, `unknown config field "no_such_field"`},
		{[]string{"run", "--model", model, "--prompt", "x", "--set", "use_attn_result=maybe"}, "use_attn_result"},
		{[]string{"run", "--model", model, "--prompt", "x", "--device", "tpu"}, `unknown device "tpu"`},
		{[]string{"run", "--model", model}, "prompt"},
		{[]string{"ablate", "--model", model, "--prompt", "x", "--head", "7.0", "--out", filepath.Join(dir, "a")}, "2 layers of 2 heads"},
		{[]string{"ablate", "--model", model, "--prompt", "x", "--head", "one", "--out", filepath.Join(dir, "a")}, "LAYER.HEAD"},
		{[]string{"tokenize", "--model", "bert", "--text", "x"}, "no tokenizer known"},
		{[]string{"bench", "--shape", "gpt5"}, `unknown shape "gpt5"`},
		{[]string{"bench", "--workload", "dance"}, `unknown workload "dance"`},
		{[]string{"bench", "--seq", "0"}, `--seq "0"`},
		{[]string{"bench", "--dtype", "float7"}, `--dtype "float7": want float32, float64, float16 or bfloat16`},
		{[]string{"run", "--model", model, "--prompt", "x", "--dtype", "int64"}, `--dtype "int64": want float32, float64, float16 or bfloat16`},
		{[]string{"bench", "--model", model, "--shape", "toy"}, "not both"},
		{[]string{"bench", "table", ragged}, "line 1"},
		// Inputs that are not regular files: refused at once, not read without end.
		{[]string{"run", "--model", model, "--tokens-file", "/dev/zero"}, "/dev/zero: it is a character device, not a regular file"},
		{[]string{"run", "--model", model, "--tokens-file", fifo}, "it is a named pipe (FIFO), not a regular file"},
		{[]string{"run", "--model", model, "--tokens-file", dir}, "it is a directory, not a regular file"},
		{[]string{"tokenize", "--model", "gpt2", "--file", "/dev/zero"}, "it is a character device"},
		{[]string{"tokenize", "--model", "gpt2", "--jsonl", fifo}, "it is a named pipe (FIFO)"},
		{[]string{"bench", "table", "/dev/zero"}, "it is a character device"},
		{[]string{"train", "--config", fifo, "--out", filepath.Join(dir, "run")}, "it is a named pipe (FIFO)"},
	}
	for _, tc := range cases {
		_, err := golens(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("golens %s: error %v, want one mentioning %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// bench prints one checked, timed JSON row per workload, for a shape or a
// checkpoint, and its table command reads them back.
func TestBench(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := "cpu"
	if d := os.Getenv(gotchtest.DeviceEnv); d != "" {
		dev = d
	}
	results := filepath.Join(t.TempDir(), "results.jsonl")
	var all []byte
	for _, args := range [][]string{
		{"--shape", "toy", "--workload", "forward,generate_kv", "--batch", "1,2", "--seq", "8"},
		{"--model", tinyGPT2(t), "--workload", "hooks_modify", "--seq", "6"},
	} {
		root := newRoot()
		var out, progress bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&progress)
		root.SetArgs(append([]string{"bench", "--device", dev, "--reps", "1", "--warmup", "0", "--new-tokens", "2", "--json"}, args...))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		all = append(all, out.Bytes()...)
	}
	lines := strings.Split(strings.TrimSpace(string(all)), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d rows, want 5:\n%s", len(lines), all)
	}
	for _, line := range lines {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		for _, k := range []string{"workload", "shape", "batch", "seq", "dtype", "device", "impl", "status", "median_ms", "peak_mem_mb", "torch"} {
			if _, ok := row[k]; !ok {
				t.Errorf("row lacks %q: %s", k, line)
			}
		}
		if row["status"] != "OK" || row["impl"] != "golens" {
			t.Errorf("row: %s", line)
		}
	}
	if !strings.Contains(lines[4], `"shape":"custom"`) || !strings.Contains(lines[4], `"seq":6`) {
		t.Errorf("the checkpoint's row: %s", lines[4])
	}
	os.WriteFile(results, all, 0o644)
	out, err := golens(t, "bench", "table", results)
	if err != nil || !strings.Contains(out, "| generate_kv | toy | 2x8 | float32 |") {
		t.Errorf("bench table: %v\n%s", err, out)
	}
}

func TestAnalyze(t *testing.T) {
	gotchtest.CheckLeaks(t)
	model := tinyGPT2(t)
	dir := t.TempDir()
	out, err := golens(t, "analyze", "--model", model, "--prompt", "The cat sat on the mat. The cat", "--seq-len", "6", "--out", dir)
	if err != nil {
		t.Fatalf("analyze: %v\n%s", err, out)
	}
	if !strings.Contains(out, "top induction") || !strings.Contains(out, "index.html") {
		t.Errorf("analyze printed %q", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]json.RawMessage
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"heads", "induction_scores", "repeat_loss", "composition", "composition_baseline"} {
		if _, ok := s[key]; !ok {
			t.Errorf("summary.json lacks %q", key)
		}
	}
	var heads []map[string]float64
	json.Unmarshal(s["heads"], &heads)
	if len(heads) != 4 || len(heads[0]) != 7 {
		t.Errorf("summary.json heads: %v", heads)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(pngs) == 0 {
		t.Error("no PNG figures written")
	}
}

// The shipped model really holds an induction circuit: the demo's numbers
// pass the thresholds its README states.
func TestDemo(t *testing.T) {
	gotchtest.CheckLeaks(t)
	checkDemo(t)
}

// Retraining from the shipped config gives a model whose circuit passes
// the same thresholds. It trains for minutes, so it runs only with
// GOLENS_RETRAIN=1 (models' TestShippedConfigReproducesTheRun checks the
// run's start in every test run).
func TestRetrainShipped(t *testing.T) {
	if os.Getenv("GOLENS_RETRAIN") != "1" {
		t.Skip("set GOLENS_RETRAIN=1 to retrain the shipped model (minutes)")
	}
	gotchtest.CheckLeaks(t)
	dir := t.TempDir()
	if out, err := golens(t, "train", "--config", "../../models/induction-2l.json", "--out", dir, "--device", testDevice()); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	checkDemo(t, "--model", filepath.Join(dir, "model.safetensors"))
}

func testDevice() string {
	if d := os.Getenv(gotchtest.DeviceEnv); d != "" {
		return d
	}
	return "cpu"
}

// checkDemo runs golens demo with args and checks its numbers against the
// thresholds of the shipped model's README.
func checkDemo(t *testing.T, args ...string) {
	t.Helper()
	dir := t.TempDir()
	out, err := golens(t, append([]string{"demo", "--out", dir, "--device", testDevice()}, args...)...)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	t.Logf("demo:\n%s", out)
	for _, want := range []string{"previous-token head", "induction head", "K-composition", "index.html"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		RepeatLoss struct{ First, Second float64 } `json:"repeat_loss"`
		Baseline   float64                         `json:"composition_baseline"`
		Demo       struct {
			Prev      float64 `json:"previous_token_score"`
			Induction float64 `json:"induction_score"`
			KComp     float64 `json:"k_composition"`
		} `json:"demo"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Demo.Prev <= 0.9 {
		t.Errorf("previous-token score %.3f, want > 0.9", s.Demo.Prev)
	}
	if s.Demo.Induction <= 0.5 {
		t.Errorf("induction score %.3f, want > 0.5", s.Demo.Induction)
	}
	if !(s.RepeatLoss.Second < s.RepeatLoss.First/2) {
		t.Errorf("second-repeat loss %.3f is not below half the first (%.3f)", s.RepeatLoss.Second, s.RepeatLoss.First)
	}
	if s.Demo.KComp <= s.Baseline {
		t.Errorf("K-composition %.3f is not above the random baseline %.3f", s.Demo.KComp, s.Baseline)
	}
}
