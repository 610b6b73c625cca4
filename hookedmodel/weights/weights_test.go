package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type want struct {
	dtype  DType
	shape  []int64
	values []float64
}

// wantTensors recomputes the values testdata/gen.py stores.
func wantTensors() map[string]want {
	gen := func(n int, f func(i float64) float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = f(float64(i))
		}
		return v
	}
	embed := gen(20, func(i float64) float64 { return i*0.25 - 2 })
	return map[string]want{
		"embed.weight":   {F32, []int64{5, 4}, embed},
		"unembed.weight": {F32, []int64{5, 4}, embed},
		"tied.view":      {F32, []int64{2, 4}, embed[4:12]},
		"ln.weight":      {F32, []int64{4}, gen(4, func(i float64) float64 { return 1 + i*0.5 })},
		"ln.bias":        {F32, []int64{4}, gen(4, func(i float64) float64 { return i * -0.125 })},
		"pos_ids":        {I64, []int64{6}, gen(6, func(i float64) float64 { return i*(1<<33) - 5 })},
		"transposed": {F32, []int64{4, 3}, gen(12, func(k float64) float64 {
			i, j := math.Floor(k/3), math.Mod(k, 3)
			return j*4 + i + 0.5
		})},
		"strided": {F64, []int64{3, 3}, gen(9, func(k float64) float64 {
			i, j := math.Floor(k/3), math.Mod(k, 3)
			return (1+i)*6 + 2*j
		})},
		"half":   {F16, []int64{2, 3}, gen(6, func(i float64) float64 { return (i - 2.5) * 0.5 })},
		"bf16":   {BF16, []int64{3, 2}, gen(6, func(i float64) float64 { return i*-0.75 + 1 })},
		"scalar": {F32, []int64{}, []float64{3.5}},
		"i32":    {I32, []int64{3}, gen(3, func(i float64) float64 { return i*7 - 7 })},
		"mask":   {BOOL, []int64{2, 2}, []float64{1, 0, 0, 1}},
		"u8":     {U8, []int64{4}, gen(4, func(i float64) float64 { return i * 60 })},
		"empty":  {F32, []int64{0, 3}, []float64{}},
		"param":  {F32, []int64{3}, gen(3, func(i float64) float64 { return 2*i + 1 })},
	}
}

// decode returns t's elements as float64, which holds every fixture value
// exactly.
func decode(t *testing.T, x *Tensor) []float64 {
	t.Helper()
	size := x.DType.Size()
	out := make([]float64, 0, len(x.Data)/max(size, 1))
	for b := x.Data; len(b) >= size && size > 0; b = b[size:] {
		var v float64
		switch x.DType {
		case F32:
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case F64:
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		case F16:
			v = halfToFloat(binary.LittleEndian.Uint16(b))
		case BF16:
			v = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16))
		case I64:
			v = float64(int64(binary.LittleEndian.Uint64(b)))
		case I32:
			v = float64(int32(binary.LittleEndian.Uint32(b)))
		case U8, BOOL:
			v = float64(b[0])
		}
		out = append(out, v)
	}
	return out
}

