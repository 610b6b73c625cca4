package cuda

import (
	"fmt"
	"time"

	"github.com/golens/golens/gotch"
)

// Event is a point in a device's stream of work. The time between two
// events is measured on the GPU, so it counts the kernels themselves rather
// than when the host queued them. An Event must be freed with Free.
type Event struct{ e *gotch.CUDAEvent }

// Record puts a new event on the current stream of device dev.
func Record(dev int) (*Event, error) {
	e, err := gotch.RecordCUDAEvent(dev)
	if err != nil {
		return nil, classify(fmt.Sprintf("record event on device %d", dev), err)
	}
	return &Event{e}, nil
}

// Elapsed is the GPU time from start to end; it waits until end has
// happened.
func Elapsed(start, end *Event) (time.Duration, error) {
	var s, e *gotch.CUDAEvent
	if start != nil {
		s = start.e
	}
	if end != nil {
		e = end.e
	}
	ms, err := gotch.CUDAElapsed(s, e)
	if err != nil {
		return 0, classify("elapsed", err)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// Free releases the event. It is idempotent and safe on a nil Event.
func (e *Event) Free() {
	if e != nil {
		e.e.Free()
	}
}
