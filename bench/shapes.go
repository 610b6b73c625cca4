package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/reference"
)

// Shape is a model shape of the grid. Weights are random, made in-process.
type Shape struct {
	Name   string
	Config hookedmodel.Config
}

// initStd is the weights' standard deviation in every implementation of
// the harness (HARNESS.md).
const initStd = 0.02

// dims starts a config of the given sizes; the architecture is GPT-2's
// (LayerNorm, learned positions) until the caller changes it.
func dims(name string, layers, dModel, heads, dHead, dMLP, vocab, nCtx int) hookedmodel.Config {
	c := hookedmodel.DefaultConfig()
	c.ModelName = name
	c.NLayers, c.DModel, c.NHeads, c.DHead = layers, dModel, heads, dHead
	c.DMLP, c.DVocab, c.NCtx, c.InitializerRange = dMLP, vocab, nCtx, initStd
	return c
}

// gpt2 is a GPT-2-style shape: LayerNorm, gelu_new, learned positions.
func gpt2(name string, layers, dModel, heads, dMLP, vocab, nCtx int, attnOnly bool, positions string) Shape {
	c := dims(name, layers, dModel, heads, dModel/heads, dMLP, vocab, nCtx)
	c.AttnOnly, c.ActFn, c.PositionalEmbeddingType = attnOnly, "gelu_new", positions
	return Shape{Name: name, Config: c}
}

// pythia160m is EleutherAI/pythia-160m's GPT-NeoX: rotary on a quarter of
// each head (rotary_pct 0.25), attention and MLP in parallel on the same
// residual, exact GELU, LayerNorm, an untied unembedding.
func pythia160m() Shape {
	c := dims("pythia-160m", 12, 768, 12, 64, 3072, 50304, 2048)
	c.ActFn, c.ParallelAttnMLP = "gelu", true
	c.PositionalEmbeddingType, c.RotaryDim, c.RotaryBase = "rotary", 16, 10000
	return Shape{Name: c.ModelName, Config: c}
}

// llama1b is Llama 3.2 1B: grouped-query attention (8 key/value heads for
// 32 query heads), rotary with rope_theta 500000 and Llama 3.1's
// rope_scaling "llama3" (factor 32, low and high frequency factors 1 and
// 4, original context 8192), RMSNorm, SiLU-gated MLP. One difference from
// the checkpoint, documented in HARNESS.md: the unembedding is a matrix of
// its own (Llama 3.2 ties it to the embedding; the FLOPs and time are the
// same).
func llama1b() Shape {
	c := dims("llama-1b", 16, 2048, 32, 64, 8192, 128256, 2048)
	c.NKeyValueHeads = 8
	c.NormalizationType, c.FinalRMS = "RMS", true
	c.ActFn, c.GatedMLP = "silu", true
	c.PositionalEmbeddingType, c.RotaryBase = "rotary", 500000
	c.UseNTKByPartsRope = true
	c.NTKByPartsFactor, c.NTKByPartsLowFreqFactor, c.NTKByPartsHighFreqFactor, c.NTKOriginalCtxLen = 32, 1, 4, 8192
	return Shape{Name: c.ModelName, Config: c}
}

// gemma2 is google/gemma-2-2b: grouped-query attention (4 key/value heads
// of 256 for 8 query heads), scores divided by sqrt(query_pre_attn_scalar
// 256), attention soft cap 50, final soft cap 30, a 4096-token sliding
// window on the even layers (Hugging Face's parity), norms before and
// after attention and MLP, Gemma's (1 + w) RMSNorm with eps 1e-6, a
// tanh-GELU-gated MLP. golens folds the embedding scale sqrt(d_model) into
// W_E when it loads a checkpoint, so random weights need nothing for it.
func gemma2() Shape {
	c := dims("gemma2-2b", 26, 2304, 8, 256, 9216, 256000, 8192)
	c.NKeyValueHeads = 4
	c.NormalizationType, c.FinalRMS, c.NormWeightPlusOne, c.Eps = "RMS", true, true, 1e-6
	c.UseNormalizationBeforeAndAfter = true
	c.ActFn, c.GatedMLP = "gelu_pytorch_tanh", true
	c.PositionalEmbeddingType, c.RotaryBase = "rotary", 10000
	c.AttnScale = 16 // sqrt(query_pre_attn_scalar)
	c.AttnScoresSoftCap, c.OutputLogitsSoftCap = 50, 30
	window := 4096 // sliding_window
	c.UseLocalAttn, c.WindowSize = true, &window
	c.AttnTypes = must(hookedmodel.NewAttnTypes(reference.HFGemma2AttnTypes(c.NLayers)...))
	return Shape{Name: c.ModelName, Config: c}
}

// must is v, for a shape's definition that cannot fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var shapes = []Shape{
	// the small models of interpretability tutorials: framework overhead dominates
	gpt2("toy", 2, 64, 4, 256, 1000, 128, false, "standard"),
	// TransformerLens's attn-only-2l dimensions
	gpt2("attn-only-2l", 2, 512, 8, 0, 48262, 1024, true, "shortformer"),
	gpt2("gpt2-small", 12, 768, 12, 3072, 50257, 1024, false, "standard"),
	gpt2("gpt2-medium", 24, 1024, 16, 4096, 50257, 1024, false, "standard"),
	// the architectures researchers study today (issue 15)
	pythia160m(),
	llama1b(),
	gemma2(),
}

// Shapes lists the grid's shapes: GPT-2's, smallest first, then the others.
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
