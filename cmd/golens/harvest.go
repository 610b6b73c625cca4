package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/golens/golens/analysis/harvest"
	"github.com/golens/golens/backend/dist"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newHarvestCmd() *cobra.Command {
	var mf modelFlags
	var data, format, hooks, out, outDType string
	var seqLen, batch, shardExamples int
	var truncate, force bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "harvest",
		Short: "Write chosen activations over a token dataset as sharded safetensors, one row per token",
		Long: "harvest runs the model over --data and writes the activations of the hooks --hooks selects into --out: " +
			"shard-NNNNNN.safetensors files (each hook as [rows ...], with example, position and token [rows]) and manifest.json. " +
			"An interrupted harvest resumes where it stopped when run again with the same flags. " +
			"Started by a launcher (torchrun, srun), the ranks join one group and share the shards: " +
			"the output is the same whatever their number (the folder must be shared); with --device cuda each rank uses cuda:LOCAL_RANK.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct {
				name string
				v    int
			}{{"batch", batch}, {"shard-examples", shardExamples}} {
				if err := atLeast(f.name, f.v, 1); err != nil {
					return err
				}
			}
			dt, err := gotch.ParseDType(outDType)
			if err != nil || (dt != gotch.Float && dt != gotch.Half && dt != gotch.BFloat16) {
				return fmt.Errorf("--out-dtype %q: want float32, float16 or bfloat16", outDType)
			}
			if mf.device, err = launchedDevice(mf.device); err != nil {
				return err
			}
			m, err := mf.load(cmd)
			if err != nil {
				return err
			}
			defer m.Free()
			settings := []any{m.Cfg, data, format, seqLen, hooks, batch, shardExamples, outDType, truncate}
			g, err := joinLaunched(cmd.Context(), m.Device(), timeout, settings)
			if err != nil {
				return err
			}
			ds, err := openData(m, data, format, seqLen)
			if err != nil {
				return err
			}
			if c, ok := ds.(io.Closer); ok {
				defer c.Close()
			}
			opts := []harvest.Option{harvest.Hooks(hooks), harvest.Batch(batch), harvest.ShardExamples(shardExamples), harvest.DType(dt)}
			if g != nil {
				defer g.Close()
				opts = append(opts, harvest.Rank(g.Rank(), g.Size(), g.Barrier))
			}
			if g == nil || g.Rank() == 0 {
				opts = append(opts, harvest.WithProgress(cmd.ErrOrStderr()))
			}
			if truncate {
				opts = append(opts, harvest.Truncate())
			}
			if force {
				opts = append(opts, harvest.Force())
			}
			start := time.Now()
			man, err := harvest.Run(cmd.Context(), m, ds, out, opts...)
			elapsed := time.Since(start) // on rank 0, until every rank is done
			if err != nil {
				return err
			}
			if man == nil { // another rank than 0: rank 0 reports
				return g.Close()
			}
			var names []string
			for _, h := range man.Hooks {
				names = append(names, fmt.Sprintf("%s %v", h.Name, h.RowShape))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "harvested %d rows from %d examples in %d shards to %s in %.1f s (%.0f rows/s): %s\n",
				man.Rows, man.Examples, len(man.Shards), out, elapsed.Seconds(), float64(man.Rows)/elapsed.Seconds(), strings.Join(names, ", "))
			if g != nil {
				return g.Close()
			}
			return nil
		},
	}
	mf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&data, "data", "", "the dataset: a .jsonl file (one {\"text\"}, {\"ids\"} or [ids] per line) or a flat file of token ids")
	fl.StringVar(&format, "format", "", "jsonl, uint16 or uint32 (default: jsonl for .jsonl files; a binary file needs it)")
	fl.IntVar(&seqLen, "seq-len", 0, "tokens per example of a binary dataset (default: the model's n_ctx)")
	fl.StringVar(&hooks, "hooks", "", "regular expression selecting the hook points, e.g. 'blocks\\.6\\.hook_resid_post'")
	fl.StringVar(&out, "out", "", "output directory (new, or an interrupted harvest of the same flags)")
	fl.StringVar(&outDType, "out-dtype", "float32", "dtype of the written activations: float32, float16 or bfloat16")
	fl.IntVar(&batch, "batch", 8, "examples per forward pass")
	fl.IntVar(&shardExamples, "shard-examples", 256, "examples per shard file")
	fl.BoolVar(&truncate, "truncate", false, "cut examples longer than the model's n_ctx (refused otherwise)")
	fl.BoolVar(&force, "force", false, "write into a directory holding other files or a harvest of other settings")
	fl.DurationVar(&timeout, "timeout", dist.DefaultTimeout, "under a launcher (torchrun, srun): how long to wait for the other ranks and each collective")
	for _, f := range []string{"data", "hooks", "out"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

// openData opens --data in its --format.
func openData(m *hookedmodel.HookedTransformer, path, format string, seqLen int) (harvest.Dataset, error) {
	if format == "" && strings.HasSuffix(path, ".jsonl") {
		format = "jsonl"
	}
	if seqLen == 0 {
		seqLen = m.Cfg.NCtx
	}
	switch format {
	case "jsonl":
		return harvest.OpenJSONL(path, func(text string) ([]int64, error) {
			tok, err := m.ToTokens([]string{text})
			if err != nil {
				return nil, err
			}
			defer tok.Free()
			return gotch.ToSlice[int64](tok)
		})
	case "uint16":
		return harvest.OpenBinary(path, 2, seqLen)
	case "uint32":
		return harvest.OpenBinary(path, 4, seqLen)
	case "":
		return nil, fmt.Errorf("--data %s: say its --format (jsonl, uint16 or uint32)", path)
	}
	return nil, fmt.Errorf("--format %q: want jsonl, uint16 or uint32", format)
}
