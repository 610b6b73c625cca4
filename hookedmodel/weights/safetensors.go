package weights

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"slices"

	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/nlpodyssey/safetensors"
)

// maxHeader bounds a safetensors header, as the format's reference reader
// does, so that a corrupt length cannot make Open allocate a whole file.
const maxHeader = 100_000_000

// readSafetensors indexes the safetensors file of size bytes that r reads;
// its entries read their tensors from r when asked. The header must
// describe the file exactly: tensors that tile the data bytes end to end,
// each holding the bytes its shape needs.
func readSafetensors(path string, r io.ReaderAt, size int64) (map[string]*entry, map[string]string, error) {
	meta, dataStart, err := readHeader(r, size)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors %q: %w", path, err)
	}
	infos := meta.Tensors()
	// By offset, so that a gap or an overlap shows between neighbours.
	keys := slices.SortedFunc(maps.Keys(infos), func(a, b string) int {
		return cmp.Or(cmp.Compare(infos[a].DataOffsets[0], infos[b].DataOffsets[0]),
			cmp.Compare(infos[a].DataOffsets[1], infos[b].DataOffsets[1]), cmp.Compare(a, b))
	})
	dataLen := uint64(size - dataStart)
	entries := map[string]*entry{}
	end := uint64(0) // where the tensors so far end
	for _, key := range keys {
		info := infos[key]
		e, err := tensorEntry(key, info, end, dataLen)
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors %q: %w", path, err)
		}
		off := dataStart + int64(info.DataOffsets[0])
		e.file = path
		e.readAt = func(dst []byte, at int64) error { return readData(r, size, off+at, dst) }
		entries[key] = e
		end = info.DataOffsets[1]
	}
	if end != dataLen {
		return nil, nil, fmt.Errorf("safetensors %q: the header's tensors end at data byte %d, but the file holds %d data bytes", path, end, dataLen)
	}
	sums, err := checksums(meta.Metadata())
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors %q: %w", path, err)
	}
	for key, want := range sums {
		e, ok := entries[key]
		if !ok {
			return nil, nil, fmt.Errorf("safetensors %q: metadata %s lists %q, which the file does not hold (the header is damaged)", path, ChecksumKey, key)
		}
		e.sum = &want
	}
	return entries, meta.Metadata(), nil
}

// readHeader reads a safetensors header: its length, then its JSON. It
// returns where the data bytes start.
func readHeader(r io.ReaderAt, size int64) (safetensors.Metadata, int64, error) {
	var meta safetensors.Metadata
	var head [8]byte
	if size < 8 {
		return meta, 0, fmt.Errorf("header too small: the file has %d bytes", size)
	}
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return meta, 0, err
	}
	n := binary.LittleEndian.Uint64(head[:])
	if n > maxHeader || n > uint64(size-8) {
		return meta, 0, fmt.Errorf("invalid header length %d for a file of %d bytes", n, size)
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, 8); err != nil {
		return meta, 0, err
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, 0, fmt.Errorf("invalid header: %w", err)
	}
	return meta, 8 + int64(n), nil
}

// tensorEntry checks one tensor of the header, which must start at data
// byte end, where the one before it ended, and returns its entry (without
// file and read).
func tensorEntry(key string, info *safetensors.TensorInfo, end, dataLen uint64) (*entry, error) {
	start, stop := info.DataOffsets[0], info.DataOffsets[1]
	switch {
	case start > stop || stop > dataLen:
		return nil, fmt.Errorf("key %q: data offsets [%d %d] outside the %d data bytes", key, start, stop, dataLen)
	case start != end:
		return nil, fmt.Errorf("key %q: data offsets [%d %d] do not start where the tensor before ends (data byte %d): a gap or an overlap", key, start, stop, end)
	}
	shape := make([]int64, len(info.Shape))
	for i, d := range info.Shape {
		if d > math.MaxInt64 {
			return nil, fmt.Errorf("key %q: invalid shape %v", key, info.Shape)
		}
		shape[i] = int64(d)
	}
	size := int64(info.DType.Size())
	count, ok := numel(shape, math.MaxInt64/size)
	if !ok || uint64(count*size) != stop-start {
		return nil, fmt.Errorf("key %q: %d data bytes, shape %v of %s needs %d", key, stop-start, info.Shape, info.DType, count*size)
	}
	return &entry{dtype: DType(info.DType.String()), shape: shape}, nil
}

// readData fills dst from off in a checkpoint file that had size bytes
// when it was opened. A file that has changed size since (truncated,
// rewritten in place) is an error, not a crash: the header no longer
// describes it.
func readData(r io.ReaderAt, size, off int64, dst []byte) error {
	if f, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() != size {
			return fmt.Errorf("the file has %d bytes, not the %d it had when opened: it changed while open", fi.Size(), size)
		}
	}
	return readAt(r, dst, off)
}

// readAt fills b from off in a checkpoint file whose header or index,
// checked at Open, put those bytes inside it: an end of file says the file
// shrank since.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	_, err := r.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("the file ends before byte %d: it changed while open (%w)", off+int64(len(b)), err)
	}
	return err
}

// WriteSafetensors writes tensors to a safetensors file at path, with
// metadata (our model config, say) in its header, through safefile.Write:
// the file is replaced only once it is complete, and only if it is a
// regular file (or a link to one).
func WriteSafetensors(path string, tensors []*Tensor, metadata map[string]string) error {
	views := make(map[string]stView, len(tensors))
	for _, t := range tensors {
		if err := t.validate(); err != nil {
			return fmt.Errorf("write safetensors %q: %w", path, err)
		}
		if _, dup := views[t.Name]; dup || t.Name == "__metadata__" {
			return fmt.Errorf("write safetensors %q: key %q: duplicate or reserved name", path, t.Name)
		}
		dt, _ := safetensors.ParseDType(string(t.DType)) // validate has checked it
		views[t.Name] = stView{t, dt}
	}
	metadata, err := withChecksums(metadata, tensors)
	if err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	err = safefile.Write(path, 0o644, func(f io.Writer) error {
		w := bufio.NewWriter(f)
		if err := safetensors.SerializeToWriter(views, metadata, w); err != nil {
			return err
		}
		return w.Flush()
	})
	if err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	return nil
}

// stView presents a Tensor to the safetensors writer. The library's own
// NewTensorView counts a 0-d shape as 0 elements, so it refuses scalars.
type stView struct {
	t     *Tensor
	dtype safetensors.DType
}

func (v stView) DType() safetensors.DType { return v.dtype }
func (v stView) Data() []byte             { return v.t.Data }
func (v stView) DataLen() uint64          { return uint64(len(v.t.Data)) }

// Shape is never nil: the header must say [] for a 0-d tensor, not null.
func (v stView) Shape() []uint64 {
	s := make([]uint64, len(v.t.Shape))
	for i, d := range v.t.Shape {
		s[i] = uint64(d)
	}
	return s
}