// halfToFloat decodes an IEEE 754 binary16 value (finite values only).
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(h>>10&0x1f), float64(h&0x3ff)
	if exp == 0 {
		return sign * math.Ldexp(frac, -24)
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// checkAll asserts that c holds exactly the fixture tensors.
func checkAll(t *testing.T, c *Checkpoint) {
	t.Helper()
	wants := wantTensors()
	if got, want := c.Keys(), slices.Sorted(maps.Keys(wants)); !slices.Equal(got, want) {
		t.Fatalf("Keys() = %v, want %v", got, want)
	}
	for key, w := range wants {
		x, err := c.Get(key)
		if err != nil {
			t.Errorf("Get(%q): %v", key, err)
			continue
		}
		if x.Name != key || x.DType != w.dtype || !slices.Equal(x.Shape, w.shape) {
			t.Errorf("Get(%q) = %q %s %v, want %q %s %v", key, x.Name, x.DType, x.Shape, key, w.dtype, w.shape)
		}
		if got := decode(t, x); !slices.Equal(got, w.values) {
			t.Errorf("Get(%q) values = %v, want %v", key, got, w.values)
		}
		// GetInto reads the same values into the caller's buffer when it
		// is large enough, and into a new one when not.
		for _, buf := range [][]byte{make([]byte, 1<<10), make([]byte, 1)} {
			y, err := c.GetInto(key, buf)
			if err != nil {
				t.Errorf("GetInto(%q, %d bytes): %v", key, len(buf), err)
				continue
			}
			n := y.NBytes()
			if int64(len(y.Data)) != n {
				t.Errorf("GetInto(%q): %d bytes, NBytes %d", key, len(y.Data), n)
			}
			if reused := n > 0 && &y.Data[0] == &buf[0]; n > 0 && reused != (int64(len(buf)) >= n) {
				t.Errorf("GetInto(%q, %d bytes) of %d bytes: buffer reused %v", key, len(buf), n, reused)
			}
			if got := decode(t, y); !slices.Equal(got, w.values) {
				t.Errorf("GetInto(%q) values = %v, want %v", key, got, w.values)
			}
		}
		// Stream hands over the same bytes, 3 at a time, in order.
		var streamed []byte
		err = c.Stream(key, make([]byte, 3), func(chunk []byte, off int64) error {
			if off != int64(len(streamed)) || len(chunk) > 3 && off != 0 {
				t.Errorf("Stream(%q): a %d-byte chunk at %d after %d bytes", key, len(chunk), off, len(streamed))
			}
			streamed = append(streamed, chunk...)
			return nil
		})
		if err != nil || !bytes.Equal(streamed, x.Data) {
			t.Errorf("Stream(%q) = % x, %v; want % x", key, streamed, err, x.Data)
		}
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		path     string
		metadata map[string]string
	}{
		{"testdata/safetensors", map[string]string{"format": "pt", "config": `{"d_model": 4, "n_layers": 1}`}},
		{"testdata/safetensors/model.safetensors", map[string]string{"format": "pt", "config": `{"d_model": 4, "n_layers": 1}`}},
		{"testdata/safetensors_sharded", map[string]string{"format": "pt"}},
		{"testdata/safetensors_sharded/model.safetensors.index.json", map[string]string{"format": "pt"}},
		{"testdata/torch_zip", map[string]string{}},
		{"testdata/torch_zip/pytorch_model.bin", map[string]string{}},
		{"testdata/torch_legacy", map[string]string{}},
		{"testdata/torch_sharded", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c, err := Open(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkAll(t, c)
			if got := c.Metadata(); !maps.Equal(got, tt.metadata) {
				t.Errorf("Metadata() = %v, want %v", got, tt.metadata)
			}
		})
	}
}

func TestOpenPrefersSafetensors(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, "testdata/safetensors/model.safetensors", filepath.Join(dir, "model.safetensors"))
	writeFile(t, filepath.Join(dir, "pytorch_model.bin"), []byte("not a checkpoint"))
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkAll(t, c)
}

func TestWriteSafetensorsRoundTrip(t *testing.T) {
	src, err := Open("testdata/torch_zip")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var tensors []*Tensor
	for _, key := range src.Keys() {
		x, err := src.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, x)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	meta := map[string]string{"config": `{"n_layers": 1}`}
	if err := WriteSafetensors(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkAll(t, c)
	if got := c.Metadata(); !maps.Equal(got, meta) {
		t.Errorf("Metadata() = %v, want %v", got, meta)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after the write, want 1", len(entries))
	}
}

func TestExpect(t *testing.T) {
	c, err := Open("testdata/torch_zip")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		key     string
		shape   []int64
		wantErr string // empty: no error
	}{
		{"embed.weight", []int64{5, 4}, ""},
		{"scalar", nil, ""},
		{"embed.weight", []int64{4, 5}, `key "embed.weight": want shape [4 5], got [5 4]`},
		{"scalar", []int64{1}, `key "scalar": want shape [1], got []`},
		{"nope", []int64{1}, `key "nope": tensor not found`},
	}
	for _, tt := range tests {
		err := c.Expect(tt.key, tt.shape...)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Expect(%q, %v) = %v, want error containing %q", tt.key, tt.shape, err, tt.wantErr)
		}
	}
}

