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

// `golens run --model meta-llama/Llama-3.2-1B` finds the checkpoint in the
// Hugging Face cache (HF_HUB_CACHE, Python's layout: refs/main naming the
// snapshot), offline, and computes what the same snapshot loaded by path
// computes; so do cache and TransformerLens's name in another case.
func TestRunByNameThroughCache(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cache := t.TempDir()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	repoDir := filepath.Join(cache, "models--meta-llama--Llama-3.2-1B")
	snapshot := filepath.Join(repoDir, "snapshots", commit)
	hf := hftest.Write(t, "llama", hftest.Opts{Seed: 5}) // hftest.Small: 2 key/value heads of 6
	if err := os.CopyFS(snapshot, os.DirFS(hf.Dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(repoDir, "refs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoDir, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1") // nothing listens: a request would fail
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(tokens, []byte("[[1, 5, 9, 3, 14]]"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(model string) runResult {
		t.Helper()
		out, err := golens(t, "run", "--model", model, "--device", testDevice(), "--tokens-file", tokens, "--json")
		if err != nil {
			t.Fatalf("run --model %s: %v", model, err)
		}
		var res runResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("run --json printed %q: %v", out, err)
		}
		return res
	}
	byPath := run(snapshot)
	for _, name := range []string{"meta-llama/Llama-3.2-1B", "META-LLAMA/llama-3.2-1b"} {
		byName := run(name)
		a, _ := json.Marshal(byName)
		b, _ := json.Marshal(byPath)
		if string(a) != string(b) || byName.Model != "meta-llama/Llama-3.2-1B" {
			t.Errorf("run --model %s:\n%s\nby path:\n%s", name, a, b)
		}
	}
	// A revision resolves through refs/{revision}, as huggingface_hub's
	// cache does; a checkpoint is for models that have them.
	if err := os.WriteFile(filepath.Join(repoDir, "refs", "v2"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := golens(t, "run", "--model", "meta-llama/Llama-3.2-1B", "--revision", "v2", "--device", testDevice(), "--tokens-file", tokens); err != nil {
		t.Errorf("--revision v2: %v", err)
	}
	if _, err := golens(t, "run", "--model", "meta-llama/Llama-3.2-1B", "--revision", "v3", "--device", testDevice(), "--tokens-file", tokens); err == nil || !strings.Contains(err.Error(), `no ref "v3"`) {
		t.Errorf("--revision v3, not cached: %v, want an error naming the missing ref", err)
	}
	if _, err := golens(t, "run", "--model", "meta-llama/Llama-3.2-1B", "--checkpoint-index", "0", "--device", testDevice(), "--tokens-file", tokens); err == nil || !strings.Contains(err.Error(), "has no training checkpoints") {
		t.Errorf("--checkpoint-index 0 of Llama: %v, want an error saying it has none", err)
	}
	out := filepath.Join(t.TempDir(), "cache.safetensors")
	if _, err := golens(t, "cache", "--model", "meta-llama/Llama-3.2-1B", "--device", testDevice(), "--tokens-file", tokens, "--names", "hook_k$", "--out", out); err != nil {
		t.Fatal(err)
	}
	ck, err := weights.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if err := ck.Expect("blocks.1.attn.hook_k", 1, 5, 2, 6); err != nil { // [batch pos n_kv_heads d_head]
		t.Error(err)
	}
}
