package hookedmodel

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/weights"
)

// Loading without doubling memory
//
// A checkpoint's weights stream onto the model's device one tensor at a
// time, and a large tensor a chunk of rows at a time: each chunk is read
// (pread, not a mapping, so the file's pages stay in the page cache rather
// than in the process) into one host buffer of at most loadChunk bytes,
// checked for NaN and infinities there, converted to the model's dtype on
// its way to the device (gotch.FromBytesAs) and copied into the weight,
// which is allocated once in its final dtype and place. So a load holds
// the model's own bytes plus the buffer and one converted chunk (plus, for
// tables that join parts, one layer's parts until they are joined):
// an 8B-parameter bf16 model going to a GPU passes through 32 MiB of host
// memory, and loaded on the CPU needs its 16 GB and little more.

// loadChunk bounds the host buffer a load reads through (a variable so
// that tests can make small tensors come in chunks).
var loadChunk int64 = 32 << 20

// weightReader reads weights from ck onto the model's device through one
// reused host buffer.
type weightReader struct {
	m              *HookedTransformer
	ck             *weights.Checkpoint
	buf            []byte
	allowNonFinite bool
}

// newWeightReader sizes the buffer for the largest tensor of table, whose
// keys checkTable has found in ck, up to loadChunk.
func (m *HookedTransformer) newWeightReader(ck *weights.Checkpoint, table []source, o options) *weightReader {
	var most int64
	for _, src := range table {
		if info, err := ck.Info(src.key); err == nil {
			most = max(most, info.NBytes())
		}
	}
	return &weightReader{m: m, ck: ck, buf: make([]byte, min(most, loadChunk)), allowNonFinite: o.allowNonFinite}
}

// read reads src onto the model's device in its dtype; src.key "" makes
// zeros. Unless allowNonFinite, a weight holding NaN or an infinity, as
// stored or once converted (float32 1e6 in float16), is an error wrapping
// ErrNonFinite.
func (r *weightReader) read(src source) (*gotch.Tensor, error) {
	m := r.m
	if src.key == "" {
		return gotch.Zeros(src.shape, m.dtype, m.device)
	}
	info, err := r.ck.Info(src.key)
	if err != nil {
		return nil, err
	}
	dt, ok := wdtypes[info.DType]
	if !ok || !dt.IsFloat() {
		return nil, fmt.Errorf("weight %q has dtype %s; want a floating-point type", src.key, info.DType)
	}
	shape := info.Shape
	if src.transpose {
		shape = []int64{shape[1], shape[0]}
	}
	chunk, rowBytes := r.chunk(info)
	// A tensor that comes in one chunk becomes the weight itself; a larger
	// one, or one kept column-major (reordering it after the load would
	// hold it twice), is filled chunk by chunk.
	var w *gotch.Tensor
	if info.NBytes() > int64(len(chunk)) || m.colMajor(src.dst, shape) {
		if w, err = m.zerosFor(src.dst, shape); err != nil {
			return nil, fmt.Errorf("weight %q: %w", src.key, err)
		}
	}
	var nan, inf int
	overflow := false
	err = r.ck.Stream(src.key, chunk, func(data []byte, off int64) error {
		n1, i1 := countNonFinite(data, info.DType)
		if nan, inf = nan+n1, inf+i1; nan+inf > 0 && !r.allowNonFinite {
			return nil // counted to the end for the message
		}
		if err := gotch.Try(func() { w = r.put(w, data, off, rowBytes, info, dt, src.transpose, &overflow) }); err != nil {
			return fmt.Errorf("weight %q: %w", src.key, err)
		}
		return nil
	})
	switch {
	case err != nil:
	case !r.allowNonFinite && nan+inf > 0:
		err = fmt.Errorf("weight %q holds %d NaN and %d infinite values of %d: %w", src.key, nan, inf, info.NBytes()/int64(info.DType.Size()), ErrNonFinite)
	case overflow:
		err = fmt.Errorf("weight %q (%s) overflows %s: %w", src.key, info.DType, m.dtype, ErrNonFinite)
	}
	if err != nil {
		w.Free() // nil-safe
		return nil, err
	}
	return w, nil
}

