package gotch

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The summary String prints follows torch's defaults (torch.set_printoptions):
// a tensor of more than printThreshold elements shows only the first and
// last printEdgeItems entries of each long dimension, with "..." between.
const (
	printThreshold = 1000
	printEdgeItems = 3
	printLineWidth = 80
	printPrecision = 4
)

// Spec describes the tensor without reading its values, e.g.
// "Tensor(float32[2 3] cpu)", "Tensor(float32[2 3] cpu (freed))" or
// "Tensor(nil)". It never crosses into libtorch, so error messages use it.
func (t *Tensor) Spec() string {
	if t == nil {
		return "Tensor(nil)"
	}
	return "Tensor(" + t.spec() + ")"
}

// String shows the tensor's values the way torch prints a tensor, followed
// by its dtype and shape (and device and requires_grad when they are not
// the defaults), e.g.
//
//	tensor([[0.1000, 0.2000],
//	        [0.3000, 0.4000]], dtype=float32, shape=[2 2])
//
// A tensor of more than 1000 elements is summarised as torch does: the
// first and last 3 entries of each longer dimension, with "..." between,
// and only those are read (copied to the host). A nil or freed tensor
// prints its Spec and nothing crosses into libtorch; a tensor whose values
// cannot be read (freed meanwhile, say) prints its Spec and why. String
// reads the tensor, so it must not race with an in-place op on it; error
// messages use Spec, which reads nothing.
func (t *Tensor) String() string {
	if t.Freed() {
		return t.Spec()
	}
	body, err := t.valuesString()
	if err != nil {
		return fmt.Sprintf("%s <values unavailable: %v>", t.Spec(), err)
	}
	var b strings.Builder
	b.WriteString("tensor(")
	b.WriteString(body)
	fmt.Fprintf(&b, ", dtype=%s, shape=%v", t.dtype, t.shape)
	if t.device != CPU {
		fmt.Fprintf(&b, ", device=%s", t.device)
	}
	if t.requiresGrad {
		b.WriteString(", requires_grad=true")
	}
	b.WriteString(")")
	return b.String()
}

// valuesString is the bracketed values of t, as torch's _tensor_str.
func (t *Tensor) valuesString() (string, error) {
	if t.Numel() == 0 {
		return "[]", nil // torch too, whatever the shape
	}
	summarize := t.Numel() > printThreshold
	shown, err := t.shownValues(summarize)
	if err != nil {
		return "", err
	}
	f := newElemFormatter(shown, t.dtype)
	var b strings.Builder
	writeTensor(&b, shown, t.shape, 0, 0, summarize, f, len("tensor("))
	return b.String(), nil
}

// shownValues are the elements String shows, read to the host: all of them,
// or when summarising, the edge entries of each long dimension (the shape
// of the result is t's, with each long dimension cut to 2·printEdgeItems).
type shownValues struct {
	shape  []int64 // the shape of the read elements
	floats []float64
	ints   []int64
	bools  []bool
}

func (t *Tensor) shownValues(summarize bool) (*shownValues, error) {
	sc := NewScope()
	defer sc.Close()
	x, err := sc.Borrow(t)
	if err != nil {
		return nil, err
	}
	if x.requiresGrad {
		if x, err = x.Detach(); err != nil {
			return nil, err
		}
	}
	sv := &shownValues{shape: t.Shape()}
	if summarize {
		for d, n := range t.shape {
			if n <= 2*printEdgeItems {
				continue
			}
			idx := make([]int64, 0, 2*printEdgeItems)
			for i := int64(0); i < printEdgeItems; i++ {
				idx = append(idx, i)
			}
			for i := n - printEdgeItems; i < n; i++ {
				idx = append(idx, i)
			}
			it, err := FromSlice(idx, []int64{int64(len(idx))}, x.device)
			if err != nil {
				return nil, err
			}
			sc.Attach(it)
			if x, err = x.IndexSelect(int64(d), it); err != nil {
				return nil, err
			}
			sv.shape[d] = 2 * printEdgeItems
		}
	}
	switch {
	case t.dtype.IsFloat():
		sv.floats, err = ToSlice[float64](x)
	case t.dtype == Bool:
		sv.bools, err = ToSlice[bool](x)
	default:
		sv.ints, err = ToSlice[int64](x)
	}
	if err != nil {
		return nil, err
	}
	return sv, nil
}

// elemFormatter formats one element with the width and style torch's
// _Formatter picks for the whole tensor.
type elemFormatter struct {
	dtype    DType
	intMode  bool // floats that are all whole numbers print as "3."
	sciMode  bool
	maxWidth int
}

