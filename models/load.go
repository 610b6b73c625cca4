package models

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/golens/golens/hookedmodel"
)

// shipped maps the name of each model embedded in the binary to its
// golens checkpoint and its training run's metrics.jsonl.
var shipped = map[string]struct{ checkpoint, metrics []byte }{
	"induction-2l": {Induction2L, Induction2LMetrics},
}

// Names lists the shipped models' names, sorted.
func Names() []string {
	ns := make([]string, 0, len(shipped))
	for n := range shipped {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Has reports whether name is a shipped model.
func Has(name string) bool {
	_, ok := shipped[name]
	return ok
}

// Metrics is the metrics.jsonl of the shipped model name's training run.
func Metrics(name string) ([]byte, error) {
	s, ok := shipped[name]
	if !ok {
		return nil, unknown(name)
	}
	return s.metrics, nil
}

// Load loads the shipped model name (see Names) with hookedmodel's
// options, as hookedmodel.Load loads a golens checkpoint: weights as
// saved unless WithProcessing. An unknown name is an error listing the
// shipped ones; checkpoints on disk and hub names are hookedmodel.Load's.
func Load(ctx context.Context, name string, opts ...hookedmodel.Option) (*hookedmodel.HookedTransformer, error) {
	s, ok := shipped[name]
	if !ok {
		return nil, unknown(name)
	}
	// The embedded bytes are read through an in-memory fs.FS: nothing is
	// written to disk.
	file := name + ".safetensors"
	m, err := hookedmodel.LoadFS(ctx, fstest.MapFS{file: {Data: s.checkpoint, Mode: 0o444}}, file, opts...)
	if err != nil {
		return nil, fmt.Errorf("load shipped model %q: %w", name, err)
	}
	return m, nil
}

func unknown(name string) error {
	return fmt.Errorf("no shipped model %q (shipped: %s)", name, strings.Join(Names(), ", "))
}
