//go:build cgo

package gotch_test

// Errors: every bad input comes back as an error that names the problem,
// without a C++ backtrace, and nothing a caller does with a freed or nil
// handle crashes the process.

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// checkMsg fails unless err is non-nil, mentions every want (ignoring
// case) and carries none of libtorch's backtrace lines.
func checkMsg(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", wants)
	}
	msg := err.Error()
	for _, w := range wants {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
	for _, bad := range []string{"Exception raised from", "frame #"} {
		if strings.Contains(msg, bad) {
			t.Errorf("error carries a C++ backtrace (%q): %s", bad, msg)
		}
	}
}

// Each helper frees whatever an op returned, so a case that wrongly
// succeeds fails on its missing error instead of also leaking.
func drop(x *gotch.Tensor, err error) error { x.Free(); return err }

func drop2(x, y *gotch.Tensor, err error) error { x.Free(); y.Free(); return err }

func dropAll(xs []*gotch.Tensor, err error) error {
	for _, x := range xs {
		x.Free()
	}
	return err
}

func TestErrorMessages(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	s := gotch.NewScope()
	defer s.Close()
	on := func(d gotch.Device, data any, shape ...int64) *gotch.Tensor {
		t.Helper()
		var x *gotch.Tensor
		var err error
		switch v := data.(type) {
		case []float32:
			x, err = gotch.FromSlice(v, shape, d)
		case []int64:
			x, err = gotch.FromSlice(v, shape, d)
		}
		if err != nil {
			t.Fatal(err)
		}
		return s.Attach(x)
	}
	a := on(dev, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	ints := on(dev, []int64{1, 2, 3, 4, 5, 6}, 3, 2)
	findex := on(dev, []float32{0, 1}, 2)
	freed := on(dev, []float32{1, 2, 3}, 3)
	freed.Free()
	// Out-of-bounds gathers on CUDA trip a device-side assert that poisons
	// the context for the rest of the process, so those run on the CPU.
	cpu := on(gotch.CPU, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	past := on(gotch.CPU, []int64{5}, 1)
	gpast := on(gotch.CPU, []int64{0, 9}, 2, 1)
	deadGen := gotch.MustNewGenerator(1)
	deadGen.Free()
	one := []float32{1}

	cases := []struct {
		name  string
		skip  bool // the device is there, so using it is no error
		run   func() error
		want  []string
		freed bool // errors.Is(err, gotch.ErrFreed)
		plain bool // an ordinary error, not a *gotch.Error
	}{
		{name: "matmul shapes", run: func() error { return drop(a.Matmul(a)) },
			want: []string{"Matmul(float32[2 3]", "cannot be multiplied", "2x3"}},
		// torch names the dtype that does not match, in words that change
		// between versions ("expected scalar type Float but found Long" in
		// 1.13, "... same dtype, but got: float != long int" in 2.x): "long"
		// appears only in torch's part of the message.
		{name: "matmul dtypes", run: func() error { return drop(a.Matmul(ints)) },
			want: []string{"int64[3 2]", "long"}},
		{name: "embedding float indices", run: func() error { return drop(gotch.Embedding(a, findex)) },
			want: []string{"Embedding", "indices", "Long, Int"}},
		{name: "unknown device", run: func() error { _, err := gotch.ParseDevice("tpu"); return err },
			want: []string{`unknown device "tpu"`}, plain: true},
		{name: "bad cuda index", run: func() error { _, err := gotch.ParseDevice("cuda:x"); return err },
			want: []string{`"cuda:x"`}, plain: true},
		{name: "cuda:0 absent", skip: gotch.HasDevice(gotch.CUDAType),
			run:  func() error { return drop(gotch.FromSlice(one, []int64{1}, gotch.CUDA(0))) },
			want: []string{"FromSlice", "CUDA"}},
		{name: "cuda:7 absent", skip: gotch.HasDevice(gotch.CUDAType),
			run:  func() error { return drop(gotch.Zeros([]int64{1}, gotch.Float, gotch.CUDA(7))) },
			want: []string{"Zeros", "CUDA"}},
		{name: "to cuda absent", skip: gotch.HasDevice(gotch.CUDAType),
			run:  func() error { return drop(cpu.ToDevice(gotch.CUDA(0), false)) },
			want: []string{"ToDevice", "CUDA"}},
		{name: "mps absent", skip: gotch.HasDevice(gotch.MPSType),
			run:  func() error { return drop(gotch.FromSlice(one, []int64{1}, gotch.MPS)) },
			want: []string{"FromSlice", "mps"}},
		{name: "to mps absent", skip: gotch.HasDevice(gotch.MPSType),
			run:  func() error { return drop(cpu.ToDevice(gotch.MPS, false)) },
			want: []string{"ToDevice", "mps"}},
		{name: "device type code", run: func() error { return drop(gotch.Zeros([]int64{1}, gotch.Float, gotch.Device{Type: 9})) },
			want: []string{"unknown device type code 9"}},
		{name: "dtype code", run: func() error { return drop(a.To(gotch.DType(99))) },
			want: []string{"unknown dtype code 99"}},
		{name: "select past end", run: func() error { return drop(a.Select(0, 5)) },
			want: []string{"Select", "index 5 out of range", "dimension 0"}},
		{name: "index_select past end", run: func() error { return drop(cpu.IndexSelect(0, past)) },
			want: []string{"IndexSelect", "index out of range"}},
		{name: "gather past end", run: func() error { return drop(cpu.Gather(1, gpast)) },
			want: []string{"Gather", "index 9 is out of bounds for dimension 1 with size 3"}},
		{name: "narrow past end", run: func() error { return drop(a.Narrow(1, 2, 5)) },
			want: []string{"Narrow", "exceeds dimension size"}},
		{name: "freed self", run: func() error { return drop(freed.Neg()) },
			want: []string{"Neg(float32[3]", "(freed)", "argument self was freed"}, freed: true},
		{name: "freed other", run: func() error { return drop(a.Add(freed)) },
			want: []string{"Add", "argument other was freed"}, freed: true},
		{name: "freed in list", run: func() error { return drop(gotch.Cat([]*gotch.Tensor{a, freed}, 0)) },
			want: []string{"Cat", "argument tensors[1] was freed"}, freed: true},
		{name: "freed optional", run: func() error { return drop(a.LayerNorm([]int64{3}, freed, nil, 1e-5)) },
			want: []string{"LayerNorm", "argument weight was freed"}, freed: true},
		{name: "freed in-place", run: func() error { return freed.Add_(a) },
			want: []string{"Add_", "argument self was freed"}, freed: true},
		{name: "freed split", run: func() error { return dropAll(freed.Split(1, 0)) },
			want: []string{"Split"}, freed: true},
		{name: "freed tuple", run: func() error { return drop2(freed.Topk(1, 0, true, true)) },
			want: []string{"Topk"}, freed: true},
		{name: "freed backward grad", run: func() error { return a.Backward(freed, false) },
			want: []string{"Backward", "argument grad was freed"}, freed: true},
		{name: "nil self", run: func() error { return drop((*gotch.Tensor)(nil).Exp()) },
			want: []string{"Exp", "argument self is a nil *Tensor"}},
		{name: "nil other", run: func() error { return drop(a.Mul(nil)) },
			want: []string{"Mul", "argument other is a nil *Tensor"}},
		{name: "nil in list", run: func() error { return drop(gotch.Stack([]*gotch.Tensor{a, nil}, 0)) },
			want: []string{"Stack", "argument tensors[1] is a nil *Tensor"}},
		{name: "freed generator", run: func() error { return drop(gotch.Randn([]int64{2}, deadGen, gotch.Float, dev)) },
			want: []string{"Randn", "generator was freed"}, freed: true},
		{name: "nil generator", run: func() error { return drop(gotch.Rand([]int64{2}, nil, gotch.Float, dev)) },
			want: []string{"Rand", "nil *Generator"}},
		{name: "fromslice count", run: func() error { return drop(gotch.FromSlice([]float32{1, 2, 3, 4, 5}, []int64{2, 3}, dev)) },
			want: []string{"FromSlice", "5 values do not fill shape [2 3] (6 elements)"}},
		{name: "fromslice negative", run: func() error { return drop(gotch.FromSlice([]float32{1}, []int64{-1, -1}, dev)) },
			want: []string{"FromSlice", "dimension 0 of shape [-1 -1] is negative"}},
		{name: "fromslice rank", run: func() error { return drop(gotch.FromSlice(one, make13(), dev)) },
			want: []string{"FromSlice", "rank 13"}},
		{name: "frombytes ragged", run: func() error { return drop(gotch.FromBytes(make([]byte, 5), []int64{1}, gotch.Float, dev)) },
			want: []string{"FromBytes", "5 bytes", "float32"}},
		{name: "toslice freed", run: func() error { _, err := gotch.ToSlice[float32](freed); return err },
			want: []string{"ToSlice", "was freed"}, freed: true},
		{name: "bytes freed", run: func() error { _, err := freed.Bytes(); return err },
			want: []string{"Bytes", "was freed"}, freed: true},
		{name: "item of many", run: func() error { _, err := a.Item(); return err },
			want: []string{"Item(float32[2 3]", "6 elements"}},
		{name: "item freed", run: func() error { _, err := freed.Item(); return err },
			want: []string{"Item"}, freed: true},
		{name: "backward without grad", run: func() error { return a.Backward(nil, false) },
			want: []string{"Backward", "does not require grad"}},
		{name: "bad string argument", run: func() error { return drop(a.Gelu("fast")) },
			want: []string{"Gelu", "approximate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.skip {
				t.Skip("the device is available here")
			}
			err := c.run()
			checkMsg(t, err, c.want...)
			if got := errors.Is(err, gotch.ErrFreed); got != c.freed {
				t.Errorf("errors.Is(err, ErrFreed) = %v, want %v: %v", got, c.freed, err)
			}
			var ge *gotch.Error
			if got := errors.As(err, &ge); got == c.plain {
				t.Errorf("errors.As(err, *gotch.Error) = %v, want %v: %v", got, !c.plain, err)
			}
			if ge != nil && !strings.HasPrefix(err.Error(), "gotch: "+ge.Op+"(") {
				t.Errorf("message %q does not start with its op %q", err, ge.Op)
			}
		})
	}
}

func make13() []int64 {
	s := make([]int64, 13)
	for i := range s {
		s[i] = 1
	}
	return s
}

var errorType = reflect.TypeFor[error]()

// methodArgs builds arguments for method m: valid tensors and generator,
// zero scalars. Argument checks run before any C call, so with a bad
// handle in some slot no zero scalar ever reaches libtorch.
func methodArgs(m reflect.Method, valid *gotch.Tensor, gen *gotch.Generator) []reflect.Value {
	ft := m.Type
	args := make([]reflect.Value, ft.NumIn()-1)
	for i := range args {
		switch pt := ft.In(i + 1); pt {
		case reflect.TypeFor[*gotch.Tensor]():
			args[i] = reflect.ValueOf(valid)
		case reflect.TypeFor[[]*gotch.Tensor]():
			args[i] = reflect.ValueOf([]*gotch.Tensor{valid, valid})
		case reflect.TypeFor[*gotch.Generator]():
			args[i] = reflect.ValueOf(gen)
		default:
			args[i] = reflect.Zero(pt)
		}
	}
	return args
}

// callOp calls an op method and returns its error, freeing any tensor it
// made. A panic fails the test rather than crashing it.
func callOp(t *testing.T, fn reflect.Value, args []reflect.Value) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("panicked: %v", r)
		}
	}()
	outs := fn.Call(args)
	for _, o := range outs[:len(outs)-1] {
		switch x := o.Interface().(type) {
		case *gotch.Tensor:
			x.Free()
		case []*gotch.Tensor:
			dropAll(x, nil)
		}
	}
	if e := outs[len(outs)-1].Interface(); e != nil {
		return e.(error)
	}
	return nil
}

