package backend

import (
	"testing"

	"github.com/golens/golens/gotch"
)

// CorruptOn makes SelfCheck read a wrong result of op on device d until
// the test ends, as a faulty device would compute it.
func CorruptOn(tb testing.TB, d gotch.Device, op string) {
	testHookCorrupt = func(dev gotch.Device, name string, vals []float64) {
		if dev == d && name == op {
			vals[len(vals)/2] += 0.5
		}
	}
	tb.Cleanup(func() { testHookCorrupt = nil })
}

// SetAutoOrder replaces the devices "auto" tries until the test ends.
func SetAutoOrder(tb testing.TB, ds ...gotch.Device) {
	old := autoOrder
	autoOrder = ds
	tb.Cleanup(func() { autoOrder = old })
}

// CheckNames are the ops SelfCheck compares.
func CheckNames() []string {
	var names []string
	for _, c := range checks {
		names = append(names, c.name)
	}
	return names
}
