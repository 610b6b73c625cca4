package hookedmodel

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// everyProcessing lists every combination of the five processing steps.
func everyProcessing() []Processing {
	var prs []Processing
	for bits := range 32 {
		prs = append(prs, Processing{
			FoldLN:               bits&1 != 0,
			CenterWritingWeights: bits&2 != 0,
			CenterUnembed:        bits&4 != 0,
			FoldValueBiases:      bits&8 != 0,
			RefactorFactoredAttn: bits&16 != 0,
		})
	}
	return prs
}

// lossPerToken is -log p(next token) at each position, from log-probs lp
// [batch pos vocab] of tokens rows.
func lossPerToken(lp []float64, rows [][]int64, vocab int) []float64 {
	var out []float64
	pos := len(rows[0])
	for b, row := range rows {
		for p := 0; p+1 < pos; p++ {
			out = append(out, -lp[(b*pos+p)*vocab+int(row[p+1])])
		}
	}
	return out
}

// shippedPath is the shipped induction-2l checkpoint, read from the
// repository (importing package models would point a test's import up the
// layers: TestLayersPointDown).
func shippedPath(t *testing.T) string {
	t.Helper()
	path := filepath.Join("..", "models", "induction-2l", "model.safetensors")
	if _, err := os.Stat(path); err != nil {
		t.Skip("the shipped model's file is not here (a test binary run elsewhere, as in the GPU bundle):", err)
	}
	return path
}

// repeatedTokens is BOS (0) then a random sequence of n tokens in
// [1, vocab) twice, per row: where induction-2l's loss is low.
func repeatedTokens(t *testing.T, batch, n, vocab int, seed uint64) ([][]int64, *gotch.Tensor) {
	t.Helper()
	half, ht := randomTokens(t, batch, n, vocab-1, seed)
	ht.Free()
	var flat []int64
	var rows [][]int64
	for _, h := range half {
		row := []int64{0}
		for range 2 {
			for _, x := range h {
				row = append(row, x+1)
			}
		}
		rows = append(rows, row)
		flat = append(flat, row...)
	}
	return rows, gotch.MustFromSlice(flat, []int64{int64(batch), int64(len(rows[0]))}, gotchtest.Device(t))
}

