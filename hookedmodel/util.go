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

// unscoped takes t out of its scope (and of the scopes that one keeps
// into): t is then its holder's to free, as golens's lent tensors are.
func unscoped(t *gotch.Tensor) *gotch.Tensor {
	for s := t.Scope(); s != nil; s = t.Scope() {
		s.Keep(t)
	}
	return t
}
