package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/golens/golens/hookedmodel/safefile"
)

// configFile is the run's config in its out folder: what makes a folder
// recognisably a golens run.
const configFile = "config.json"

// claim makes out ready for the run cfg and locks it until release: a
// missing or empty folder is made the run's; one holding a run of the same
// config is resumed; anything else is refused unless force, so that a
// model directory (whose config.json is Hugging Face's) or another run is
// never overwritten.
func claim(out string, cfg Config, force bool) (release func(), err error) {
	if out == "" {
		return nil, errors.New("no out folder")
	}
	if fi, err := os.Stat(out); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("out folder %s: it is not a directory", out)
	}
	// Checked before the lock, whose file would be a first write into a
	// folder not ours, and again under it, against a run that began between.
	refuse := func(err error) error {
		return fmt.Errorf("%w: pass --force (train.Force) to write into it anyway, or choose another out folder", err)
	}
	if err := owned(out, cfg); err != nil && !force && !errors.Is(err, fs.ErrNotExist) {
		return nil, refuse(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if release, err = safefile.LockDir(out, "training into it"); err != nil {
		return nil, err
	}
	if err := owned(out, cfg); err != nil && !force {
		release()
		return nil, refuse(err)
	}
	return release, nil
}

// owned checks that out is empty (but for the lock) or holds a run of cfg.
func owned(out string, cfg Config) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	var other []string
	for _, e := range ents {
		if e.Name() != safefile.LockName {
			other = append(other, e.Name())
		}
	}
	if len(other) == 0 {
		return nil
	}
	b, err := safefile.Read(filepath.Join(out, configFile), safefile.JSONLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is not empty (%s) and holds no golens run (no %s)", out, other[0], configFile)
	}
	if err != nil {
		return err
	}
	var prev Config
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&prev); err != nil {
		return fmt.Errorf("%s is not a golens run: its %s is not a training config (%v)", out, configFile, err)
	}
	if err := prev.Init(); err != nil || !sameRun(prev, cfg) {
		return fmt.Errorf("%s holds a run of another config (model, data, seed or schedule)", out)
	}
	return nil
}
