package hookedmodel_test

import (
	"fmt"
	"log"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// Rows and Cols select from the factors, as TransformerLens's
// f[rows, cols] does: A·B is formed only for what was selected.
func ExampleFactoredMatrix_Rows() {
	a := gotch.MustFromSlice([]float32{1, 0, 0, 1, 1, 1}, []int64{3, 2}, gotch.CPU) // [3 2]
	b := gotch.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, gotch.CPU) // [2 3]
	defer a.Free()
	defer b.Free()
	f, err := hookedmodel.NewFactoredMatrix(a, b) // A·B = [[1 2 3] [4 5 6] [5 7 9]]
	if err != nil {
		log.Fatal(err)
	}
	defer f.Free()
	rows, err := f.Rows(2, 0) // f[[2, 0]]
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Free()
	last, err := rows.Cols(-1) // f[[2, 0]][:, [-1]]: the dim stays
	if err != nil {
		log.Fatal(err)
	}
	defer last.Free()
	ab, err := last.AB()
	if err != nil {
		log.Fatal(err)
	}
	defer ab.Free()
	fmt.Println(last.Shape(), gotch.MustToSlice[float32](ab))
	// Output:
	// [2 1] [9 3]
}
