package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
)

// Size limits for the kinds of input golens reads whole.
const (
	JSONLimit   = 64 << 20 // a config or index JSON file
	TokensLimit = 1 << 30  // a file of token ids or of text to tokenize
)

// kind names a file mode that is not a regular file, for errors.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "not a regular file"
	}
}

// NotRegularError says that a path golens was to read or replace is not a
// regular file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
	Op   string // "read" or "write"
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s %s: it is %s, not a regular file", e.Op, e.Path, kind(e.Mode))
}

// TooLargeError says that a file is larger than golens reads.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("read %s: larger than %s, the most golens reads from such a file", e.Path, bytesString(e.Limit))
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Open opens the regular file at path for reading. It never blocks: a FIFO
// is refused before it is opened (and, should the path change in between,
// opening does not wait for a writer), as are directories and devices.
func Open(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{path, fi.Mode(), "read"}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, &NotRegularError{path, fi.Mode(), "read"}
	}
	return f, nil
}

// Read reads the regular file at path whole, refusing one larger than
// limit bytes (checked while reading too, for a file that grows).
func Read(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return nil, &TooLargeError{path, limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{path, limit}
	}
	return b, nil
}

// Target is the file a write to path replaces: path itself, or the file a
// symbolic link there points to. It is an error when that exists and is
// not a regular file; a path that does not exist yet is its own target.
func Target(path string) (string, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path, nil
	case err != nil:
		return "", err
	case fi.Mode().IsRegular():
		return path, nil
	case fi.Mode()&fs.ModeSymlink == 0:
		return "", &NotRegularError{path, fi.Mode(), "write"}
	}
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("write %s: it is a symbolic link to a missing file", path)
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if fi, err = os.Stat(target); err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", &NotRegularError{path + " (→ " + target + ")", fi.Mode(), "write"}
	}
	return target, nil
}

// Write replaces the file at path (see Target) with what fill writes,
// through a temporary file beside it and a rename, with permissions perm
// (less the umask) for a new file and the old file's for a replaced one.
// On any error, the temporary file is removed and path is unchanged.
func Write(path string, perm fs.FileMode, fill func(io.Writer) error) (err error) {
	target, err := Target(path)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(target); err == nil {
		perm = fi.Mode().Perm()
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%016x.tmp", base, rand.Uint64()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Check again: what was a regular file (or nothing) may have been
	// replaced by something else while fill ran.
	if _, err := Target(target); err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
