package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golens/golens/hookedmodel"
)

// Shape is a model shape of the grid. Weights are random, made in-process.
type Shape struct {
	Name   string
	Config hookedmodel.Config
}

// initStd is the weights' standard deviation in every implementation of
// the harness (HARNESS.md).
const initStd = 0.02

func shape(name string, layers, dModel, heads, dMLP, vocab, nCtx int, attnOnly bool, positions string) Shape {
	c := hookedmodel.DefaultConfig()
	c.ModelName = name
	c.NLayers, c.DModel, c.NHeads, c.DHead = layers, dModel, heads, dModel/heads
	c.DMLP, c.DVocab, c.NCtx, c.AttnOnly = dMLP, vocab, nCtx, attnOnly
	c.ActFn, c.PositionalEmbeddingType, c.InitializerRange = "gelu_new", positions, initStd
	return Shape{Name: name, Config: c}
}

var shapes = []Shape{
	// the small models of interpretability tutorials: framework overhead dominates
	shape("toy", 2, 64, 4, 256, 1000, 128, false, "standard"),
	// TransformerLens's attn-only-2l dimensions
	shape("attn-only-2l", 2, 512, 8, 0, 48262, 1024, true, "shortformer"),
	shape("gpt2-small", 12, 768, 12, 3072, 50257, 1024, false, "standard"),
	shape("gpt2-medium", 24, 1024, 16, 4096, 50257, 1024, false, "standard"),
}

// Shapes lists the grid's shapes, smallest first.
func Shapes() []Shape { return slices.Clone(shapes) }

// ShapeByName finds a shape of Shapes.
func ShapeByName(name string) (Shape, error) {
	for _, s := range shapes {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, len(shapes))
	for i, s := range shapes {
		names[i] = s.Name
	}
	return Shape{}, fmt.Errorf("unknown shape %q (known: %s)", name, strings.Join(names, ", "))
}
