package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/golens/golens/backend"
	"github.com/golens/golens/bench"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	var (
		mf                      modelFlags
		shapes, workloads       []string
		dtypes, batches, seqs   []string
		reps, warmup, newTokens int
		asJSON                  bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark workloads on model shapes, each checked against the float64 reference",
		Long: `bench runs the harness's workloads (` + strings.Join(bench.Workloads(), ", ") + `)
on random-weight models of the grid's shapes (` + shapeNames() + `), or on a
checkpoint with --model, over every batch × seq given. Each row is timed
(median of --reps after --warmup) and checked on a small input against
the float64 reference; one that fails the check reports no timings. --json prints one JSON object per row,
the format bench/HARNESS.md fixes for golens and its peers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := firstError(atLeast("reps", reps, 1), atLeast("warmup", warmup, 0), atLeast("new-tokens", newTokens, 1)); err != nil {
				return err
			}
			g := bench.Grid{Shapes: shapes, Workloads: workloads, DTypes: dtypes}
			if len(g.DTypes) == 0 {
				g.DTypes = []string{"float32"}
			}
			if len(workloads) == 1 && workloads[0] == "all" {
				g.Workloads = bench.Workloads()
			}
			var err error
			if g.Sizes, err = sizes(batches, seqs); err != nil {
				return err
			}
			if mf.model != "" {
				if cmd.Flags().Changed("shape") {
					return fmt.Errorf("give --model or --shape, not both")
				}
				switch len(dtypes) {
				case 0:
				case 1:
					mf.dtype = dtypes[0]
				default:
					return fmt.Errorf("--dtype: a checkpoint loads in one dtype, not %d", len(dtypes))
				}
				m, err := mf.load(cmd)
				if err != nil {
					return err
				}
				defer m.Free()
				g.Model = m
			} else {
				b, err := backend.Resolve(mf.device)
				if err != nil {
					return err
				}
				for _, d := range g.DTypes {
					dt, err := parseDType(d)
					if err != nil {
						return err
					}
					if err := dtypeRuns(b, dt); err != nil {
						return fmt.Errorf("--dtype %s: %w", d, err)
					}
				}
				g.Device = b.Device()
			}
			var rows []bench.Row
			total, failed := 0, 0
			enc := json.NewEncoder(cmd.OutOrStdout())
			err = bench.Run(cmd.Context(), g, func(r bench.Row) error {
				total++
				if r.Status != bench.OK {
					failed++
				}
				if asJSON {
					return enc.Encode(r)
				}
				rows = append(rows, r)
				return nil
			}, bench.Reps(reps), bench.Warmup(warmup), bench.NewTokens(newTokens), bench.WithProgress(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			if !asJSON {
				if err := printRows(cmd, rows); err != nil {
					return err
				}
			}
			if failed > 0 { // after every row: a failed row is a result too
				return fmt.Errorf("bench: %d of %d rows failed (status ERROR or WRONG)", failed, total)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&mf.model, "model", "", "a checkpoint directory or file, or a model name (gpt2, pythia-70m, ...), instead of --shape")
	fl.StringVar(&mf.device, "device", "auto", "auto, cpu, cuda, cuda:N or mps")
	fl.StringSliceVar(&shapes, "shape", []string{"toy"}, "shapes, comma-separated: "+shapeNames())
	fl.StringSliceVar(&workloads, "workload", []string{"forward"}, "workloads, comma-separated, or all")
	fl.StringSliceVar(&dtypes, "dtype", nil, "float32, float16, bfloat16, comma-separated (default float32; with --model one, default the checkpoint's)")
	fl.StringSliceVar(&batches, "batch", []string{"1"}, "batch sizes, comma-separated")
	fl.StringSliceVar(&seqs, "seq", []string{"32"}, "sequence lengths, comma-separated (every batch × every seq)")
	fl.IntVar(&reps, "reps", 5, "timed repetitions per row (at least 1)")
	fl.IntVar(&warmup, "warmup", 2, "untimed repetitions before them (0 or more)")
	fl.IntVar(&newTokens, "new-tokens", 16, "tokens the generation workloads add (at least 1)")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object per row")
	cmd.AddCommand(newBenchTableCmd())
	return cmd
}

func shapeNames() string {
	var names []string
	for _, s := range bench.Shapes() {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// sizes is every batch × every seq.
func sizes(batches, seqs []string) ([]bench.Size, error) {
	atoi := func(flag, s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("--%s %q: want a whole number of at least 1", flag, s)
		}
		return n, nil
	}
	var out []bench.Size
	for _, b := range batches {
		nb, err := atoi("batch", b)
		if err != nil {
			return nil, err
		}
		for _, s := range seqs {
			ns, err := atoi("seq", s)
			if err != nil {
				return nil, err
			}
			out = append(out, bench.Size{Batch: nb, Seq: ns})
		}
	}
	return out, nil
}

func printRows(cmd *cobra.Command, rows []bench.Row) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tshape\tbatch×seq\tdtype\tdevice\tstatus\tmedian ms\tthroughput\tTFLOP/s\tpeak MiB\tmax rel err\t")
	for _, r := range rows {
		f := func(p *float64, format string) string {
			if p == nil {
				return "-"
			}
			return fmt.Sprintf(format, *p)
		}
		tput := "-"
		if r.Throughput != nil {
			tput = fmt.Sprintf("%.4g %s", *r.Throughput, r.ThroughputUnit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%dx%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Workload, r.Shape, r.Batch, r.Seq, r.DType, r.Device,
			r.Status, f(r.MedianMS, "%.3f"), tput, f(r.TFLOPs, "%.3f"), f(r.PeakMemMB, "%.0f"), f(r.MaxRelErr, "%.2g"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Status != bench.OK {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s %s %dx%d: %s: %s\n", r.Workload, r.Shape, r.Batch, r.Seq, r.Status, r.Error)
		}
	}
	return nil
}

func newBenchTableCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "table RESULTS.jsonl...",
		Short: "Write the markdown table of golens's rows against its peers' (ratios of medians)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			var rows []bench.Row
			for _, name := range files {
				f, err := safefile.Open(name)
				if err != nil {
					return err
				}
				rs, err := bench.ReadRows(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				rows = append(rows, rs...)
			}
			return bench.Table(cmd.OutOrStdout(), rows)
		},
	}
}
