package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/golens/golens/analysis"
	"github.com/golens/golens/backend"
	"github.com/golens/golens/backend/dist"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/train"
	"github.com/spf13/cobra"
)

// A joined group is what analysis.SplitOver and train.DataParallel take.
var (
	_ analysis.Group = (*dist.Group)(nil)
	_ train.Group    = (*dist.Group)(nil)
)

// launchedDevice is --device under a launcher: plain "cuda" is this
// rank's GPU, cuda:LOCAL_RANK.
func launchedDevice(device string) (string, error) {
	if !dist.Launched() || device != "cuda" {
		return device, nil
	}
	env, err := dist.FromEnv()
	if err != nil {
		return "", err
	}
	return "cuda:" + strconv.Itoa(env.LocalRank), nil
}

// joinLaunched joins the launcher's group when a launcher started golens
// (nil, nil otherwise), refusing at the rendezvous a rank whose config
// (the model's and the job's settings) differs from the others'.
func joinLaunched(ctx context.Context, dev gotch.Device, timeout time.Duration, config any) (*dist.Group, error) {
	if !dist.Launched() {
		return nil, nil
	}
	return dist.Join(ctx, dist.WithTimeout(timeout), dist.WithDevice(dev), dist.WithConfig(config))
}

func newDistCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dist",
		Short: "Multi-process golens on torch.distributed's engine (c10d)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDistSelftestCmd())
	return cmd
}

func newDistSelftestCmd() *cobra.Command {
	var timeout time.Duration
	var device string
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Join the group the launcher set up (torchrun, srun) and all-reduce RANK+1",
		Long: `Joins the group from the launcher's environment (RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT, ...), all-reduces a float32 vector of 4 values
each RANK+1, prints the sum and checks it is WORLD_SIZE*(WORLD_SIZE+1)/2.
The other ranks may be golens or Python processes doing the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := backend.Resolve(device)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			g, err := dist.Join(ctx, dist.WithTimeout(timeout), dist.WithDevice(b.Device()))
			if err != nil {
				return err
			}
			defer g.Close()
			r := float32(g.Rank() + 1)
			x, err := gotch.FromSlice([]float32{r, r, r, r}, []int64{4}, b.Device())
			if err != nil {
				return err
			}
			defer x.Free()
			if err := g.AllReduce(ctx, x, dist.Sum); err != nil {
				return err
			}
			sum, err := gotch.ToSlice[float32](x)
			if err != nil {
				return err
			}
			n := g.Size()
			fmt.Fprintf(cmd.OutOrStdout(), "rank %d of %d: all-reduce sum %v\n", g.Rank(), n, sum)
			if want := float32(n * (n + 1) / 2); sum[0] != want {
				return fmt.Errorf("dist selftest: rank %d of %d: the sum is %v, want %v in each place", g.Rank(), n, sum, want)
			}
			return g.Close()
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the other ranks and for the all-reduce")
	cmd.Flags().StringVar(&device, "device", "cpu", "cpu (Gloo) or cuda[:N] (NCCL)")
	return cmd
}
