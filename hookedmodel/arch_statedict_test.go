package hookedmodel

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// A state dict of a Llama-like model (RMS ln.w, W_gate, _W_K/_W_V, the
// rotary buffers TransformerLens holds) loads into another model of the
// config, which then computes the same log-probabilities; a rotary buffer
// of the wrong shape is refused naming it.
func TestArchitectureStateDictRoundTrip(t *testing.T) {
	gotchtest.CheckLeaks(t)
	edit := func(c *Config) {
		c.NormalizationType, c.GatedMLP, c.ActFn = "RMS", true, "silu"
		c.PositionalEmbeddingType, c.RotaryDim, c.NKeyValueHeads = "rotary", 2, 2
	}
	a, b := editedModel(t, edit, 1), editedModel(t, edit, 2)
	defer a.Free()
	defer b.Free()
	sd, s, err := a.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"blocks.0.ln1.w", "blocks.0.mlp.W_gate", "blocks.0.attn._W_K", "blocks.0.attn._b_V", "ln_final.w"} {
		if _, ok := sd[k]; !ok {
			t.Errorf("state dict lacks %s", k)
		}
	}
	sd["blocks.0.attn.rotary_sin"] = s.Attach(gotch.MustZeros([]int64{int64(a.Cfg.NCtx), 2}, gotch.Float, gotchtest.Device(t)))
	if err := b.LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	_, tok := randomTokens(t, 2, 6, a.Cfg.DVocab, 3)
	defer tok.Free()
	gotchtest.Close(t, "log-probs after the round trip", logProbs(t, b, tok), logProbs(t, a, tok), 1e-6)
	// SaveStateDict writes the buffers too; the file loads back strictly.
	path := filepath.Join(t.TempDir(), "sd.safetensors")
	if err := a.SaveStateDict(path); err != nil {
		t.Fatal(err)
	}
	c := editedModel(t, edit, 3)
	defer c.Free()
	if err := c.LoadStateDictFile(path); err != nil {
		t.Fatal(err)
	}
	gotchtest.Close(t, "log-probs after a file round trip", logProbs(t, c, tok), logProbs(t, a, tok), 1e-6)
	sd["blocks.0.attn.rotary_sin"] = s.Attach(gotch.MustZeros([]int64{int64(a.Cfg.NCtx), 4}, gotch.Float, gotchtest.Device(t)))
	if err := b.LoadStateDict(sd); err == nil || !strings.Contains(err.Error(), "rotary_sin") {
		t.Errorf("a rotary_sin of the wrong shape: %v, want an error naming it", err)
	}
}

// Gemma 2's post-norms are TransformerLens's blocks.{l}.ln1_post and
// ln2_post (RMSNorm modules with a weight w, in TransformerBlock's order
// ln1, ln1_post, ln2, ln2_post): in the module tree, in the state dict,
// through a state-dict round trip that keeps the log-probabilities, and
// after fold_ln, which makes ln1 and ln2 RMSNormPre and keeps the
// post-norms' weights. A state dict without them is refused naming them.
func TestGemma2PostNormsStateDict(t *testing.T) {
	gotchtest.CheckLeaks(t)
	a, b := editedModel(t, gemma2Like, 1), editedModel(t, gemma2Like, 2)
	defer a.Free()
	defer b.Free()
	tree := a.String()
	ln1, ln1Post, ln2, ln2Post := strings.Index(tree, "(ln1): RMSNorm("), strings.Index(tree, "(ln1_post): RMSNorm("),
		strings.Index(tree, "(ln2): RMSNorm("), strings.Index(tree, "(ln2_post): RMSNorm(")
	if !(ln1 >= 0 && ln1 < ln1Post && ln1Post < ln2 && ln2 < ln2Post) {
		t.Errorf("module tree lacks ln1, ln1_post, ln2, ln2_post in that order:\n%s", tree)
	}
	for _, name := range []string{"blocks.0.ln1_post.hook_scale", "blocks.0.ln1_post.hook_normalized", "blocks.1.ln2_post.hook_normalized"} {
		if !slices.Contains(a.HookNames(), name) {
			t.Errorf("no hook point %s", name)
		}
	}
	// get_act_name's layer type reaches them: cache["scale", 1, "ln2_post"]
	if name, err := GetActName("scale", 1, "ln2_post"); err != nil || name != "blocks.1.ln2_post.hook_scale" {
		t.Errorf(`GetActName("scale", 1, "ln2_post") = %q, %v`, name, err)
	}
	sd, s, err := a.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"blocks.0.ln1_post.w", "blocks.0.ln2_post.w", "blocks.1.ln1_post.w", "blocks.1.ln2_post.w"} {
		if w, ok := sd[k]; !ok || !slices.Equal(w.Shape(), []int64{int64(a.Cfg.DModel)}) {
			t.Errorf("state dict %s: %v", k, w.Spec())
		}
	}
	if err := b.LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	_, tok := randomTokens(t, 2, 6, a.Cfg.DVocab, 3)
	defer tok.Free()
	gotchtest.Close(t, "log-probs after the round trip", logProbs(t, b, tok), logProbs(t, a, tok), 1e-6)
	delete(sd, "blocks.1.ln2_post.w")
	if err := b.LoadStateDict(sd); err == nil || !strings.Contains(err.Error(), "blocks.1.ln2_post.w") {
		t.Errorf("a state dict without blocks.1.ln2_post.w: %v, want an error naming it", err)
	}
	if err := a.Process(DefaultProcessing); err != nil {
		t.Fatal(err)
	}
	tree = a.String()
	if !strings.Contains(tree, "(ln1): RMSNormPre(") || !strings.Contains(tree, "(ln1_post): RMSNorm(") || !strings.Contains(tree, "(ln2_post): RMSNorm(") {
		t.Errorf("processed module tree:\n%s", tree)
	}
	gotchtest.Close(t, "log-probs after processing", logProbs(t, a, tok), logProbs(t, b, tok), 1e-4)
	// A golens checkpoint keeps the config (attn_types and all) and the
	// post-norms' weights.
	path := filepath.Join(t.TempDir(), "gemma2.safetensors")
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	c, err := Load(context.Background(), path, OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	if c.Cfg.AttnTypes != a.Cfg.AttnTypes || *c.Cfg.WindowSize != 3 {
		t.Errorf("reloaded attn_types %q window %d, saved %q 3", c.Cfg.AttnTypes, *c.Cfg.WindowSize, a.Cfg.AttnTypes)
	}
	gotchtest.Close(t, "log-probs after Save and Load", logProbs(t, c, tok), logProbs(t, a, tok), 1e-6)
}
