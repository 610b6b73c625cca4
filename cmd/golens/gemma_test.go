package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/hftest"
)

// writeGemma2Dir writes a small random Gemma 2 checkpoint in Hugging
// Face's layout (hftest's: a sliding window and soft caps that bite) with
// vocabulary vocab, and returns its directory.
func writeGemma2Dir(t *testing.T, vocab int) string {
	t.Helper()
	d := hftest.Small
	d.Vocab = vocab
	return hftest.Write(t, "gemma2", hftest.Opts{Dims: &d, Seed: 15}).Dir
}

// TestGemma2EndToEnd: golens run and golens generate on a Gemma 2
// checkpoint directory. With GPT-2's vocabulary size the model takes
// GPT-2's tokenizer, so text prompts work; with another (as real Gemma's
// 256000, whose tokenizer golens lacks) the input is a tokens file and
// generate prints token ids. run's loss is the loss hookedmodel computes
// for the same tokens; greedy generation continues the prompt.
func TestGemma2EndToEnd(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := testDevice()
	t.Run("text", func(t *testing.T) {
		dir := writeGemma2Dir(t, 50257)
		out, err := golens(t, "run", "--model", dir, "--device", dev, "--prompt", "The cat sat on", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var res runResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("run --json printed %q: %v", out, err)
		}
		if len(res.Tokens) != 1 || len(res.Next[0]) == 0 || !(res.Loss > 0) {
			t.Errorf("run --json: %+v", res)
		}
		out, err = golens(t, "generate", "--model", dir, "--device", dev, "--prompt", "Hello", "--max-new-tokens", "4", "--temperature", "0")
		if err != nil || !strings.HasPrefix(out, "<|endoftext|>Hello") {
			t.Errorf("generate: %q, %v", out, err)
		}
	})
	t.Run("token ids", func(t *testing.T) {
		dir := writeGemma2Dir(t, 20)
		tokens := filepath.Join(t.TempDir(), "tokens.json")
		if err := os.WriteFile(tokens, []byte("[[2, 5, 7, 11, 3, 4], [2, 9, 9, 1, 13, 6]]"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := golens(t, "run", "--model", dir, "--device", dev, "--tokens-file", tokens, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var res runResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("run --json printed %q: %v", out, err)
		}
		m, err := hookedmodel.Load(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		tok, err := tensorOf([][]int64{{2, 5, 7, 11, 3, 4}, {2, 9, 9, 1, 13, 6}}, m.Device())
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Free()
		o, err := m.Forward(context.Background(), hookedmodel.Tokens(tok), hookedmodel.Return(hookedmodel.ReturnLoss))
		if err != nil {
			t.Fatal(err)
		}
		want := o.Loss.MustItem()
		o.Free()
		if got := float64(res.Loss); math.Abs(got-want) > 1e-5*math.Abs(want) {
			t.Errorf("run --json loss %v, hookedmodel's %v", got, want)
		}
		out, err = golens(t, "generate", "--model", dir, "--device", dev, "--tokens-file", tokens, "--max-new-tokens", "5", "--temperature", "0")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("generate printed %q, want a line per row", out)
		}
		for i, line := range lines {
			var ids []int64
			if err := json.Unmarshal([]byte(line), &ids); err != nil || len(ids) != 11 || ids[0] != 2 || ids[5] != []int64{4, 6}[i] {
				t.Errorf("generate row %d printed %q (%v), want the 6 prompt ids and 5 more", i, line, err)
			}
		}
	})
}
