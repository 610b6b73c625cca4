package analysis

import (
	"context"
	"fmt"
	"strings"

	"github.com/golens/golens/analysis/report"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// Summary is what Workflow found, in the form summary.json keeps: a
// contract that scripts read, so its keys only ever grow.
type Summary struct {
	Model  string    `json:"model"`
	Tokens [][]int64 `json:"tokens"` // the prompt the detectors ran on

	Heads           []HeadScores `json:"heads"`
	InductionScores [][]float64  `json:"induction_scores"` // [layer][head], on repeated random tokens
	RepeatLoss      struct {
		First  float64 `json:"first"`
		Second float64 `json:"second"`
	} `json:"repeat_loss"`
	Composition struct {
		Q [][][][]float64 `json:"q"`
		K [][][][]float64 `json:"k"`
		V [][][][]float64 `json:"v"`
	} `json:"composition"` // [layer][head][layer][head]
	CompositionBaseline float64 `json:"composition_baseline"`

	TopPrediction  TokenScore  `json:"top_prediction"`     // the model's most likely next token after the prompt
	LogitAttrib    []Labelled  `json:"logit_attribution"`  // its logit split by component
	HeadAttrib     [][]float64 `json:"head_attribution"`   // [layer][head]
	AblationChange [][]float64 `json:"zero_ablation_loss"` // [layer][head]: loss change when zero-ablated
	LogitLens      []Labelled  `json:"logit_lens"`         // mean log-prob of the next token, per layer
}

// HeadScores are one head's detector scores on the prompt, as
// TransformerLens's head detector computes them with its defaults.
type HeadScores struct {
	Layer          int     `json:"layer"`
	Head           int     `json:"head"`
	PreviousToken  float64 `json:"previous_token"`
	DuplicateToken float64 `json:"duplicate_token"`
	Induction      float64 `json:"induction"`
	CurrentToken   float64 `json:"current_token"`
	FirstToken     float64 `json:"first_token"`
}

// TokenScore is a token with a value.
type TokenScore struct {
	Token int64   `json:"token"`
	Str   string  `json:"str"`
	Value float64 `json:"value"`
}

// Labelled is a named value.
type Labelled struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
}

// Workflow runs the standard circuits workflow on prompt [1 pos] (the head
// detectors, direct logit attribution of the top prediction, a
// zero-ablation table and a logit lens) and, on repeated random tokens,
// the induction scores and losses; with the composition scores from the
// weights. It returns the summary and a report of it. Options: those of
// Induction (SeqLen, BatchSize, BOS, TokenRange, WithSeed), those of
// CompositionScores (BaselineSamples, WithSeed) and WithProgress for the
// ablation table; each step is handed those it reads.
func Workflow(ctx context.Context, m *hookedmodel.HookedTransformer, prompt *gotch.Tensor, opts ...Option) (*Summary, *report.Report, error) {
	if _, err := collect("Workflow", opts, repeatedOptions|compositionOptions|optProgress); err != nil {
		return nil, nil, err
	}
	if m == nil {
		return nil, nil, fmt.Errorf("workflow: nil model")
	}
	if prompt == nil || prompt.Dim() != 2 || prompt.Size(0) != 1 {
		return nil, nil, fmt.Errorf("workflow: the prompt must be one row of tokens [1 pos], got %s", prompt.Spec())
	}
	w := &workflow{m: m, prompt: prompt, s: &Summary{Model: m.Cfg.ModelName}}
	steps := []func(context.Context, []Option) error{w.detectors, w.induction, w.composition, w.attribution, w.ablation, w.lens, w.patterns}
	for _, step := range steps {
		if err := step(ctx, opts); err != nil {
			return nil, nil, fmt.Errorf("workflow: %w", err)
		}
	}
	w.rep.Title = "golens analysis of " + m.Cfg.ModelName
	return w.s, &w.rep, nil
}

type workflow struct {
	m      *hookedmodel.HookedTransformer
	prompt *gotch.Tensor
	s      *Summary
	rep    report.Report
	labels []string // the prompt's tokens as text
}

func (w *workflow) section(title, text string, views ...report.View) {
	w.rep.Sections = append(w.rep.Sections, report.Section{Title: title, Text: text, Views: views})
}

func (w *workflow) headHeatmap(title string, t *Table, scale report.Scale) report.Heatmap {
	return report.Heatmap{Title: title, XLabel: "head", YLabel: "layer", Values: grid(t), Scale: scale}
}

