package hookedmodel

import (
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
