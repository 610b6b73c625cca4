package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/golens/golens/backend"
	"github.com/golens/golens/gotch"
	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	var check bool
	var device string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print golens, shim ABI and torch versions and the devices seen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			printVersions(out)
			if !check {
				return nil
			}
			return selfCheck(cmd, out, device)
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "run a small computation on the device and compare it with the CPU")
	cmd.Flags().StringVar(&device, "device", "auto", "device for --check: auto, cpu, cuda, cuda:N or mps")
	return cmd
}

// versionLine is golens's version and the Go toolchain and platform that
// built it.
func versionLine() string {
	return fmt.Sprintf("golens %s (%s %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func printVersions(w io.Writer) {
	fmt.Fprintln(w, versionLine())
	_, why := gotch.RecommendedThreads()
	fmt.Fprintf(w, "shim ABI %d, torch %s\nintra-op threads: %s\nmalloc: %s\n", gotch.ABIVersion, gotch.TorchVersion(), why, gotch.MallocTuning())
	var seen []string
	for _, spec := range []string{"cpu", "cuda", "mps"} {
		b, err := backend.Resolve(spec)
		if err != nil {
			seen = append(seen, fmt.Sprintf("%s: %v", spec, err))
			continue
		}
		seen = append(seen, b.Device().String())
	}
	fmt.Fprintf(w, "devices:\n  %s\n", strings.Join(seen, "\n  "))
	var backends []string
	for _, b := range []string{gotch.BackendGloo, gotch.BackendNCCL} {
		if !gotch.HasDistBackend(b) {
			b += " (not compiled)"
		}
		backends = append(backends, b)
	}
	fmt.Fprintf(w, "distributed (c10d): %s\n", strings.Join(backends, ", "))
}

func selfCheck(cmd *cobra.Command, w io.Writer, spec string) error {
	b, err := backend.Resolve(spec)
	if err != nil {
		return err
	}
	if err := b.SelfCheck(cmd.Context()); err != nil {
		return fmt.Errorf("self-check on %s: %w", b.Device(), err)
	}
	fmt.Fprintf(w, "self-check on %s: matmul, softmax and layer_norm agree with the CPU\n", b.Device())
	return demoComputation(w, b.Device())
}

// demoComputation shows one small computation on the device: the softmax
// of a row of logits.
func demoComputation(w io.Writer, dev gotch.Device) error {
	s := gotch.NewScope()
	defer s.Close()
	return gotch.Try(func() {
		logits := s.Attach(gotch.MustFromSlice([]float32{1, 2, 3, 4}, []int64{4}, dev))
		probs := gotch.MustToSlice[float32](logits.MustSoftmax(0))
		fmt.Fprintf(w, "softmax([1 2 3 4]) on %s = %.4f\n", dev, probs)
	})
}
