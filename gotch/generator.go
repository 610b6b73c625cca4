package gotch

// #include "golens_torch.h"
import "C"

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Generator is a seeded random-number generator on the CPU. Random ops draw
// from it on the CPU and move the result to the requested device, so the
// same seed gives the same numbers on every device. Free it when done.
type Generator struct {
	p       atomic.Pointer[byte] // the C.gt_generator; nil once freed
	cleanup runtime.Cleanup
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed uint64) (*Generator, error) {
	var p C.gt_generator
	if e := C.gt_generator_new(&p, C.uint64_t(seed)); e != nil {
		return nil, opError("NewGenerator", e)
	}
	g := &Generator{}
	g.p.Store((*byte)(unsafe.Pointer(p)))
	g.cleanup = runtime.AddCleanup(g, func(p C.gt_generator) { C.gt_generator_free(p); gcFreed.Add(1) }, p)
	return g, nil
}

// MustNewGenerator is NewGenerator that panics with a *Error.
func MustNewGenerator(seed uint64) *Generator {
	g, err := NewGenerator(seed)
	must(err)
	return g
}

func (g *Generator) ptr() C.gt_generator {
	if g == nil {
		return nil
	}
	return C.gt_generator(unsafe.Pointer(g.p.Load()))
}

// Free releases the generator; it is idempotent.
func (g *Generator) Free() {
	if g == nil {
		return
	}
	if p := g.p.Swap(nil); p != nil {
		g.cleanup.Stop()
		C.gt_generator_free(C.gt_generator(unsafe.Pointer(p)))
	}
}

func needGenerator(op string, g *Generator) error {
	switch {
	case g == nil:
		return &Error{Op: op, Msg: "the generator is a nil *Generator"}
	case g.ptr() == nil:
		return &Error{Op: op, Msg: "the generator was freed", Err: ErrFreed}
	}
	return nil
}
