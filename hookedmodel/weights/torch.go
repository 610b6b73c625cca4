package weights

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// storageDTypes maps torch's typed storage classes to dtypes.
var storageDTypes = map[string]DType{
	"FloatStorage":    F32,
	"DoubleStorage":   F64,
	"HalfStorage":     F16,
	"BFloat16Storage": BF16,
	"LongStorage":     I64,
	"IntStorage":      I32,
	"ByteStorage":     U8,
	"BoolStorage":     BOOL,
}

// storage is a torch storage: numel elements of dtype at r[off:].
type storage struct {
	dtype DType
	numel int64
	r     io.ReaderAt // nil until the data is located
	off   int64
}

// tensorRef is a saved tensor: a strided view into a storage.
type tensorRef struct {
	storage *storage
	offset  int64
	shape   []int64
	stride  []int64
}

// pyFunc is a Python callable that the pickle may reference.
type pyFunc func(args ...any) (any, error)

func (f pyFunc) Call(args ...any) (any, error) { return f(args...) }

// findClass resolves the globals a state dict pickle references. Anything
// else is refused, so that an unexpected object fails loudly at Open.
func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return pyFunc(rebuildTensor), nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		// nn.Parameter pickles as its data tensor wrapped in this call.
		return pyFunc(func(args ...any) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("_rebuild_parameter: no arguments")
			}
			if _, ok := args[0].(*tensorRef); !ok {
				return nil, fmt.Errorf("_rebuild_parameter: data is %T, not a tensor", args[0])
			}
			return args[0], nil
		}), nil
	}
	if dt, ok := storageDTypes[name]; ok && module == "torch" {
		return dt, nil
	}
	return nil, fmt.Errorf("unsupported class %s.%s", module, name)
}

// rebuildTensor implements _rebuild_tensor_v2(storage, storage_offset, size,
// stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensor(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments", len(args))
	}
	s, ok := args[0].(*storage)
	offset, ok2 := args[1].(int)
	shape, ok3 := intTuple(args[2])
	stride, ok4 := intTuple(args[3])
	if !ok || !ok2 || !ok3 || !ok4 || len(shape) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: unexpected arguments %v", args[:4])
	}
	return &tensorRef{storage: s, offset: int64(offset), shape: shape, stride: stride}, nil
}

func intTuple(v any) ([]int64, bool) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok {
			return nil, false
		}
		out[i] = int64(n)
	}
	return out, true
}

// check verifies that the view lies inside its storage. It also refuses a
// view with more elements than its storage (an expanded tensor), which bounds
// what Get allocates by the file's size.
func (t *tensorRef) check() error {
	s := t.storage
	if s.r == nil {
		return errors.New("storage data missing from the file")
	}
	n, ok := numel(t.shape, s.numel)
	if !ok {
		return fmt.Errorf("shape %v invalid or larger than its storage of %d elements", t.shape, s.numel)
	}
	if n == 0 {
		return nil
	}
	outside := fmt.Errorf("view (offset %d, shape %v, stride %v) outside its storage of %d elements", t.offset, t.shape, t.stride, s.numel)
	if t.offset < 0 || t.offset >= s.numel {
		return outside
	}
	last := t.offset
	for i, d := range t.shape {
		st := t.stride[i]
		if st < 0 || (st > 0 && d-1 > (s.numel-1-last)/st) {
			return outside
		}
		last += (d - 1) * st
	}
	return nil
}

// readAt fills out with the view's elements, contiguous in row-major
// order, from byte off; a strided view only all of them (off 0).
func (t *tensorRef) readAt(out []byte, off int64) error {
	size := int64(t.storage.dtype.Size())
	n, _ := numel(t.shape, t.storage.numel)
	if n == 0 {
		return nil
	}
	start := t.storage.off + t.offset*size
	if t.contiguous() {
		return readAt(t.storage.r, out, start+off)
	}
	if off != 0 || int64(len(out)) != n*size {
		return errors.New("a strided view is read whole")
	}
	// Read the span the view covers, then gather its elements.
	span := int64(1)
	for i, d := range t.shape {
		span += (d - 1) * t.stride[i]
	}
	buf := make([]byte, span*size)
	if err := readAt(t.storage.r, buf, start); err != nil {
		return err
	}
	idx := make([]int64, len(t.shape))
	src := int64(0)
	for i := range n {
		copy(out[i*size:(i+1)*size], buf[src*size:])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			src += t.stride[d]
			if idx[d] < t.shape[d] {
				break
			}
			src -= t.stride[d] * t.shape[d]
			idx[d] = 0
		}
	}
	return nil
}

