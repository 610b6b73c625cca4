package gotch

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Generator is a seeded random-number generator on the CPU. Random ops draw
// from it on the CPU and move the result to the requested device, so the
// same seed gives the same numbers on every device. Free it when done.
type Generator struct {
	p       atomic.Pointer[byte] // the gt_generator; nil once freed
	cleanup runtime.Cleanup
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed uint64) (*Generator, error) { return newGenerator(seed) }

// MustNewGenerator is NewGenerator that panics with a *Error.
func MustNewGenerator(seed uint64) *Generator {
	g, err := NewGenerator(seed)
	must(err)
	return g
}

// handle is the generator's gt_generator; nil once freed or for a nil
// Generator.
func (g *Generator) handle() unsafe.Pointer {
	if g == nil {
		return nil
	}
	return unsafe.Pointer(g.p.Load())
}

// Free releases the generator; it is idempotent.
func (g *Generator) Free() {
	if g == nil {
		return
	}
	if p := g.p.Swap(nil); p != nil {
		g.cleanup.Stop()
		freeGenerator(unsafe.Pointer(p))
	}
}

func needGenerator(op string, g *Generator) error {
	switch {
	case g == nil:
		return &Error{Op: op, Msg: "the generator is a nil *Generator"}
	case g.handle() == nil:
		return &Error{Op: op, Msg: "the generator was freed", Err: ErrFreed}
	}
	return nil
}
