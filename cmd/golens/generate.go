package main

import (
	"fmt"

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
			m, err := mf.load(cmd)
			if err != nil {
				return err
			}
			defer m.Free()
			if m.Tokenizer == nil {
				return fmt.Errorf("model %s has no tokenizer to read a prompt", m.Cfg.ModelName)
			}
			opts := []hookedmodel.GenOption{hookedmodel.MaxNewTokens(maxNew), hookedmodel.Temperature(temperature), hookedmodel.Seed(seed)}
			if topK > 0 {
				opts = append(opts, hookedmodel.TopK(topK))
			}
			if topP > 0 {
				opts = append(opts, hookedmodel.TopP(topP))
			}
			rows, err := m.Generate(cmd.Context(), hookedmodel.Text(prompt), opts...)
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
	fl.IntVar(&maxNew, "max-new-tokens", 20, "how many tokens to generate at most")
	fl.Float64Var(&temperature, "temperature", 1, "sampling temperature; 0 is greedy")
	fl.IntVar(&topK, "top-k", 0, "sample among the k most likely tokens")
	fl.Float64Var(&topP, "top-p", 0, "sample among the most likely tokens holding this much probability")
	fl.Uint64Var(&seed, "seed", 0, "sampling seed")
	cmd.MarkFlagRequired("prompt")
	return cmd
}