// contiguous reports whether the view is row-major without gaps. Strides of
// size-1 dimensions do not matter.
func (t *tensorRef) contiguous() bool {
	want := int64(1)
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= t.shape[i]
	}
	return true
}

// readTorch indexes a torch checkpoint of the given size read from r: a zip
// archive (torch >= 1.6) or the legacy stream of pickles and storages.
func readTorch(file string, r io.ReaderAt, size int64) (map[string]*entry, error) {
	var head [4]byte
	r.ReadAt(head[:], 0)
	var obj any
	var err error
	if string(head[:]) == "PK\x03\x04" {
		obj, err = loadZip(r, size)
	} else {
		obj, err = loadLegacy(r, size)
	}
	var entries map[string]*entry
	if err == nil {
		entries, err = stateDict(file, obj)
	}
	if err != nil {
		return nil, fmt.Errorf("torch checkpoint %q: %w", file, err)
	}
	return entries, nil
}

// stateDict turns the unpickled top-level dict into entries.
func stateDict(file string, obj any) (map[string]*entry, error) {
	entries := map[string]*entry{}
	add := func(k, v any) error {
		key, ok := k.(string)
		if !ok {
			return fmt.Errorf("state dict key %v is a %T, not a string", k, k)
		}
		t, ok := v.(*tensorRef)
		if !ok {
			return fmt.Errorf("key %q: value is a %T, not a tensor", key, v)
		}
		if err := t.check(); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		entries[key] = &entry{file: file, dtype: t.storage.dtype, shape: t.shape, readAt: t.readAt, whole: !t.contiguous()}
		return nil
	}
	switch d := obj.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			kv := e.Value.(*types.OrderedDictEntry)
			if err := add(kv.Key, kv.Value); err != nil {
				return nil, err
			}
		}
	case *types.Dict:
		for _, kv := range *d {
			if err := add(kv.Key, kv.Value); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("top-level object is a %T, not a state dict", obj)
	}
	return entries, nil
}

// storageID parses a persistent id ('storage', class, key, location, numel,
// ...) into a new storage and its key.
func storageID(id any) (*storage, string, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() < 5 || t.Get(0) != "storage" {
		return nil, "", fmt.Errorf("unexpected persistent id %v", id)
	}
	dt, ok := t.Get(1).(DType)
	key, ok2 := t.Get(2).(string)
	n, ok3 := t.Get(4).(int)
	if !ok || !ok2 || !ok3 || n < 0 {
		return nil, "", fmt.Errorf("unexpected persistent id %v", id)
	}
	return &storage{dtype: dt, numel: int64(n)}, key, nil
}

// loadZip reads torch's zip format: <name>/data.pkl holds the pickle and
// <name>/data/<key> each storage's raw bytes.
func loadZip(r io.ReaderAt, size int64) (any, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, err
	}
	records := map[string]*zip.File{}
	prefix := ""
	for _, f := range zr.File {
		records[f.Name] = f
		if strings.HasSuffix(f.Name, "/data.pkl") && strings.Count(f.Name, "/") == 1 {
			prefix = strings.TrimSuffix(f.Name, "data.pkl")
		}
	}
	pkl, ok := records[prefix+"data.pkl"]
	if !ok {
		return nil, errors.New("no data.pkl in the zip archive")
	}
	// torch >= 2.1 records the byte order; older versions wrote only little-endian.
	if rec, ok := records[prefix+"byteorder"]; ok {
		off, n, err := storedRange(rec, size)
		if err != nil {
			return nil, err
		}
		b := make([]byte, min(n, 16))
		if _, err := r.ReadAt(b, off); err != nil || string(b) != "little" {
			return nil, fmt.Errorf("byte order %q is not supported", b)
		}
	}
	storages := map[string]*storage{}
	persistentLoad := func(id any) (any, error) {
		s, key, err := storageID(id)
		if err != nil {
			return nil, err
		}
		if old, ok := storages[key]; ok {
			if old.dtype != s.dtype {
				return nil, fmt.Errorf("storage %q read as both %s and %s", key, old.dtype, s.dtype)
			}
			return old, nil
		}
		rec, ok := records[prefix+"data/"+key]
		if !ok {
			return nil, fmt.Errorf("storage %q: no record %q", key, prefix+"data/"+key)
		}
		off, n, err := storedRange(rec, size)
		if err != nil {
			return nil, err
		}
		if elem := int64(s.dtype.Size()); s.numel > n/elem || s.numel*elem != n {
			return nil, fmt.Errorf("storage %q: %d elements of %s, but its record holds %d bytes", key, s.numel, s.dtype, n)
		}
		s.r, s.off = r, off
		storages[key] = s
		return s, nil
	}
	off, n, err := storedRange(pkl, size)
	if err != nil {
		return nil, err
	}
	obj, _, err := loadPickle(r, off, n, persistentLoad)
	return obj, err
}

