//go:build unix

package weights

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// mapFile maps path read-only into memory; pages are read from disk only as
// tensors touch them. The slice is valid until the closer runs.
func mapFile(path string) ([]byte, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, io.NopCloser(nil), nil // mmap refuses empty files
	}
	if size != int64(int(size)) {
		return nil, nil, fmt.Errorf("%s: %d bytes is too large to map", path, size)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return b, mapping(b), nil
}

type mapping []byte

func (m mapping) Close() error { return syscall.Munmap(m) }
