package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newAblateCmd() *cobra.Command {
	var mf modelFlags
	var in inputFlags
	var head, mode, out string
	cmd := &cobra.Command{
		Use:   "ablate",
		Short: "Ablate one attention head and write the logits and losses with and without it",
		Long: "ablate runs the model clean and with head L.H ablated at blocks.L.attn.hook_z (zero, or the " +
			"head's mean over batch and positions), and writes logits, loss_per_token and tokens of the " +
			"ablated run plus clean_logits and clean_loss_per_token into one safetensors file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			layer, h, err := parseHead(head)
			if err != nil {
				return err
			}
			if mode != "zero" && mode != "mean" {
				return fmt.Errorf("--mode %q: want zero or mean", mode)
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
			ablated, err := m.RunWithHooks(cmd.Context(), input, []hookedmodel.Hook{ablateHead(layer, h, mode)}, opts...)
			if err != nil {
				return err
			}
			defer ablated.Free()
			ts := map[string]*gotch.Tensor{
				"logits": ablated.Logits, "loss_per_token": ablated.Loss, "tokens": ablated.Tokens,
				"clean_logits": clean.Logits, "clean_loss_per_token": clean.Loss,
			}
			keys := []string{"logits", "loss_per_token", "tokens", "clean_logits", "clean_loss_per_token"}
			if err := hookedmodel.WriteSafetensors(out, keys, ts, map[string]string{"head": head, "mode": mode}); err != nil {
				return err
			}
			var before, after float64
			if err := gotch.Try(func() {
				before, after = clean.Loss.MustMean().MustItem(), ablated.Loss.MustMean().MustItem()
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
	cmd.Flags().StringVar(&mode, "mode", "zero", "zero or mean")
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

// ablateHead replaces one head's z [batch pos head d_head] by zeros or by
// its mean over batch and positions, in place.
func ablateHead(layer, head int, mode string) hookedmodel.Hook {
	name := fmt.Sprintf("blocks.%d.attn.hook_z", layer)
	return hookedmodel.FwdHook(hookedmodel.Name(name), func(z *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		return nil, gotch.Try(func() {
			zh := z.MustSelect(2, int64(head)) // [batch pos d_head]
			defer zh.Free()
			if mode == "zero" {
				zh.MustZero_()
				return
			}
			mean := zh.MustMeanDims([]int64{0, 1}, true)
			defer mean.Free()
			zh.MustCopy_(mean)
		})
	})
}
