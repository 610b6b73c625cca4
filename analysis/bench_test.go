package analysis

import (
	"context"
	"sync"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// Patching benchmarks on a gpt2-small-shaped model with random weights:
// the exact head × position sweep (one forward pass per layer, head and
// position) against attribution patching of the same sweep (two passes
// and one backward). bench/RESULTS.md reports their wall times.

const patchSeq = 12 // tokens per prompt

var patchModel = sync.OnceValues(func() (*hookedmodel.HookedTransformer, error) {
	c := hookedmodel.DefaultConfig()
	c.NLayers, c.DModel, c.DHead, c.NHeads, c.DMLP = 12, 768, 64, 12, 3072
	c.NCtx, c.DVocab, c.ActFn = 1024, 50257, "gelu_new"
	return hookedmodel.New(c, hookedmodel.WithSeed(0))
})

func patchSetup(b *testing.B) (*hookedmodel.HookedTransformer, *gotch.Tensor, *gotch.Tensor, Metric) {
	m, err := patchModel()
	if err != nil {
		b.Fatal(err)
	}
	gen := gotch.MustNewGenerator(2)
	defer gen.Free()
	clean := gotch.MustRandint(0, int64(m.Cfg.DVocab), []int64{1, patchSeq}, gen, m.Device())
	corrupted := gotch.MustRandint(0, int64(m.Cfg.DVocab), []int64{1, patchSeq}, gen, m.Device())
	b.Cleanup(func() { clean.Free(); corrupted.Free() })
	return m, clean, corrupted, LogitDiff(patchSeq-1, []int64{11}, []int64{12})
}

func BenchmarkPatchingHeadByPosExact(b *testing.B) {
	m, clean, corrupted, metric := patchSetup(b)
	for b.Loop() {
		if _, err := ActivationPatching(context.Background(), m, clean, corrupted, metric, HeadOutByPos); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPatchingHeadByPosAttribution(b *testing.B) {
	m, clean, corrupted, metric := patchSetup(b)
	for b.Loop() {
		if _, err := AttributionPatching(context.Background(), m, clean, corrupted, metric, []Sweep{HeadOutByPos}); err != nil {
			b.Fatal(err)
		}
	}
}
