package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

func TestRepeatedTokens(t *testing.T) {
	ctx := context.Background()
	d := RepeatedTokens{Vocab: 6, Length: 4, Repeats: 3, Prefix: 2, BOS: 2, Rows: 5, Seed: 9}
	if d.SeqLen() != 1+2+12 {
		t.Fatalf("SeqLen %d, want 15", d.SeqLen())
	}
	b, _ := d.Batch(ctx, 3)
	for i, row := range b {
		if len(row) != 15 || row[0] != 2 {
			t.Fatalf("row %d = %v, want 15 tokens from BOS 2", i, row)
		}
		seg := row[3:7]
		for r := 1; r < 3; r++ {
			if !slices.Equal(row[3+4*r:7+4*r], seg) {
				t.Errorf("row %d = %v: repeat %d differs from the segment", i, row, r)
			}
		}
		for _, x := range row[1:] {
			if x < 0 || x >= 6 || x == 2 {
				t.Errorf("row %d = %v: token %d is out of [0, 6) or BOS", i, row, x)
			}
		}
	}
	again, _ := d.Batch(ctx, 3)
	next, _ := d.Batch(ctx, 4)
	eval, _ := d.EvalBatch(ctx, 3)
	if !slices.EqualFunc(b, again, slices.Equal) {
		t.Error("a step's batch changed between calls")
	}
	if slices.EqualFunc(b, next, slices.Equal) || slices.EqualFunc(b, eval, slices.Equal) {
		t.Error("two steps, or a step and a held-out batch, share a batch")
	}
	noBOS := RepeatedTokens{Vocab: 3, Length: 2, Repeats: 2, BOS: -1, Rows: 1}
	if row, _ := noBOS.Batch(ctx, 0); len(row[0]) != 4 || !slices.Equal(row[0][:2], row[0][2:]) {
		t.Errorf("without BOS: %v", row)
	}
}

func TestText(t *testing.T) {
	gotchtest.CheckLeaks(t)
	var sb strings.Builder
	for i := range 300 {
		fmt.Fprintf(&sb, " %d", i) // distinct tokens, so every row differs
	}
	path := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tok := tokenizer.GPT2()
	n := len(tok.Encode(sb.String())) / 7
	d, err := NewText(path, 8, 3, 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	nTrain, nEval := d.Len()
	if nTrain+nEval != n || nEval != int(math.Round(float64(n)*0.25)) {
		t.Fatalf("%d training and %d held-out rows, want %d in all, a quarter held out", nTrain, nEval, n)
	}
	ctx := context.Background()
	key := func(row []int64) string { return fmt.Sprint(row) }
	held := map[string]bool{}
	for i := range nEval {
		b, _ := d.EvalBatch(ctx, i)
		for _, row := range b {
			held[key(row)] = true
		}
	}
	if len(held) != nEval {
		t.Errorf("the held-out batches show %d distinct rows, want %d", len(held), nEval)
	}
	// The first epoch visits every training row once, and none held out.
	seen := map[string]bool{}
	for k := range nTrain {
		b, _ := d.Batch(ctx, k/3)
		row := b[k%3]
		if len(row) != 8 || row[0] != int64(tok.BOS()) {
			t.Fatalf("row %v: want 8 tokens from BOS", row)
		}
		if held[key(row)] || seen[key(row)] {
			t.Fatalf("row %v comes twice in an epoch or is held out", row)
		}
		seen[key(row)] = true
	}
	b1, _ := d.Batch(ctx, 1)
	if again, _ := d.Batch(ctx, 1); !slices.EqualFunc(b1, again, slices.Equal) {
		t.Error("a step's batch changed between calls")
	}

	if _, err := NewText(path, 1000, 3, 0.1, 1); err == nil || !strings.Contains(err.Error(), "fewer than 2 sequences") {
		t.Errorf("a text too short for two rows: %v", err)
	}

	cfg := tinyConfig(2)
	cfg.Model.DVocab, cfg.Model.DModel, cfg.Model.DMLP = tok.VocabSize(), 8, 16
	cfg.Model.DHead, cfg.Model.NHeads = 4, 2
	cfg.Data = DataConfig{Kind: "text", Path: path, SeqLen: 8}
	if res, _, err := runRecords(t, ctx, cfg, t.TempDir()); err != nil || !res.Done {
		t.Fatalf("training on text: %+v, %v", res, err)
	}
}
