package gotch

// Reductions for CrossEntropy, as ATen numbers them.
const (
	ReductionNone int64 = 0
	ReductionMean int64 = 1
	ReductionSum  int64 = 2
)
