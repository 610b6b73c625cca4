//go:build !unix

package hub

import (
	"context"
	"sync"
)

// held maps a lock path to a channel that closes when it is released.
var (
	heldMu sync.Mutex
	held   = map[string]chan struct{}{}
)

// lockFile serialises the goroutines of this process on path. Without flock
// it does not exclude other processes (Python's filelock on Windows uses
// msvcrt locking, which this does not take).
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	for {
		heldMu.Lock()
		done, busy := held[path]
		if !busy {
			done = make(chan struct{})
			held[path] = done
			heldMu.Unlock()
			return func() {
				heldMu.Lock()
				delete(held, path)
				heldMu.Unlock()
				close(done)
			}, nil
		}
		heldMu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-done:
		}
	}
}
