package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newGenerateCmd() *cobra.Command {
	var mf modelFlags
	var in inputFlags
	var maxNew, topK int
	var temperature, topP float64
	var seed uint64
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate text from a prompt (or token ids from a tokens file)",
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
			ids, flag, err := in.rows(m)
			if err != nil {
				return err
			}
			if n := len(ids[0]); n+maxNew > m.Cfg.NCtx {
				return fmt.Errorf("%s of %d tokens and --max-new-tokens %d: %d positions exceed the model's context of n_ctx=%d", flag, n, maxNew, n+maxNew, m.Cfg.NCtx)
			}
			if m.Tokenizer == nil {
				// no tokenizer to name the end-of-sequence token: generate all
				opts = append(opts, hookedmodel.StopAtEOS(false))
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
			return printGenerated(cmd.OutOrStdout(), m, rows)
		},
	}
	mf.register(cmd)
	in.registerInput(cmd, true)
	fl := cmd.Flags()
	fl.IntVar(&maxNew, "max-new-tokens", 20, "how many tokens to generate at most (0 or more; the prompt and these must fit the model's n_ctx); a model without a tokenizer generates all of them")
	fl.Float64Var(&temperature, "temperature", 1, "sampling temperature, 0 or more; 0 is greedy")
	fl.IntVar(&topK, "top-k", 0, "sample among the k most likely tokens (k at least 1; default all)")
	fl.Float64Var(&topP, "top-p", 0, "sample among the most likely tokens holding this much probability, in (0, 1] (default all; not with --top-k)")
	fl.Uint64Var(&seed, "seed", 0, "sampling seed")
	return cmd
}

// printGenerated prints each generated row (prompt included) on a line:
// as text with the model's tokenizer, else (a model golens has no
// tokenizer for, such as Gemma's) as a JSON array of token ids.
func printGenerated(w io.Writer, m *hookedmodel.HookedTransformer, rows [][]int64) error {
	for _, r := range rows {
		var line string
		if m.Tokenizer != nil {
			text, err := m.Tokenizer.ToString(r)
			if err != nil {
				return err
			}
			line = text
		} else {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			line = string(b)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