// storedRange returns where an uncompressed zip record's bytes lie.
func storedRange(f *zip.File, size int64) (off, n int64, err error) {
	if f.Method != zip.Store {
		return 0, 0, fmt.Errorf("record %q is compressed; torch writes them stored", f.Name)
	}
	if off, err = f.DataOffset(); err != nil {
		return 0, 0, fmt.Errorf("record %q: %w", f.Name, err)
	}
	if f.CompressedSize64 != f.UncompressedSize64 || off < 0 || off > size || f.UncompressedSize64 > uint64(size-off) {
		return 0, 0, fmt.Errorf("record %q: %d bytes at offset %d overrun the %d-byte file", f.Name, f.UncompressedSize64, off, size)
	}
	return off, int64(f.UncompressedSize64), nil
}

// legacyMagic opens torch's legacy (pre-1.6) format.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// loadLegacy reads torch's legacy format: pickles of the magic number,
// protocol version, system info, the object and its storage keys; then each
// storage as an int64 element count and the raw bytes.
func loadLegacy(r io.ReaderAt, size int64) (any, error) {
	off := int64(0)
	next := func(persistentLoad func(any) (any, error)) (any, error) {
		v, n, err := loadPickle(r, off, size-off, persistentLoad)
		off += n
		return v, err
	}
	magic, err := next(nil)
	if m, ok := magic.(*big.Int); err != nil || !ok || m.Cmp(legacyMagic) != 0 {
		return nil, errors.New("neither a zip archive nor a legacy torch file (bad magic number)")
	}
	version, err := next(nil)
	if err != nil {
		return nil, fmt.Errorf("protocol version: %w", err)
	}
	if version != 1001 {
		return nil, fmt.Errorf("unsupported legacy protocol version %v", version)
	}
	info, err := next(nil)
	if err != nil {
		return nil, fmt.Errorf("system info: %w", err)
	}
	if d, ok := info.(*types.Dict); !ok || !littleEndian(d) {
		return nil, fmt.Errorf("system info %v: not little-endian", info)
	}
	storages := map[string]*storage{}
	obj, err := next(func(id any) (any, error) {
		s, key, err := storageID(id)
		if err != nil {
			return nil, err
		}
		if t := id.(*types.Tuple); t.Len() > 5 && t.Get(5) != nil {
			return nil, fmt.Errorf("storage %q: storage views (torch < 0.4) are not supported", key)
		}
		if old, ok := storages[key]; ok {
			if old.dtype != s.dtype {
				return nil, fmt.Errorf("storage %q read as both %s and %s", key, old.dtype, s.dtype)
			}
			return old, nil
		}
		storages[key] = s
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	keys, err := next(nil)
	if err != nil {
		return nil, fmt.Errorf("storage keys: %w", err)
	}
	list, ok := keys.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage keys are a %T, not a list", keys)
	}
	for _, k := range *list {
		key, _ := k.(string)
		s, ok := storages[key]
		if !ok {
			return nil, fmt.Errorf("storage key %v not used by the pickle", k)
		}
		var b [8]byte
		if _, err := r.ReadAt(b[:], off); err != nil {
			return nil, fmt.Errorf("storage %q at offset %d: %w", key, off, err)
		}
		n := int64(binary.LittleEndian.Uint64(b[:]))
		elem := int64(s.dtype.Size())
		if n != s.numel {
			return nil, fmt.Errorf("storage %q at offset %d: %d elements, want %d", key, off, n, s.numel)
		}
		if n > (size-off-8)/elem {
			return nil, fmt.Errorf("storage %q at offset %d: %d elements of %s overrun the %d bytes left", key, off, n, s.dtype, size-off-8)
		}
		s.r, s.off = r, off+8
		off += 8 + n*elem
	}
	return obj, nil
}

func littleEndian(info *types.Dict) bool {
	v, ok := info.Get("little_endian")
	return ok && v == true
}