// TestUseAfterFreeEveryMethod calls every fallible *Tensor method with a
// freed tensor in each tensor slot (the receiver, each tensor argument,
// one element of each list) and with a nil receiver: each must fail with
// a *gotch.Error, wrapping ErrFreed for the freed ones, and never reach
// libtorch with a dead handle. Every Must method must panic with a
// *gotch.Error instead. New ops in ops.txt are covered without a change.
func TestUseAfterFreeEveryMethod(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	valid := gotch.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, dev)
	defer valid.Free()
	gen := gotch.MustNewGenerator(7)
	defer gen.Free()
	dead := gotch.MustFromSlice([]float32{1}, []int64{1}, dev)
	dead.Free()

	typ := reflect.TypeFor[*gotch.Tensor]()
	var ops, musts int
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		ft := m.Type
		fallible := ft.NumOut() > 0 && ft.Out(ft.NumOut()-1) == errorType
		must := strings.HasPrefix(m.Name, "Must")
		if !fallible && !must {
			continue // accessors such as Shape and Free
		}
		t.Run(m.Name, func(t *testing.T) {
			args := methodArgs(m, valid, gen)
			if must {
				musts++
				err := gotch.Try(func() { reflect.ValueOf(dead).MethodByName(m.Name).Call(args) })
				var ge *gotch.Error
				if !errors.As(err, &ge) || !errors.Is(err, gotch.ErrFreed) {
					t.Errorf("freed receiver: got %v, want a *gotch.Error panic wrapping ErrFreed", err)
				}
				return
			}
			ops++
			check := func(what string, err error, wantFreed bool) {
				t.Helper()
				var ge *gotch.Error
				if !errors.As(err, &ge) {
					t.Errorf("%s: got %v, want a *gotch.Error", what, err)
				} else if errors.Is(err, gotch.ErrFreed) != wantFreed {
					t.Errorf("%s: got %v, ErrFreed wanted %v", what, err, wantFreed)
				}
			}
			check("freed receiver", callOp(t, reflect.ValueOf(dead).Method(i), args), true)
			check("nil receiver", callOp(t, reflect.ValueOf((*gotch.Tensor)(nil)).Method(i), args), false)
			for j, a := range args {
				bad := slices.Clone(args)
				switch a.Interface().(type) {
				case *gotch.Tensor:
					bad[j] = reflect.ValueOf(dead)
				case []*gotch.Tensor:
					bad[j] = reflect.ValueOf([]*gotch.Tensor{valid, dead})
				default:
					continue
				}
				check(fmt.Sprintf("freed argument %d", j), callOp(t, reflect.ValueOf(valid).Method(i), bad), true)
			}
		})
	}
	if ops < 100 || musts < 100 {
		t.Errorf("checked %d ops and %d Must ops; the method set looks wrong", ops, musts)
	}
	if valid.Freed() {
		t.Error("a failing op freed its valid operand")
	}
}

