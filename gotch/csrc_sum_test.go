package gotch

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCsrcSum: csrc_sum.go holds the sum of csrc/, so that any change to
// the shim's C++ changes a file of this package and Go rebuilds the shim
// (./build.sh rewrites the file; by hand: the sum this test prints).
func TestCsrcSum(t *testing.T) {
	entries, err := os.ReadDir("csrc")
	if os.IsNotExist(err) {
		t.Skip("no csrc/ beside this test binary (the GPU bundle's prebuilt shim)")
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("csrc", n))
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(n + "\n"))
		h.Write(b)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != csrcSum {
		t.Fatalf("csrc/ changed: set csrcSum in csrc_sum.go to %q (./build.sh does), or Go's build cache keeps the old shim", got)
	}
}
