//go:build !cgo

package hookedmodel_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// TestNoCgoLoad checks that, built without cgo, Load and New fail with
// gotch.ErrNoCgo, and Load does so before looking for the checkpoint (or
// downloading it): a missing one is not what it reports.
func TestNoCgoLoad(t *testing.T) {
	_, err := hookedmodel.Load(context.Background(), filepath.Join(t.TempDir(), "missing.safetensors"))
	if !errors.Is(err, gotch.ErrNoCgo) {
		t.Errorf("Load without cgo: %v, want an error wrapping gotch.ErrNoCgo", err)
	}
	_, err = hookedmodel.New(hookedmodel.DefaultConfig())
	if !errors.Is(err, gotch.ErrNoCgo) {
		t.Errorf("New without cgo: %v, want an error wrapping gotch.ErrNoCgo", err)
	}
}