// TestUseAfterFreeFunctions covers the package-level ops that take tensors,
// which reflection cannot enumerate.
func TestUseAfterFreeFunctions(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	v := gotch.MustFromSlice([]float32{1, 2, 3, 4}, []int64{2, 2}, dev)
	defer v.Free()
	d := gotch.MustFromSlice([]float32{1}, []int64{1}, dev)
	d.Free()
	for name, run := range map[string]func() error{
		"Cat":                       func() error { return drop(gotch.Cat([]*gotch.Tensor{d, v}, 0)) },
		"Stack":                     func() error { return drop(gotch.Stack([]*gotch.Tensor{v, d}, 0)) },
		"Einsum":                    func() error { return drop(gotch.Einsum("ij,jk->ik", []*gotch.Tensor{v, d})) },
		"Embedding":                 func() error { return drop(gotch.Embedding(v, d)) },
		"Where":                     func() error { return drop(gotch.Where(v, v, d)) },
		"ScaledDotProductAttention": func() error { return drop(gotch.ScaledDotProductAttention(v, v, v, d, false)) },
		"ToSlice":                   func() error { _, err := gotch.ToSlice[float64](d); return err },
	} {
		if err := run(); !errors.Is(err, gotch.ErrFreed) {
			t.Errorf("%s: got %v, want ErrFreed", name, err)
		}
	}
	if err := gotch.Try(func() { gotch.MustCat([]*gotch.Tensor{v, d}, 0) }); !errors.Is(err, gotch.ErrFreed) {
		t.Errorf("MustCat: got %v, want a panic wrapping ErrFreed", err)
	}
	// A nil optional tensor means "absent" and is no error.
	ln, err := v.LayerNorm([]int64{2}, nil, nil, 1e-5)
	if err != nil {
		t.Errorf("LayerNorm with nil weight and bias: %v", err)
	}
	ln.Free()
}

