package hookedmodel

import (
	"errors"
	"fmt"

	"github.com/golens/golens/gotch"
)

// To moves the weights to dev, as TransformerLens's model.to(device):
// every weight or, on error, none (the copies made so far are freed and
// the model stays where it was). Weights that record gradients still do.
// The views (W_Q() and the like) are made afresh on dev. No pass may run
// on the model meanwhile.
func (m *HookedTransformer) To(dev gotch.Device) error {
	if m == nil {
		return errors.New("to: nil model")
	}
	if dev == m.device {
		return nil
	}
	ps := m.params()
	moved := make([]*gotch.Tensor, 0, len(ps))
	err := gotch.Try(func() {
		for _, p := range ps {
			w := *p.ptr
			t := w.MustToDevice(dev, false)
			if w.RequiresGrad() { // a leaf on dev, not a copy that records its move
				leaf := t.MustDetach()
				t.Free()
				leaf.MustSetRequiresGrad_(true)
				t = leaf
			}
			moved = append(moved, t)
		}
	})
	if err != nil {
		for _, t := range moved {
			t.Free()
		}
		return fmt.Errorf("move the model from %s to %s: %w", m.device, dev, err)
	}
	for i, p := range ps {
		(*p.ptr).Free()
		*p.ptr = moved[i]
	}
	m.device = dev
	return gotch.Try(m.prepare)
}
