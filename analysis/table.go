package analysis

import (
	"fmt"
	"math"
	"strings"
)

// Table is a dense array of float64 with named axes, in row-major order
// (the last axis varies fastest): the form every analysis result takes,
// [layer head] for head scores, [layer pos] for residual-stream patching,
// and so on. It lives in Go memory and needs no Free.
type Table struct {
	Axes  []string // the name of each axis, e.g. "layer", "head"
	Shape []int
	Data  []float64
}

// NewTable makes a table of zeros with the given axis names and sizes.
func NewTable(axes []string, shape ...int) *Table {
	if len(axes) != len(shape) {
		panic(fmt.Sprintf("analysis: %d axis names for a %d-dimensional table", len(axes), len(shape)))
	}
	n := 1
	for _, s := range shape {
		n *= s
	}
	return &Table{Axes: append([]string(nil), axes...), Shape: append([]int(nil), shape...), Data: make([]float64, n)}
}

// offset is the position of idx in Data.
func (t *Table) offset(idx []int) int {
	if len(idx) != len(t.Shape) {
		panic(fmt.Sprintf("analysis: %d indices for a table of shape %v", len(idx), t.Shape))
	}
	off := 0
	for d, i := range idx {
		if i < 0 || i >= t.Shape[d] {
			panic(fmt.Sprintf("analysis: index %v out of range for a table of shape %v", idx, t.Shape))
		}
		off = off*t.Shape[d] + i
	}
	return off
}

// At is the value at idx, one index per axis.
func (t *Table) At(idx ...int) float64 { return t.Data[t.offset(idx)] }

// Set stores v at idx.
func (t *Table) Set(v float64, idx ...int) { t.Data[t.offset(idx)] = v }

// Index is the multi-index of flat position i in Data; i out of range
// panics, as a slice index does.
func (t *Table) Index(i int) []int {
	if i < 0 || i >= len(t.Data) {
		panic(fmt.Sprintf("analysis: flat index %d out of range for a table of shape %v", i, t.Shape))
	}
	idx := make([]int, len(t.Shape))
	for d := len(t.Shape) - 1; d >= 0; d-- {
		idx[d] = i % t.Shape[d]
		i /= t.Shape[d]
	}
	return idx
}

// Argmax is the index of the largest value (NaNs are skipped), or nil for
// an empty table or one of NaNs only.
func (t *Table) Argmax() []int {
	best := -1
	for i, v := range t.Data {
		if !math.IsNaN(v) && (best < 0 || v > t.Data[best]) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	return t.Index(best)
}

// Sum is the sum of all values.
func (t *Table) Sum() float64 {
	var s float64
	for _, v := range t.Data {
		s += v
	}
	return s
}

// Map returns a new table of f applied to every value; a nil f copies
// the table.
func (t *Table) Map(f func(float64) float64) *Table {
	out := NewTable(t.Axes, t.Shape...)
	if f == nil {
		copy(out.Data, t.Data)
		return out
	}
	for i, v := range t.Data {
		out.Data[i] = f(v)
	}
	return out
}

// String prints a table of up to two axes as rows of numbers, and a larger
// one as its shape.
func (t *Table) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %v", strings.Join(t.Axes, " "), t.Shape)
	switch len(t.Shape) {
	case 1:
		b.WriteString("\n ")
		for _, v := range t.Data {
			fmt.Fprintf(&b, " %8.4f", v)
		}
	case 2:
		for i := range t.Shape[0] {
			fmt.Fprintf(&b, "\n%3d", i)
			for j := range t.Shape[1] {
				fmt.Fprintf(&b, " %8.4f", t.At(i, j))
			}
		}
	}
	return b.String()
}

// HeadLabel is TransformerLens's label of head h of layer l, "L{l}H{h}".
func HeadLabel(l, h int) string { return fmt.Sprintf("L%dH%d", l, h) }

// HeadID names one attention head.
type HeadID struct{ Layer, Head int }

func (h HeadID) String() string { return HeadLabel(h.Layer, h.Head) }

// Correlation is the Pearson correlation of two equally long series, NaN
// when either is constant or they differ in length.
func Correlation(a, b []float64) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return math.NaN()
	}
	n := float64(len(a))
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= n
	mb /= n
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	if saa == 0 || sbb == 0 {
		return math.NaN()
	}
	return sab / math.Sqrt(saa*sbb)
}