func TestMustPanicsWithError(t *testing.T) {
	gotchtest.CheckLeaks(t)
	a := gotch.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, gotchtest.Device(t))
	defer a.Free()

	// The panic value itself is the *gotch.Error.
	func() {
		defer func() {
			r := recover()
			if ge, ok := r.(*gotch.Error); !ok || ge.Op != "Matmul" || len(ge.Args) != 2 {
				t.Errorf("MustMatmul panicked with %#v, want a *gotch.Error for Matmul with 2 operands", r)
			}
		}()
		a.MustMatmul(a)
		t.Error("MustMatmul did not panic")
	}()

	// Try returns it unchanged.
	err := gotch.Try(func() { a.MustMatmul(a) })
	var ge *gotch.Error
	if !errors.As(err, &ge) || ge.Op != "Matmul" {
		t.Fatalf("Try: got %v, want the *gotch.Error of Matmul", err)
	}
	checkMsg(t, err, "cannot be multiplied")
	if strings.Contains(err.Error(), "goroutine ") {
		t.Errorf("a gotch error needs no Go stack: %v", err)
	}
	if err := gotch.Try(func() { gotch.MustFromSlice([]float32{1}, []int64{2}, gotch.CPU) }); !errors.As(err, &ge) || ge.Op != "FromSlice" {
		t.Errorf("MustFromSlice: got %v", err)
	}
	if err := gotch.Try(func() { a.MustItem() }); !errors.As(err, &ge) || ge.Op != "Item" {
		t.Errorf("MustItem: got %v", err)
	}
	if err := gotch.Try(func() {}); err != nil {
		t.Errorf("Try without a panic: %v", err)
	}
}

