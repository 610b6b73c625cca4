package weights

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/nlpodyssey/safetensors"
)

// parseSafetensors indexes the safetensors file held in buf, which the
// returned entries read from.
func parseSafetensors(path string, buf []byte) (map[string]*entry, map[string]string, error) {
	n, meta, err := safetensors.ReadMetadata(buf)
	if err != nil {
		if kerr := badTensor(buf); kerr != nil {
			err = fmt.Errorf("%w: %w", kerr, err)
		}
		return nil, nil, fmt.Errorf("safetensors %q: %w", path, err)
	}
	data := buf[8+n:]
	entries := map[string]*entry{}
	for name, info := range meta.Tensors() {
		shape := make([]int64, len(info.Shape))
		for i, d := range info.Shape {
			// A zero dimension lets the others be any size and still pass
			// the library's byte-count check.
			if d > math.MaxInt64 {
				return nil, nil, fmt.Errorf("safetensors %q: key %q: invalid shape %v", path, name, info.Shape)
			}
			shape[i] = int64(d)
		}
		b := data[info.DataOffsets[0]:info.DataOffsets[1]]
		entries[name] = &entry{
			file:  path,
			dtype: DType(info.DType.String()),
			shape: shape,
			read:  func() ([]byte, error) { return bytes.Clone(b), nil },
		}
	}
	return entries, meta.Metadata(), nil
}

// badTensor names the tensor behind a header the library rejected: its
// errors for a byte count that disagrees with the shape, or for data past
// the end of the file, do not say which key.
func badTensor(buf []byte) error {
	if len(buf) < 8 {
		return nil
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > uint64(len(buf)-8) {
		return nil
	}
	var header map[string]struct {
		DType       string   `json:"dtype"`
		Shape       []int64  `json:"shape"`
		DataOffsets []uint64 `json:"data_offsets"`
	}
	if json.Unmarshal(buf[8:8+n], &header) != nil {
		return nil
	}
	dataLen := uint64(len(buf)) - 8 - n
	for _, key := range slices.Sorted(maps.Keys(header)) {
		info := header[key]
		dt, err := safetensors.ParseDType(info.DType)
		if key == "__metadata__" || err != nil || len(info.DataOffsets) != 2 {
			continue
		}
		start, end := info.DataOffsets[0], info.DataOffsets[1]
		if start > end || end > dataLen {
			return fmt.Errorf("key %q: data offsets [%d %d] outside the %d data bytes", key, start, end, dataLen)
		}
		size := int64(dt.Size())
		if count, ok := numel(info.Shape, math.MaxInt64/size); ok && uint64(count*size) != end-start {
			return fmt.Errorf("key %q: %d data bytes, shape %v of %s needs %d", key, end-start, info.Shape, dt, count*size)
		}
	}
	return nil
}

// WriteSafetensors writes tensors to a safetensors file at path, with
// metadata (our model config, say) in its header. The file is replaced only
// once it is complete.
func WriteSafetensors(path string, tensors []*Tensor, metadata map[string]string) (err error) {
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

	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("write safetensors %q: %w", path, err)
		}
	}()
	w := bufio.NewWriter(f)
	if err := safetensors.SerializeToWriter(views, metadata, w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
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
