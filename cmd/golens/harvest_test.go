package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golens/golens/analysis/harvest"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestHarvestCommand: texts and token ids from a jsonl file, harvested by
// the CLI into shards and a manifest; run again, it finds the harvest done
// and writes the same manifest.
func TestHarvestCommand(t *testing.T) {
	gotchtest.CheckLeaks(t)
	model := tinyGPT2(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data.jsonl")
	os.WriteFile(data, []byte(`{"text": "The cat sat on the mat"}`+"\n[464, 3290, 318]\n"+`{"ids": [40, 588]}`+"\n"), 0o644)
	out := filepath.Join(dir, "acts")
	args := []string{"harvest", "--model", model, "--device", testDevice(), "--data", data, "--hooks", `blocks\.0\.hook_resid_post`,
		"--out", out, "--shard-examples", "2", "--batch", "2"}
	stdout, err := golens(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	read := func() harvest.Manifest {
		b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var man harvest.Manifest
		if err := json.Unmarshal(b, &man); err != nil {
			t.Fatal(err)
		}
		return man
	}
	man := read()
	// The text is BOS and six tokens; the id lists are taken as they are.
	if man.Rows != 7+3+2 || len(man.Shards) != 2 || len(man.Hooks) != 1 || man.Hooks[0].Name != "blocks.0.hook_resid_post" {
		t.Fatalf("manifest %+v", man)
	}
	if !strings.Contains(stdout, "harvested 12 rows from 3 examples in 2 shards") {
		t.Errorf("output %q", stdout)
	}
	if _, err := golens(t, args...); err != nil {
		t.Fatalf("run again: %v", err)
	}
	if again := read(); again.Run != man.Run || again.Rows != man.Rows {
		t.Errorf("run again: manifest %+v, was %+v", again, man)
	}
}
