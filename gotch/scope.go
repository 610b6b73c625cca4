package gotch

import "sync"

// Scope owns tensors and frees them together, like a ggml context: create
// one per forward pass (or per layer, with Child), Keep what must outlive
// it, and Close it on every exit path with defer.
//
// An op's result belongs to the scope of its first tensor operand that has
// one; a tensor made from nothing (Zeros, FromSlice) belongs to none until
// Attach. Scopes are safe for concurrent use.
type Scope struct {
	mu     sync.Mutex
	parent *Scope
	owned  []*Tensor
	closed bool
}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// Child returns a scope whose kept tensors move to s.
func (s *Scope) Child() *Scope { return &Scope{parent: s} }

func (s *Scope) add(t *Tensor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return // the tensor stays unowned rather than leak into a dead scope
	}
	t.scope = s
	s.owned = append(s.owned, t)
}

func (s *Scope) remove(t *Tensor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.owned) - 1; i >= 0; i-- {
		if s.owned[i] == t {
			s.owned = append(s.owned[:i], s.owned[i+1:]...)
			break
		}
	}
	t.scope = nil
}

// Attach moves t into s (from no scope or another one) and returns it.
func (s *Scope) Attach(t *Tensor) *Tensor {
	if t == nil || t.scope == s {
		return t
	}
	if t.scope != nil {
		t.scope.remove(t)
	}
	s.add(t)
	return t
}

// Borrow returns a new handle to t that belongs to s, so ops on it put
// their results in s while t itself stays where it is.
func (s *Scope) Borrow(t *Tensor) (*Tensor, error) {
	a, err := t.Alias()
	if err != nil {
		return nil, err
	}
	if a.scope != nil {
		a.scope.remove(a)
	}
	s.add(a)
	return a, nil
}

// Keep takes t out of s so that Close does not free it, and returns it.
// It moves to the parent scope when s is a Child, else it is the caller's
// to free.
func (s *Scope) Keep(t *Tensor) *Tensor {
	if t == nil || t.scope != s {
		return t
	}
	s.remove(t)
	if s.parent != nil {
		s.parent.add(t)
	}
	return t
}

// Len is the number of tensors s owns.
func (s *Scope) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.owned)
}

// Close frees every tensor s still owns, newest first. It is idempotent.
func (s *Scope) Close() {
	s.mu.Lock()
	owned := s.owned
	s.owned, s.closed = nil, true
	s.mu.Unlock()
	for i := len(owned) - 1; i >= 0; i-- {
		owned[i].scope = nil
		owned[i].Free()
	}
}

// scopeOf is the scope an op's result joins: that of its first operand
// that has one.
func scopeOf(operands ...*Tensor) *Scope {
	for _, t := range operands {
		if t != nil && t.scope != nil {
			return t.scope
		}
	}
	return nil
}
