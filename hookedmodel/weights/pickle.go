package weights

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/nlpodyssey/gopickle/pickle"
)

// loadPickle decodes the pickle at r[off:off+limit] and returns its value and
// length. persistentLoad resolves torch's storage references.
func loadPickle(r io.ReaderAt, off, limit int64, persistentLoad func(any) (any, error)) (v any, n int64, err error) {
	n, err = scanPickle(bufio.NewReader(io.NewSectionReader(r, off, limit)), limit)
	if err != nil {
		return nil, 0, err
	}
	// gopickle panics on some malformed input; report that as an error.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed pickle: %v", p)
		}
	}()
	u := pickle.NewUnpickler(bufio.NewReader(io.NewSectionReader(r, off, n)))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad
	v, err = u.Load()
	return v, n, err
}

// scanPickle walks one pickle's opcodes up to its STOP and returns its length.
// It guards gopickle, which allocates a length read from the input before
// reading that many bytes: eleven bytes claiming a 1 TiB frame abort the
// process with an out-of-memory error that cannot be recovered. Here every
// such length must fit in the limit bytes the input holds.
func scanPickle(r *bufio.Reader, limit int64) (int64, error) {
	var pos int64
	fixed := func(n int) (uint64, error) {
		var b [8]byte
		if _, err := io.ReadFull(r, b[:n]); err != nil {
			return 0, err
		}
		pos += int64(n)
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	fits := func(n uint64) error {
		if n > uint64(limit-pos) {
			return fmt.Errorf("length %d runs past the end of the data", n)
		}
		return nil
	}
	counted := func(lenSize int) error {
		n, err := fixed(lenSize)
		if err != nil {
			return err
		}
		if err := fits(n); err != nil {
			return err
		}
		_, err = r.Discard(int(n))
		pos += int64(n)
		return err
	}
	line := func() error {
		for {
			b, err := r.ReadSlice('\n')
			pos += int64(len(b))
			if !errors.Is(err, bufio.ErrBufferFull) {
				return err
			}
		}
	}
	for {
		op, err := r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("pickle: no STOP opcode: %w", err)
		}
		pos++
		switch op {
		case '.': // STOP
			return pos, nil
		case 'K', 'h', 'q', 0x80, 0x82: // BININT1 BINGET BINPUT PROTO EXT1
			_, err = fixed(1)
		case 'M', 0x83: // BININT2 EXT2
			_, err = fixed(2)
		case 'J', 'j', 'r', 0x84: // BININT LONG_BINGET LONG_BINPUT EXT4
			_, err = fixed(4)
		case 'G': // BINFLOAT
			_, err = fixed(8)
		case 0x95: // FRAME: the frame's opcodes follow, so only bound its size
			var n uint64
			if n, err = fixed(8); err == nil {
				err = fits(n)
			}
		case 'F', 'I', 'L', 'P', 'S', 'V', 'g', 'p': // FLOAT INT LONG PERSID STRING UNICODE GET PUT
			err = line()
		case 'c', 'i': // GLOBAL INST: module and name lines
			if err = line(); err == nil {
				err = line()
			}
		case 'U', 'C', 0x8c, 0x8a: // SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE LONG1
			err = counted(1)
		case 'T', 'X', 'B', 0x8b: // BINSTRING BINUNICODE BINBYTES LONG4
			err = counted(4)
		case 0x8d, 0x8e, 0x96: // BINUNICODE8 BINBYTES8 BYTEARRAY8
			err = counted(8)
		}
		// Other opcodes take no argument; gopickle rejects unknown ones.
		if err != nil {
			return 0, fmt.Errorf("pickle: opcode 0x%02x at offset %d: %w", op, pos, err)
		}
	}
}
