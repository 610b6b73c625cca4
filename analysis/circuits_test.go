package analysis

import (
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

func TestCircuitsOfTheConstruction(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im, err := NewInductionModel(InductionConfig{}, hookedmodel.OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Model.Free()
	c, err := Circuits(im.Model, im.PrevToken, im.Induction, 16)
	if err != nil {
		t.Fatal(err)
	}
	if got := DiagonalShare(c.OV); got < 0.9 {
		t.Errorf("the induction head's OV circuit copies %.2f of tokens, want > 0.9", got)
	}
	if got := DiagonalShare(c.KComposition); got < 0.9 {
		t.Errorf("the K-composition circuit matches %.2f of tokens, want > 0.9", got)
	}
	// The previous-token head's queries prefer the key one position back.
	back := 0
	for q := 1; q < 16; q++ {
		best := 0
		for k := 0; k <= q; k++ {
			if c.PrevQK.At(q, k) > c.PrevQK.At(q, best) {
				best = k
			}
		}
		if best == q-1 {
			back++
		}
	}
	if back < 14 {
		t.Errorf("positional QK: %d of 15 queries prefer the previous position", back)
	}
	if _, err := Circuits(im.Model, im.PrevToken, im.Induction, 10000); err == nil {
		t.Error("10000 positions: no error")
	}
}
