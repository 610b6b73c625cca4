//go:build !unix

package weights

import (
	"io"
	"os"
)

// mapFile reads path whole where mmap is not available.
func mapFile(path string) ([]byte, io.Closer, error) {
	b, err := os.ReadFile(path)
	return b, io.NopCloser(nil), err
}