func (w *workflow) detectors(ctx context.Context, _ []Option) error {
	rows, err := gotch.ToSlice[int64](w.prompt)
	if err != nil {
		return err
	}
	w.s.Tokens = [][]int64{rows}
	w.labels = tokenLabels(w.m, rows)
	names := []string{"previous_token_head", "duplicate_token_head", "induction_head", "current_token_head", "first_token_head"}
	var tables []*Table
	var views []report.View
	for _, n := range names {
		p, err := PatternByName(n)
		if err != nil {
			return err
		}
		t, err := DetectHead(ctx, w.m, w.prompt, p)
		if err != nil {
			return fmt.Errorf("%s detector: %w", n, err)
		}
		tables = append(tables, t)
		views = append(views, w.headHeatmap(n, t, report.ScaleSequential))
	}
	for l := range len(w.m.Blocks) {
		for h := range w.m.Cfg.NHeads {
			w.s.Heads = append(w.s.Heads, HeadScores{Layer: l, Head: h,
				PreviousToken: tables[0].At(l, h), DuplicateToken: tables[1].At(l, h), Induction: tables[2].At(l, h),
				CurrentToken: tables[3].At(l, h), FirstToken: tables[4].At(l, h)})
		}
	}
	w.section("Head detectors", "How closely each head's attention on the prompt follows each pattern (TransformerLens's head detector, error measure mul): 1 is a perfect match.", views...)
	return nil
}

func (w *workflow) induction(ctx context.Context, opts []Option) error {
	ind, err := Induction(ctx, w.m, only(opts, repeatedOptions)...)
	if err != nil {
		return err
	}
	w.s.InductionScores = grid(ind.Scores)
	w.s.RepeatLoss.First, w.s.RepeatLoss.Second = ind.FirstRepeatLoss, ind.SecondRepeatLoss
	n := ind.LossPerToken.Shape[1]
	mean := make([]float64, n)
	for b := range ind.LossPerToken.Shape[0] {
		for p := range n {
			mean[p] += ind.LossPerToken.At(b, p) / float64(ind.LossPerToken.Shape[0])
		}
	}
	w.section("Induction", fmt.Sprintf("On %d rows of [BOS, seq, seq] with %d random tokens per seq: loss %.3f on the first repeat, %.3f on the second. An induction head attends from each token of the second repeat to the token after its earlier occurrence.", ind.LossPerToken.Shape[0], ind.SeqLen, ind.FirstRepeatLoss, ind.SecondRepeatLoss),
		w.headHeatmap("induction score", ind.Scores, report.ScaleSequential),
		report.LineChart{Title: "loss per position on repeated tokens", XLabel: "position", YLabel: "loss", Series: []report.Series{{Name: "mean loss", Y: mean}}})
	return nil
}

func (w *workflow) composition(ctx context.Context, opts []Option) error {
	c, err := CompositionScores(ctx, w.m, only(opts, compositionOptions)...)
	if err != nil {
		return err
	}
	w.s.Composition.Q, w.s.Composition.K, w.s.Composition.V = grid4(c.Q), grid4(c.K), grid4(c.V)
	w.s.CompositionBaseline = c.Baseline
	var views []report.View
	for _, kc := range []struct {
		name string
		t    *Table
	}{{"Q", c.Q}, {"K", c.K}, {"V", c.V}} {
		views = append(views, w.pairHeatmap(kc.name+"-composition", kc.t))
	}
	w.section("Composition", fmt.Sprintf("How much each later head (columns) reads what each earlier head (rows) writes, through its queries, keys or values (Frobenius-norm ratio); random matrices of the same shapes score %.3f.", c.Baseline), views...)
	return nil
}

// pairHeatmap draws [layer head layer head] as (earlier head) × (later head).
func (w *workflow) pairHeatmap(title string, t *Table) report.Heatmap {
	nl, nh := t.Shape[0], t.Shape[1]
	var ticks []string
	for l := range nl {
		for h := range nh {
			ticks = append(ticks, HeadLabel(l, h))
		}
	}
	vals := make([][]float64, nl*nh)
	for i := range vals {
		vals[i] = t.Data[i*nl*nh : (i+1)*nl*nh]
	}
	return report.Heatmap{Title: title, XLabel: "later head", YLabel: "earlier head", XTicks: ticks, YTicks: ticks, Values: vals, Scale: report.ScaleSequential}
}

func (w *workflow) attribution(ctx context.Context, _ []Option) error {
	out, err := w.m.Forward(ctx, hookedmodel.Tokens(w.prompt))
	if err != nil {
		return err
	}
	var top int64
	var logit float64
	err = gotch.Try(func() {
		s := gotch.NewScope()
		defer s.Close()
		last := must(s.Borrow(out.Logits)).MustSelect(1, out.Logits.Size(1)-1).MustSelect(0, 0) // [d_vocab]
		top = int64(last.MustArgmax(0, false).MustItem())
		logit = last.MustSelect(0, top).MustItem()
	})
	out.Free()
	if err != nil {
		return err
	}
	w.s.TopPrediction = TokenScore{Token: top, Str: tokenLabels(w.m, []int64{top})[0], Value: logit}
	dla, err := LogitAttribution(ctx, w.m, w.prompt, []int64{top}, nil)
	if err != nil {
		return err
	}
	for i, l := range dla.Labels {
		w.s.LogitAttrib = append(w.s.LogitAttrib, Labelled{l, dla.Components.At(i, 0)})
	}
	heads := NewTable([]string{"layer", "head"}, dla.Heads.Shape[0], dla.Heads.Shape[1])
	for l := range heads.Shape[0] {
		for h := range heads.Shape[1] {
			heads.Set(dla.Heads.At(l, h, 0), l, h)
		}
	}
	w.s.HeadAttrib = grid(heads)
	vals := make([]float64, len(w.s.LogitAttrib))
	for i, c := range w.s.LogitAttrib {
		vals[i] = c.Value
	}
	w.section("Direct logit attribution", fmt.Sprintf("The model's top prediction after the prompt is %q (logit %.3f). Each component's direct contribution to that logit, through the final LayerNorm scale of the run; the parts sum to the logit.", w.s.TopPrediction.Str, logit),
		report.BarChart{Title: "logit attribution by component", XLabel: "component", YLabel: "logit", Labels: dla.Labels, Values: vals},
		w.headHeatmap("logit attribution by head", heads, report.ScaleDiverging))
	return nil
}

