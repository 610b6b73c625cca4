package weights

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// checkEntries reads every tensor of a parsed file through Get and checks
// that each comes back with the bytes its shape needs.
func checkEntries(t *testing.T, entries map[string]*entry) {
	c := &Checkpoint{path: "fuzz", entries: entries}
	for _, key := range c.Keys() {
		x, err := c.Get(key)
		if err != nil {
			continue // unsupported dtypes
		}
		if err := x.validate(); err != nil {
			t.Fatalf("Get(%q) returned an invalid tensor: %v", key, err)
		}
	}
}

func FuzzSafetensors(f *testing.F) {
	files, _ := filepath.Glob("testdata/safetensors*/*.safetensors")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(safetensorsBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4))
	f.Add(safetensorsBytes(`{"a":{"dtype":"I8","shape":[0,18446744073709551615],"data_offsets":[0,0]}}`, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, _, err := readSafetensors("fuzz.safetensors", bytes.NewReader(b), int64(len(b)))
		if err == nil {
			checkEntries(t, entries)
		}
	})
}

// FuzzPickle feeds each input to the torch reader twice: as a whole
// pytorch_model.bin (zip or legacy) and as the data.pkl of the zip fixture,
// whose storage records stay valid so that the pickle is what varies.
func FuzzPickle(f *testing.F) {
	files, _ := filepath.Glob("testdata/torch_*/*.bin")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	zr, err := zip.OpenReader("testdata/torch_zip/pytorch_model.bin")
	if err != nil {
		f.Fatal(err)
	}
	defer zr.Close()
	records := map[string][]byte{}
	for _, file := range zr.File {
		r, err := file.Open()
		if err != nil {
			f.Fatal(err)
		}
		records[file.Name], _ = io.ReadAll(r)
	}
	f.Add(records["pytorch_model/data.pkl"])
	f.Add(badView())

	f.Fuzz(func(t *testing.T, b []byte) {
		if entries, err := readTorch("fuzz.bin", bytes.NewReader(b), int64(len(b))); err == nil {
			checkEntries(t, entries)
		}
		var buf bytes.Buffer
		w := zip.NewWriter(&buf)
		for name, content := range records {
			if name == "pytorch_model/data.pkl" {
				content = b
			}
			fw, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
			if err != nil {
				t.Fatal(err)
			}
			fw.Write(content)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if entries, err := readTorch("fuzz.bin", bytes.NewReader(buf.Bytes()), int64(buf.Len())); err == nil {
			checkEntries(t, entries)
		}
	})
}
