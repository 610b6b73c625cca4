package main

import (
	"fmt"
	"math"
)

// atLeast is the error of an integer flag below lo, naming the flag and
// what it takes.
func atLeast(flag string, v, lo int) error {
	if v < lo {
		return fmt.Errorf("--%s %d: want a whole number of at least %d", flag, v, lo)
	}
	return nil
}

// inRange is the error of a number flag that is not finite or lies outside
// [lo, hi] (hi +Inf: no bound), or outside (lo, hi] when loOpen.
func inRange(flag string, v, lo, hi float64, loOpen bool) error {
	if !math.IsNaN(v) && !math.IsInf(v, 0) && v >= lo && v <= hi && (!loOpen || v > lo) {
		return nil
	}
	left, right := "[", fmt.Sprintf("%g]", hi)
	if loOpen {
		left = "("
	}
	if math.IsInf(hi, 1) {
		right = "∞)"
	}
	return fmt.Errorf("--%s %g: want a finite number in %s%g, %s", flag, v, left, lo, right)
}

// firstError is the first of errs that is not nil.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
