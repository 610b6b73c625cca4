package gotch

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
)

var (
	// ErrFreed is wrapped by the error of any op given a tensor (or
	// generator) after its Free.
	ErrFreed = errors.New("used after Free")
	// ErrNotCompiled is wrapped by the error of a call that needs device
	// support (CUDA, MPS) this build of golens does not have.
	ErrNotCompiled = errors.New("not compiled into this golens build")
	// ErrNoDevice is wrapped by the error of a call about a device that is
	// not there.
	ErrNoDevice = errors.New("no such device")
	// ErrOutOfMemory is wrapped by the error of a call whose allocator, on
	// the host or a device, ran out of memory.
	ErrOutOfMemory = errors.New("out of memory")
	// ErrNoCgo is wrapped by the error of every op and entry point of a
	// golens built without cgo (CGO_ENABLED=0), which has no libtorch to
	// run them; Available returns it. Its message says how to build one
	// that has.
	ErrNoCgo = errors.New(`golens needs cgo and libtorch: build with CGO_ENABLED=1 and a C++ compiler, with libtorch installed (Debian/Ubuntu: apt-get install libtorch-dev; elsewhere: eval "$(go run github.com/golens/golens/cmd/golens-env)")`)
)

// Available reports whether this build of golens can run ops: nil when it
// was built with cgo, which links libtorch in, else ErrNoCgo. Programs that
// want to fail before doing any other work call it first.
func Available() error {
	if cgoEnabled {
		return nil
	}
	return ErrNoCgo
}

// Error is an op's failure: ATen's message (without the C++ backtrace) with
// the op and its tensor operands.
type Error struct {
	Op   string   // the gotch op, e.g. "Matmul"
	Args []string // the tensor operands, e.g. "float32[2 3] cpu"
	Msg  string
	Err  error // a sentinel such as ErrFreed, or nil
}

func (e *Error) Error() string {
	return fmt.Sprintf("gotch: %s(%s): %s", e.Op, strings.Join(e.Args, ", "), e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

func describe(ts []*Tensor) []string {
	var out []string
	for _, t := range ts {
		if t == nil {
			out = append(out, "nil")
			continue
		}
		out = append(out, t.spec())
	}
	return out
}

func needTensor(op, name string, t *Tensor) error {
	if t.Freed() {
		return badTensor(op, name, t)
	}
	return nil
}

// pinTensor is needTensor that also pins t for a call into the shim (see
// ref); the caller unpins it when the call returns.
func pinTensor(op, name string, t *Tensor) error {
	if t == nil || !t.pin() {
		return badTensor(op, name, t)
	}
	return nil
}

// pinOptTensor is pinTensor for an optional argument, which may be nil.
func pinOptTensor(op, name string, t *Tensor) error {
	if t == nil {
		return nil
	}
	return pinTensor(op, name, t)
}

// badTensor is the error of a nil or freed tensor argument.
func badTensor(op, name string, t *Tensor) error {
	if t == nil {
		return &Error{Op: op, Msg: fmt.Sprintf("argument %s is a nil *Tensor", name)}
	}
	return &Error{Op: op, Args: []string{t.spec()}, Msg: fmt.Sprintf("argument %s was freed", name), Err: ErrFreed}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// Try runs fn and turns a panic inside it into an error: a *Error from a
// Must op comes back as it is, anything else (a failing user hook, a nil
// dereference) as an error that carries the panic value and stack. Every
// exported golens entry point that runs Must-style code goes through Try.
func Try(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = PanicError(r)
		}
	}()
	fn()
	return nil
}

// PanicError turns a recovered panic value into an error; see Try.
func PanicError(r any) error {
	if e, ok := r.(error); ok {
		var ge *Error
		if errors.As(e, &ge) {
			return e
		}
		return fmt.Errorf("panic: %w\n%s", e, debug.Stack())
	}
	return fmt.Errorf("panic: %v\n%s", r, debug.Stack())
}
