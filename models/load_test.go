package models

import (
	"context"
	"strings"
	"testing"

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