func TestTryOtherPanics(t *testing.T) {
	var ge *gotch.Error
	cases := []struct {
		name string
		fn   func()
		want string
		as   func(error) bool
	}{
		{"nil map write", func() {
			var m map[string]int
			m["x"] = 1
		}, "assignment to entry in nil map", func(err error) bool {
			var re runtime.Error
			return errors.As(err, &re)
		}},
		{"string", func() { panic("x marks the spot") }, "x marks the spot", nil},
		{"int", func() { panic(42) }, "42", nil},
		{"nil", func() { panic(nil) }, "nil", func(err error) bool {
			var pn *runtime.PanicNilError
			return errors.As(err, &pn)
		}},
		{"wrapped gotch error", func() {
			panic(fmt.Errorf("hook blocks.0.hook_q: %w", &gotch.Error{Op: "Add", Msg: "boom"}))
		}, "hook blocks.0.hook_q", func(err error) bool { return errors.As(err, &ge) && ge.Op == "Add" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := gotch.Try(c.fn)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
			if c.as != nil && !c.as(err) {
				t.Errorf("the panic value is not reachable with errors.As: %v", err)
			}
		})
	}
	// A foreign panic carries the stack that says where it happened.
	err := gotch.Try(func() { panic("where") })
	if !strings.Contains(err.Error(), "TestTryOtherPanics") {
		t.Errorf("no stack in %v", err)
	}
}
