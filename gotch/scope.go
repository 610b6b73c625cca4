package gotch

import (
	"sync"
	"sync/atomic"
)

// Scope owns tensors and frees them together, like a ggml context: open
// one for a piece of work, bring tensors in (Attach what you own, Borrow
// what you do not), and Close it on every exit path with defer.
//
// The rule: a tensor made from a tensor of a scope joins that scope and is
// freed when it closes; every other tensor you make is yours to Free. When
// an op's operands belong to several scopes its result joins the newest of
// them, so the result lands in the same place whatever the operand order.
// Keep takes a tensor out (to the parent of a Child, else to you). Scopes
// are safe for concurrent use, and a tensor may move between scopes while
// other goroutines read it.
type Scope struct {
	mu     sync.Mutex
	parent *Scope
	owned  []*Tensor
	closed bool
	seq    uint64 // creation order: the newest of several scopes owns a result
}

var scopeSeq atomic.Uint64

// A tensor's t.scope is s exactly when t is in s.owned. Both change only
// under s.mu, and a tensor joins a scope only by a compare-and-swap from
// nil, so two goroutines moving one tensor cannot leave it in two scopes
// (which would free it twice) or in none while a scope believes it owns it.

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{seq: scopeSeq.Add(1)} }

// Child returns a scope whose kept tensors move to s; the Child of a nil
// scope is a new top-level one (its kept tensors become the caller's).
func (s *Scope) Child() *Scope { return &Scope{parent: s, seq: scopeSeq.Add(1)} }

// add makes s own t if t has no scope. It reports false when t already has
// one or s is closed; t then stays where it was, rather than leak into a
// scope that will never be closed again.
func (s *Scope) add(t *Tensor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !t.scope.CompareAndSwap(nil, s) {
		return false
	}
	s.owned = append(s.owned, t)
	return true
}

// take releases t from s; it reports false when s does not own t.
func (s *Scope) take(t *Tensor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !t.scope.CompareAndSwap(s, nil) {
		return false
	}
	for i := len(s.owned) - 1; i >= 0; i-- {
		if s.owned[i] == t {
			s.owned = append(s.owned[:i], s.owned[i+1:]...)
			break
		}
	}
	return true
}

// Attach moves t into s (from no scope or another one) and returns it.
// On a closed scope it leaves t where it is, and t stays the caller's to free.
func (s *Scope) Attach(t *Tensor) *Tensor {
	if t == nil {
		return t
	}
	for {
		switch cur := t.scope.Load(); {
		case cur == s:
			return t
		case cur == nil:
			if s.add(t) || s.isClosed() {
				return t
			}
		default:
			cur.take(t) // a failure means someone else moved t: look again
		}
	}
}

func (s *Scope) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Borrow returns a new handle to t that belongs to s, so ops on it put
// their results in s while t itself stays where it is.
func (s *Scope) Borrow(t *Tensor) (*Tensor, error) {
	a, err := t.Alias() // joins t's scope, if any, for a moment
	if err != nil {
		return nil, err
	}
	return s.Attach(a), nil
}

// Keep takes t out of s so that Close does not free it, and returns it.
// It moves to the parent scope when s is a Child, else it is the caller's
// to free. A tensor s does not own is returned untouched.
func (s *Scope) Keep(t *Tensor) *Tensor {
	if t != nil && s.take(t) && s.parent != nil {
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
	for _, t := range owned {
		t.scope.Store(nil)
	}
	s.mu.Unlock()
	for i := len(owned) - 1; i >= 0; i-- {
		owned[i].Free()
	}
}

// scopeOf is the scope an op's result joins: the newest of its operands'
// scopes, or none.
func scopeOf(operands ...*Tensor) *Scope {
	var newest *Scope
	for _, t := range operands {
		if t == nil {
			continue
		}
		if s := t.scope.Load(); s != nil && (newest == nil || s.seq > newest.seq) {
			newest = s
		}
	}
	return newest
}
