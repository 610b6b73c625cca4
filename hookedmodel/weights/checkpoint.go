package weights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNotFound is wrapped by the error for a key the checkpoint does not hold.
var ErrNotFound = errors.New("tensor not found")

// Hugging Face checkpoint file names, in order of preference.
var layouts = []string{
	"model.safetensors",
	"model.safetensors.index.json",
	"pytorch_model.bin",
	"pytorch_model.bin.index.json",
}

// Checkpoint is an open checkpoint. Its methods may be called concurrently,
// except Close, after which Get fails.
type Checkpoint struct {
	fsys     fs.FS // nil: the operating system's files
	path     string
	entries  map[string]*entry
	metadata map[string]string
	closers  []io.Closer
	closed   bool
}

// entry locates one tensor in one file.
type entry struct {
	file  string
	dtype DType
	shape []int64
	// readAt fills dst with the tensor's contiguous bytes from byte off;
	// with whole set, only all of them at once (off 0).
	readAt func(dst []byte, off int64) error
	whole  bool
	sum    *uint32 // the recorded CRC-32C of the bytes, or nil
}

// Open opens a checkpoint directory in Hugging Face layout, or one checkpoint
// file: *.safetensors, a sharded *.index.json, or anything else as a torch
// pickle (zip or legacy format).
func Open(path string) (*Checkpoint, error) {
	return open(nil, path)
}

// OpenFS opens a checkpoint as Open does, from fsys (an embed.FS, an
// fstest.MapFS, os.DirFS, ...) instead of the operating system's files;
// name is slash-separated, as fs.FS names are. A file is read through its
// ReadAt where it has one, else into memory whole. Nothing is written to
// disk.
func OpenFS(fsys fs.FS, name string) (*Checkpoint, error) {
	if fsys == nil {
		return nil, errors.New("open checkpoint: nil fs.FS")
	}
	return open(fsys, name)
}

func open(fsys fs.FS, path string) (*Checkpoint, error) {
	c := &Checkpoint{fsys: fsys, path: path, entries: map[string]*entry{}, metadata: map[string]string{}}
	fi, err := c.stat(path)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	file := path
	if fi.IsDir() {
		i := slices.IndexFunc(layouts, func(name string) bool {
			_, err := c.stat(c.join(path, name))
			return err == nil
		})
		if i < 0 {
			return nil, fmt.Errorf("open checkpoint %q: none of %s in the directory", path, strings.Join(layouts, ", "))
		}
		file = c.join(path, layouts[i])
	}
	if strings.HasSuffix(file, ".index.json") {
		err = c.addIndex(file)
	} else {
		var entries map[string]*entry
		entries, err = c.openFile(file)
		maps.Copy(c.entries, entries)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open checkpoint %q: %w", path, err)
	}
	return c, nil
}

func (c *Checkpoint) stat(name string) (fs.FileInfo, error) {
	if c.fsys == nil {
		return os.Stat(name)
	}
	return fs.Stat(c.fsys, name)
}

func (c *Checkpoint) readFile(name string) ([]byte, error) {
	if c.fsys == nil {
		return os.ReadFile(name)
	}
	return fs.ReadFile(c.fsys, name)
}

func (c *Checkpoint) join(elem ...string) string {
	if c.fsys == nil {
		return filepath.Join(elem...)
	}
	return path.Join(elem...)
}

func (c *Checkpoint) dir(name string) string {
	if c.fsys == nil {
		return filepath.Dir(name)
	}
	return path.Dir(name)
}

// openReaderAt opens the file name for random access, with its size.
func (c *Checkpoint) openReaderAt(name string) (io.ReaderAt, int64, io.Closer, error) {
	if c.fsys == nil {
		f, err := os.Open(name)
		if err != nil {
			return nil, 0, nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, nil, err
		}
		return f, fi.Size(), f, nil
	}
	f, err := c.fsys.Open(name)
	if err != nil {
		return nil, 0, nil, err
	}
	if ra, ok := f.(io.ReaderAt); ok {
		if fi, err := f.Stat(); err == nil {
			return ra, fi.Size(), f, nil
		}
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, 0, nil, err
	}
	return bytes.NewReader(b), int64(len(b)), io.NopCloser(nil), nil
}

// openFile opens one checkpoint file, keeping it open until Close.
func (c *Checkpoint) openFile(file string) (map[string]*entry, error) {
	r, size, closer, err := c.openReaderAt(file)
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, closer)
	if strings.HasSuffix(file, ".safetensors") {
		entries, meta, err := readSafetensors(file, r, size)
		maps.Copy(c.metadata, meta)
		delete(c.metadata, ChecksumKey) // checked here, of no use to callers
		return entries, err
	}
	return readTorch(file, r, size)
}

