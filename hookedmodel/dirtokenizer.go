package hookedmodel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	pathpkg "path"
	"path/filepath"

	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/tokenizer"
)

// checkpointDir is the folder of the Hugging Face checkpoint at path (the
// folder itself, or a weights file in it) in fsys (nil: the operating
// system's files).
func checkpointDir(fsys fs.FS, path string) string {
	if fsys == nil {
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
			return filepath.Dir(path)
		}
		return path
	}
	if fi, err := fs.Stat(fsys, path); err == nil && !fi.IsDir() {
		return pathpkg.Dir(path)
	}
	return path
}

// dirTokenizer reads the tokenizer.json (and tokenizer_config.json, if
// there) beside the checkpoint at path in fsys (nil: the operating
// system's files): nil if there is none. Its ids must fit the model's
// vocabulary of dVocab tokens (models may pad it, never shrink it).
func dirTokenizer(fsys fs.FS, path string, dVocab int) (*tokenizer.Tokenizer, error) {
	dir := checkpointDir(fsys, path)
	read := func(name string) ([]byte, error) {
		if fsys == nil {
			return safefile.Read(filepath.Join(dir, name), safefile.JSONLimit)
		}
		return fs.ReadFile(fsys, pathpkg.Join(dir, name))
	}
	tj, err := read("tokenizer.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cj, err := read("tokenizer_config.json")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tk, err := tokenizer.Parse(tj, cj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err) // err names tokenizer.json or tokenizer_config.json
	}
	if tk.VocabSize() > dVocab {
		return nil, fmt.Errorf("%s: tokenizer.json has %d token ids, more than the model's d_vocab %d", dir, tk.VocabSize(), dVocab)
	}
	return tk, nil
}
