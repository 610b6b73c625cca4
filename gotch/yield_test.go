package gotch

import (
	"testing"
	"time"
)

func TestYielderPace(t *testing.T) {
	var y Yielder
	y.Yield()
	start := y.last
	if want := YieldInterval / 2; time.Since(start) < want {
		t.Fatalf("the first call credits half an interval: last is %v ago, want at least %v", time.Since(start), want)
	}
	y.Yield() // within the interval: no yield, the clock stays
	if y.last != start {
		t.Fatal("Yield within the interval moved the clock")
	}
	time.Sleep(YieldInterval / 2)
	y.Yield()
	if !y.last.After(start) {
		t.Fatal("Yield after the interval did not yield")
	}
}
