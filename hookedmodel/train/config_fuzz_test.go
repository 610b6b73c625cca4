package train

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzConfig feeds arbitrary bytes to LoadConfig, the reader of
// `golens train --config`. Nothing may panic and an error is one line. A
// config it accepts is unchanged by a second Init, is accepted again from
// the config.json a run writes of it (so the run can resume), and, when
// small, gives batches of the promised shape whose tokens the model can
// embed.
func FuzzConfig(f *testing.F) {
	induction, err := os.ReadFile("testdata/induction.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(induction)
	// The shipped model's config, where the source tree is here (a test
	// binary carried to a GPU machine runs without it).
	if shipped, err := os.ReadFile("../../models/induction-2l.json"); err == nil {
		f.Add(shipped)
	}
	const small = `"model": {"n_layers": 1, "d_model": 8, "d_head": 4, "n_ctx": 16, "d_vocab": 20, "attn_only": true}`
	for _, s := range []string{
		`{` + small + `, "train": {"steps": 10}, "data": {"kind": "repeated_tokens"}}`,
		`{` + small + `, "train": {"steps": 10, "batch": 2}, "data": {"kind": "repeated_tokens", "length": 5, "min_length": 2, "prefix": 3, "bos": -1}}`,
		`{` + small + `, "train": {"steps": 10}, "data": {"kind": "repeated_tokens", "vocab": 1}}`,
		`{` + small + `, "train": {"steps": 10}, "data": {"kind": "repeated_tokens", "bos": 20}}`,
		`{` + small + `, "train": {"steps": 10}, "data": {"kind": "repeated_tokens", "repeats": 20}}`,
		`{` + small + `, "train": {"steps": 10}, "data": {"kind": "repeated_tokens", "min_length": -1}}`,
		`{"model": {"n_layers": 1, "d_model": 8, "d_head": 4, "n_ctx": 16, "tokenizer_name": "gpt2", "attn_only": true}, "train": {"steps": 10, "batch": 2}, "data": {"kind": "text", "path": "corpus.txt", "seq_len": 4}}`,
		`{` + small + `, "train": {"steps": 10}, "data": {"kind": "text", "path": "corpus.txt"}}`,
		`{` + small + `, "train": {"steps": 0}, "data": {"kind": "repeated_tokens"}}`,
		`{` + small + `, "train": {"steps": 10, "warmup": 11}, "data": {"kind": "repeated_tokens"}}`,
		`{` + small + `, "train": {"steps": 10, "betas": [1, 0.5]}, "data": {"kind": "repeated_tokens"}}`,
		`{` + small + `, "train": {"steps": 10, "checkpoint_minutes": -1}, "data": {"kind": "repeated_tokens"}}`,
		`{` + small + `, "train": {"steps": 10, "lr": 1e999}, "data": {"kind": "repeated_tokens"}}`,
		`{` + small + `, "train": {"steps": 10, "stepz": 1}, "data": {"kind": "repeated_tokens"}}`,
		`{` + small + `, "train": {"steps": 10}, "data": {"kind": "images"}}`,
		`{"model": {}, "train": {}, "data": {}}`, `{"modle": {}}`, `[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	text := strings.Repeat("The cat sat on the mat. ", 20)
	if err := os.WriteFile(corpus, []byte(text), 0o644); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "run.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line: %q", msg)
			}
			return
		}
		again := c
		if err := again.Init(); err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("a second Init gives %+v, %v; the first gave %+v", again, err, c)
		}
		// What start writes to config.json, read back as owned reads it.
		js, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			t.Fatalf("an accepted config does not marshal: %v", err)
		}
		var back Config
		d := json.NewDecoder(bytes.NewReader(js))
		d.DisallowUnknownFields()
		if err := d.Decode(&back); err != nil {
			t.Fatalf("the run's config.json does not decode: %v\n%s", err, js)
		}
		if err := back.Init(); err != nil || !sameRun(back, c) {
			t.Fatalf("the run's config.json reads back as %+v, %v; want %+v", back, err, c)
		}

		// Draw batches only where the data is small and ours: a fuzzed
		// path may name any file.
		if c.Train.Batch > 64 || c.Model.NCtx > 256 || c.Data.Kind == "text" && c.Data.Path != corpus {
			return
		}
		data, err := newDataset(&c)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line: %q", msg)
			}
			return
		}
		ctx := context.Background()
		for i := range 2 {
			for _, batch := range []func(context.Context, int) ([][]int64, error){data.Batch, data.EvalBatch} {
				rows, err := batch(ctx, i)
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) != c.Train.Batch {
					t.Fatalf("batch %d has %d rows, want %d", i, len(rows), c.Train.Batch)
				}
				for _, r := range rows {
					if len(r) != len(rows[0]) || len(r) < 2 || len(r) > c.Model.NCtx {
						t.Fatalf("batch %d: a row of %d tokens (row 0 has %d, n_ctx %d)", i, len(r), len(rows[0]), c.Model.NCtx)
					}
					for _, id := range r {
						if id < 0 || id >= int64(c.Model.DVocab) {
							t.Fatalf("batch %d: token %d outside [0, d_vocab=%d)", i, id, c.Model.DVocab)
						}
					}
				}
			}
		}
	})
}
