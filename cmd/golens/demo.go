package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/analysis/report"
	"github.com/golens/golens/backend"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/train"
	"github.com/golens/golens/models"
	"github.com/spf13/cobra"
)

func newDemoCmd() *cobra.Command {
	var out, device, model string
	var force bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Find the induction circuit of the shipped 2-layer model and write a report (no download)",
		Long: "demo loads the attention-only model golens ships (models/induction-2l, trained by golens train), " +
			"runs the analyze workflow on repeated random tokens, draws its training curves with the induction " +
			"phase change, the QK and OV circuits of its induction circuit and the composition scores, writes a " +
			"report folder and prints what it found.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			if err := checkReportDir(out, force); err != nil {
				return err
			}
			b, err := backend.Resolve(device)
			if err != nil {
				return err
			}
			m, metrics, err := loadDemoModel(cmd, b, model)
			if err != nil {
				return err
			}
			defer m.Free()
			prompt, err := analysis.RepeatedTokens(m, analysis.BatchSize(1), analysis.SeqLen(demoSeqLen(m)), analysis.WithSeed(0))
			if err != nil {
				return err
			}
			defer prompt.Free()
			s, rep, err := analysis.Workflow(cmd.Context(), m, prompt, analysis.SeqLen(demoSeqLen(m)), analysis.WithSeed(1))
			if err != nil {
				return err
			}
			d, err := demoExtras(m, s, rep, metrics)
			if err != nil {
				return err
			}
			summary := struct {
				*analysis.Summary
				Demo *demoSummary `json:"demo"`
			}{s, d}
			if err := writeReport(out, rep, summary); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "golens demo: %s on %s\n", m.Cfg.ModelName, m.Device())
			fmt.Fprintf(w, "previous-token head %d.%d  score %.3f\n", d.PrevHead.Layer, d.PrevHead.Head, d.PrevScore)
			fmt.Fprintf(w, "induction head      %d.%d  score %.3f\n", d.InductionHead.Layer, d.InductionHead.Head, d.InductionScore)
			fmt.Fprintf(w, "loss on repeated random tokens: %.3f first repeat, %.3f second\n", s.RepeatLoss.First, s.RepeatLoss.Second)
			fmt.Fprintf(w, "K-composition %d.%d -> %d.%d: %.3f (random baseline %.3f)\n", d.PrevHead.Layer, d.PrevHead.Head, d.InductionHead.Layer, d.InductionHead.Head, d.KComposition, s.CompositionBaseline)
			fmt.Fprintf(w, "report: %s (%.1fs)\n", filepath.Join(out, "index.html"), time.Since(start).Seconds())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "golens-demo", "the report folder")
	cmd.Flags().BoolVar(&force, "force", false, "write into a non-empty --out that holds no golens report")
	cmd.Flags().StringVar(&device, "device", "auto", "auto, cpu, cuda, cuda:N or mps")
	cmd.Flags().StringVar(&model, "model", "", "a shipped model's name, or a checkpoint of golens train to use instead of the shipped induction-2l (a retrained one); its curves come from metrics.jsonl beside it")
	return cmd
}

// loadDemoModel loads the shipped model and its training metrics, or the
// checkpoint at path and the metrics.jsonl in its folder (nil if none).
// A shipped model's name (models.Names) with no file of that name loads
// that model and its metrics.
func loadDemoModel(cmd *cobra.Command, b *backend.Backend, path string) (*hookedmodel.HookedTransformer, []byte, error) {
	if path == "" {
		path = "induction-2l"
	}
	if _, err := os.Stat(path); err != nil && models.Has(path) {
		m, err := models.Load(cmd.Context(), path, hookedmodel.OnDevice(b.Device()))
		if err != nil {
			return nil, nil, err
		}
		metrics, _ := models.Metrics(path)
		return m, metrics, nil
	}
	m, err := loadModel(cmd.Context(), path, hookedmodel.OnDevice(b.Device()))
	if err != nil {
		return nil, nil, err
	}
	metrics, err := os.ReadFile(filepath.Join(filepath.Dir(path), "metrics.jsonl"))
	if err != nil && !os.IsNotExist(err) {
		m.Free()
		return nil, nil, err
	}
	return m, metrics, nil
}

func demoSeqLen(m *hookedmodel.HookedTransformer) int { return min(20, (m.Cfg.NCtx-1)/2) }

// demoSummary is what the demo adds to the workflow's summary.
type demoSummary struct {
	PrevHead       analysis.HeadID `json:"previous_token_head"`
	PrevScore      float64         `json:"previous_token_score"`
	InductionHead  analysis.HeadID `json:"induction_head"`
	InductionScore float64         `json:"induction_score"`
	KComposition   float64         `json:"k_composition"`
	OVCopying      float64         `json:"ov_copying"` // share of tokens the induction head's OV circuit maps to themselves
}

