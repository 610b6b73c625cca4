package hookedmodel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/golens/golens/gotch/gotchtest"
)

// TestLoadFS loads golens and Hugging Face checkpoints through an fs.FS (a
// directory's and one holding bytes in memory) and checks the model's
// config and logits are exactly those Load gives from the files.
func TestLoadFS(t *testing.T) {
	gotchtest.CheckLeaks(t)
	ctx := context.Background()
	dev := OnDevice(gotchtest.Device(t))
	src := newTestModel(t, smallConfig(), 13)
	defer src.Free()
	dir := t.TempDir()
	golensFile := filepath.Join(dir, "model.safetensors")
	if err := src.Save(golensFile); err != nil {
		t.Fatal(err)
	}
	golensBytes, err := os.ReadFile(golensFile)
	if err != nil {
		t.Fatal(err)
	}
	hfDir := writeHFGPT2(t, src, hfCheckpoint{prefix: "transformer."})
	shardedDir := writeHFGPT2(t, src, hfCheckpoint{sharded: true, prefix: "transformer."})
	binBytes, err := os.ReadFile("testdata/gpt2-tiny-bin/pytorch_model.bin")
	if err != nil {
		t.Fatal(err)
	}
	binConfig, err := os.ReadFile("testdata/gpt2-tiny-bin/config.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		file string // what Load reads
		fsys fstest.MapFS
		dir  string // else os.DirFS(dir)
		path string
		opts []Option
	}{
		{name: "golens checkpoint from bytes", file: golensFile, fsys: fstest.MapFS{"m.safetensors": {Data: golensBytes}}, path: "m.safetensors"},
		{name: "golens checkpoint from a directory", file: golensFile, dir: dir, path: "model.safetensors"},
		{name: "golens checkpoint processed", file: golensFile, dir: dir, path: "model.safetensors", opts: []Option{WithProcessing(DefaultProcessing)}},
		{name: "hf directory", file: hfDir, dir: filepath.Dir(hfDir), path: filepath.Base(hfDir)},
		{name: "hf directory as the root", file: hfDir, dir: hfDir, path: "."},
		{name: "hf safetensors file", file: filepath.Join(hfDir, "model.safetensors"), dir: hfDir, path: "model.safetensors"},
		{name: "hf sharded", file: shardedDir, dir: shardedDir, path: "."},
		{name: "hf pytorch_model.bin from bytes", file: "testdata/gpt2-tiny-bin", fsys: fstest.MapFS{"tiny/pytorch_model.bin": {Data: binBytes}, "tiny/config.json": {Data: binConfig}}, path: "tiny"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{dev}, tc.opts...)
			want, err := Load(ctx, tc.file, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Free()
			var got *HookedTransformer
			if tc.fsys != nil {
				got, err = LoadFS(ctx, tc.fsys, tc.path, opts...)
			} else {
				got, err = LoadFS(ctx, os.DirFS(tc.dir), tc.path, opts...)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer got.Free()
			wc, gc := want.Config(), got.Config()
			wc.ModelName, gc.ModelName = "", "" // a Hugging Face model is named by its directory
			if gc != wc {
				t.Errorf("config:\n got %+v\nwant %+v", gc, wc)
			}
			if got.Processing().String() != want.Processing().String() {
				t.Errorf("processing %q, want %q", got.Processing(), want.Processing())
			}
			_, tok := randomTokens(t, 2, 5, want.Cfg.DVocab, 3)
			defer tok.Free()
			gotchtest.Close(t, "logits", logits(t, got, tok), logits(t, want, tok), 0)
		})
	}

	for _, tc := range []struct {
		path, want string
	}{
		{"missing.safetensors", "missing.safetensors"},
		{"empty", "none of model.safetensors"},
	} {
		fsys := fstest.MapFS{"empty/readme": {Data: []byte("x")}}
		if m, err := LoadFS(ctx, fsys, tc.path, dev); err == nil || !strings.Contains(err.Error(), tc.want) {
			if m != nil {
				m.Free()
			}
			t.Errorf("LoadFS(%q): %v, want an error containing %q", tc.path, err, tc.want)
		}
	}
	if _, err := LoadFS(ctx, nil, "m.safetensors", dev); err == nil {
		t.Error("LoadFS of a nil fs.FS: no error")
	}
}
