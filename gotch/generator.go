package gotch

import "runtime"

// Generator is a seeded random-number generator on the CPU. Random ops draw
// from it on the CPU and move the result to the requested device, so the
// same seed gives the same numbers on every device. Free it when done.
type Generator struct {
	h       ref // the gt_generator
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

// Free releases the generator, at once or when the random ops drawing from
// it in other goroutines return; it is idempotent.
func (g *Generator) Free() {
	if g == nil || !g.h.release() {
		return
	}
	g.cleanup.Stop()
	g.h.drop(freeGenerator)
}

// pinGenerator checks g and pins its handle for a call into the shim, as
// pinTensor does a tensor's; the caller unpins it when the call returns.
func pinGenerator(op string, g *Generator) error {
	switch {
	case g == nil:
		return &Error{Op: op, Msg: "the generator is a nil *Generator"}
	case !g.h.pin(freeGenerator):
		return &Error{Op: op, Msg: "the generator was freed", Err: ErrFreed}
	}
	return nil
}

func (g *Generator) unpin() { g.h.unpin(freeGenerator) }
