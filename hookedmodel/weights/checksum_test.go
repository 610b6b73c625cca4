package weights

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bit flipped anywhere in a file golens wrote is an error naming what it
// hit: a tensor's bytes when that tensor is read, the metadata (say, a
// training step) when the file is opened.
func TestChecksums(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ck.safetensors")
	a := &Tensor{Name: "a", DType: F32, Shape: []int64{4}, Data: make([]byte, 16)}
	b := &Tensor{Name: "b", DType: F32, Shape: []int64{2}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	meta := map[string]string{"golens_train": `{"step":12}`}
	if err := WriteSafetensors(path, []*Tensor{a, b}, meta); err != nil {
		t.Fatal(err)
	}
	if len(meta) != 1 {
		t.Errorf("WriteSafetensors changed the caller's metadata: %v", meta)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	headerLen := int(binary.LittleEndian.Uint64(good[:8]))
	dataStart := 8 + headerLen

	ck, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := ck.Metadata(); len(got) != 1 || got["golens_train"] != `{"step":12}` {
		t.Errorf("Metadata() = %v, want the caller's alone", got)
	}
	for _, k := range []string{"a", "b"} {
		if _, err := ck.Get(k); err != nil {
			t.Errorf("an intact file: Get(%s): %v", k, err)
		}
	}
	ck.Close()

	flip := func(t *testing.T, at int, mask byte) string {
		t.Helper()
		bad := bytes.Clone(good)
		bad[at] ^= mask
		p := filepath.Join(t.TempDir(), "bad.safetensors")
		os.WriteFile(p, bad, 0o644)
		return p
	}
	t.Run("data", func(t *testing.T) {
		// The last tensor's last byte: "b" (the writer orders by name).
		p := flip(t, len(good)-1, 0x10)
		ck, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		if _, err := ck.Get("a"); err != nil {
			t.Errorf("the intact tensor: %v", err)
		}
		if _, err := ck.Get("b"); err == nil || !strings.Contains(err.Error(), `key "b"`) || !strings.Contains(err.Error(), "fails its checksum") {
			t.Errorf("the damaged tensor: %v, want a checksum error naming it", err)
		}
		// Streamed in chunks, the sum is checked once the last is read.
		chunks := 0
		err = ck.Stream("b", make([]byte, 3), func([]byte, int64) error { chunks++; return nil })
		if err == nil || !strings.Contains(err.Error(), `key "b"`) || !strings.Contains(err.Error(), "fails its checksum") || chunks != 3 {
			t.Errorf("the damaged tensor streamed: %v after %d chunks, want a checksum error naming it after 3", err, chunks)
		}
		if err := ck.Stream("a", make([]byte, 3), func([]byte, int64) error { return nil }); err != nil {
			t.Errorf("the intact tensor streamed: %v", err)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		at := bytes.Index(good, []byte(`"step\":12`))
		if at < 0 || at > dataStart {
			t.Fatalf("no step in the header: %q", good[:dataStart])
		}
		p := flip(t, at+len(`"step\":1`), 0x01) // step 12 -> 13: still valid JSON
		_, err := Open(p)
		if err == nil || !strings.Contains(err.Error(), "header metadata fails its checksum") || !strings.Contains(err.Error(), p) {
			t.Errorf("a damaged step: %v, want a checksum error naming the file", err)
		}
	})
	t.Run("checksum entry", func(t *testing.T) {
		at := bytes.Index(good, []byte(`golens_crc32c`))
		p := flip(t, at+len(`golens_crc32c":"{\"__metadata__\":\"`)+2, 0x01)
		if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "golens_crc32c") && !strings.Contains(err.Error(), "checksum") {
			t.Errorf("a damaged checksum: %v", err)
		}
	})
}
