package hookedmodel

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/golens/golens/hookedmodel/hftest"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/weights"
)

// TestCountNonFinite checks the bit test against IEEE patterns written out
// by hand: an exponent of all ones is an infinity with a zero mantissa,
// else a NaN; the largest finite values are not counted.
func TestCountNonFinite(t *testing.T) {
	le16 := func(vs ...uint16) []byte {
		b := make([]byte, 2*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint16(b[2*i:], v)
		}
		return b
	}
	le32 := func(vs ...uint32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(b[4*i:], v)
		}
		return b
	}
	le64 := func(vs ...float64) []byte {
		b := make([]byte, 8*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
		return b
	}
	for _, tc := range []struct {
		dt       weights.DType
		data     []byte
		nan, inf int
	}{
		// float16: 0x7c00 +inf, 0xfc00 -inf, 0x7e00 and 0x7c01 NaN, 0x7bff 65504, 0x3c00 1.
		{weights.F16, le16(0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x7bff, 0x3c00), 2, 2},
		// bfloat16: 0x7f80 +inf, 0x7fc0 NaN, 0xff81 NaN, 0x7f7f its largest finite.
		{weights.BF16, le16(0x7f80, 0x7fc0, 0xff81, 0x7f7f), 2, 1},
		// float32: 0xff800000 -inf, 0x7fc00000 NaN, 0x7f7fffff MaxFloat32, 0x00000001 the smallest subnormal.
		{weights.F32, le32(0xff800000, 0x7fc00000, 0x7f7fffff, 0x00000001), 1, 1},
		{weights.F64, le64(math.Inf(1), math.NaN(), math.MaxFloat64, -0.0), 1, 1},
		{weights.I32, le32(0x7f800000), 0, 0}, // not a float: nothing to count
	} {
		nan, inf := countNonFinite(tc.data, tc.dt)
		if nan != tc.nan || inf != tc.inf {
			t.Errorf("%s: %d NaN and %d infinite, want %d and %d", tc.dt, nan, inf, tc.nan, tc.inf)
		}
	}
}

// TestLoadStreamsWeights: loading reads every tensor through one host
// buffer, so the Go heap allocates about the largest tensor's bytes, not
// the checkpoint's (as a buffer per tensor would), and the loaded weights
// still equal those written. The bound on libtorch's side (one tensor in
// its stored dtype, converted on the way) is what TestLoadPeakMemory
// measures with GOLENS_LOADMEM=1.
func TestLoadStreamsWeights(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dims := hftest.Dims{Layers: 4, DModel: 128, Heads: 4, KVHeads: 2, HeadDim: 32, DMLP: 1024, Vocab: 256, Ctx: 32}
	ck := hftest.Write(t, "llama", hftest.Opts{Dims: &dims, DType: weights.BF16, Shards: 3, Seed: 4,
		Edit: func(c map[string]any) { delete(c, "rope_scaling") }})
	var total, largest int64
	for name, shape := range ck.Shapes {
		n := (&weights.Tensor{Name: name, DType: weights.BF16, Shape: shape}).NBytes()
		total, largest = total+n, max(largest, n)
	}
	gpt2VocabSize() // loads GPT-2's tokenizer once per process, which the model's tokenizer check asks for
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := Load(context.Background(), ck.Dir, NoProcessing(), WithDType(gotch.Float), OnDevice(gotchtest.Device(t)))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	// The rest of a load (config, headers, the model's structure, a
	// scope per tensor) takes a few KiB per tensor.
	allocated := int64(after.TotalAlloc - before.TotalAlloc)
	limit := largest + int64(len(ck.Shapes))<<13
	if allocated > limit {
		t.Errorf("loading %d bytes of weights (largest tensor %d) allocated %d bytes on the Go heap, want at most %d", total, largest, allocated, limit)
	}
	if total < 4*limit {
		t.Fatalf("the checkpoint (%d bytes) is too small to tell a buffer per tensor from one buffer (%d)", total, limit)
	}
	// W_out as golens stores it: down_proj's [d_model d_mlp], bf16 values widened exactly.
	got := gotchtest.Values(t, m.Blocks[3].MLP.WOut)
	down := ck.Values["model.layers.3.mlp.down_proj.weight"]
	for i, w := range down {
		if got[i] != w {
			t.Fatalf("W_out element %d = %v, down_proj's = %v", i, got[i], w)
		}
	}
}

