package harvest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/weights"
)

func testModel(t *testing.T) *hookedmodel.HookedTransformer {
	t.Helper()
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.DMLP = 2, 16, 4, 4, 32
	cfg.NCtx, cfg.DVocab, cfg.ActFn = 12, 30, "gelu_new"
	cfg.NormalizationType, cfg.PositionalEmbeddingType, cfg.NKeyValueHeads = "RMS", "rotary", 2
	m, err := hookedmodel.New(cfg, hookedmodel.OnDevice(gotchtest.Device(t)), hookedmodel.WithSeed(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// testData: 11 examples of lengths 3 to 9, so batches need padding and the
// last shard is short.
func testData() Dataset {
	var ex [][]int64
	for i := range 11 {
		row := make([]int64, 3+(i*5)%7)
		for p := range row {
			row[p] = int64((i*7 + p*3) % 30)
		}
		ex = append(ex, row)
	}
	return FromIDs(ex, "test")
}

const testHooks = `blocks\.1\.hook_resid_post|blocks\.0\.attn\.hook_k|blocks\.0\.mlp\.hook_post`

// harvestRanks runs a harvest as world ranks one after the other (the
// barrier of the last, rank 0, finds the others done).
func harvestRanks(t *testing.T, m *hookedmodel.HookedTransformer, ds Dataset, dir string, world int, opts ...Option) *Manifest {
	t.Helper()
	var man *Manifest
	for r := world - 1; r >= 0; r-- {
		got, err := Run(context.Background(), m, ds, dir, append(opts, Hooks(testHooks), ShardExamples(3), Batch(2),
			Rank(r, world, func(context.Context) error { return nil }))...)
		if err != nil {
			t.Fatalf("rank %d of %d: %v", r, world, err)
		}
		if (got != nil) != (r == 0) {
			t.Fatalf("rank %d: manifest %v", r, got)
		}
		man = got
	}
	return man
}

// shardTensors reads every tensor of every shard, in order.
func shardTensors(t *testing.T, dir string, man *Manifest) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, sh := range man.Shards {
		ck, err := weights.Open(filepath.Join(dir, sh.File))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ck.Keys() {
			w, err := ck.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			out[sh.File+"/"+k] = w.Data
		}
		ck.Close()
	}
	return out
}

// TestRanksGiveTheSameRows: 1, 2 and 3 ranks write the same shards, byte
// for byte, and the same manifest but for who wrote what.
func TestRanksGiveTheSameRows(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, ds := testModel(t), testData()
	one := t.TempDir()
	want := harvestRanks(t, m, ds, one, 1)
	if len(want.Shards) != 4 || want.Rows != 63 || want.Examples != 11 {
		t.Fatalf("manifest: %d shards, %d rows, %d examples; want 4, 63 (the examples' tokens), 11", len(want.Shards), want.Rows, want.Examples)
	}
	wantBytes := shardTensors(t, one, want)
	for _, world := range []int{2, 3} {
		dir := t.TempDir()
		got := harvestRanks(t, m, ds, dir, world)
		for i, sh := range got.Shards {
			if sh.Rank != i%world {
				t.Errorf("world %d: shard %d written by rank %d, want %d", world, i, sh.Rank, i%world)
			}
			sh.Rank = want.Shards[i].Rank
			if sh != want.Shards[i] {
				t.Errorf("world %d: shard %+v, want %+v", world, sh, want.Shards[i])
			}
		}
		gotBytes := shardTensors(t, dir, got)
		for k, w := range wantBytes {
			if !bytes.Equal(gotBytes[k], w) {
				t.Errorf("world %d: %s differs from one rank's", world, k)
			}
		}
	}
}

// TestRowsAreTheActivations: each row equals the model's activation at its
// example and position, run alone (no batch, no padding), and the example,
// position and token columns say where it came from.
func TestRowsAreTheActivations(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, ds := testModel(t), testData()
	dir := t.TempDir()
	man := harvestRanks(t, m, ds, dir, 1)
	hooks := map[string][]int64{"blocks.1.hook_resid_post": {16}, "blocks.0.attn.hook_k": {2, 4}, "blocks.0.mlp.hook_post": {32}}
	if len(man.Hooks) != len(hooks) {
		t.Fatalf("manifest hooks %+v", man.Hooks)
	}
	for _, h := range man.Hooks {
		if want := hooks[h.Name]; want == nil || !slices.Equal(h.RowShape, want) || h.DType != "float32" {
			t.Errorf("manifest hook %+v, want row shape %v float32", h, want)
		}
	}
	rows := map[string][]float64{}
	var example, position, token []float64
	for _, sh := range man.Shards {
		ck, err := weights.Open(filepath.Join(dir, sh.File))
		if err != nil {
			t.Fatal(err)
		}
		for name := range hooks {
			rows[name] = append(rows[name], floats(t, ck, name)...)
		}
		example, position, token = append(example, floats(t, ck, "example")...), append(position, floats(t, ck, "position")...), append(token, floats(t, ck, "token")...)
		ck.Close()
	}
	r := 0
	for i := range ds.Len() {
		ids, _ := ds.Example(i)
		tok := gotch.MustFromSlice(ids, []int64{1, int64(len(ids))}, m.Device())
		out, cache, err := m.RunWithCache(context.Background(), hookedmodel.Tokens(tok))
		tok.Free()
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
		for name, shape := range hooks {
			want := gotchtest.Values(t, cache.MustGet(name)) // [1 pos ...]
			per := int(prod(shape))
			got := rows[name][r*per : (r+len(ids))*per]
			if e := gotchtest.RelErr(got, want); e > 1e-5 {
				t.Errorf("example %d %s: relative error %g", i, name, e)
			}
		}
		cache.Free()
		for p, id := range ids {
			if example[r+p] != float64(i) || position[r+p] != float64(p) || token[r+p] != float64(id) {
				t.Fatalf("row %d: example %v position %v token %v, want %d %d %d", r+p, example[r+p], position[r+p], token[r+p], i, p, id)
			}
		}
		r += len(ids)
	}
	if r != len(example) {
		t.Errorf("%d rows, the examples have %d tokens", len(example), r)
	}
}

// TestResume: a harvest cancelled after two shards, and one whose shard
// file was damaged, finish on the next run with the same bytes as one
// uninterrupted run: nothing lost, nothing twice.
func TestResume(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, ds := testModel(t), testData()
	whole := t.TempDir()
	wantBytes := shardTensors(t, whole, harvestRanks(t, m, ds, whole, 1))

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	passes := 0
	h, err := m.AddHook(hookedmodel.Hook{Filter: hookedmodel.Name("blocks.0.hook_resid_pre"), Fn: func(*gotch.Tensor, string) (*gotch.Tensor, error) {
		if passes++; passes == 5 { // shards 0 and 1 take two batches each: cancel in shard 2
			cancel()
		}
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, m, ds, dir, Hooks(testHooks), ShardExamples(3), Batch(2))
	h.Remove()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if _, err := os.Stat(shardPath(dir, 1)); err != nil {
		t.Fatalf("shard 1 of the cancelled run: %v", err)
	}
	if _, err := os.Stat(shardPath(dir, 2)); err == nil {
		t.Fatal("shard 2 written after the cancellation")
	}
	if err := os.Truncate(shardPath(dir, 0), 100); err != nil { // a damaged shard is redone
		t.Fatal(err)
	}
	got := harvestRanks(t, m, ds, dir, 1)
	gotBytes := shardTensors(t, dir, got)
	if len(gotBytes) != len(wantBytes) {
		t.Fatalf("%d tensors, want %d", len(gotBytes), len(wantBytes))
	}
	for k, w := range wantBytes {
		if !bytes.Equal(gotBytes[k], w) {
			t.Errorf("%s differs from the uninterrupted run's", k)
		}
	}
}

// TestNumpyReadsAShard: Python with numpy alone (no safetensors package)
// reads a shard: header length, JSON header, raw little-endian arrays.
func TestNumpyReadsAShard(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, ds := testModel(t), testData()
	dir := t.TempDir()
	man := harvestRanks(t, m, ds, dir, 1)
	path := filepath.Join(dir, man.Shards[1].File)
	script := `
import json, struct, sys
import numpy as np
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
e = h["blocks.1.hook_resid_post"]
start, end = e["data_offsets"]
a = np.frombuffer(b[8 + n + start:8 + n + end], dtype="<f4").reshape(e["shape"])
print(a.shape[0], a.shape[1], repr(float(a.astype(np.float64).sum())))
`
	if err := exec.Command("/usr/bin/python3", "-c", "import numpy").Run(); err != nil {
		t.Skipf("no /usr/bin/python3 with numpy (./build.sh test installs python3-torch, which brings it): %v", err)
	}
	out, err := exec.Command("/usr/bin/python3", "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ck, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	vals := floats(t, ck, "blocks.1.hook_resid_post")
	sum := 0.0
	for _, v := range vals {
		sum += v
	}
	var rows, cols int
	var pySum float64
	if _, err := fmt.Sscan(string(out), &rows, &cols, &pySum); err != nil {
		t.Fatalf("python printed %q: %v", out, err)
	}
	if int64(rows) != man.Shards[1].Rows || cols != 16 || math.Abs(pySum-sum) > 1e-6*math.Max(1, math.Abs(sum)) {
		t.Errorf("numpy read [%d %d] summing to %g; golens wrote [%d 16] summing to %g", rows, cols, pySum, man.Shards[1].Rows, sum)
	}
}

func TestBadInput(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m, ds := testModel(t), testData()
	ctx := context.Background()
	barrier := func(context.Context) error { return nil }
	cases := []struct {
		name string
		m    *hookedmodel.HookedTransformer
		ds   Dataset
		opts []Option
		want string
	}{
		{"nil model", nil, ds, []Option{Hooks("x")}, "nil model"},
		{"no data", m, nil, []Option{Hooks("x")}, "no examples"},
		{"no hooks", m, ds, nil, "no hooks"},
		{"bad regexp", m, ds, []Option{Hooks("(")}, "missing closing )"},
		{"no match", m, ds, []Option{Hooks("hook_nothing")}, `hooks "hook_nothing" match none`},
		{"pattern", m, ds, []Option{Hooks("blocks.0.attn.hook_pattern")}, "hook blocks.0.attn.hook_pattern is [batch head query key]"},
		{"shard size", m, ds, []Option{Hooks(testHooks), ShardExamples(0)}, "shard size 0 examples"},
		{"batch", m, ds, []Option{Hooks(testHooks), Batch(-1)}, "batch -1"},
		{"rank", m, ds, []Option{Hooks(testHooks), Rank(2, 2, barrier)}, "rank 2 of world size 2"},
		{"no barrier", m, ds, []Option{Hooks(testHooks), Rank(0, 2, nil)}, "world size 2 without a barrier"},
		{"dtype", m, ds, []Option{Hooks(testHooks), DType(gotch.Int64)}, "want float32, float16 or bfloat16"},
		{"too long", m, FromIDs([][]int64{make([]int64, 13)}, "long"), []Option{Hooks(testHooks)}, "example 0 has 13 tokens, more than the model's n_ctx 12"},
		{"token out of range", m, FromIDs([][]int64{{1, 30}}, "oov"), []Option{Hooks(testHooks)}, "30"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(ctx, tc.m, tc.ds, t.TempDir(), tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Run(ctx, m, ds, dir, Hooks(testHooks))
		if err == nil || !strings.Contains(err.Error(), "is not empty (notes.txt) and is not a golens harvest") {
			t.Errorf("a directory of other files: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "mine" {
			t.Error("notes.txt changed")
		}
		other := t.TempDir()
		harvestRanks(t, m, ds, other, 1)
		_, err = Run(ctx, m, ds, other, Hooks(testHooks), ShardExamples(4), Batch(2))
		if err == nil || !strings.Contains(err.Error(), "shard_examples was 3, now 4") {
			t.Errorf("a harvest of other settings: %v", err)
		}
		if _, err := Run(ctx, m, ds, other, Hooks(testHooks), ShardExamples(4), Batch(2), Force()); err != nil {
			t.Errorf("forced: %v", err)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		man, err := Run(ctx, m, FromIDs([][]int64{make([]int64, 13)}, "long"), t.TempDir(), Hooks(testHooks), Truncate())
		if err != nil || man.Rows != 12 {
			t.Errorf("truncated: %v, rows %v", err, man)
		}
	})
}

func TestOpenData(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	upper := func(s string) ([]int64, error) { return []int64{int64(len(s))}, nil }
	d, err := OpenJSONL(write("ok.jsonl", []byte("[1, 2]\n\n{\"ids\": [3]}\n{\"text\": \"abcd\"}")), upper)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]int64{{1, 2}, {3}, {4}} {
		if got, _ := d.Example(i); !slices.Equal(got, want) {
			t.Errorf("jsonl example %d = %v, want %v", i, got, want)
		}
	}
	u16 := make([]byte, 2*7)
	for i := range 7 {
		binary.LittleEndian.PutUint16(u16[2*i:], uint16(1000*i))
	}
	b, err := OpenBinary(write("tok.bin", u16), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Example(1); b.Len() != 2 || !slices.Equal(got, []int64{3000, 4000, 5000}) {
		t.Errorf("uint16 data: %d examples, example 1 = %v", b.Len(), got)
	}
	b.(interface{ Close() error }).Close()

	for _, tc := range []struct {
		name string
		open func() (Dataset, error)
		want string
	}{
		{"bad line", func() (Dataset, error) { return OpenJSONL(write("bad.jsonl", []byte("[1]\n{x")), upper) }, "line 2"},
		{"empty example", func() (Dataset, error) { return OpenJSONL(write("empty.jsonl", []byte("[]")), upper) }, "line 1: an empty example"},
		{"text without tokenizer", func() (Dataset, error) { return OpenJSONL(write("t.jsonl", []byte(`{"text": "a"}`)), nil) }, "a text, but no tokenizer"},
		{"both", func() (Dataset, error) {
			return OpenJSONL(write("b.jsonl", []byte(`{"text": "a", "ids": [1]}`)), upper)
		}, "both text and ids"},
		{"nothing", func() (Dataset, error) { return OpenJSONL(write("n.jsonl", []byte("\n\n")), upper) }, "no examples"},
		{"missing", func() (Dataset, error) { return OpenJSONL(filepath.Join(dir, "nope"), upper) }, "no such file"},
		{"directory", func() (Dataset, error) { return OpenBinary(dir, 2, 3) }, "not a regular file"},
		{"width", func() (Dataset, error) { return OpenBinary(write("w.bin", u16), 3, 3) }, "token width 3 bytes"},
		{"odd size", func() (Dataset, error) { return OpenBinary(write("o.bin", u16[:5]), 2, 1) }, "5 bytes is not a whole number of 2-byte tokens"},
		{"short", func() (Dataset, error) { return OpenBinary(write("s.bin", u16), 2, 8) }, "7 tokens, fewer than one example of 8"},
		{"seq len", func() (Dataset, error) { return OpenBinary(write("q.bin", u16), 4, 0) }, "sequence length 0"},
	} {
		if _, err := tc.open(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func floats(t *testing.T, ck *weights.Checkpoint, name string) []float64 {
	t.Helper()
	w, err := ck.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	switch w.DType {
	case weights.F32:
		for i := 0; i < len(w.Data); i += 4 {
			out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(w.Data[i:]))))
		}
	case weights.I64:
		for i := 0; i < len(w.Data); i += 8 {
			out = append(out, float64(int64(binary.LittleEndian.Uint64(w.Data[i:]))))
		}
	default:
		t.Fatalf("%s: dtype %s", name, w.DType)
	}
	return out
}

func prod(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}