func TestGetErrors(t *testing.T) {
	dir := t.TempDir()
	i8 := filepath.Join(dir, "i8.safetensors")
	writeFile(t, i8, safetensorsBytes(`{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}`, 2))
	closed, err := Open("testdata/safetensors")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	tests := []struct {
		name, path, key string
		c               *Checkpoint
		want            []string
	}{
		{"missing key", "testdata/torch_sharded", "nope", nil, []string{`"testdata/torch_sharded"`, `key "nope"`, "not found"}},
		{"unsupported dtype", i8, "a", nil, []string{"i8.safetensors", `key "a"`, `unknown dtype "I8"`}},
		{"closed", "", "scalar", closed, []string{"testdata/safetensors", `key "scalar"`, "closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			if c == nil {
				var err error
				if c, err = Open(tt.path); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			_, err := c.Get(tt.key)
			checkErr(t, err, tt.want)
		})
	}
	_, err = closed.Get("nope")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an absent key: %v, want ErrNotFound", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, b)
		return p
	}
	st := readFile(t, "testdata/safetensors/model.safetensors")
	legacy := readFile(t, "testdata/torch_legacy/pytorch_model.bin")
	shard := "testdata/safetensors_sharded/model-00001-of-00002.safetensors"
	copyFile(t, shard, filepath.Join(dir, "shard.safetensors"))
	hugeFrame := binary.LittleEndian.AppendUint64([]byte("\x80\x04\x95"), 1<<40)

	tests := []struct {
		name, path string
		want       []string
	}{
		{"no checkpoint in dir", t.TempDir(), []string{"none of model.safetensors"}},
		{"index names missing shard",
			file("a.index.json", []byte(`{"weight_map": {"w": "missing.safetensors"}}`)),
			[]string{"a.index.json", `key "w"`, "missing.safetensors", "no such file"}},
		{"index names key absent from shard",
			file("b.index.json", []byte(`{"weight_map": {"w": "shard.safetensors"}}`)),
			[]string{"b.index.json", `key "w"`, `not in shard "shard.safetensors"`}},
		{"index shard outside dir",
			file("c.index.json", []byte(`{"weight_map": {"w": "../x.safetensors"}}`)),
			[]string{"c.index.json", `key "w"`, "outside"}},
		{"index bad json", file("d.index.json", []byte(`{"weight_map": [`)), []string{"d.index.json", "unexpected end"}},
		{"safetensors header past end",
			file("e.safetensors", binary.LittleEndian.AppendUint64(nil, 1000)),
			[]string{"e.safetensors", "invalid header length"}},
		{"safetensors truncated", file("f.safetensors", st[:len(st)-4]),
			[]string{"f.safetensors", `key "param": data offsets [`, "outside the"}},
		{"safetensors bad json", file("g.safetensors", safetensorsBytes(`{"a":`, 0)),
			[]string{"g.safetensors", "invalid header"}},
		{"safetensors unknown dtype",
			file("h.safetensors", safetensorsBytes(`{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,1]}}`, 1)),
			[]string{"h.safetensors", `tensor "a"`, `"X9"`}},
		{"safetensors length disagrees with shape",
			file("i.safetensors", safetensorsBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4)),
			[]string{"i.safetensors", `key "a": 4 data bytes, shape [2] of F32 needs 8`}},
		{"safetensors longer than its header says", file("i2.safetensors", append(slices.Clone(st), 0, 0, 0, 0)),
			[]string{"i2.safetensors", "the header's tensors end at data byte", "but the file holds"}},
		{"safetensors with a gap between tensors",
			file("i3.safetensors", safetensorsBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12)),
			[]string{"i3.safetensors", `key "b": data offsets [8 12] do not start where the tensor before ends (data byte 4)`}},
		{"safetensors with overlapping tensors",
			file("i4.safetensors", safetensorsBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8)),
			[]string{"i4.safetensors", `key "b": data offsets [4 8] do not start where the tensor before ends (data byte 8)`}},
		{"safetensors huge header length",
			file("i5.safetensors", binary.LittleEndian.AppendUint64(nil, 1<<62)),
			[]string{"i5.safetensors", "invalid header length 4611686018427387904 for a file of 8 bytes"}},
		{"zip with bad pickle",
			file("j.bin", rezip(t, map[string][]byte{"data.pkl": []byte("\x80\x02}q\x00(X\x01")})),
			[]string{"j.bin", "pickle"}},
		{"zip with huge pickle frame",
			file("k.bin", rezip(t, map[string][]byte{"data.pkl": hugeFrame})),
			[]string{"k.bin", "opcode 0x95 at offset 11: length 1099511627776 runs past the end"}},
		{"zip with short storage",
			file("l.bin", rezip(t, map[string][]byte{"data/5": make([]byte, 8)})),
			[]string{"l.bin", `storage "5": 24 elements of F64, but its record holds 8 bytes`}},
		{"zip missing storage",
			file("m.bin", rezip(t, map[string][]byte{"data/5": nil})),
			[]string{"m.bin", `storage "5": no record`}},
		{"zip with unknown class",
			file("n.bin", rezip(t, map[string][]byte{"data.pkl": []byte("\x80\x02cos\nsystem\n.")})),
			[]string{"n.bin", "unsupported class os.system"}},
		{"zip with bad view",
			file("o.bin", rezip(t, map[string][]byte{"data.pkl": badView()})),
			[]string{"o.bin", `key "v": view (offset 2, shape [3], stride [1]) outside its storage of 4 elements`}},
		{"legacy truncated in the data", file("p.bin", legacy[:len(legacy)-1]), []string{"p.bin", `storage "`}},
		{"legacy truncated in the pickle", file("q.bin", legacy[:200]), []string{"q.bin", "pickle"}},
		{"not a checkpoint", file("r.bin", []byte("hello")), []string{"r.bin", "bad magic number"}},
		{"empty file", file("s.safetensors", nil), []string{"s.safetensors", "header too small"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(tt.path)
			if err == nil {
				c.Close()
			}
			checkErr(t, err, tt.want)
		})
	}
}

