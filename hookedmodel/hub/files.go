package hub

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// symlink is os.Symlink; tests replace it to act out a filesystem without
// symlinks.
var symlink = os.Symlink

// link points a snapshot entry at its blob with a relative symlink, as
// Python does, so that the cache can move. Where symlinks are impossible
// (some Windows setups, FAT, some network mounts) the entry is a copy, which
// Python reads the same way.
func link(blob, pointer string) error {
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(pointer), blob)
	if err != nil {
		return err
	}
	err = symlink(rel, pointer)
	if errors.Is(err, fs.ErrExist) {
		if a, errA := os.Stat(pointer); errA == nil {
			if b, errB := os.Stat(blob); errB == nil && os.SameFile(a, b) {
				return nil // another run linked it already
			}
		}
		if err := os.Remove(pointer); err != nil {
			return err
		}
		err = symlink(rel, pointer)
	}
	if err == nil {
		return nil
	}
	return copyFile(blob, pointer)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeAtomic(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// writeAtomic writes name through a temporary file and a rename, so that a
// concurrent reader sees the old content or the new, never a part.
func writeAtomic(name string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	// Not os.CreateTemp: its files are 0600, and the cache is shared as
	// Python shares it (0644 under the umask).
	tmp := filepath.Join(filepath.Dir(name), fmt.Sprintf(".%s.%x.tmp", filepath.Base(name), rand.Uint64()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // fails harmlessly after the rename
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
