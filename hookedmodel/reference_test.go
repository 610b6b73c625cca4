package hookedmodel

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/reference"
)

// newRefModel is the float64 reference (package reference) of a model with
// config cfg and state dict sd.
func newRefModel(t *testing.T, cfg Config, sd map[string]*gotch.Tensor) *reference.Model {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := reference.ParseConfig(js)
	if err != nil {
		t.Fatal(err)
	}
	r, err := reference.New(rc, sd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func isScores(name string) bool { return strings.HasSuffix(name, "hook_attn_scores") }

// cachedWithReference runs m with every activation cached on random
// tokens [2 7] (from seed), and its float64 reference on the same tokens
// with m's current weights. Both outputs are freed when the test ends.
func cachedWithReference(t *testing.T, m *HookedTransformer, seed uint64) (*Output, *ActivationCache, map[string]reference.Tensor) {
	t.Helper()
	rows, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, seed)
	defer tok.Free()
	out, cache, err := m.RunWithCache(context.Background(), Tokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Free)
	t.Cleanup(cache.Free)
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return out, cache, newRefModel(t, m.Cfg, sd).Forward(rows)
}
