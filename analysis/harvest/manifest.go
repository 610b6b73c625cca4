package harvest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/weights"
)

// identity is what decides a harvest's bytes: a directory holds one, in
// harvest.json, and every shard carries its hash.
type identity struct {
	Model         string             `json:"model"`
	Config        hookedmodel.Config `json:"config"`
	Data          string             `json:"data"`
	Examples      int                `json:"examples"`
	Hooks         []string           `json:"hooks"`
	ShardExamples int                `json:"shard_examples"`
	Batch         int                `json:"batch"`
	DType         string             `json:"dtype"`
	Truncate      bool               `json:"truncate"`
}

const identityFile = "harvest.json"

func newIdentity(m *hookedmodel.HookedTransformer, ds Dataset, hooks []string, o options) identity {
	return identity{m.Cfg.ModelName, m.Cfg, ds.Describe(), ds.Len(), hooks, o.shardExamples, o.batch, o.dtype.String(), o.truncate}
}

func (id identity) json() []byte {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		panic(err) // plain data
	}
	return append(b, '\n')
}

func (id identity) hash() string {
	h := sha256.Sum256(id.json())
	return hex.EncodeToString(h[:8])
}

func (id identity) metadata() map[string]string {
	return map[string]string{"golens": "harvest", "run": id.hash(), "model": id.Model}
}

// prepareDir makes out a harvest directory of id: new, or one of the same
// identity (a resumed run). Anything else needs force. undo removes what
// it made (the directory, harvest.json) while no shard has been written,
// so a run that fails at once leaves nothing behind.
func prepareDir(out string, id identity, force bool) (undo func(), err error) {
	undo = func() {}
	created := false
	if _, err := os.Stat(out); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return undo, err
		}
		created = true
	}
	path := filepath.Join(out, identityFile)
	old, err := safefile.Read(path, 1<<20)
	switch {
	case err == nil && string(old) == string(id.json()):
		return undo, nil
	case err == nil && !force:
		return undo, fmt.Errorf("%s holds a harvest of other settings (%s); use a new directory, or force to redo it", out, identityDiff(old, id))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return undo, err
	case err != nil && !force:
		entries, err := os.ReadDir(out)
		if err != nil {
			return undo, err
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				return undo, fmt.Errorf("%s is not empty (%s) and is not a golens harvest; use a new directory, or force", out, e.Name())
			}
		}
	}
	if err := safefile.Write(path, 0o644, func(w io.Writer) error { _, err := w.Write(id.json()); return err }); err != nil {
		return undo, err
	}
	return func() {
		if shards, _ := filepath.Glob(filepath.Join(out, "shard-*.safetensors")); len(shards) > 0 {
			return // a resumable harvest
		}
		os.Remove(path)
		if created {
			os.Remove(out) // only if empty
		}
	}, nil
}

// identityDiff names the first setting that differs.
func identityDiff(old []byte, id identity) string {
	var was, now map[string]any
	if json.Unmarshal(old, &was) != nil || json.Unmarshal(id.json(), &now) != nil {
		return identityFile + " is not a harvest's"
	}
	keys := make([]string, 0, len(now))
	for k := range now {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		a, _ := json.Marshal(was[k])
		b, _ := json.Marshal(now[k])
		if string(a) != string(b) {
			return fmt.Sprintf("%s was %s, now %s", k, clip(a), clip(b))
		}
	}
	return "the same settings, written differently"
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// haveShard says whether out holds shard k of id, complete (shards are
// renamed into place whole, so a file of the right run is complete).
func haveShard(out string, k int, id identity) bool {
	ck, err := weights.Open(shardPath(out, k))
	if err != nil {
		return false
	}
	defer ck.Close()
	return ck.Metadata()["run"] == id.hash() && ck.Metadata()["shard"] == strconv.Itoa(k)
}

// Manifest describes a finished harvest (manifest.json).
type Manifest struct {
	Run      string      `json:"run"` // the settings' hash, in every shard's metadata
	Model    string      `json:"model"`
	Data     string      `json:"data"`
	Examples int         `json:"examples"`
	Rows     int64       `json:"rows"`
	Hooks    []HookInfo  `json:"hooks"`
	Shards   []ShardInfo `json:"shards"`
}

// HookInfo is one harvested hook: each row's shape and the dtype.
type HookInfo struct {
	Name     string  `json:"name"`
	RowShape []int64 `json:"row_shape"`
	DType    string  `json:"dtype"`
}

// ShardInfo is one shard file: examples [Examples[0], Examples[1]), its
// rows, the rank that wrote it.
type ShardInfo struct {
	File     string `json:"file"`
	Examples [2]int `json:"examples"`
	Rows     int64  `json:"rows"`
	Rank     int    `json:"rank"`
}

const manifestFile = "manifest.json"

// writeManifest checks that all shards of id are in out and writes
// manifest.json.
func writeManifest(out string, shards int, id identity) (*Manifest, error) {
	man := &Manifest{Run: id.hash(), Model: id.Model, Data: id.Data, Examples: id.Examples}
	for k := range shards {
		info, hooks, err := readShard(out, k, id)
		if err != nil {
			return nil, err
		}
		if k == 0 {
			man.Hooks = hooks
		}
		man.Rows += info.Rows
		man.Shards = append(man.Shards, info)
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, err
	}
	err = safefile.Write(filepath.Join(out, manifestFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	return man, err
}

func readShard(out string, k int, id identity) (ShardInfo, []HookInfo, error) {
	path := shardPath(out, k)
	ck, err := weights.Open(path)
	if err != nil {
		return ShardInfo{}, nil, fmt.Errorf("shard %d is missing or unreadable (did its rank finish?): %w", k, err)
	}
	defer ck.Close()
	meta := ck.Metadata()
	if meta["run"] != id.hash() {
		return ShardInfo{}, nil, fmt.Errorf("%s is from another harvest (run %s, this is %s)", path, meta["run"], id.hash())
	}
	info := ShardInfo{File: filepath.Base(path)}
	if _, err := fmt.Sscanf(meta["examples"], "%d-%d", &info.Examples[0], &info.Examples[1]); err != nil {
		return ShardInfo{}, nil, fmt.Errorf("%s: examples %q: %w", path, meta["examples"], err)
	}
	info.Rank, _ = strconv.Atoi(meta["rank"])
	ex, err := ck.Info("example")
	if err != nil {
		return ShardInfo{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	info.Rows = ex.Shape[0]
	var hooks []HookInfo
	for _, h := range id.Hooks {
		t, err := ck.Info(h)
		if err != nil {
			return ShardInfo{}, nil, fmt.Errorf("%s: %w", path, err)
		}
		hooks = append(hooks, HookInfo{h, t.Shape[1:], id.DType})
	}
	return info, hooks, nil
}
