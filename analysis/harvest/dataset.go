package harvest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/golens/golens/hookedmodel/safefile"
)

// Dataset is a list of examples, each a sequence of token ids.
type Dataset interface {
	Len() int
	// Example is example i's ids; the caller does not change them.
	Example(i int) ([]int64, error)
	// Describe names the data, for the manifest and run identity.
	Describe() string
}

// tokenized is a Dataset held in memory.
type tokenized struct {
	examples [][]int64
	desc     string
}

func (d *tokenized) Len() int                       { return len(d.examples) }
func (d *tokenized) Example(i int) ([]int64, error) { return d.examples[i], nil }
func (d *tokenized) Describe() string               { return d.desc }

// FromIDs is a Dataset of the given examples.
func FromIDs(examples [][]int64, desc string) Dataset {
	return &tokenized{examples, desc}
}

// Tokenize turns one text into ids (a model's ToTokens of one text).
type Tokenize func(text string) ([]int64, error)

// maxLine bounds one JSON line: a long document, not a runaway file.
const maxLine = 64 << 20

// OpenJSONL reads one example per line: a JSON object with a "text"
// field (tokenized with tok; nil refuses texts) or an "ids" array, or a
// bare array of ids (what golens tokenize --jsonl writes). Blank lines are
// skipped; an empty example is an error naming its line.
func OpenJSONL(path string, tok Tokenize) (Dataset, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("harvest data: %w", err)
	}
	defer f.Close()
	d := &tokenized{desc: "jsonl:" + path}
	r := bufio.NewReaderSize(f, 1<<20)
	for line := 1; ; line++ {
		b, err := readLine(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("harvest data %s line %d: %w", path, line, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		ids, err := parseExample(b, tok)
		if err != nil {
			return nil, fmt.Errorf("harvest data %s line %d: %w", path, line, err)
		}
		d.examples = append(d.examples, ids)
	}
	if len(d.examples) == 0 {
		return nil, fmt.Errorf("harvest data %s: no examples", path)
	}
	return d, nil
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("longer than %d MiB", maxLine>>20)
		}
		switch err {
		case nil:
			return line, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(line) > 0 {
				return line, nil
			}
		}
		return nil, err
	}
}

func parseExample(b []byte, tok Tokenize) ([]int64, error) {
	var ids []int64
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		if err := json.Unmarshal(b, &ids); err != nil {
			return nil, fmt.Errorf("want an array of token ids: %w", err)
		}
	} else {
		var obj struct {
			Text *string `json:"text"`
			IDs  []int64 `json:"ids"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return nil, fmt.Errorf("want {\"text\": ...}, {\"ids\": [...]} or [ids...]: %w", err)
		}
		switch {
		case obj.Text != nil && obj.IDs != nil:
			return nil, fmt.Errorf("both text and ids")
		case obj.Text != nil && tok == nil:
			return nil, fmt.Errorf("a text, but no tokenizer")
		case obj.Text != nil:
			var err error
			if ids, err = tok(*obj.Text); err != nil {
				return nil, err
			}
		default:
			ids = obj.IDs
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("an empty example")
	}
	return ids, nil
}

// OpenBinary reads a flat file of little-endian token ids, width bytes
// each (2 for uint16, 4 for uint32, as nanoGPT-style datasets store them),
// as consecutive examples of seqLen tokens; a shorter tail is left out.
// Examples are read from the file as they are needed, so a dataset larger
// than memory works.
func OpenBinary(path string, width, seqLen int) (Dataset, error) {
	if width != 2 && width != 4 {
		return nil, fmt.Errorf("harvest data %s: token width %d bytes; want 2 (uint16) or 4 (uint32)", path, width)
	}
	if seqLen <= 0 {
		return nil, fmt.Errorf("harvest data %s: sequence length %d; want a positive number", path, seqLen)
	}
	f, err := safefile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("harvest data: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("harvest data: %w", err)
	}
	if st.Size()%int64(width) != 0 {
		f.Close()
		return nil, fmt.Errorf("harvest data %s: %d bytes is not a whole number of %d-byte tokens", path, st.Size(), width)
	}
	n := st.Size() / int64(width) / int64(seqLen)
	if n == 0 {
		f.Close()
		return nil, fmt.Errorf("harvest data %s: %d tokens, fewer than one example of %d", path, st.Size()/int64(width), seqLen)
	}
	return &binaryTokens{f: f, width: width, seqLen: seqLen, n: int(n), desc: fmt.Sprintf("uint%d:%s:%d", 8*width, path, seqLen)}, nil
}

// binaryTokens is OpenBinary's dataset; Close releases its file.
type binaryTokens struct {
	f             *os.File
	width, seqLen int
	n             int
	desc          string
}

func (d *binaryTokens) Len() int         { return d.n }
func (d *binaryTokens) Describe() string { return d.desc }
func (d *binaryTokens) Close() error     { return d.f.Close() }

func (d *binaryTokens) Example(i int) ([]int64, error) {
	raw := make([]byte, d.seqLen*d.width)
	if _, err := d.f.ReadAt(raw, int64(i)*int64(len(raw))); err != nil {
		return nil, fmt.Errorf("harvest data %s example %d: %w", d.f.Name(), i, err)
	}
	ids := make([]int64, d.seqLen)
	for j := range ids {
		if d.width == 2 {
			ids[j] = int64(binary.LittleEndian.Uint16(raw[2*j:]))
		} else {
			ids[j] = int64(binary.LittleEndian.Uint32(raw[4*j:]))
		}
	}
	return ids, nil
}
