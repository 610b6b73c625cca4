//go:build !cgo

package gotch

import "unsafe"

// Stand-ins for extension.go, which needs cgo: OpenExtension fails with an
// error wrapping ErrNoCgo, so no Extension exists in this build. The doc
// comments of the real API are in extension.go.

// Extension is a loaded golens extension (extension.go).
type Extension struct{ path string }

// ExtState is an extension's state slot (extension.go).
type ExtState struct{ p unsafe.Pointer }

// Empty reports whether the slot holds nothing.
func (s *ExtState) Empty() bool { return s == nil || s.p == nil }

// OpenExtension fails with ErrNoCgo.
func OpenExtension(path string) (*Extension, error) { return nil, noCgo("OpenExtension") }

// Path is the path the extension was opened with.
func (e *Extension) Path() string { return e.path }

// Call fails with ErrNoCgo.
func (e *Extension) Call(fn string, state *ExtState, tensors []*Tensor, ints ...int64) error {
	return noCgo("Call")
}

// Close does nothing.
func (e *Extension) Close() error { return nil }
