package hookedmodel

import "github.com/golens/golens/gotch"

// borrow is a handle to t in scope s, so that ops on it land in s.
func borrow(s *gotch.Scope, t *gotch.Tensor) *gotch.Tensor {
	b, err := s.Borrow(t)
	if err != nil {
		panic(err)
	}
	return b
}