// addIndex opens the shards a Hugging Face *.index.json names and takes from
// each the keys its weight_map assigns to it.
func (c *Checkpoint) addIndex(index string) error {
	b, err := c.readFile(index)
	if err != nil {
		return err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("index %q: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return fmt.Errorf("index %q: empty weight_map", index)
	}
	shards := map[string]map[string]*entry{}
	for _, key := range slices.Sorted(maps.Keys(idx.WeightMap)) {
		name := idx.WeightMap[key]
		if !filepath.IsLocal(name) {
			return fmt.Errorf("index %q: key %q: shard %q is outside the index's directory", index, key, name)
		}
		shard, ok := shards[name]
		if !ok {
			shard, err = c.openFile(c.join(c.dir(index), name))
			if err != nil {
				return fmt.Errorf("index %q: key %q: %w", index, key, err)
			}
			shards[name] = shard
		}
		e, ok := shard[key]
		if !ok {
			return fmt.Errorf("index %q: key %q: not in shard %q", index, key, name)
		}
		c.entries[key] = e
	}
	return nil
}

// Keys returns the checkpoint's tensor names, sorted.
func (c *Checkpoint) Keys() []string {
	return slices.Sorted(maps.Keys(c.entries))
}

// Metadata returns the safetensors header metadata (merged over shards);
// torch checkpoints have none. The caller must not modify the map.
func (c *Checkpoint) Metadata() map[string]string {
	return c.metadata
}

// Info returns key's name, dtype and shape without reading its data; Data is
// nil.
func (c *Checkpoint) Info(key string) (*Tensor, error) {
	e, ok := c.entries[key]
	if !ok {
		return nil, fmt.Errorf("checkpoint %q: key %q: %w", c.path, key, ErrNotFound)
	}
	return &Tensor{Name: key, DType: e.dtype, Shape: slices.Clone(e.shape)}, nil
}

// Get reads key's tensor. Its Data is the caller's own.
func (c *Checkpoint) Get(key string) (*Tensor, error) {
	return c.GetInto(key, nil)
}

// GetInto reads key's tensor into buf when it holds the tensor's bytes
// (Info's NBytes), else into a new slice: Data is buf[:NBytes] or that
// slice. A loader that reuses one buffer holds no tensor twice on the
// host.
func (c *Checkpoint) GetInto(key string, buf []byte) (*Tensor, error) {
	t, err := c.Info(key)
	if err != nil {
		return nil, err
	}
	e := c.entries[key]
	n := t.NBytes()
	if err := c.readable(e); err != nil {
		return nil, fmt.Errorf("checkpoint %q: key %q in %q: %w", c.path, key, e.file, err)
	}
	if int64(len(buf)) < n {
		buf = make([]byte, n)
	}
	t.Data = buf[:n]
	err = e.readAt(t.Data, 0)
	if err == nil {
		err = e.check(crc(t.Data))
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q: key %q in %q: %w", c.path, key, e.file, err)
	}
	return t, nil
}

// Stream reads key's tensor in order through buf, calling fn with each
// chunk of at most len(buf) bytes (a prefix of buf) and its offset in the
// tensor's data, so that a tensor of any size costs only buf on the host.
// A chunk is only valid during its call. A recorded checksum is checked
// once the last chunk is read: then Stream fails after fn has seen
// every chunk. A tensor only readable whole (a strided view in a torch
// pickle) comes in one chunk, in a buffer of its own when buf is smaller.
func (c *Checkpoint) Stream(key string, buf []byte, fn func(chunk []byte, off int64) error) error {
	t, err := c.Info(key)
	if err != nil {
		return err
	}
	e := c.entries[key]
	n := t.NBytes()
	if int64(len(buf)) >= n || e.whole || len(buf) == 0 {
		if t, err = c.GetInto(key, buf); err != nil {
			return err
		}
		return fn(t.Data, 0)
	}
	if err := c.readable(e); err != nil {
		return fmt.Errorf("checkpoint %q: key %q in %q: %w", c.path, key, e.file, err)
	}
	sum := uint32(0)
	for off := int64(0); off < n; off += int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), n-off)]
		if err := e.readAt(chunk, off); err != nil {
			return fmt.Errorf("checkpoint %q: key %q in %q: %w", c.path, key, e.file, err)
		}
		sum = crc32.Update(sum, castagnoli, chunk)
		if err := fn(chunk, off); err != nil {
			return err
		}
	}
	if err := e.check(sum); err != nil {
		return fmt.Errorf("checkpoint %q: key %q in %q: %w", c.path, key, e.file, err)
	}
	return nil
}

// readable says why e cannot be read now, or nil.
func (c *Checkpoint) readable(e *entry) error {
	switch {
	case c.closed:
		return errors.New("checkpoint is closed")
	case e.dtype.Size() == 0:
		return fmt.Errorf("unknown dtype %q", e.dtype)
	}
	return nil
}

// Expect checks that key exists with the given shape.
func (c *Checkpoint) Expect(key string, shape ...int64) error {
	t, err := c.Info(key)
	if err != nil {
		return err
	}
	if !slices.Equal(t.Shape, shape) {
		return fmt.Errorf("checkpoint %q: key %q: want shape %v, got %v", c.path, key, shape, t.Shape)
	}
	return nil
}

// Close releases the checkpoint's files.
func (c *Checkpoint) Close() error {
	c.closed = true
	var errs []error
	for _, cl := range c.closers {
		errs = append(errs, cl.Close())
	}
	c.closers = nil
	return errors.Join(errs...)
}
