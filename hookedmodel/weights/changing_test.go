package weights

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// bigCheckpoint writes a safetensors file of three 64 KiB tensors, large
// enough that a truncation cuts pages out of the middle, and returns the
// tensors.
func bigCheckpoint(t *testing.T, path string, fill byte) []*Tensor {
	t.Helper()
	ts := make([]*Tensor, 3)
	for i := range ts {
		ts[i] = &Tensor{Name: fmt.Sprintf("w%d", i), DType: F32, Shape: []int64{128, 128},
			Data: bytes.Repeat([]byte{fill + byte(i)}, 128*128*4)}
	}
	if err := WriteSafetensors(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestTruncatedWhileOpen shrinks checkpoint files after Open and before the
// tensors are read: each Get is an error that names the file, never a crash
// (a memory-mapped file would die of SIGBUS here).
func TestTruncatedWhileOpen(t *testing.T) {
	opens := map[string]func(dir, name string) (*Checkpoint, error){
		"Open":   func(dir, name string) (*Checkpoint, error) { return Open(filepath.Join(dir, name)) },
		"OpenFS": func(dir, name string) (*Checkpoint, error) { return OpenFS(os.DirFS(dir), name) },
	}
	for how, open := range opens {
		for _, cut := range []float64{0, 0.5, 0.99} {
			t.Run(fmt.Sprintf("%s/safetensors to %.0f%%", how, 100*cut), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "model.safetensors")
				bigCheckpoint(t, path, 1)
				getAfterTruncate(t, path, cut, func() (*Checkpoint, error) { return open(dir, "model.safetensors") },
					"model.safetensors", "changed while open")
			})
		}
		// A torch file is read with ReadAt too; past its new end a read fails.
		t.Run(how+"/torch", func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "pytorch_model.bin")
			copyFile(t, "testdata/torch_zip/pytorch_model.bin", path)
			getAfterTruncate(t, path, 0, func() (*Checkpoint, error) { return open(dir, "pytorch_model.bin") },
				"pytorch_model.bin", "changed while open")
		})
	}
}

// getAfterTruncate opens path, cuts it to the fraction cut of its size and
// checks that reading each of its non-empty tensors fails, naming the file.
func getAfterTruncate(t *testing.T, path string, cut float64, open func() (*Checkpoint, error), want ...string) {
	t.Helper()
	c, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(cut*float64(fi.Size()))); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, key := range c.Keys() {
		x, err := c.Get(key)
		if err == nil {
			if len(x.Data) == 0 {
				continue // nothing to read
			}
			t.Errorf("Get(%q) after the file was truncated: no error", key)
			continue
		}
		failed++
		checkErr(t, err, append([]string{key}, want...))
	}
	if failed == 0 {
		t.Error("no Get failed")
	}
}

// TestReplacedWhileOpen changes a checkpoint between Open (the header) and
// Get (the data). Replaced by a rename, as WriteSafetensors replaces files,
// the open checkpoint still reads the file it opened, whole and unchanged;
// rewritten in place to another size, every Get is an error naming it.
func TestReplacedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	old := bigCheckpoint(t, path, 1)
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bigCheckpoint(t, path, 7) // a new file renamed over the old name
	for _, want := range old {
		got, err := c.Get(want.Name)
		if err != nil {
			t.Fatalf("Get(%q) after a rename over the file: %v", want.Name, err)
		}
		if !bytes.Equal(got.Data, want.Data) {
			t.Errorf("Get(%q) after a rename over the file: not the opened file's data", want.Name)
		}
	}

	c2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(make([]byte, 100)) // grows in place: same inode, new size
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range c2.Keys() {
		_, err := c2.Get(key)
		checkErr(t, err, []string{path, key, "changed while open"})
	}
}
