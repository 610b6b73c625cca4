// Command golens is golens's command line: run models, cache and patch
// activations, analyse circuits and benchmark, from scripts and terminals.
// Every command exits non-zero with one line on stderr for bad input.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
)

// version is golens's version; release builds set it with
// -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "golens",
		Short:         "TransformerLens for Go: hooked transformers on libtorch",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd(), newRunCmd(), newCacheCmd(), newAblateCmd(), newTokenizeCmd(), newGenerateCmd(), newAnalyzeCmd(), newTrainCmd(), newDemoCmd(), newBenchCmd())
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "golens:", err)
		os.Exit(1)
	}
}