// Processing is an invariance of the log-probabilities for every
// combination of steps, on the shipped shortformer model too (where
// TransformerLens's fold_ln and center_writing_weights are not: its
// second-repeat loss goes from 0.1 to 4).
func TestEveryProcessingKeepsLogProbs(t *testing.T) {
	gotchtest.CheckLeaks(t)
	shipped := shippedPath(t)
	ctx := context.Background()
	load := func(t *testing.T, name string, pr Processing) *HookedTransformer {
		switch name {
		case "induction-2l":
			m, err := Load(ctx, shipped, WithProcessing(pr), OnDevice(gotchtest.Device(t)))
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		edits := map[string]func(*Config){
			"gpt2-like LN":            nil,
			"shortformer":             func(c *Config) { c.PositionalEmbeddingType = "shortformer" },
			"shortformer attn-only":   func(c *Config) { c.PositionalEmbeddingType, c.AttnOnly = "shortformer", true },
			"shortformer solu_ln":     func(c *Config) { c.PositionalEmbeddingType, c.ActFn = "shortformer", "solu_ln" },
			"no normalization":        func(c *Config) { c.NormalizationType = "" },
			"LNPre attn-only":         func(c *Config) { c.NormalizationType, c.AttnOnly = "LNPre", true },
			"shortformer no LN":       func(c *Config) { c.PositionalEmbeddingType, c.NormalizationType = "shortformer", "" },
			"gpt2-like scale by idx":  func(c *Config) { c.AttnScaleByIdx = true },
			"shortformer split input": func(c *Config) { c.PositionalEmbeddingType, c.UseSplitQKVIn = "shortformer", true },
		}
		m := editedModel(t, edits[name], 7)
		if err := m.Process(pr); err != nil {
			m.Free()
			t.Fatal(err)
		}
		return m
	}
	for _, name := range []string{"induction-2l", "gpt2-like LN", "shortformer", "shortformer attn-only", "shortformer solu_ln", "no normalization", "LNPre attn-only", "shortformer no LN", "gpt2-like scale by idx", "shortformer split input"} {
		t.Run(name, func(t *testing.T) {
			raw := load(t, name, Processing{})
			vocab := raw.Cfg.DVocabOut
			batch, n := 2, 5
			if name == "induction-2l" {
				batch, n = 4, 19
			}
			rows, tok := repeatedTokens(t, batch, n, raw.Cfg.DVocab, 3)
			defer tok.Free()
			want := logProbs(t, raw, tok)
			wantLoss := lossPerToken(want, rows, vocab)
			raw.Free()
			if name == "induction-2l" {
				second := wantLoss[len(rows[0])/2+1 : len(rows[0])-1]
				if mean(second) > 0.3 {
					t.Fatalf("unprocessed induction-2l: second-repeat loss %.3f, want about 0.1", mean(second))
				}
			}
			for _, pr := range everyProcessing() {
				m := load(t, name, pr)
				got := logProbs(t, m, tok)
				gotchtest.Close(t, name+" log-probs with "+prString(pr)+" ("+m.Processing().String()+")", got, want, 1e-4)
				gotchtest.Close(t, name+" loss per token with "+prString(pr), lossPerToken(got, rows, vocab), wantLoss, 1e-4)
				m.Free()
			}
		})
	}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func prString(pr Processing) string {
	var on []string
	v := reflect.ValueOf(pr)
	for i := range v.NumField() {
		if v.Field(i).Bool() {
			on = append(on, v.Type().Field(i).Name)
		}
	}
	if len(on) == 0 {
		return "no processing"
	}
	return strings.Join(on, "+")
}

func TestProcessingRecord(t *testing.T) {
	gotchtest.CheckLeaks(t)
	all := DefaultProcessing
	all.RefactorFactoredAttn = true
	cases := []struct {
		name string
		edit func(*Config)
		pr   Processing
		want []ProcessingStep
	}{
		{"none", nil, Processing{}, []ProcessingStep{}},
		{"gpt2-like default", nil, DefaultProcessing, []ProcessingStep{
			{Step: StepFoldLN, Ran: true}, {Step: StepCenterWritingWeights, Ran: true}, {Step: StepCenterUnembed, Ran: true}, {Step: StepFoldValueBiases, Ran: true}}},
		{"shortformer all", func(c *Config) { c.PositionalEmbeddingType = "shortformer" }, all, []ProcessingStep{
			{Step: StepFoldLN, Note: "shortformer"}, {Step: StepCenterWritingWeights, Ran: true, Note: "W_pos"},
			{Step: StepCenterUnembed, Ran: true}, {Step: StepFoldValueBiases, Ran: true}, {Step: StepRefactorFactoredAttn, Ran: true}}},
		{"no LN", func(c *Config) { c.NormalizationType = "" }, Processing{FoldLN: true, CenterWritingWeights: true}, []ProcessingStep{
			{Step: StepFoldLN, Note: "no LayerNorm"}, {Step: StepCenterWritingWeights, Note: "no LayerNorm"}}},
		{"LNPre", func(c *Config) { c.NormalizationType = "LNPre" }, Processing{FoldLN: true, CenterWritingWeights: true}, []ProcessingStep{
			{Step: StepFoldLN, Note: "LNPre"}, {Step: StepCenterWritingWeights, Ran: true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := editedModel(t, tc.edit, 2)
			defer m.Free()
			if got := m.Processing(); got.Steps == nil || len(got.Steps) != 0 {
				t.Errorf("new model's Processing() = %#v, want no steps", got)
			}
			sd, s, err := m.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			pos := gotchtest.Values(t, sd["pos_embed.W_pos"])
			s.Close()
			if err := m.Process(tc.pr); err != nil {
				t.Fatal(err)
			}
			checkSteps(t, m.Processing(), tc.want)
			if m.Processing().Ran(StepFoldLN) != (m.Cfg.NormalizationType == "LNPre" && tc.edit == nil) {
				t.Errorf("Ran(fold_ln) = %v with normalization_type %s", m.Processing().Ran(StepFoldLN), m.Cfg.NormalizationType)
			}
			if m.Cfg.PositionalEmbeddingType == "shortformer" {
				if m.Cfg.NormalizationType != "LN" || m.Blocks[0].Ln1.W == nil {
					t.Errorf("shortformer model lost its LayerNorm weights: normalization_type %s", m.Cfg.NormalizationType)
				}
				sd, s, err := m.StateDict()
				if err != nil {
					t.Fatal(err)
				}
				gotchtest.Close(t, "shortformer W_pos after processing", gotchtest.Values(t, sd["pos_embed.W_pos"]), pos, 0)
				s.Close()
			}
		})
	}
}

// checkSteps compares a record with want, whose notes are substrings.
func checkSteps(t *testing.T, got ProcessingRecord, want []ProcessingStep) {
	t.Helper()
	ok := len(got.Steps) == len(want)
	for i := 0; ok && i < len(want); i++ {
		g, w := got.Steps[i], want[i]
		ok = g.Step == w.Step && g.Ran == w.Ran && strings.Contains(g.Note, w.Note) && (w.Note != "" || g.Note == "")
	}
	if !ok {
		t.Errorf("Processing() = %+v, want %+v", got.Steps, want)
	}
}

// A golens checkpoint keeps its processing record, and WithProcessing on
// one applies the steps to the saved weights, after those already done.
func TestProcessingRoundTrip(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ctx := context.Background()
	dev := gotchtest.Device(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{{"gpt2-like", nil}, {"shortformer", func(c *Config) { c.PositionalEmbeddingType = "shortformer" }}} {
		t.Run(tc.name, func(t *testing.T) {
			m := editedModel(t, tc.edit, 4)
			_, tok := randomTokens(t, 2, 9, m.Cfg.DVocab, 5)
			defer tok.Free()
			want := logProbs(t, m, tok)
			rawPath := filepath.Join(dir, tc.name+"-raw.safetensors")
			if err := m.Save(rawPath); err != nil {
				t.Fatal(err)
			}
			if err := m.Process(DefaultProcessing); err != nil {
				t.Fatal(err)
			}
			rec := m.Processing()
			procPath := filepath.Join(dir, tc.name+"-processed.safetensors")
			if err := m.Save(procPath); err != nil {
				t.Fatal(err)
			}
			m.Free()

			check := func(what string, m *HookedTransformer, wantRec []ProcessingStep) {
				t.Helper()
				defer m.Free()
				if !reflect.DeepEqual(m.Processing().Steps, wantRec) {
					t.Errorf("%s: Processing() = %+v, want %+v", what, m.Processing().Steps, wantRec)
				}
				gotchtest.Close(t, what+" log-probs", logProbs(t, m, tok), want, 1e-4)
			}
			load := func(path string, opts ...Option) *HookedTransformer {
				t.Helper()
				m, err := Load(ctx, path, append(opts, OnDevice(dev))...)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			check("raw checkpoint", load(rawPath), []ProcessingStep{})
			check("processed checkpoint", load(procPath), rec.Steps)
			check("processed checkpoint, NoProcessing", load(procPath, NoProcessing()), rec.Steps)

			// WithProcessing on a golens checkpoint applies.
			m = load(rawPath, WithProcessing(DefaultProcessing))
			if tc.edit == nil && m.Cfg.NormalizationType != "LNPre" {
				t.Errorf("raw checkpoint WithProcessing(DefaultProcessing): normalization_type %s, want LNPre", m.Cfg.NormalizationType)
			}
			check("raw checkpoint WithProcessing(DefaultProcessing)", m, rec.Steps)

			// Again on processed weights: appended, fold_ln now skipped.
			again := load(procPath, WithProcessing(Processing{FoldLN: true, FoldValueBiases: true}))
			got := again.Processing()
			check("processed checkpoint processed again", again, got.Steps)
			wantAgain := append(append([]ProcessingStep{}, rec.Steps...), ProcessingStep{Step: StepFoldLN}, ProcessingStep{Step: StepFoldValueBiases, Ran: true})
			if len(got.Steps) != len(wantAgain) || got.Steps[len(rec.Steps)].Ran || got.Steps[len(rec.Steps)].Note == "" || !got.Steps[len(got.Steps)-1].Ran {
				t.Errorf("processed checkpoint processed again: Processing() = %+v, want %+v with fold_ln's reason", got.Steps, wantAgain)
			}
		})
	}
}