func TestRejectsCompressedZip(t *testing.T) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.Create("archive/data.pkl") // Create deflates
	f.Write([]byte("\x80\x02}."))
	w.Close()
	_, err := readTorch("z.bin", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	checkErr(t, err, []string{"z.bin", `record "archive/data.pkl" is compressed`})
}

func TestWriteSafetensorsErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.safetensors")
	tests := []struct {
		name    string
		tensors []*Tensor
		want    string
	}{
		{"short data", []*Tensor{{Name: "a", DType: F32, Shape: []int64{2}, Data: make([]byte, 4)}},
			`key "a": 4 data bytes, shape [2] of F32 needs 8`},
		{"unknown dtype", []*Tensor{{Name: "a", DType: "I8", Data: []byte{1}}}, `key "a": unknown dtype "I8"`},
		{"negative dim", []*Tensor{{Name: "a", DType: U8, Shape: []int64{-1}}}, `key "a": invalid shape [-1]`},
		{"duplicate", []*Tensor{{Name: "a", DType: U8, Data: []byte{1}}, {Name: "a", DType: U8, Data: []byte{2}}},
			`key "a": duplicate or reserved name`},
		{"reserved", []*Tensor{{Name: "__metadata__", DType: U8, Data: []byte{1}}}, "duplicate or reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteSafetensors(path, tt.tensors, nil)
			checkErr(t, err, []string{"out.safetensors", tt.want})
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("failed write left %s behind", path)
			}
		})
	}
}

// TestWriteSafetensorsReplacesOnlyRegularFiles: a directory, a device or
// a link to one at the path is refused and left as it is; a regular file
// is replaced, through a link to it too (the link stays).
func TestWriteSafetensorsReplacesOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.safetensors")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	link, toNull := filepath.Join(dir, "link"), filepath.Join(dir, "null")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(os.DevNull, toNull); err != nil {
		t.Fatal(err)
	}
	one := []*Tensor{{Name: "a", DType: U8, Shape: []int64{1}, Data: []byte{1}}}
	for _, c := range []struct{ path, want string }{
		{dir, "it is a directory, not a regular file"},
		{os.DevNull, "it is a character device, not a regular file"},
		{toNull, "it is a character device, not a regular file"},
	} {
		checkErr(t, WriteSafetensors(c.path, one, nil), []string{"write safetensors", c.path, c.want})
	}
	if err := WriteSafetensors(link, one, nil); err != nil {
		t.Fatalf("write through a link to a regular file: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if ck, err := Open(target); err != nil {
		t.Errorf("the link's target is not the new file: %v", err)
	} else {
		ck.Close()
	}
}

func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// safetensorsBytes returns a safetensors file with the given header and n
// zero data bytes.
func safetensorsBytes(header string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), make([]byte, n)...)
}

// rezip returns the torch_zip fixture with records (named below its top
// folder) replaced, or removed where the new content is nil.
func rezip(t *testing.T, replace map[string][]byte) []byte {
	t.Helper()
	zr, err := zip.OpenReader("testdata/torch_zip/pytorch_model.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range zr.File {
		b, ok := replace[strings.TrimPrefix(f.Name, "pytorch_model/")]
		if ok && b == nil {
			continue
		}
		if !ok {
			r, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(r)
		}
		fw, err := w.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// badView is a data.pkl whose tensor "v" reads past its 4-element storage
// "0": {"v": _rebuild_tensor_v2(storage, 2, (3,), (1,), False, None)}.
func badView() []byte {
	return []byte("\x80\x02}X\x01\x00\x00\x00vctorch._utils\n_rebuild_tensor_v2\n(" +
		"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x002X\x03\x00\x00\x00cpuK\x04tQ" +
		"K\x02K\x03\x85K\x01\x85\x89NtRs.")
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	writeFile(t, dst, readFile(t, src))
}
