package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
)

// --model induction-2l loads the model shipped in the binary in every
// command that takes --model; an unknown name lists the shipped ones.
func TestShippedModelByName(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := testDevice()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	// Random tokens of [1, 64), repeated: the second repeat is predicted.
	os.WriteFile(tokens, []byte("[[0, 12, 51, 7, 33, 60, 2, 45, 19, 28, 9, 12, 51, 7, 33, 60, 2, 45, 19, 28, 9]]"), 0o644)
	for _, tc := range []struct {
		args []string
		want string // in the output
	}{
		{[]string{"run", "--tokens-file", tokens, "--json"}, `"model":"induction-2l"`},
		{[]string{"cache", "--tokens-file", tokens, "--names", "hook_pattern", "--out", filepath.Join(dir, "c.safetensors")}, ""},
		{[]string{"ablate", "--tokens-file", tokens, "--head", "1.0", "--out", filepath.Join(dir, "a.safetensors")}, "head 1.0"},
		// Without a tokenizer the ids are shown; after the second 51, 7 is predicted.
		{[]string{"run", "--tokens-file", tokens, "--all-positions", "--top", "1"}, "row 0, after position 12 51:  7 "},
		{[]string{"analyze", "--tokens-file", tokens, "--seq-len", "5", "--out", filepath.Join(dir, "an")}, "index.html"},
		{[]string{"bench", "--workload", "forward", "--seq", "8", "--reps", "1", "--warmup", "0", "--json"}, `"status":"OK"`},
		{[]string{"demo", "--out", filepath.Join(dir, "demo")}, "induction head"},
	} {
		args := append(append([]string{}, tc.args...), "--model", "induction-2l", "--device", dev)
		out, err := golens(t, args...)
		if err != nil {
			t.Errorf("golens %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("golens %s printed %q, want it to contain %q", strings.Join(args, " "), out, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--model", "induction-3l", "--prompt", "x"}, "shipped in golens: induction-2l"},
		{[]string{"demo", "--model", "induction-3l", "--out", filepath.Join(dir, "demo3")}, "shipped in golens: induction-2l"},
		{[]string{"tokenize", "--model", "induction-2l", "--text", "x"}, `shipped model "induction-2l" has no tokenizer`},
		// generate loads it by name, then needs a tokenizer for its prompt.
		{[]string{"generate", "--model", "induction-2l", "--prompt", "x"}, "model induction-2l has no tokenizer"},
	} {
		if _, err := golens(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("golens %s: error %v, want one mentioning %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// run prints the string tokens and, with --all-positions, the top
// predictions after every position; the JSON output adds str_tokens and
// positions to its fields.
func TestRunStrTokensAndAllPositions(t *testing.T) {
	gotchtest.CheckLeaks(t)
	model, dev := tinyGPT2(t), testDevice()
	out, err := golens(t, "run", "--model", model, "--device", dev, "--prompt", "The cat sat", "--top", "3")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[1] != `row 0, tokens: "<|endoftext|>" "The" " cat" " sat"` || !strings.HasPrefix(lines[2], "row 0, next token:  ") {
		t.Errorf("run printed:\n%s", out)
	}
	out, err = golens(t, "run", "--model", model, "--device", dev, "--prompt", "The cat sat", "--top", "3", "--all-positions")
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[2], `row 0, after position 0 "<|endoftext|>":  `) ||
		!strings.HasPrefix(lines[4], `row 0, after position 2 " cat":  `) || strings.Count(lines[4], "  ") != 3 {
		t.Errorf("run --all-positions printed:\n%s", out)
	}
	out, err = golens(t, "run", "--model", model, "--device", dev, "--prompt", "The cat sat", "--top", "3", "--all-positions", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res runResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.StrTokens[0], "|") != "<|endoftext|>|The| cat| sat" || len(res.Positions) != 1 || len(res.Positions[0]) != 4 {
		t.Fatalf("run --all-positions --json: %+v", res)
	}
	for p, preds := range res.Positions[0] {
		if len(preds) != 3 || preds[0].Prob < preds[1].Prob || preds[0].Str == "" {
			t.Errorf("position %d: %+v", p, preds)
		}
	}
	if res.Positions[0][3][0] != res.Next[0][0] {
		t.Errorf("the last position's top prediction %+v is not next's %+v", res.Positions[0][3][0], res.Next[0][0])
	}
	// Without --all-positions the JSON has no positions field.
	out, _ = golens(t, "run", "--model", model, "--device", dev, "--prompt", "x", "--json")
	if strings.Contains(out, `"positions"`) || !strings.Contains(out, `"str_tokens"`) {
		t.Errorf("run --json: %s", out)
	}
	if _, err := golens(t, "run", "--model", model, "--device", dev, "--prompt", "x", "--top", "0"); err == nil {
		t.Error("run --top 0: no error")
	}
}

func TestTokenizeStr(t *testing.T) {
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "texts.jsonl")
	os.WriteFile(jsonl, []byte(`{"text": "Hello world"}`+"\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--text", "Hello world", "--json"}, `{"ids":[50256,15496,995],"str_tokens":["<|endoftext|>","Hello"," world"]}` + "\n"},
		{[]string{"--jsonl", jsonl}, "[50256,15496,995]\n"}, // bare ids, as batch scripts read them
		{[]string{"--text", "Hello world", "--str"}, `"<|endoftext|>" "Hello" " world"` + "\n"},
		{[]string{"--text", "Hello world", "--str", "--json"}, `{"ids":[50256,15496,995],"str_tokens":["<|endoftext|>","Hello"," world"]}` + "\n"},
		{[]string{"--text", "Hello world", "--str", "--json", "--no-bos"}, `{"ids":[15496,995],"str_tokens":["Hello"," world"]}` + "\n"},
		{[]string{"--jsonl", jsonl, "--str"}, `{"ids":[50256,15496,995],"str_tokens":["<|endoftext|>","Hello"," world"]}` + "\n"},
	} {
		out, err := golens(t, append([]string{"tokenize", "--model", "gpt2"}, tc.args...)...)
		if err != nil || out != tc.want {
			t.Errorf("tokenize %s: %q, %v; want %q", strings.Join(tc.args, " "), out, err, tc.want)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	out, err := golens(t, "--version")
	want := "golens " + version + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if err != nil || out != want {
		t.Errorf("golens --version: %q, %v; want %q", out, err, want)
	}
}
