package hookedmodel

import (
	"context"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// To moves every weight, or none: to the other device where there is one
// (the logits stay within float32 rounding, and back again), else it fails
// naming the device and the model keeps working where it was.
func TestTo(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 3)
	defer m.Free()
	dev := m.Device()
	_, tok := randomTokens(t, 2, 7, m.Cfg.DVocab, 4)
	defer tok.Free()
	logits := func() []float64 {
		t.Helper()
		in := tok.MustToDevice(m.Device(), false)
		defer in.Free()
		out, err := m.Forward(context.Background(), Tokens(in), Return(ReturnLogits))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Free()
		if got := out.Logits.Device(); got != m.Device() {
			t.Errorf("logits on %s, the model on %s", got, m.Device())
		}
		return gotchtest.Values(t, out.Logits)
	}
	want := logits()
	wQ := func() gotch.Device {
		t.Helper()
		w, err := m.W_Q()
		if err != nil {
			t.Fatal(err)
		}
		return w.Device()
	}

	if err := m.To(dev); err != nil {
		t.Fatalf("To its own device: %v", err)
	}
	other := gotch.CPU
	if dev == gotch.CPU {
		other = gotch.CUDA(0)
	}
	if err := m.To(other); err != nil {
		if m.Device() != dev || wQ() != dev {
			t.Fatalf("a failed To left the model on %s (views on %s), want %s", m.Device(), wQ(), dev)
		}
		t.Logf("no %s here: %v", other, err)
		gotchtest.Close(t, "logits after a failed To", logits(), want, 0)
		return
	}
	if wQ() != other || m.WE.Device() != other {
		t.Errorf("after To(%s): W_E on %s, W_Q() on %s", other, m.WE.Device(), wQ())
	}
	gotchtest.Close(t, "logits on "+other.String(), logits(), want, 1e-4)
	if err := m.To(dev); err != nil {
		t.Fatal(err)
	}
	gotchtest.Close(t, "logits back on "+dev.String(), logits(), want, 1e-4)
}
