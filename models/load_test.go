package models

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

func TestLoadByName(t *testing.T) {
	gotchtest.CheckLeaks(t)
	if got := Names(); len(got) != 1 || got[0] != "induction-2l" {
		t.Errorf("Names() = %v, want [induction-2l]", got)
	}
	for _, tc := range []struct {
		name    string
		wantErr string // "" loads
	}{
		{"induction-2l", ""},
		{"gpt2", `no shipped model "gpt2" (shipped: induction-2l)`},
		{"", `no shipped model "" (shipped: induction-2l)`},
		{"Induction-2L", "shipped: induction-2l"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(context.Background(), tc.name, hookedmodel.OnDevice(gotchtest.Device(t)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load(%q): %v, want an error containing %q", tc.name, err, tc.wantErr)
				}
				if _, err := Metrics(tc.name); err == nil {
					t.Errorf("Metrics(%q): no error", tc.name)
				}
				if Has(tc.name) {
					t.Errorf("Has(%q)", tc.name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			c := m.Config()
			if c.ModelName != tc.name || c.NLayers != 2 || c.NHeads != 4 || c.DVocab != 64 || !c.AttnOnly {
				t.Errorf("Load(%q) config: %+v", tc.name, c)
			}
			if mt, err := Metrics(tc.name); err != nil || len(mt) == 0 || !Has(tc.name) {
				t.Errorf("Metrics(%q): %d bytes, %v", tc.name, len(mt), err)
			}
		})
	}
}

// TestLoadMatchesTheFile checks that the shipped model, loaded from the
// binary's bytes through an fs.FS (no temporary file), is the model
// hookedmodel.Load reads from models/induction-2l/model.safetensors:
// same config, same logits.
func TestLoadMatchesTheFile(t *testing.T) {
	gotchtest.CheckLeaks(t)
	const file = "induction-2l/model.safetensors"
	if _, err := os.Stat(file); err != nil {
		t.Skipf("%s is not here (a test binary run elsewhere): %v", file, err)
	}
	ctx := context.Background()
	dev := hookedmodel.OnDevice(gotchtest.Device(t))
	got, err := Load(ctx, "induction-2l", dev)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Free()
	want, err := hookedmodel.Load(ctx, file, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Free()
	if got.Config() != want.Config() {
		t.Errorf("config:\n got %+v\nwant %+v", got.Config(), want.Config())
	}
	ids := []int64{1, 5, 9, 13, 2, 7, 1, 5, 9, 13, 2, 7}
	tok := gotch.MustFromSlice(ids, []int64{1, int64(len(ids))}, gotchtest.Device(t))
	defer tok.Free()
	logits := func(m *hookedmodel.HookedTransformer) []float64 {
		out, err := m.Forward(ctx, hookedmodel.Tokens(tok))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Free()
		return gotchtest.Values(t, out.Logits)
	}
	gotchtest.Close(t, "logits", logits(got), logits(want), 0)
}