// TestLoadInChunks: weights read a few rows at a time (a chunk of 100
// bytes, not a whole number of rows of most tensors here, and less than
// one row of some) equal the same
// weights read whole, bit for bit: bf16 converted to float32 and a
// sharded Llama checkpoint, and GPT-2's Conv1D weights transposed on the
// way in (the whole reads are checked against float64 references by
// TestLoadHFLlamaFamilyMatchesReference and TestLoadHFGPT2).
func TestLoadInChunks(t *testing.T) {
	llama := hftest.Write(t, "llama", hftest.Opts{DType: weights.BF16, Shards: 2, Seed: 8,
		Edit: func(c map[string]any) { delete(c, "rope_scaling") }})
	for name, dir := range map[string]string{"llama": llama.Dir, "gpt2": "testdata/gpt2-tiny-bin"} {
		t.Run(name, func(t *testing.T) {
			gotchtest.CheckLeaks(t)
			opts := []Option{NoProcessing(), WithDType(gotch.Float), OnDevice(gotchtest.Device(t))}
			whole, err := Load(context.Background(), dir, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer whole.Free()
			defer func(was int64) { loadChunk = was }(loadChunk)
			loadChunk = 100
			chunked, err := Load(context.Background(), dir, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer chunked.Free()
			wp, cp := whole.params(), chunked.params()
			for i := range wp {
				if !slices.Equal(gotchtest.Values(t, *wp[i].ptr), gotchtest.Values(t, *cp[i].ptr)) {
					t.Errorf("%s read in chunks differs from %s read whole", cp[i].name, wp[i].name)
				}
			}
		})
	}
}

// loadMem is what the child process of TestLoadPeakMemory reports.
type loadMem struct {
	Stored, DType, Malloc     string
	Processed                 bool
	ModelBytes, LargestStored int64
	BaselineKB, PeakKB        int64
	Seconds                   float64
}

// TestLoadPeakMemory measures a load's peak resident memory: it writes a
// Llama-shaped checkpoint of about 1 GB (bf16, 4 shards, random weights;
// GOLENS_LOADMEM_DIR keeps it between runs) and loads it in a child
// process, once per target dtype, in which VmHWM after the load less VmHWM
// before it is the load's peak; that must stay within 1.2× the loaded
// model's bytes (without weight processing; the run with it is reported). It takes a minute and 3 GB of memory, so it runs only
// with GOLENS_LOADMEM=1.
func TestLoadPeakMemory(t *testing.T) {
	if spec := os.Getenv("GOLENS_LOADMEM_CHILD"); spec != "" {
		loadMemChild(t, spec)
		return
	}
	if os.Getenv("GOLENS_LOADMEM") != "1" {
		t.Skip("set GOLENS_LOADMEM=1 to measure a 1 GB load's peak memory")
	}
	dir := os.Getenv("GOLENS_LOADMEM_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	largest := writeLoadMemCheckpoint(t, dir)
	for _, tc := range []struct {
		dtype, malloc string
		processed     bool // from_pretrained's processing as well (fold_ln, center_unembed, ...)
	}{
		{"bfloat16", "system", false}, {"float32", "system", false}, {"float32", "tuned", false}, {"float32", "system", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadPeakMemory$", "-test.v")
		cmd.Env = append(os.Environ(), "GOLENS_LOADMEM_CHILD="+dir+"|"+tc.dtype+"|"+strconv.FormatBool(tc.processed), "GOLENS_MALLOC="+tc.malloc)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		_, js, ok := strings.Cut(string(out), "LOADMEM ")
		var r loadMem
		if !ok || json.Unmarshal([]byte(strings.SplitN(js, "\n", 2)[0]), &r) != nil {
			t.Fatalf("child reported nothing:\n%s", out)
		}
		r.LargestStored, r.Malloc = largest, tc.malloc
		delta := (r.PeakKB - r.BaselineKB) << 10
		ratio := float64(delta) / float64(r.ModelBytes)
		t.Logf("bf16 checkpoint -> %s (malloc %s, processed %v): model %.0f MiB, peak RSS - baseline %.0f MiB (baseline %.0f MiB), ratio %.3f, largest stored tensor %.0f MiB, load %.1f s",
			r.DType, r.Malloc, r.Processed, mib(r.ModelBytes), mib(delta), mib(r.BaselineKB<<10), ratio, mib(largest), r.Seconds)
		if ratio > 1.2 && !r.Processed { // processing rewrites weights: not the reading path's doing
			t.Errorf("loading as %s: peak %.0f MiB over the baseline for a %.0f MiB model: %.2f×, want at most 1.2×", r.DType, mib(delta), mib(r.ModelBytes), ratio)
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// loadMemChild loads the checkpoint spec names ("dir|dtype|processed")
// and prints its measurements on a LOADMEM line.
func loadMemChild(t *testing.T, spec string) {
	parts := strings.Split(spec, "|")
	dir, dtype := parts[0], parts[1]
	processed := len(parts) > 2 && parts[2] == "true"
	dt, err := gotch.ParseDType(dtype)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("GOLENS_MALLOC") == "tuned" {
		if err := gotch.TuneMalloc(); err != nil {
			t.Fatal(err)
		}
	}
	warm := gotch.MustFromSlice([]float32{1, 2}, []int64{2}, gotch.CPU) // libtorch's own start-up is no part of the load
	warm.MustAdd(warm).Free()
	warm.Free()
	runtime.GC()
	opts := []Option{WithDType(dt)}
	if !processed {
		opts = append(opts, NoProcessing())
	}
	r := loadMem{Stored: "BF16", DType: dtype, Processed: processed, BaselineKB: procStatusKB(t, "VmHWM")}
	start := time.Now()
	m, err := Load(context.Background(), dir, opts...)
	r.Seconds = time.Since(start).Seconds()
	r.PeakKB = procStatusKB(t, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	for _, p := range m.params() {
		r.ModelBytes += (*p.ptr).Numel() * int64((*p.ptr).DType().Size())
	}
	js, _ := json.Marshal(r)
	fmt.Printf("LOADMEM %s\n", js)
}

// procStatusKB reads a field of /proc/self/status given in kB.
func procStatusKB(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/self/status has no %s", field)
	return 0
}

// writeLoadMemCheckpoint writes (unless dir holds it) a Llama-shaped bf16
// checkpoint of about 1 GB: 6 layers of d_model 2048, 32 heads (8 for keys
// and values), d_mlp 8192, a 32000-token vocabulary with its own lm_head,
// in 4 shards. The weights are random normals / 50, in blocks of 64 Ki
// values that repeat. It returns the largest tensor's bytes.
func writeLoadMemCheckpoint(t *testing.T, dir string) int64 {
	d := hftest.Dims{Layers: 6, DModel: 2048, Heads: 32, KVHeads: 8, HeadDim: 64, DMLP: 8192, Vocab: 32000, Ctx: 2048}
	cfg := hftest.Configs["llama"](d)
	delete(cfg, "rope_scaling")
	cfg["torch_dtype"] = "bfloat16"
	specs := hftest.Tensors(cfg)
	var largest, total int64
	for i := range specs {
		n := (&weights.Tensor{DType: weights.BF16, Shape: specs[i].Shape}).NBytes()
		largest, total = max(largest, n), total+n
	}
	const shards = 4
	index := filepath.Join(dir, "model.safetensors.index.json")
	if _, err := os.Stat(index); err == nil {
		return largest
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 2<<16)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(block); i += 2 {
		b := math.Float32bits(float32(rng.NormFloat64() / 50))
		binary.LittleEndian.PutUint16(block[i:], uint16(b>>16))
	}
	weightMap := map[string]string{}
	per := (len(specs) + shards - 1) / shards
	for s := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		part := specs[s*per : min((s+1)*per, len(specs))]
		for _, spec := range part {
			weightMap[spec.Name] = name
		}
		writeRawSafetensors(t, filepath.Join(dir, name), part, block)
	}
	js, err = json.Marshal(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(index, js, 0o644); err != nil { // last: its presence means the rest is whole
		t.Fatal(err)
	}
	return largest
}

// writeRawSafetensors writes bf16 tensors filled with block, repeated, to
// a safetensors file without golens's checksums (as transformers writes
// them), a tensor at a time.
func writeRawSafetensors(t *testing.T, path string, specs []hftest.Tensor, block []byte) {
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, s := range specs {
		n := (&weights.Tensor{DType: weights.BF16, Shape: s.Shape}).NBytes()
		header[s.Name] = map[string]any{"dtype": "BF16", "shape": s.Shape, "data_offsets": []int64{off, off + n}}
		off += n
	}
	hj, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	binary.Write(w, binary.LittleEndian, uint64(len(hj)))
	w.Write(hj)
	for _, s := range specs {
		for n := (&weights.Tensor{DType: weights.BF16, Shape: s.Shape}).NBytes(); n > 0; {
			k := min(n, int64(len(block)))
			w.Write(block[:k])
			n -= k
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
