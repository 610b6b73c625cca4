package cuda

// #include "golens_torch.h"
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// Event is a point in a device's stream of work. The time between two
// events is measured on the GPU, so it counts the kernels themselves rather
// than when the host queued them. An Event must be freed with Free.
type Event struct {
	p unsafe.Pointer // a cudaEvent_t; nil once freed
}

// Record puts a new event on the current stream of device dev.
func Record(dev int) (*Event, error) {
	var p unsafe.Pointer
	if e := C.gt_cuda_event_record(C.int32_t(dev), &p); e != nil {
		return nil, shimError(fmt.Sprintf("record event on device %d", dev), e)
	}
	return &Event{p: p}, nil
}

// Elapsed is the GPU time from start to end; it waits until end has
// happened.
func Elapsed(start, end *Event) (time.Duration, error) {
	if start == nil || start.p == nil || end == nil || end.p == nil {
		return 0, errors.New("cuda: elapsed: nil or freed event")
	}
	var ms C.float
	if e := C.gt_cuda_event_elapsed(start.p, end.p, &ms); e != nil {
		return 0, shimError("elapsed", e)
	}
	return time.Duration(float64(ms) * float64(time.Millisecond)), nil
}

// Free releases the event. It is idempotent and safe on a nil Event.
func (e *Event) Free() {
	if e == nil || e.p == nil {
		return
	}
	C.gt_cuda_event_free(e.p)
	e.p = nil
}