func (w *workflow) ablation(ctx context.Context, opts []Option) error {
	a, err := AblationTable(ctx, w.m, w.prompt, ZeroAblation, only(opts, optProgress)...)
	if err != nil {
		return err
	}
	w.s.AblationChange = grid(a.Change)
	w.section("Zero ablation", fmt.Sprintf("The change in the prompt's mean next-token loss (%.3f) when each head's output is zeroed: positive means the head helps.", a.Base),
		w.headHeatmap("loss change when the head is zero-ablated", a.Change, report.ScaleDiverging))
	return nil
}

func (w *workflow) lens(ctx context.Context, _ []Option) error {
	ll, err := LogitLens(ctx, w.m, w.prompt)
	if err != nil {
		return err
	}
	per := ll.LogProbs.Shape[1] * ll.LogProbs.Shape[2]
	ys := make([]float64, len(ll.Labels))
	for i, label := range ll.Labels {
		sum := 0.0
		for _, v := range ll.LogProbs.Data[i*per : (i+1)*per] {
			sum += v
		}
		ys[i] = sum / float64(per)
		w.s.LogitLens = append(w.s.LogitLens, Labelled{label, ys[i]})
	}
	w.section("Logit lens", "The mean log-probability of the prompt's next tokens if the model stopped before each layer (the residual stream through the final LayerNorm and the unembedding).",
		report.LineChart{Title: "next-token log-prob by layer", XLabel: "layer (0 = embeddings)", YLabel: "log-prob", Series: []report.Series{{Name: "mean", Y: ys}}})
	return nil
}

func (w *workflow) patterns(ctx context.Context, _ []Option) error {
	out, cache, err := w.m.RunWithCache(ctx, hookedmodel.Tokens(w.prompt), hookedmodel.NamesFilter(func(n string) bool { return strings.HasSuffix(n, "hook_pattern") }), hookedmodel.Return(hookedmodel.ReturnNone))
	if err != nil {
		return err
	}
	defer out.Free()
	defer cache.Free()
	var views []report.View
	for l := range len(w.m.Blocks) {
		p, err := cache.Get("pattern", l)
		if err != nil {
			return err
		}
		vals, err := gotch.ToSlice[float64](p)
		if err != nil {
			return err
		}
		nh, n := int(p.Size(1)), int(p.Size(2))
		v := report.Attention{Title: fmt.Sprintf("layer %d attention patterns", l), Tokens: w.labels}
		for h := range nh {
			v.Heads = append(v.Heads, HeadLabel(l, h))
			pat := make([][]float64, n)
			for q := range n {
				pat[q] = vals[(h*n+q)*n : (h*n+q+1)*n]
			}
			v.Patterns = append(v.Patterns, pat)
		}
		views = append(views, v)
	}
	// Patterns first: they are what people look at.
	w.rep.Sections = append([]report.Section{{Title: "Attention patterns", Text: "Each head's attention on the prompt: rows are queries, columns keys. Hover a panel to enlarge it.", Views: views}}, w.rep.Sections...)
	return nil
}

// tokenLabels shows tokens as text when the model has a tokenizer, else as ids.
func tokenLabels(m *hookedmodel.HookedTransformer, ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprint(id)
		if m.Tokenizer != nil {
			if s, err := m.Tokenizer.Token(int(id)); err == nil {
				out[i] = s
			}
		}
	}
	return out
}

// grid is a [rows cols] table as nested slices.
func grid(t *Table) [][]float64 {
	rows, cols := t.Shape[0], t.Shape[1]
	g := make([][]float64, rows)
	for r := range g {
		g[r] = t.Data[r*cols : (r+1)*cols]
	}
	return g
}

// grid4 is a [layer head layer head] table as nested slices.
func grid4(t *Table) [][][][]float64 {
	a, b, c, d := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	g := make([][][][]float64, a)
	for i := range a {
		g[i] = make([][][]float64, b)
		for j := range b {
			g[i][j] = make([][]float64, c)
			for k := range c {
				off := ((i*b+j)*c + k) * d
				g[i][j][k] = t.Data[off : off+d]
			}
		}
	}
	return g
}