func newElemFormatter(sv *shownValues, dtype DType) *elemFormatter {
	f := &elemFormatter{dtype: dtype}
	switch {
	case sv.bools != nil:
		for _, v := range sv.bools {
			f.maxWidth = max(f.maxWidth, len(f.format(v, 0, false)))
		}
		return f
	case sv.ints != nil:
		for _, v := range sv.ints {
			f.maxWidth = max(f.maxWidth, len(strconv.FormatInt(v, 10)))
		}
		return f
	}
	// torch: the finite nonzero absolute values decide.
	var finite []float64
	for _, v := range sv.floats {
		if !math.IsInf(v, 0) && !math.IsNaN(v) && v != 0 {
			finite = append(finite, math.Abs(v))
		}
	}
	f.intMode = true
	for _, v := range sv.floats {
		if !math.IsInf(v, 0) && !math.IsNaN(v) && v != math.Trunc(v) {
			f.intMode = false
			break
		}
	}
	if len(finite) > 0 {
		lo, hi := finite[0], finite[0]
		for _, v := range finite {
			lo, hi = min(lo, v), max(hi, v)
		}
		if f.intMode {
			f.sciMode = hi/lo > 1000 || hi > 1e8
		} else {
			f.sciMode = hi/lo > 1000 || hi > 1e8 || lo < 1e-4
		}
	}
	// As torch, only finite nonzero values set the width: a NaN, an
	// infinity or a -0 is not padded and may stick out.
	f.maxWidth = 1
	for _, v := range sv.floats {
		if !math.IsInf(v, 0) && !math.IsNaN(v) && v != 0 {
			f.maxWidth = max(f.maxWidth, len(f.formatFloat(v)))
		}
	}
	return f
}

func (f *elemFormatter) formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case f.sciMode:
		return fmtSci(v)
	case f.intMode:
		return strconv.FormatFloat(v, 'f', 0, 64) + "."
	}
	return strconv.FormatFloat(v, 'f', printPrecision, 64)
}

// fmtSci is Python's "{:.4e}"; Go's 'e' also writes at least two
// exponent digits, e.g. 1.0000e+05.
func fmtSci(v float64) string { return strconv.FormatFloat(v, 'e', printPrecision, 64) }

func (f *elemFormatter) format(v any, width int, pad bool) string {
	var s string
	switch v := v.(type) {
	case bool:
		s = "False"
		if v {
			s = "True"
		}
	case int64:
		s = strconv.FormatInt(v, 10)
	case float64:
		s = f.formatFloat(v)
	}
	if pad && len(s) < width {
		s = strings.Repeat(" ", width-len(s)) + s
	}
	return s
}

func (sv *shownValues) at(i int) any {
	switch {
	case sv.floats != nil:
		return sv.floats[i]
	case sv.bools != nil:
		return sv.bools[i]
	}
	return sv.ints[i]
}

// writeTensor writes dimension dim of the shown values starting at flat
// offset off, as torch's _tensor_str_with_formatter: indent is the column
// the opening bracket of this dimension's first entry is at.
func writeTensor(b *strings.Builder, sv *shownValues, full []int64, dim, off int, summarize bool, f *elemFormatter, indent int) {
	if len(full) == 0 {
		b.WriteString(f.format(sv.at(0), f.maxWidth, false))
		return
	}
	n := int(sv.shape[dim])
	cut := summarize && full[dim] > 2*printEdgeItems
	stride := 1
	for _, s := range sv.shape[dim+1:] {
		stride *= int(s)
	}
	if dim == len(full)-1 {
		// A row: as many elements per line as fit in the line width.
		perLine := max(1, (printLineWidth-indent)/(f.maxWidth+2))
		var items []string
		for i := 0; i < n; i++ {
			if cut && i == printEdgeItems {
				items = append(items, " ...") // torch's, space included
			}
			items = append(items, f.format(sv.at(off+i), f.maxWidth, true))
		}
		b.WriteString("[")
		for i, s := range items {
			if i > 0 {
				if i%perLine == 0 {
					b.WriteString(",\n" + strings.Repeat(" ", indent+1))
				} else {
					b.WriteString(", ")
				}
			}
			b.WriteString(s)
		}
		b.WriteString("]")
		return
	}
	sep := "," + strings.Repeat("\n", len(full)-dim-1) + strings.Repeat(" ", indent+1)
	b.WriteString("[")
	first := true
	for i := 0; i < n; i++ {
		if !first {
			b.WriteString(sep)
		}
		first = false
		if cut && i == printEdgeItems {
			b.WriteString("...")
			b.WriteString(sep)
		}
		writeTensor(b, sv, full, dim+1, off+i*stride, summarize, f, indent+1)
	}
	b.WriteString("]")
}