// chunk is the part of the buffer that info's tensor streams through: as
// many whole rows (indices along dimension 0, rowBytes each) as fit, at
// least one.
func (r *weightReader) chunk(info *weights.Tensor) (chunk []byte, rowBytes int64) {
	rowBytes = info.NBytes()
	if len(info.Shape) > 0 && info.Shape[0] > 0 {
		rowBytes /= info.Shape[0]
	}
	if int64(len(r.buf)) < min(rowBytes, info.NBytes()) {
		r.buf = make([]byte, rowBytes)
	}
	chunk = r.buf
	if rowBytes > 0 && int64(len(chunk)) < info.NBytes() {
		chunk = chunk[:int64(len(chunk))/rowBytes*rowBytes]
	}
	return chunk, rowBytes
}

// put converts data, the rows of a checkpoint tensor from byte off, on
// the model's device, into w (transposed: into its columns) and returns w;
// with w nil, data is the whole tensor, and put returns it as a new
// weight. Unless allowNonFinite, a chunk that a narrower dtype turns
// infinite sets *overflow.
func (r *weightReader) put(w *gotch.Tensor, data []byte, off, rowBytes int64, info *weights.Tensor, dt gotch.DType, transpose bool, overflow *bool) *gotch.Tensor {
	m := r.m
	s := gotch.NewScope()
	defer s.Close()
	shape := slices.Clone(info.Shape)
	row0 := int64(0)
	if len(shape) > 0 && rowBytes > 0 {
		row0, shape[0] = off/rowBytes, int64(len(data))/rowBytes
	}
	part := s.Attach(must(gotch.FromBytesAs(data, shape, dt, m.dtype, m.device)))
	if !r.allowNonFinite && maxFinite[m.dtype] < maxFinite[dt] && part.MustIsFinite().MustAll().MustItem() == 0 {
		*overflow = true
	}
	switch {
	case w == nil && transpose:
		return s.Keep(part.MustTranspose(0, 1).MustContiguous())
	case w == nil:
		return s.Keep(part)
	case transpose:
		borrow(s, w).MustNarrow(1, row0, shape[0]).MustCopy_(part.MustTranspose(0, 1))
	default:
		borrow(s, w).MustNarrow(0, row0, shape[0]).MustCopy_(part)
	}
	return w
}

// maxFinite is each floating-point dtype's largest finite value.
var maxFinite = map[gotch.DType]float64{
	gotch.Half: 65504, gotch.BFloat16: 0x1.fep127, gotch.Float: math.MaxFloat32, gotch.Double: math.MaxFloat64,
}

// countNonFinite counts the NaN and infinite elements of data, raw
// little-endian elements of a floating-point dtype, by their bits: an
// exponent of all ones is an infinity when the mantissa is 0, else a NaN.
func countNonFinite(data []byte, dt weights.DType) (nan, inf int) {
	switch dt {
	case weights.F16:
		return countBits(data, 2, 5, 10)
	case weights.BF16:
		return countBits(data, 2, 8, 7)
	case weights.F32:
		return countBits(data, 4, 8, 23)
	case weights.F64:
		return countBits(data, 8, 11, 52)
	}
	return 0, 0
}

// countBits is countNonFinite for elements of size bytes with expBits of
// exponent above manBits of mantissa. One loop per size, so that each
// compiles to a tight scan: a gigabyte takes a fraction of a second.
func countBits(data []byte, size, expBits, manBits int) (nan, inf int) {
	exp := uint64(1)<<expBits - 1
	expMask, manMask := exp<<manBits, uint64(1)<<manBits-1
	tally := func(bits uint64) {
		if bits&manMask == 0 {
			inf++
		} else {
			nan++
		}
	}
	switch size {
	case 2:
		for i := 0; i+2 <= len(data); i += 2 {
			if b := uint64(binary.LittleEndian.Uint16(data[i:])); b&expMask == expMask {
				tally(b)
			}
		}
	case 4:
		for i := 0; i+4 <= len(data); i += 4 {
			if b := uint64(binary.LittleEndian.Uint32(data[i:])); b&expMask == expMask {
				tally(b)
			}
		}
	case 8:
		for i := 0; i+8 <= len(data); i += 8 {
			if b := binary.LittleEndian.Uint64(data[i:]); b&expMask == expMask {
				tally(b)
			}
		}
	}
	return nan, inf
}
