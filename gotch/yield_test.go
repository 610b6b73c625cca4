package gotch

import (
	"testing"
	"time"
)

func TestYielderPace(t *testing.T) {
	var y Yielder
	y.Yield()
	if d := time.Since(y.last); d < YieldInterval/2 {
		t.Fatalf("the first call credits half an interval: the last yield is %v ago, want at least %v", d, YieldInterval/2)
	}
	future := time.Now().Add(time.Hour) // within the interval, whatever the scheduler does
	y.last = future
	y.Yield()
	if y.last != future {
		t.Fatal("Yield within the interval moved the clock")
	}
	past := time.Now().Add(-YieldInterval)
	y.last = past
	y.Yield()
	if !y.last.After(past) {
		t.Fatal("Yield after the interval did not yield")
	}
}
