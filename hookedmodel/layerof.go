package hookedmodel

import (
	"strconv"
	"strings"
)

// LayerOf is the layer of a hook point from its name, as TransformerLens's
// HookPoint.layer() reads it: the N of "blocks.N.…". It lets a HookFunc,
// which is given the hook point's name, know its layer:
//
//	func(act *gotch.Tensor, name string) (*gotch.Tensor, error) {
//		l, _ := hookedmodel.LayerOf(name) // "blocks.3.attn.hook_z" -> 3
//		...
//	}
//
// ok is false for a name outside the blocks ("hook_embed",
// "ln_final.hook_scale"), where HookPoint.layer() raises, and for one whose
// N is not a non-negative decimal integer written as golens writes it
// ("blocks.x.hook_z", "blocks.-1.hook_z", "blocks.01.hook_z"). LayerOf
// reads the name only: it does not check that the model has that layer or
// that hook point.
func LayerOf(name string) (layer int, ok bool) {
	rest, found := strings.CutPrefix(name, "blocks.")
	if !found {
		return 0, false
	}
	digits, _, found := strings.Cut(rest, ".")
	if !found {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || strconv.Itoa(n) != digits {
		return 0, false
	}
	return n, true
}
