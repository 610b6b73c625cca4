package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newAblateCmd() *cobra.Command {
	var mf modelFlags
	var in inputFlags
	var head, mode, out, refFile string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "ablate",
		Short: "Ablate one attention head and write the logits and losses with and without it",
		Long: "ablate runs the model clean and with head L.H ablated at blocks.L.attn.hook_z, and writes logits, " +
			"loss_per_token and tokens of the ablated run plus clean_logits and clean_loss_per_token into one " +
			"safetensors file. It is analysis.NewAblation: --mode zero sets the head's z to zero; mean sets it to " +
			"its mean over the batch rows and positions of the reference tokens; resample sets each row's to that " +
			"of a reference row drawn with --seed. The reference tokens are --reference-tokens-file, or the input's.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			layer, h, err := parseHead(head)
			if err != nil {
				return err
			}
			am, err := analysis.ParseAblationMode(mode)
			if err != nil {
				return fmt.Errorf("--mode: %w", err)
			}
			if refFile != "" && am == analysis.ZeroAblation {
				return fmt.Errorf("--reference-tokens-file: zero ablation uses no reference")
			}
			m, input, done, err := loadWithInput(cmd, &mf, &in)
			if err != nil {
				return err
			}
			defer done()
			if layer >= m.Cfg.NLayers || h >= m.Cfg.NHeads {
				return fmt.Errorf("--head %s: the model has %d layers of %d heads", head, m.Cfg.NLayers, m.Cfg.NHeads)
			}
			opts := []hookedmodel.RunOption{hookedmodel.Return(hookedmodel.ReturnBoth), hookedmodel.LossPerToken()}
			clean, err := m.Forward(cmd.Context(), input, opts...)
			if err != nil {
				return err
			}
			defer clean.Free()
			ref := clean.Tokens
			if refFile != "" {
				rf := inputFlags{tokensFile: refFile, truncate: in.truncate}
				if ref, err = rf.tokens(m); err != nil {
					return fmt.Errorf("--reference-tokens-file: %w", err)
				}
				defer ref.Free()
			}
			abl, err := analysis.NewAblation(cmd.Context(), m, am, []analysis.Component{analysis.Head(layer, h)},
				analysis.Reference(ref), analysis.WithSeed(seed))
			if err != nil {
				return err
			}
			defer abl.Close()
			ablated, err := m.RunWithHooks(cmd.Context(), input, abl.Hooks(), opts...)
			if err != nil {
				return err
			}
			defer ablated.Free()
			ts := map[string]*gotch.Tensor{
				"logits": ablated.Logits, "loss_per_token": ablated.Loss, "tokens": ablated.Tokens,
				"clean_logits": clean.Logits, "clean_loss_per_token": clean.Loss,
			}
			keys := []string{"logits", "loss_per_token", "tokens", "clean_logits", "clean_loss_per_token"}
			meta := map[string]string{"head": head, "mode": mode}
			if am != analysis.ZeroAblation {
				meta["reference"] = "input"
				if refFile != "" {
					meta["reference"] = refFile
				}
			}
			if am == analysis.ResampleAblation {
				meta["seed"] = strconv.FormatUint(seed, 10)
			}
			if err := hookedmodel.WriteSafetensors(out, keys, ts, meta); err != nil {
				return err
			}
			var before, after float64
			if err := gotch.Try(func() {
				s := gotch.NewScope() // for the means: ops on the outputs' lent losses are ours
				defer s.Close()
				before, after = s.Attach(clean.Loss.MustMean()).MustItem(), s.Attach(ablated.Loss.MustMean()).MustItem()
			}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s-ablating head %d.%d: loss %.4f -> %.4f (%+.4f); wrote %s\n", mode, layer, h, before, after, after-before, out)
			return nil
		},
	}
	mf.register(cmd)
	in.register(cmd, true)
	cmd.Flags().StringVar(&head, "head", "", "the head to ablate as LAYER.HEAD, e.g. 1.4")
	cmd.Flags().StringVar(&mode, "mode", "zero", "zero, mean or resample (analysis.NewAblation's modes)")
	cmd.Flags().StringVar(&refFile, "reference-tokens-file", "", "JSON token file whose activations mean and resample ablation use (default: the input's tokens)")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed of resample ablation's draws")
	cmd.Flags().StringVar(&out, "out", "", "output .safetensors file")
	cmd.MarkFlagRequired("head")
	cmd.MarkFlagRequired("out")
	return cmd
}

func parseHead(s string) (layer, head int, err error) {
	l, h, ok := strings.Cut(s, ".")
	if ok {
		layer, err = strconv.Atoi(l)
		if err == nil {
			head, err = strconv.Atoi(h)
		}
	}
	if !ok || err != nil || layer < 0 || head < 0 {
		return 0, 0, fmt.Errorf("--head %q: want LAYER.HEAD, e.g. 1.4", s)
	}
	return layer, head, nil
}
