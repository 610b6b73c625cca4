package report

import (
	"math"
	"strconv"
)

// nums is a list of numbers as the page stores them: at float32 precision,
// which is the models' own and halves the page, with NaN and infinities (which
// JSON cannot hold) as null.
type nums []float64

func (n nums) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+8*len(n))
	b = append(b, '[')
	for i, v := range n {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		bits := 32
		if math.Abs(v) > math.MaxFloat32 {
			bits = 64 // would round to an infinity
		}
		b = strconv.AppendFloat(b, v, 'g', -1, bits)
	}
	return append(b, ']'), nil
}
