package gotch

// BLASThreads is the number of threads OpenBLAS runs a matmul on, or -1
// when the BLAS loaded is not OpenBLAS (and always without cgo).
func BLASThreads() int { return blasThreads() }

// SetBLASThreads sets OpenBLAS's thread count for the whole process and
// reports whether it could (false: the BLAS is not OpenBLAS, or golens was
// built without cgo). Small matmuls run faster on one thread than split
// across two (see hookedmodel/train's BLASThreads). Wait for running ops to
// finish first.
func SetBLASThreads(n int) bool {
	if n < 1 {
		return false
	}
	return setBLASThreads(n)
}
