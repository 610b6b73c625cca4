//go:build !unix

package safefile

// LockName is the file LockDir keeps in a locked directory.
const LockName = ".golens.lock"

// LockDir does nothing where flock is not available; two runs on one
// directory are then not prevented.
func LockDir(dir, purpose string) (release func(), err error) { return func() {}, nil }
