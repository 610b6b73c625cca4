package main

import (
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newCacheCmd() *cobra.Command {
	var mf modelFlags
	var in inputFlags
	var names, out string
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Cache activations under their TransformerLens names into a safetensors file",
		Long: "cache runs the model and writes every cached activation under its TransformerLens name, " +
			"plus logits, loss_per_token [batch pos-1] and tokens, into one safetensors file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var filter hookedmodel.Filter
			if names != "" {
				f, err := hookedmodel.Regexp(names)
				if err != nil {
					return fmt.Errorf("--names: %w", err)
				}
				filter = f // one that matches no hook point fails the run, naming the nearest
			}
			m, input, done, err := loadWithInput(cmd, &mf, &in)
			if err != nil {
				return err
			}
			defer done()
			res, cache, err := m.RunWithCache(cmd.Context(), input, hookedmodel.NamesFilter(filter),
				hookedmodel.Return(hookedmodel.ReturnBoth), hookedmodel.LossPerToken())
			if err != nil {
				return err
			}
			defer res.Free()
			defer cache.Free()
			ts := map[string]*gotch.Tensor{"logits": res.Logits, "loss_per_token": res.Loss, "tokens": res.Tokens}
			keys := append(cache.Keys(), "logits", "loss_per_token", "tokens")
			for _, k := range cache.Keys() {
				ts[k] = cache.MustGet(k)
			}
			if err := hookedmodel.WriteSafetensors(out, keys, ts, map[string]string{"model": m.Cfg.ModelName}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d activations (%.1f MB) and logits, loss_per_token, tokens to %s\n",
				cache.Len(), float64(cache.Bytes())/1e6, out)
			return nil
		},
	}
	mf.register(cmd)
	in.register(cmd, true)
	cmd.Flags().StringVar(&names, "names", "", "cache only hook points matching this regular expression")
	cmd.Flags().StringVar(&out, "out", "", "output .safetensors file")
	cmd.MarkFlagRequired("out")
	return cmd
}
