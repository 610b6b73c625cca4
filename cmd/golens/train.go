package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/backend"
	"github.com/golens/golens/backend/dist"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/train"
	"github.com/spf13/cobra"
)

func newTrainCmd() *cobra.Command {
	var config, out, device string
	var steps int
	var force bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a HookedTransformer from a config file; resumes from the latest checkpoint in --out",
		Long: "train trains the model of --config (JSON with \"model\", \"train\" and \"data\") into --out: " +
			"checkpoints, metrics.jsonl (with each head's previous-token and induction scores at every " +
			"evaluation) and model.safetensors. Ctrl-C or SIGTERM stops after the current step with a checkpoint " +
			"and exits 1; the same command resumes. A non-empty --out that holds no run of this config is refused " +
			"unless --force; a run's --out is locked while it trains. Started by a launcher (torchrun, srun), the ranks " +
			"train data-parallel: each takes its share of every batch, the gradients are averaged, rank 0 writes --out.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := train.LoadConfig(config)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("steps") {
				if steps <= 0 {
					return fmt.Errorf("--steps must be positive, got %d", steps)
				}
				cfg.Train.Steps = steps
			}
			if device, err = launchedDevice(device); err != nil {
				return err
			}
			b, err := backend.Resolve(device)
			if err != nil {
				return err
			}
			opts := []train.Option{train.OnDevice(b.Device()), train.WithProgress(cmd.ErrOrStderr()),
				train.HeadScore("induction", inductionScores), train.HeadScore("previous_token", previousTokenScores)}
			if force {
				opts = append(opts, train.Force())
			}
			g, err := joinLaunched(cmd.Context(), b.Device(), timeout, cfg)
			if err != nil {
				return err
			}
			if g != nil {
				defer g.Close()
				opts = append(opts, train.DataParallel(g))
			}
			res, err := train.Run(cmd.Context(), cfg, out, opts...)
			if errors.Is(err, context.Canceled) && res != nil {
				return fmt.Errorf("interrupted at step %d of %d; checkpoint %s: run the same command again to resume", res.Step, cfg.Train.Steps, res.Checkpoint)
			}
			if err != nil {
				return err
			}
			if g != nil && g.Rank() != 0 { // rank 0 reports
				return g.Close()
			}
			if res.Eval == nil { // resumed a finished run
				fmt.Fprintf(cmd.OutOrStdout(), "already trained %d steps; model %s\n", res.Step, res.Model)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trained %d steps; held-out loss %.4f; model %s\n", res.Step, res.Eval.Loss, res.Model)
			return g.Close()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&config, "config", "", "training config JSON")
	fl.StringVar(&out, "out", "", "output folder (resumed when it holds checkpoints of the same run)")
	fl.StringVar(&device, "device", "auto", "auto, cpu, cuda, cuda:N or mps")
	fl.IntVar(&steps, "steps", 0, "number of steps (default: the config's)")
	fl.BoolVar(&force, "force", false, "write into a non-empty --out that holds no run of this config")
	fl.DurationVar(&timeout, "timeout", dist.DefaultTimeout, "under a launcher (torchrun, srun): how long to wait for the other ranks and each collective")
	cmd.MarkFlagRequired("config")
	cmd.MarkFlagRequired("out")
	return cmd
}

// inductionScores is each head's induction score on repeated random
// tokens, for the training curves.
func inductionScores(ctx context.Context, m *hookedmodel.HookedTransformer) ([][]float64, error) {
	ind, err := analysis.Induction(ctx, m, analysis.SeqLen(scoreSeqLen(m)), analysis.WithSeed(1))
	if err != nil {
		return nil, err
	}
	return tableRows(ind.Scores), nil
}

// previousTokenScores is each head's previous-token score (TransformerLens's
// detector) on repeated random tokens.
func previousTokenScores(ctx context.Context, m *hookedmodel.HookedTransformer) ([][]float64, error) {
	tok, err := analysis.RepeatedTokens(m, analysis.BatchSize(1), analysis.SeqLen(scoreSeqLen(m)), analysis.WithSeed(2))
	if err != nil {
		return nil, err
	}
	defer tok.Free()
	t, err := analysis.DetectHead(ctx, m, tok, analysis.PreviousTokenHead)
	if err != nil {
		return nil, err
	}
	return tableRows(t), nil
}

// scoreSeqLen fits [BOS, seq, seq] into the model's context.
func scoreSeqLen(m *hookedmodel.HookedTransformer) int { return min(20, (m.Cfg.NCtx-1)/2) }

func tableRows(t *analysis.Table) [][]float64 {
	rows := make([][]float64, t.Shape[0])
	for r := range rows {
		rows[r] = t.Data[r*t.Shape[1] : (r+1)*t.Shape[1]]
	}
	return rows
}
