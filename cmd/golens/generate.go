package main

import (
	"fmt"
	"math"

	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newGenerateCmd() *cobra.Command {
	var mf modelFlags
	var prompt string
	var maxNew, topK int
	var temperature, topP float64
	var seed uint64
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate text from a prompt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			if err := firstError(atLeast("max-new-tokens", maxNew, 0), inRange("temperature", temperature, 0, math.Inf(1), false)); err != nil {
				return err
			}
			opts := []hookedmodel.GenOption{hookedmodel.MaxNewTokens(maxNew), hookedmodel.Temperature(temperature), hookedmodel.Seed(seed)}
			if fl.Changed("top-k") {
				if err := atLeast("top-k", topK, 1); err != nil {
					return err
				}
				opts = append(opts, hookedmodel.TopK(topK))
			}
			if fl.Changed("top-p") {
				if err := inRange("top-p", topP, 0, 1, true); err != nil {
					return err
				}
				if fl.Changed("top-k") { // TransformerLens's sampling ignores top_p then
					return fmt.Errorf("--top-p %g: applies only without --top-k", topP)
				}
				opts = append(opts, hookedmodel.TopP(topP))
			}
			if temperature == 0 && (fl.Changed("top-k") || fl.Changed("top-p")) {
				return fmt.Errorf("--top-k and --top-p choose among tokens to sample; --temperature 0 samples none (it takes the most likely)")
			}
			m, err := mf.load(cmd)
			if err != nil {
				return err
			}
			defer m.Free()
			ids, _, err := (&inputFlags{prompt: prompt}).rows(m)
			if err != nil {
				return err
			}
			if n := len(ids[0]); n+maxNew > m.Cfg.NCtx {
				return fmt.Errorf("--prompt of %d tokens and --max-new-tokens %d: %d positions exceed the model's context of n_ctx=%d", n, maxNew, n+maxNew, m.Cfg.NCtx)
			}
			tokens, err := tensorOf(ids, m.Device())
			if err != nil {
				return err
			}
			defer tokens.Free()
			rows, err := m.Generate(cmd.Context(), hookedmodel.Tokens(tokens), opts...)
			if err != nil {
				return err
			}
			text, err := m.Tokenizer.ToString(rows[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), text)
			return err
		},
	}
	mf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&prompt, "prompt", "", "the text to continue")
	fl.IntVar(&maxNew, "max-new-tokens", 20, "how many tokens to generate at most (0 or more; the prompt and these must fit the model's n_ctx)")
	fl.Float64Var(&temperature, "temperature", 1, "sampling temperature, 0 or more; 0 is greedy")
	fl.IntVar(&topK, "top-k", 0, "sample among the k most likely tokens (k at least 1; default all)")
	fl.Float64Var(&topP, "top-p", 0, "sample among the most likely tokens holding this much probability, in (0, 1] (default all; not with --top-k)")
	fl.Uint64Var(&seed, "seed", 0, "sampling seed")
	cmd.MarkFlagRequired("prompt")
	return cmd
}
