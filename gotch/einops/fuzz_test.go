//go:build cgo

package einops_test

import (
	"strings"
	"testing"

	"github.com/golens/golens/gotch/einops"
	"github.com/golens/golens/gotch/gotchtest"
)

// FuzzRearrangePattern runs arbitrary patterns through Rearrange, Reduce,
// Repeat and Einsum on a small tensor: none may panic, and every call must
// free what it made, whether it fails or not.
func FuzzRearrangePattern(f *testing.F) {
	for _, p := range []string{
		"b p d -> b d p", "b p (h d) -> b h p d", "b p d -> b (p d)", "... d -> d ...", "b ... -> b (...)",
		"b p d -> b p d 1 ()", "(b) p d -> b p d", "b (p 3) d -> b p d", "b p d -> b", "b p d -> b p d c",
		"b p d, d -> b p", "... d, ... d -> ...", "i i i ->", "", "->", "(", ")", "((", "... ...", "....",
		"b p d -> b p d -> b", "_ p d -> p", "b p d -> (b p d", "b p 0 -> b p", "b p d -> b p 99999999999999999999",
		"\xff -> \xff", "b p d -> b p d …", "… -> …",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		gotchtest.CheckLeaks(t)
		x, _ := tensor(t, counting, 2, 3, 4)
		defer x.Free()
		h := einops.Size("h", 2)
		if y, err := einops.Rearrange(x, pattern, h); err == nil {
			y.Free()
		}
		if y, err := einops.Reduce(x, pattern, einops.Max, h); err == nil {
			y.Free()
		}
		// Anonymous axes on the right may ask Repeat for any size: keep
		// the fuzzer's allocations small.
		if !strings.ContainsAny(pattern, "0123456789") {
			if y, err := einops.Repeat(x, pattern, h); err == nil {
				y.Free()
			}
		}
		if y, err := einops.Einsum(pattern, x, x); err == nil {
			y.Free()
		}
	})
}
