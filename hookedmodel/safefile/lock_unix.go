//go:build unix

package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockName is the file LockDir keeps in a locked directory.
const LockName = ".golens.lock"

// LockDir takes an exclusive advisory lock (flock) on dir for as long as
// the process holds it: release drops it, and so does the process's end,
// however it ends, so a killed run never leaves a stale lock. A directory
// locked by another process is an error naming that process (its pid, what
// it said it does, and since when), returned at once, without waiting.
func LockDir(dir, purpose string) (release func(), err error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := os.ReadFile(path)
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("%s is in use: locked by %s (the lock goes when that process ends)", dir, who)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	// Say who holds it, for the error another process will print.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "golens (pid %d) %s since %s\n", os.Getpid(), purpose, time.Now().UTC().Format(time.RFC3339))
	}
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
