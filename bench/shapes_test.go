package bench

import (
	"context"
	"math"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// Every shape's config is valid.
func TestShapeConfigs(t *testing.T) {
	for _, sh := range Shapes() {
		c := sh.Config
		if err := c.Init(); err != nil {
			t.Errorf("%s: %v", sh.Name, err)
		}
		if c.ModelName != sh.Name {
			t.Errorf("%s: model_name %q", sh.Name, c.ModelName)
		}
	}
}

// miniature is sh's architecture at sizes a unit test can check against
// the reference: every field that picks a component kept, the sizes cut
// (and the sliding window shorter than the check's 4 tokens, so that it
// masks something). Non-default attention scales stay.
func miniature(sh Shape) hookedmodel.Config {
	c := sh.Config
	heads, kv := 4, 0
	if c.NKeyValueHeads > 0 {
		kv = 2
	}
	c.NLayers, c.DModel, c.NHeads, c.NKeyValueHeads, c.DHead, c.DMLP, c.DVocab, c.NCtx = 2, 32, heads, kv, 8, 48, 50, 16
	if c.RotaryDim > 0 {
		c.RotaryDim = 4 // a part of d_head, as pythia's 16 of 64
	}
	if c.WindowSize != nil {
		w := 2
		c.WindowSize = &w
	}
	if c.AttnTypes.Len() > 0 {
		c.AttnTypes = c.AttnTypes[:c.NLayers]
	}
	return c
}

// The new architectures' forward and cache_all rows pass the check against
// the float64 reference (hookedmodel/reference, written from Hugging
// Face's modeling code) at miniature sizes; the full shapes run the same
// check in golens bench.
func TestNewArchitecturesCheck(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	for _, name := range []string{"pythia-160m", "llama-1b", "gemma2-2b"} {
		t.Run(name, func(t *testing.T) {
			sh, err := ShapeByName(name)
			if err != nil {
				t.Fatal(err)
			}
			m, err := hookedmodel.New(miniature(sh), hookedmodel.OnDevice(dev), hookedmodel.WithSeed(3))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			var rows []Row
			g := Grid{Workloads: []string{"forward", "cache_all", "hooks_modify"}, Sizes: []Size{{2, 8}}, Model: m}
			if err := Run(context.Background(), g, func(r Row) error { rows = append(rows, r); return nil }, Reps(1), Warmup(0)); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Status != OK || r.MaxRelErr == nil || *r.MaxRelErr > 1e-4 {
					t.Errorf("%s: %s %q", r.Workload, r.Status, r.Error)
				}
			}
		})
	}
}

// FLOPs count grouped-query attention's smaller W_K and W_V and the gated
// MLP's third matrix.
func TestFLOPsNewArchitectures(t *testing.T) {
	in := &inputs{batch: 1, seq: 128}
	sh, _ := ShapeByName("llama-1b")
	// per layer: W_Q, W_O 2048x2048 each, W_K, W_V 2048x512 each, three 2048x8192
	perLayer := 2*2048*2048 + 2*2048*512 + 3*2048*8192.0
	want := 128*2*(16*perLayer+2048*128256) + 16*32*4*128*128*64.0
	if got := forwardFLOPs(sh.Config, in); math.Abs(got-want) > 1 {
		t.Errorf("llama-1b forward FLOPs %g, want %g", got, want)
	}
	sh, _ = ShapeByName("pythia-160m")
	perLayer = 4*768*768 + 2*768*3072.0
	want = 128*2*(12*perLayer+768*50304) + 12*12*4*128*128*64.0
	if got := forwardFLOPs(sh.Config, in); math.Abs(got-want) > 1 {
		t.Errorf("pythia-160m forward FLOPs %g, want %g", got, want)
	}
}
