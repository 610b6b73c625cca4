package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newAnalyzeCmd() *cobra.Command {
	var mf modelFlags
	var in inputFlags
	var out string
	var seqLen int
	var seed uint64
	var force bool
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Run the circuits workflow and write a report: DIR/index.html, PNGs and summary.json",
		Long: "analyze runs the head detectors on the prompt (repeated random tokens without one), induction " +
			"scores on repeated random tokens, direct logit attribution of the top prediction, a zero-ablation " +
			"loss table over all heads, a logit lens and the composition scores, and writes DIR/index.html, " +
			"a PNG per figure and summary.json.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := atLeast("seq-len", seqLen, 1); err != nil && cmd.Flags().Changed("seq-len") {
				return err
			}
			if err := checkReportDir(out, force); err != nil {
				return err
			}
			m, err := mf.load(cmd)
			if err != nil {
				return err
			}
			defer m.Free()
			if !cmd.Flags().Changed("seq-len") {
				seqLen = max(1, min(20, (m.Cfg.NCtx-1)/2)) // [BOS, seq, seq] fits the context
			}
			prompt, err := analyzePrompt(m, &in, seqLen, seed)
			if err != nil {
				return err
			}
			defer prompt.Free()
			return analyzeTo(cmd, m, prompt, out, analysis.SeqLen(seqLen), analysis.WithSeed(seed))
		},
	}
	mf.register(cmd)
	in.register(cmd, false)
	cmd.Flags().StringVar(&out, "out", "", "the report folder")
	cmd.Flags().IntVar(&seqLen, "seq-len", 20, "random tokens per repeat for the induction measurements (at least 1; 1+2·seq-len must fit the model's n_ctx; by default 20, or as many as fit)")
	cmd.Flags().BoolVar(&force, "force", false, "write into a non-empty --out that holds no golens report")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed of the random tokens")
	cmd.MarkFlagRequired("out")
	return cmd
}

// analyzePrompt is the prompt's first row, or one row of repeated random
// tokens when no prompt is given.
func analyzePrompt(m *hookedmodel.HookedTransformer, in *inputFlags, seqLen int, seed uint64) (*gotch.Tensor, error) {
	if !in.given() {
		return analysis.RepeatedTokens(m, analysis.BatchSize(1), analysis.SeqLen(seqLen), analysis.WithSeed(seed))
	}
	rows, err := in.tokens(m)
	if err != nil {
		return nil, err
	}
	defer rows.Free()
	return rows.Narrow(0, 0, 1)
}

// analyzeTo runs the workflow, writes the report folder and prints a
// short summary.
func analyzeTo(cmd *cobra.Command, m *hookedmodel.HookedTransformer, prompt *gotch.Tensor, dir string, opts ...analysis.Option) error {
	s, rep, err := analysis.Workflow(cmd.Context(), m, prompt, append(opts, analysis.WithProgress(cmd.ErrOrStderr()))...)
	if err != nil {
		return err
	}
	if err := writeReport(dir, rep, s); err != nil {
		return err
	}
	printSummary(cmd.OutOrStdout(), s)
	fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", filepath.Join(dir, "index.html"))
	return nil
}

func printSummary(w io.Writer, s *analysis.Summary) {
	top := func(name string, score func(analysis.HeadScores) float64) {
		best := s.Heads[0]
		for _, h := range s.Heads {
			if score(h) > score(best) {
				best = h
			}
		}
		fmt.Fprintf(w, "top %-15s head %d.%d  score %.3f\n", name, best.Layer, best.Head, score(best))
	}
	top("previous-token", func(h analysis.HeadScores) float64 { return h.PreviousToken })
	top("induction", func(h analysis.HeadScores) float64 { return h.Induction })
	top("duplicate-token", func(h analysis.HeadScores) float64 { return h.DuplicateToken })
	fmt.Fprintf(w, "repeated random tokens: loss %.3f on the first repeat, %.3f on the second\n", s.RepeatLoss.First, s.RepeatLoss.Second)
	fmt.Fprintf(w, "top prediction after the prompt: %q\n", s.TopPrediction.Str)
}
