// Command golens is golens's command line: run models, cache and patch
// activations, analyse circuits and benchmark, from scripts and terminals.
// Every command exits non-zero with one line on stderr for bad input.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/golens/golens/gotch"
	_ "github.com/golens/golens/gotch/tunedmalloc" // the C heap tuned at load, before Go's threads
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
		// Built without cgo, a command that needs libtorch fails before it
		// reads or downloads anything. Otherwise the CLI, which owns its
		// process, opts in to gotch's process-wide settings for speed: the
		// recommended intra-op thread count and the tuned C heap (tuned at
		// load by tunedmalloc; TuneMalloc here says whether mallopt
		// refused).
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if !needsTorch(cmd) {
				return nil
			}
			if err := gotch.Available(); err != nil {
				return err
			}
			if err := gotch.TuneMalloc(); err != nil {
				return err
			}
			_, err := gotch.UseRecommendedThreads()
			return err
		},
	}
	// golens --version prints the first line of golens version, without
	// libtorch (cobra answers it before PersistentPreRunE).
	root.Version = version
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddCommand(newVersionCmd(), newRunCmd(), newCacheCmd(), newAblateCmd(), newTokenizeCmd(), newGenerateCmd(), newAnalyzeCmd(), newTrainCmd(), newDemoCmd(), newBenchCmd(), newDistCmd(), newHarvestCmd())
	return root
}

// needsTorch reports whether cmd needs libtorch: every command but
// tokenize and cobra's help and completion.
func needsTorch(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		switch c.Name() {
		case "tokenize", "help", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return false
		}
	}
	return true
}

func main() {
	// Ctrl-C and SIGTERM (what kill, systemd and container runtimes send)
	// cancel the context: a long command stops cleanly (training writes a
	// checkpoint). A second signal then kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is the line golens prints for err. Built without cgo, it is
// gotch.ErrNoCgo's message alone, which says how to get a build that works.
func errorLine(err error) string {
	if errors.Is(err, gotch.ErrNoCgo) {
		return oneLine(gotch.ErrNoCgo.Error())
	}
	return "golens: " + oneLine(err.Error())
}

// oneLine joins the lines of msg (errors.Join puts each error on its own)
// with "; " and escapes the other control and bidirectional-override
// characters, Go-quoted, so that what a file or a flag held can neither
// break the one line nor move the cursor, recolour or rewrite the terminal.
func oneLine(msg string) string {
	var lines []string
	for l := range strings.Lines(msg) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	var b strings.Builder
	for _, r := range strings.Join(lines, "; ") {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