// demoExtras picks the circuit's heads (the best previous-token head of
// layer 0, the best induction head after it) and adds the training
// curves and the circuit's weights to the report.
func demoExtras(m *hookedmodel.HookedTransformer, s *analysis.Summary, rep *report.Report, metrics []byte) (*demoSummary, error) {
	d := &demoSummary{PrevScore: -1, InductionScore: -1}
	for _, h := range s.Heads {
		if h.Layer == 0 && h.PreviousToken > d.PrevScore {
			d.PrevHead, d.PrevScore = analysis.HeadID{Layer: h.Layer, Head: h.Head}, h.PreviousToken
		}
	}
	for l := 1; l < len(s.InductionScores); l++ {
		for h, v := range s.InductionScores[l] {
			if v > d.InductionScore {
				d.InductionHead, d.InductionScore = analysis.HeadID{Layer: l, Head: h}, v
			}
		}
	}
	p, ih := d.PrevHead, d.InductionHead
	d.KComposition = s.Composition.K[p.Layer][p.Head][ih.Layer][ih.Head]
	c, err := analysis.Circuits(m, p, ih, min(24, m.Cfg.NCtx))
	if err != nil {
		return nil, err
	}
	d.OVCopying = analysis.DiagonalShare(c.OV)
	heat := func(title, x, y string, t *analysis.Table) report.Heatmap {
		vals := make([][]float64, t.Shape[0])
		for r := range vals {
			vals[r] = t.Data[r*t.Shape[1] : (r+1)*t.Shape[1]]
		}
		return report.Heatmap{Title: title, XLabel: x, YLabel: y, Values: vals, Scale: report.ScaleDiverging}
	}
	circuit := report.Section{Title: "The induction circuit in the weights",
		Text: fmt.Sprintf("Head %d.%d attends to the previous position (its positional QK circuit); head %d.%d's keys read what %d.%d wrote (K-composition %.3f against a random baseline of %.3f), so it attends to the token after an earlier copy of the current one, and its OV circuit copies that token to the logits (%.0f%% of tokens map to themselves).",
			p.Layer, p.Head, ih.Layer, ih.Head, p.Layer, p.Head, d.KComposition, s.CompositionBaseline, 100*d.OVCopying),
		Views: []report.View{
			heat(fmt.Sprintf("positional QK circuit of head %d.%d", p.Layer, p.Head), "key position", "query position", c.PrevQK),
			heat(fmt.Sprintf("K-composition QK circuit of head %d.%d", ih.Layer, ih.Head), "key's previous token", "query token", c.KComposition),
			heat(fmt.Sprintf("OV circuit of head %d.%d", ih.Layer, ih.Head), "logit token", "source token", c.OV),
		}}
	sections := []report.Section{circuit}
	if metrics != nil {
		curves, err := trainingCurves(d, metrics)
		if err != nil {
			return nil, err
		}
		sections = append([]report.Section{curves}, sections...)
	}
	rep.Sections = append(sections, rep.Sections...)
	rep.Title = "golens demo: the induction circuit of " + m.Cfg.ModelName
	return d, nil
}

// trainingCurves draws a training run's evaluation snapshots: the
// induction head's score, the previous-token head's, the held-out loss and
// the in-context-learning score, against training step.
func trainingCurves(d *demoSummary, metrics []byte) (report.Section, error) {
	var steps, loss, ind, prev, iclSteps, icl []float64
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r train.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return report.Section{}, fmt.Errorf("shipped metrics: %w", err)
		}
		if r.Kind != "eval" {
			continue
		}
		steps = append(steps, float64(r.Step))
		loss = append(loss, r.Loss)
		if r.ICL != nil {
			iclSteps, icl = append(iclSteps, float64(r.Step)), append(icl, *r.ICL)
		}
		ind = append(ind, r.HeadScores["induction"][d.InductionHead.Layer][d.InductionHead.Head])
		prev = append(prev, r.HeadScores["previous_token"][d.PrevHead.Layer][d.PrevHead.Head])
	}
	return report.Section{Title: "Training: the induction phase change",
		Text: "Evaluation snapshots of the model's training run (golens train --config models/induction-2l.json for the shipped one): the heads' scores rise steeply and the in-context-learning score (the mean loss on a repeat minus that on its first copy) falls from about zero to well below: the phase change of Olsson et al. (2022).",
		Views: []report.View{
			report.LineChart{Title: "head scores during training", XLabel: "step", YLabel: "score", Series: []report.Series{
				{Name: fmt.Sprintf("induction score, head %d.%d", d.InductionHead.Layer, d.InductionHead.Head), X: steps, Y: ind},
				{Name: fmt.Sprintf("previous-token score, head %d.%d", d.PrevHead.Layer, d.PrevHead.Head), X: steps, Y: prev}}},
			report.LineChart{Title: "held-out loss and in-context-learning score during training", XLabel: "step", YLabel: "nats", Series: []report.Series{
				{Name: "held-out loss", X: steps, Y: loss},
				{Name: "in-context-learning score", X: iclSteps, Y: icl}}},
		}}, sc.Err()
}
