package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/hftest"
	"github.com/golens/golens/hookedmodel/weights"
)

// TestEveryArchitectureEndToEnd: golens run, cache, analyze and generate
// on a Hugging Face checkpoint directory of each model_type golens loads,
// from token ids (hftest's vocabulary of 20 is no tokenizer's).
func TestEveryArchitectureEndToEnd(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := testDevice()
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(tokens, []byte("[[2, 5, 7, 11, 3, 4, 9], [2, 9, 9, 1, 13, 6, 0]]"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, modelType := range []string{"gpt_neox", "llama", "mistral", "qwen2", "gemma", "gemma2"} {
		t.Run(modelType, func(t *testing.T) {
			dir := hftest.Write(t, modelType, hftest.Opts{Seed: 21}).Dir
			out, err := golens(t, "run", "--model", dir, "--device", dev, "--tokens-file", tokens, "--json")
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			var res runResult
			if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Tokens) != 2 || !(res.Loss > 0) {
				t.Errorf("run --json: %q (%v)", out, err)
			}

			cache := filepath.Join(t.TempDir(), "acts.safetensors")
			if _, err := golens(t, "cache", "--model", dir, "--device", dev, "--tokens-file", tokens, "--names", `blocks\.1\.(attn\.hook_k|hook_resid_post)$`, "--out", cache); err != nil {
				t.Fatalf("cache: %v", err)
			}
			ck, err := weights.Open(cache)
			if err != nil {
				t.Fatal(err)
			}
			kv := int64(hftest.Int(hftest.Configs[modelType](hftest.Small), "num_attention_heads"))
			if modelType != "gpt_neox" {
				kv = 2 // hftest.Small's key/value heads
			}
			if err := ck.Expect("blocks.1.hook_resid_post", 2, 7, 16); err != nil {
				t.Error(err)
			}
			if info, err := ck.Info("blocks.1.attn.hook_k"); err != nil || len(info.Shape) != 4 || info.Shape[2] != kv {
				t.Errorf("hook_k: %v %v, want [2 7 %d d_head]", info, err, kv)
			}
			ck.Close()

			report := filepath.Join(t.TempDir(), "report")
			if _, err := golens(t, "analyze", "--model", dir, "--device", dev, "--tokens-file", tokens, "--out", report); err != nil {
				t.Fatalf("analyze: %v", err)
			}
			if _, err := os.Stat(filepath.Join(report, "index.html")); err != nil {
				t.Errorf("analyze wrote no report: %v", err)
			}

			out, err = golens(t, "generate", "--model", dir, "--device", dev, "--tokens-file", tokens, "--max-new-tokens", "3", "--temperature", "0")
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 {
				t.Errorf("generate printed %q, want a line of ids per row", out)
			}
		})
	}
}
