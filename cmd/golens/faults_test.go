package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// asCLI makes the test binary run as golens itself, so the fault suite
// runs the real command line in its own process: exit status, stderr and
// signals are what a user's shell sees.
const asCLI = "GOLENS_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(asCLI) == "1" {
		main()
		os.Exit(0)
	}
	if out := os.Getenv(asSweepRank); out != "" {
		os.Exit(sweepRank(out))
	}
	os.Exit(m.Run())
}

// fault is one bad input: golens given args (where "$D" is the case's own
// folder, a fresh copy of the fixture after prepare has damaged it) must
// exit 1 with one line on stderr, "golens: ..." containing want, without a
// panic, a signal or a hang, and leave every file in $D as it was.
type fault struct {
	name    string
	prepare func(t *testing.T, dir string)
	args    []string
	want    string
	// env is added to golens's environment; "$URL" is the fake hub's
	// address (faultHub) and HF_HOME a fresh folder of the case's.
	env []string
}

// faultTimeout is how long a case may run: every one fails fast, so a case
// still running is a hang.
const faultTimeout = 60 * time.Second

// fixture is the folder each case starts from:
//
//	model.safetensors  a golens checkpoint (2 layers, GPT-2's vocabulary, n_ctx 32)
//	hf/                a Hugging Face GPT-2 checkpoint (config.json, pytorch_model.bin; vocab 29)
//	tokens.json        [[50256 464 3290 318]]
//	train.json         a tiny training config
//	text.txt, texts.jsonl
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(tinyGPT2(t))
	must(err)
	must(os.WriteFile(filepath.Join(dir, "model.safetensors"), b, 0o644))
	must(os.Mkdir(filepath.Join(dir, "hf"), 0o755))
	for _, f := range []string{"config.json", "pytorch_model.bin"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "hookedmodel", "testdata", "gpt2-tiny-bin", f))
		must(err)
		must(os.WriteFile(filepath.Join(dir, "hf", f), b, 0o644))
	}
	for name, content := range map[string]string{
		"tokens.json": "[[50256, 464, 3290, 318]]",
		"text.txt":    "The cat sat on the mat.",
		"texts.jsonl": `{"text": "The cat"}` + "\n",
		"train.json": `{"model": {"n_layers": 1, "d_model": 8, "d_head": 4, "n_heads": 2, "n_ctx": 9, "d_vocab": 12, "attn_only": true},
			"train": {"steps": 3, "batch": 2, "eval_every": 0, "eval_batches": 1, "log_every": 1},
			"data": {"kind": "repeated_tokens"}}`,
	} {
		must(os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	return dir
}

// copyTree copies the fixture into dst, hard-linking regular files (a case
// that changed one would show in its snapshot either way).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		return os.Link(p, to)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// treeSnapshot is each path under dir with its type and, for a regular
// file, the hash of its content.
func treeSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		v := fi.Mode().Type().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			v += " " + hex.EncodeToString(sum[:8])
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			v += " -> " + target
		}
		snap[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// runCLI runs golens with args and returns its stdout, stderr and exit
// error; a run past the timeout is killed and reported as a hang.
func runCLI(t *testing.T, timeout time.Duration, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCLIEnv(t, timeout, nil, args...)
}

// runCLIEnv is runCLI with env added to the environment.
func runCLIEnv(t *testing.T, timeout time.Duration, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asCLI+"=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("golens %s: still running after %v (a hang)", strings.Join(args, " "), timeout)
	}
	return out.String(), errb.String(), err
}

// checkFailure asserts what every refused input must give: exit status 1
// (not 2, a Go panic; not a signal) and one line on stderr containing want.
func checkFailure(t *testing.T, args []string, stderr string, err error, want string) {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		t.Errorf("golens %s succeeded; want an error mentioning %q", strings.Join(args, " "), want)
		return
	case !errors.As(err, &exit):
		t.Errorf("golens %s: %v", strings.Join(args, " "), err)
		return
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Errorf("golens %s: killed by %v\n%s", strings.Join(args, " "), ws.Signal(), stderr)
		return
	}
	if code := exit.ExitCode(); code != 1 {
		t.Errorf("golens %s: exit status %d, want 1\n%s", strings.Join(args, " "), code, stderr)
	}
	// Before the error line only a progress bar (redrawn with \r) may come.
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "\r") {
			last = ""
		}
	}
	if !strings.HasPrefix(last, "golens: ") || !strings.Contains(last, want) {
		t.Errorf("golens %s: stderr %q, want one line \"golens: ...\" mentioning %q", strings.Join(args, " "), stderr, want)
	}
}

// write returns a prepare step that writes content to name in the case's
// folder (replacing what is there).
func write(name, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, name)
		os.Remove(p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func fifoAt(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, name)
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func linkAt(name, target string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, name)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
}

func dirAt(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, name)
		os.Remove(p)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// truncate halves a file of the case's folder.
func truncate(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p) // a new inode: the fixture's hard link stays whole
		b, _ := os.ReadFile(filepath.Join(fixtureDir, name))
		os.WriteFile(p, b[:fi.Size()/2], 0o644)
	}
}

// flipLast flips a bit of a file's last byte: a damaged tensor.
func flipLast(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 0x10
		os.Remove(p) // a new inode: the fixture's hard link stays whole
		os.WriteFile(p, b, 0o644)
	}
}

// nanModel saves the fixture's model with a NaN in one weight as name.
func nanModel(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		m, err := hookedmodel.Load(context.Background(), filepath.Join(dir, "model.safetensors"), hookedmodel.AllowNonFinite())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		if err := gotch.Try(func() {
			b := m.Blocks[1].Attn.BO.MustNarrow(0, 3, 1) // a view of the weight, ours to free
			defer b.Free()
			b.MustFill_(math.NaN())
		}); err != nil {
			t.Fatal(err)
		}
		if err := m.Save(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// evilPickle writes a pickle whose loading would run a shell command
// (os.system) that creates dir/pwned: a reader that executed it would
// leave that file behind, which the suite catches.
func evilPickle(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		cmd := "touch " + filepath.Join(dir, "pwned")
		var b bytes.Buffer
		b.WriteString("\x80\x02cos\nsystem\nq\x00X")
		binary.Write(&b, binary.LittleEndian, uint32(len(cmd)))
		b.WriteString(cmd)
		b.WriteString("q\x01\x85q\x02Rq\x03.")
		os.Remove(filepath.Join(dir, name))
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fixtureDir is the fixture of the running TestFaults, for truncate.
var fixtureDir string

// hfConfig writes the Hugging Face config with one field changed.
func hfConfig(field, value string) func(*testing.T, string) {
	base := `"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 2, "n_embd": 16, "n_head": 4,
		"n_positions": 16, "n_inner": 40, "vocab_size": 29, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05`
	return write("hf/config.json", "{"+base+`, "`+field+`": `+value+"}")
}

// faultHub plays the Hugging Face hub on 127.0.0.1 for the network cases:
// HF_ENDPOINT=$URL/<mode> serves the tiny Hugging Face checkpoint under any
// repository name, faithfully ("ok") or with a fault.
func faultHub(t *testing.T) *httptest.Server {
	files := map[string][]byte{}
	for _, f := range []string{"config.json", "pytorch_model.bin"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "hookedmodel", "testdata", "gpt2-tiny-bin", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = b
	}
	gitSHA1 := func(b []byte) string {
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", len(b))
		h.Write(b)
		return hex.EncodeToString(h.Sum(nil))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		_, file, _ := strings.Cut(rest, "/resolve/main/")
		data, ok := files[file]
		switch {
		case mode == "missing" || !ok:
			w.Header().Set("X-Error-Code", "RepoNotFound")
			http.Error(w, "Repository Not Found", http.StatusNotFound)
			return
		case mode == "gated":
			w.Header().Set("X-Error-Code", "GatedRepo")
			http.Error(w, "Access to this model is restricted.", http.StatusUnauthorized)
			return
		case mode == "notahub":
			io.WriteString(w, "<html>a web page</html>")
			return
		}
		w.Header().Set("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
		etag := gitSHA1(data)
		if mode == "badsum" {
			etag = gitSHA1(append([]byte("x"), data...))
		}
		w.Header().Set("ETag", `"`+etag+`"`)
		if mode == "big" && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
			for range 1 << 10 { // a megabyte more than announced
				w.Write(data)
				w.Write(make([]byte, 1<<10))
			}
			return
		}
		http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// faults is the suite's table. Cases are grouped by what is wrong.
var faults = []fault{
	// The model argument.
	{"model: missing path", nil, []string{"run", "--model", "$D/nothing", "--prompt", "x"}, "no such file or directory", nil},
	{"model: empty folder", dirAt("empty"), []string{"run", "--model", "$D/empty", "--prompt", "x"}, "none of model.safetensors", nil},
	{"model: /dev/zero", nil, []string{"run", "--model", "/dev/zero", "--prompt", "x"}, "/dev/zero", nil},
	{"model: config.json a FIFO", fifoAt("hf/config.json"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "named pipe (FIFO)", nil},
	{"model: config.json -> /dev/zero", linkAt("hf/config.json", "/dev/zero"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "character device", nil},
	{"model: config.json a folder", dirAt("hf/config.json"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "directory", nil},
	{"model: config.json empty", write("hf/config.json", ""), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "config.json", nil},
	{"model: config.json garbage", write("hf/config.json", "{{{"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "config.json", nil},
	{"model: config.json a list", write("hf/config.json", "[]"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "config.json", nil},
	{"model: model_type bert", hfConfig("model_type", `"bert"`), []string{"run", "--model", "$D/hf", "--prompt", "x"}, `model_type "bert" is not supported`, nil},
	{"model: model_type llama, gpt2's fields", hfConfig("model_type", `"llama"`), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "model_type llama: hidden_size must be positive", nil},
	{"model: n_head 0", hfConfig("n_head", "0"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "n_head", nil},
	{"model: n_head 3", hfConfig("n_head", "3"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "n_head", nil},
	{"model: more layers than weights", hfConfig("n_layer", "3"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "h.2.", nil},
	{"model: fewer layers than weights", hfConfig("n_layer", "1"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "h.1.", nil},
	{"model: other width", hfConfig("n_embd", "32"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "wte.weight", nil},
	{"model: no weights", func(t *testing.T, d string) { os.Remove(filepath.Join(d, "hf", "pytorch_model.bin")) }, []string{"run", "--model", "$D/hf", "--prompt", "x"}, "$D/hf", nil},
	{"model: weights truncated", truncate("hf/pytorch_model.bin"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "pytorch_model.bin", nil},
	{"model: weights garbage", write("hf/pytorch_model.bin", "not a zip"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "pytorch_model.bin", nil},
	{"model: weights empty", write("hf/pytorch_model.bin", ""), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "pytorch_model.bin", nil},
	{"model: golens checkpoint truncated", truncate("model.safetensors"), []string{"run", "--model", "$D/model.safetensors", "--prompt", "x"}, "model.safetensors", nil},
	{"model: golens checkpoint bit flipped", flipLast("model.safetensors"), []string{"run", "--model", "$D/model.safetensors", "--prompt", "x"}, "fails its checksum", nil},
	{"model: NaN in a weight", nanModel("nan.safetensors"), []string{"run", "--model", "$D/nan.safetensors", "--prompt", "x"}, "--allow-nonfinite", nil},
	{"model: a pickle that runs a command", evilPickle("hf/pytorch_model.bin"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "pytorch_model.bin", nil},
	{"model: golens checkpoint empty", write("model.safetensors", ""), []string{"run", "--model", "$D/model.safetensors", "--prompt", "x"}, "model.safetensors", nil},
	{"model: safetensors header garbage", write("model.safetensors", "\x10\x00\x00\x00\x00\x00\x00\x00{{{{{{{{{{{{{{{{"), []string{"run", "--model", "$D/model.safetensors", "--prompt", "x"}, "model.safetensors", nil},
	{"model: safetensors header size a lie", write("model.safetensors", "\xff\xff\xff\xff\xff\xff\x00\x00{}"), []string{"run", "--model", "$D/model.safetensors", "--prompt", "x"}, "model.safetensors", nil},

	// --tokens-file.
	{"tokens: /dev/zero", nil, []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "/dev/zero"}, "character device", nil},
	{"tokens: a FIFO", fifoAt("t.json"), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "named pipe (FIFO)", nil},
	{"tokens: a folder", nil, []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D"}, "directory", nil},
	{"tokens: missing", nil, []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/none.json"}, "none.json", nil},
	{"tokens: empty file", write("t.json", ""), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: empty list", write("t.json", "[]"), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "no tokens", nil},
	{"tokens: empty row", write("t.json", "[[]]"), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "no tokens", nil},
	{"tokens: ragged", write("t.json", "[[1, 2, 3], [4]]"), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "row 1 has 1 tokens", nil},
	{"tokens: a string id", write("t.json", `[[1, "a"]]`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: a fraction", write("t.json", `[[1, 1.5]]`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: an object", write("t.json", `{"ids": [1]}`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: flat", write("t.json", `[1, 2, 3]`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: negative id", write("t.json", `[[50256, -1]]`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "-1", nil},
	{"tokens: id past the vocabulary", write("t.json", `[[50256, 50257]]`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "50257", nil},
	{"tokens: id past int64", write("t.json", `[[1e30]]`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: longer than n_ctx", write("t.json", "[["+strings.Repeat("1, ", 40)+"1]]"), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "32", nil},

	// Flags.
	{"flag: unknown", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--bogus"}, "bogus", nil},
	{"flag: no model", nil, []string{"run", "--prompt", "x"}, "model", nil},
	{"flag: no input", nil, []string{"run", "--model", "$D/model.safetensors"}, "prompt", nil},
	{"flag: prompt and tokens", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--tokens-file", "$D/tokens.json"}, "tokens-file", nil},
	{"flag: device tpu", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--device", "tpu"}, `"tpu"`, nil},
	{"flag: device cuda:99", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--device", "cuda:99"}, "cuda", nil},
	{"flag: dtype float7", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--dtype", "float7"}, "float7", nil},
	{"flag: set unknown field", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--set", "no_such_field=1"}, "no_such_field", nil},
	{"flag: set bad bool", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--set", "use_attn_result=maybe"}, "use_attn_result", nil},
	{"flag: set without =", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--set", "use_attn_result"}, "use_attn_result", nil},
	{"flag: head out of range", nil, []string{"ablate", "--model", "$D/model.safetensors", "--prompt", "x", "--head", "7.0", "--out", "$D/a.safetensors"}, "7.0", nil},
	{"flag: head not L.H", nil, []string{"ablate", "--model", "$D/model.safetensors", "--prompt", "x", "--head", "one", "--out", "$D/a.safetensors"}, "LAYER.HEAD", nil},
	{"flag: head negative", nil, []string{"ablate", "--model", "$D/model.safetensors", "--prompt", "x", "--head", "-1.0", "--out", "$D/a.safetensors"}, "-1.0", nil},
	{"flag: ablate mode", nil, []string{"ablate", "--model", "$D/model.safetensors", "--prompt", "x", "--head", "0.0", "--mode", "half", "--out", "$D/a.safetensors"}, "half", nil},
	{"harvest: binary data without --format", write("d.bin", "\x01\x00\x02\x00"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.bin", "--hooks", "resid_post", "--out", "$D/h"}, "say its --format", nil},
	{"harvest: --format csv", write("d.bin", "\x01\x00"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.bin", "--format", "csv", "--hooks", "resid_post", "--out", "$D/h"}, `--format "csv"`, nil},
	{"harvest: missing data", nil, []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/nothing.jsonl", "--hooks", "resid_post", "--out", "$D/h"}, "no such file", nil},
	{"harvest: data a FIFO", fifoAt("d.jsonl"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "resid_post", "--out", "$D/h"}, "named pipe (FIFO)", nil},
	{"harvest: jsonl garbage", write("d.jsonl", "[1, 2]\n{oops\n"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "resid_post", "--out", "$D/h"}, "line 2", nil},
	{"harvest: token out of range", write("d.jsonl", "[1, 99999]\n"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "resid_post", "--out", "$D/h"}, "99999", nil},
	{"harvest: uint16 shorter than an example", write("d.bin", "\x01\x00\x02\x00"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.bin", "--format", "uint16", "--seq-len", "3", "--hooks", "resid_post", "--out", "$D/h"}, "2 tokens, fewer than one example of 3", nil},
	{"harvest: hook_pattern", write("d.jsonl", "[1, 2]\n"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "hook_pattern", "--out", "$D/h"}, "[batch head query key]", nil},
	{"harvest: out is a file", write("d.jsonl", "[1, 2]\n"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "resid_post", "--out", "$D/d.jsonl"}, "not a directory", nil},
	{"harvest: out holds other files", write("d.jsonl", "[1, 2]\n"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "resid_post", "--out", "$D"}, "is not a golens harvest", nil},
	{"harvest: --out-dtype int8", write("d.jsonl", "[1, 2]\n"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "resid_post", "--out", "$D/h", "--out-dtype", "int8"}, `--out-dtype "int8"`, nil},
	{"harvest: --batch 0", write("d.jsonl", "[1, 2]\n"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "resid_post", "--out", "$D/h", "--batch", "0"}, "--batch 0", nil},
	{"harvest: a rank of two alone", write("d.jsonl", "[1, 2]\n"), []string{"harvest", "--model", "$D/model.safetensors", "--data", "$D/d.jsonl", "--hooks", "resid_post", "--out", "$D/h"}, "RANK is not set", []string{"WORLD_SIZE=2"}},
	{"flag: names bad regexp", nil, []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--names", "(", "--out", "$D/c.safetensors"}, "--names", nil},
	{"flag: names match nothing", nil, []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--names", "zzz", "--out", "$D/c.safetensors"}, "zzz", nil},

	// Outputs: only regular files are created or replaced.
	{"out: cache to /dev/null", nil, []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--out", "/dev/null"}, "/dev/null: it is a character device", nil},
	{"out: cache to /dev/full", nil, []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--out", "/dev/full"}, "/dev/full: it is a character device", nil},
	{"out: cache to a folder", nil, []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--out", "$D/hf"}, "it is a directory", nil},
	{"out: cache to a FIFO", fifoAt("c.safetensors"), []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--out", "$D/c.safetensors"}, "it is a named pipe (FIFO)", nil},
	{"out: cache to a link to /dev/null", linkAt("c.safetensors", "/dev/null"), []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--out", "$D/c.safetensors"}, "character device", nil},
	{"out: cache to a dangling link", linkAt("c.safetensors", "/nonexistent/x"), []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--out", "$D/c.safetensors"}, "symbolic link to a missing file", nil},
	{"out: cache into a missing folder", nil, []string{"cache", "--model", "$D/model.safetensors", "--prompt", "x", "--out", "$D/nodir/c.safetensors"}, "nodir", nil},
	{"out: ablate to /dev/null", nil, []string{"ablate", "--model", "$D/model.safetensors", "--prompt", "x", "--head", "0.0", "--out", "/dev/null"}, "/dev/null: it is a character device", nil},
	{"out: ablate to a FIFO", fifoAt("a.safetensors"), []string{"ablate", "--model", "$D/model.safetensors", "--prompt", "x", "--head", "0.0", "--out", "$D/a.safetensors"}, "it is a named pipe (FIFO)", nil},
	{"out: ablate to a folder", nil, []string{"ablate", "--model", "$D/model.safetensors", "--prompt", "x", "--head", "0.0", "--out", "$D/hf"}, "it is a directory", nil},
	{"out: analyze into a file", nil, []string{"analyze", "--model", "$D/model.safetensors", "--prompt", "The cat sat", "--out", "$D/text.txt"}, "text.txt: it is not a directory", nil},
	{"out: analyze into /dev/null", nil, []string{"analyze", "--model", "$D/model.safetensors", "--prompt", "The cat sat", "--out", "/dev/null"}, "/dev/null: it is not a directory", nil},
	{"out: analyze into a folder of other files", nil, []string{"analyze", "--model", "$D/model.safetensors", "--prompt", "The cat sat", "--out", "$D/hf"}, "holds no golens report: pass --force", nil},
	{"out: demo into a file", nil, []string{"demo", "--out", "$D/text.txt"}, "text.txt: it is not a directory", nil},
	{"out: demo into a folder of other files", nil, []string{"demo", "--out", "$D/hf"}, "holds no golens report: pass --force", nil},
	{"out: demo into a folder with another index.html", write("site/index.html", "<html>my site</html>"), []string{"demo", "--out", "$D/site"}, "holds no golens report", nil},
	{"out: train into /dev/null", nil, []string{"train", "--config", "$D/train.json", "--out", "/dev/null"}, "not a directory", nil},

	// Config edits, config numbers, input lengths and numeric flags.
	{"set: normalization_type=null", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "normalization_type=null"}, "normalization_type", nil},
	{"set: attn_only=true", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "attn_only=true"}, "attn_only", nil},
	{"set: d_vocab_out=100", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "d_vocab_out=100"}, "d_vocab_out", nil},
	{"set: act_fn=tanh", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "act_fn=tanh"}, "tanh", nil},
	{"set: eps=0", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "eps=0"}, "eps", nil},
	{"set: eps=-1", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "eps=-1"}, "eps", nil},
	{"set: n_layers huge", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "n_layers=1000000000"}, "n_layers", nil},
	{"set: d_model=7", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "d_model=7"}, "d_model", nil},
	{"set: n_heads=0", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "n_heads=0"}, "n_heads", nil},
	{"set: seed", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "seed=3"}, "seed", nil},
	{"set: empty key", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "=true"}, "--set", nil},
	{"set: dtype float7", nil, []string{"run", "--model", "$D/hf", "--prompt", "x", "--set", "dtype=float7"}, "float7", nil},
	{"hf config: layer_norm_epsilon 0", hfConfig("layer_norm_epsilon", "0"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "layer_norm_epsilon", nil},
	{"hf config: layer_norm_epsilon negative", hfConfig("layer_norm_epsilon", "-1e-5"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "layer_norm_epsilon", nil},
	{"hf config: vocab_size 0", hfConfig("vocab_size", "0"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "vocab_size", nil},
	{"hf config: n_positions 0", hfConfig("n_positions", "0"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "n_positions", nil},
	{"hf config: n_inner negative", hfConfig("n_inner", "-1"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "n_inner", nil},
	{"hf config: n_layer negative", hfConfig("n_layer", "-1"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "n_layer", nil},
	{"hf config: n_embd a string", hfConfig("n_embd", "\"16\""), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "config.json", nil},
	{"hf config: unknown activation", hfConfig("activation_function", "\"swish2\""), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "swish2", nil},
	{"hf config: n_layer fractional", hfConfig("n_layer", "1.5"), []string{"run", "--model", "$D/hf", "--prompt", "x"}, "config.json", nil},
	{"input: prompt longer than n_ctx", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat"}, "n_ctx=32", nil},
	{"input: generate past n_ctx", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--max-new-tokens", "40"}, "32", nil},
	{"generate: temperature +Inf", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--temperature", "+Inf"}, "--temperature", nil},
	{"generate: temperature NaN", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--temperature", "NaN"}, "--temperature", nil},
	{"generate: temperature negative", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--temperature", "-1"}, "--temperature", nil},
	{"generate: top-k negative", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--top-k", "-5"}, "--top-k", nil},
	{"generate: top-p 1.5", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--top-p", "1.5"}, "--top-p", nil},
	{"generate: top-p negative", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--top-p", "-0.5"}, "--top-p", nil},
	{"generate: top-p NaN", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--top-p", "NaN"}, "--top-p", nil},
	{"generate: max-new-tokens negative", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--max-new-tokens", "-1"}, "--max-new-tokens", nil},
	{"generate: top-k and top-p", nil, []string{"generate", "--model", "$D/model.safetensors", "--prompt", "The cat", "--top-k", "3", "--top-p", "0.5"}, "--top-p", nil},
	{"generate: no prompt", nil, []string{"generate", "--model", "$D/model.safetensors"}, "prompt", nil},
	{"generate: no tokenizer", nil, []string{"generate", "--model", "$D/hf", "--prompt", "x"}, "tokenizer", nil},
	{"run: top 0", nil, []string{"run", "--model", "$D/model.safetensors", "--prompt", "x", "--top", "0"}, "--top", nil},
	{"analyze: seq-len 0", nil, []string{"analyze", "--model", "$D/model.safetensors", "--seq-len", "0", "--out", "$D/r"}, "--seq-len", nil},
	{"analyze: seq-len too long", nil, []string{"analyze", "--model", "$D/model.safetensors", "--seq-len", "40", "--out", "$D/r"}, "n_ctx", nil},
	{"bench: reps negative", nil, []string{"bench", "--reps", "-5"}, "--reps", nil},
	{"bench: warmup negative", nil, []string{"bench", "--warmup", "-1"}, "--warmup", nil},
	{"bench: batch 0", nil, []string{"bench", "--batch", "0"}, "--batch", nil},
	{"bench: new-tokens 0", nil, []string{"bench", "--new-tokens", "0"}, "--new-tokens", nil},
	{"bench: batch not a number", nil, []string{"bench", "--batch", "two"}, "two", nil},
	{"tokenize: model without a tokenizer", nil, []string{"tokenize", "--model", "$D/hf", "--text", "x"}, "tokenizer", nil},
	{"model: mistyped relative path", nil, []string{"run", "--model", "$D/nope/x", "--prompt", "x"}, "nope", nil},
	{"model: path with a control character", nil, []string{"run", "--model", "$D/\x1b[2Jx", "--prompt", "x"}, "\\x1b", nil},
	{"tokens: nested too deep", write("t.json", `[[[1]]]`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: null", write("t.json", `null`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: booleans", write("t.json", `[[true]]`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: trailing garbage", write("t.json", `[[1, 2]] xyz`), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},
	{"tokens: a link to /dev/zero", linkAt("t.json", "/dev/zero"), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "character device", nil},
	{"tokens: a dangling link", linkAt("t.json", "/nonexistent/t.json"), []string{"run", "--model", "$D/model.safetensors", "--tokens-file", "$D/t.json"}, "t.json", nil},

	// tokenize.
	{"tokenize: unknown model", nil, []string{"tokenize", "--model", "bert", "--text", "x"}, "no tokenizer known", nil},
	{"tokenize: file /dev/zero", nil, []string{"tokenize", "--model", "gpt2", "--file", "/dev/zero"}, "character device", nil},
	{"tokenize: file a FIFO", fifoAt("in.txt"), []string{"tokenize", "--model", "gpt2", "--file", "$D/in.txt"}, "named pipe (FIFO)", nil},
	{"tokenize: file missing", nil, []string{"tokenize", "--model", "gpt2", "--file", "$D/none.txt"}, "none.txt", nil},
	{"tokenize: jsonl a FIFO", fifoAt("in.jsonl"), []string{"tokenize", "--model", "gpt2", "--jsonl", "$D/in.jsonl"}, "named pipe (FIFO)", nil},
	{"tokenize: jsonl garbage", write("in.jsonl", "{\"text\": \"a\"}\nnot json\n"), []string{"tokenize", "--model", "gpt2", "--jsonl", "$D/in.jsonl"}, "in.jsonl:2", nil},
	{"tokenize: jsonl text not a string", write("in.jsonl", `{"text": 5}`), []string{"tokenize", "--model", "gpt2", "--jsonl", "$D/in.jsonl"}, "in.jsonl:1", nil},
	{"tokenize: jsonl no text", write("in.jsonl", `{"body": "x"}`), []string{"tokenize", "--model", "gpt2", "--jsonl", "$D/in.jsonl"}, "in.jsonl:1", nil},
	{"tokenize: two inputs", nil, []string{"tokenize", "--model", "gpt2", "--text", "x", "--file", "$D/text.txt"}, "text", nil},
	{"tokenize: no input", nil, []string{"tokenize", "--model", "gpt2"}, "text", nil},
	{"tokenize: no model nor tokenizer", nil, []string{"tokenize", "--text", "x"}, "[model tokenizer]", nil},
	{"tokenize: model and tokenizer", nil, []string{"tokenize", "--model", "gpt2", "--tokenizer", "$D/tokenizer.json", "--text", "x"}, "[model tokenizer]", nil},
	{"tokenize: tokenizer missing", nil, []string{"tokenize", "--tokenizer", "$D/none.json", "--text", "x"}, "none.json", nil},
	{"tokenize: tokenizer /dev/zero", nil, []string{"tokenize", "--tokenizer", "/dev/zero", "--text", "x"}, "character device", nil},
	{"tokenize: tokenizer a FIFO", fifoAt("tok.json"), []string{"tokenize", "--tokenizer", "$D/tok.json", "--text", "x"}, "named pipe (FIFO)", nil},
	{"tokenize: tokenizer garbage", write("tok.json", "{{"), []string{"tokenize", "--tokenizer", "$D/tok.json", "--text", "x"}, "tokenizer.json: top level", nil},
	{"tokenize: tokenizer WordPiece", write("tok.json", `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`), []string{"tokenize", "--tokenizer", "$D/tok.json", "--text", "x"}, `model.type: "WordPiece" is not supported`, nil},
	{"tokenize: tokenizer directory without one", nil, []string{"tokenize", "--tokenizer", "$D", "--text", "x"}, "tokenizer.json", nil},

	// train.
	{"train: config a FIFO", fifoAt("c.json"), []string{"train", "--config", "$D/c.json", "--out", "$D/run"}, "named pipe (FIFO)", nil},
	{"train: config /dev/zero", nil, []string{"train", "--config", "/dev/zero", "--out", "$D/run"}, "character device", nil},
	{"train: config missing", nil, []string{"train", "--config", "$D/none.json", "--out", "$D/run"}, "none.json", nil},
	{"train: config garbage", write("c.json", "{{"), []string{"train", "--config", "$D/c.json", "--out", "$D/run"}, "c.json", nil},
	{"train: config unknown field", write("c.json", `{"model": {}, "train": {"stpes": 3}, "data": {"kind": "repeated_tokens"}}`), []string{"train", "--config", "$D/c.json", "--out", "$D/run"}, "stpes", nil},
	{"train: zero steps", write("c.json", `{"model": {"n_layers": 1, "d_model": 8, "d_head": 4, "n_heads": 2, "n_ctx": 9, "d_vocab": 12, "attn_only": true}, "train": {"steps": 0}, "data": {"kind": "repeated_tokens"}}`), []string{"train", "--config", "$D/c.json", "--out", "$D/run"}, "steps", nil},
	{"train: unknown data kind", write("c.json", `{"model": {"n_layers": 1, "d_model": 8, "d_head": 4, "n_heads": 2, "n_ctx": 9, "d_vocab": 12, "attn_only": true}, "train": {"steps": 3}, "data": {"kind": "vibes"}}`), []string{"train", "--config", "$D/c.json", "--out", "$D/run"}, "vibes", nil},
	{"train: --steps negative", nil, []string{"train", "--config", "$D/train.json", "--out", "$D/run", "--steps", "-5"}, "--steps", nil},
	{"train: out a model folder", nil, []string{"train", "--config", "$D/train.json", "--out", "$D/hf"}, "--force", nil},
	{"train: out a file", nil, []string{"train", "--config", "$D/train.json", "--out", "$D/text.txt"}, "not a directory", nil},
	{"train: out with other files", nil, []string{"train", "--config", "$D/train.json", "--out", "$D"}, "--force", nil},

	// The network: a fake hub on 127.0.0.1 (HF_ENDPOINT).
	{name: "hub: no such repository", args: []string{"run", "--model", "gpt2", "--prompt", "x"}, want: "gpt2 on $URL/missing: not found", env: []string{"HF_ENDPOINT=$URL/missing"}},
	{name: "hub: gated", args: []string{"run", "--model", "gpt2", "--prompt", "x"}, want: "access denied", env: []string{"HF_ENDPOINT=$URL/gated"}},
	{name: "hub: not a hub", args: []string{"run", "--model", "gpt2", "--prompt", "x"}, want: "Hugging Face hub", env: []string{"HF_ENDPOINT=$URL/notahub"}},
	{name: "hub: checksum mismatch", args: []string{"run", "--model", "gpt2", "--prompt", "x"}, want: "checksum", env: []string{"HF_ENDPOINT=$URL/badsum"}},
	{name: "hub: more than announced", args: []string{"run", "--model", "gpt2", "--prompt", "x"}, want: "more than", env: []string{"HF_ENDPOINT=$URL/big"}},
	{name: "hub: offline, not cached", args: []string{"run", "--model", "gpt2", "--prompt", "x"}, want: "HF_HUB_OFFLINE", env: []string{"HF_ENDPOINT=$URL/ok", "HF_HUB_OFFLINE=1"}},
	{name: "hub: bad timeout variable", args: []string{"run", "--model", "gpt2", "--prompt", "x"}, want: "HF_HUB_DOWNLOAD_TIMEOUT", env: []string{"HF_ENDPOINT=$URL/ok", "HF_HUB_DOWNLOAD_TIMEOUT=soon"}},
	{name: "hub: mistyped repository", args: []string{"run", "--model", "openai-community/gtp2", "--prompt", "x"}, want: "openai-community/gtp2 on $URL/missing: not found", env: []string{"HF_ENDPOINT=$URL/missing"}},

	// bench.
	{"bench: table /dev/zero", nil, []string{"bench", "table", "/dev/zero"}, "character device", nil},
	{"bench: table garbage", nil, []string{"bench", "table", "$D/text.txt"}, "line 1", nil},
	{"bench: unknown shape", nil, []string{"bench", "--shape", "gpt5"}, `"gpt5"`, nil},
	{"bench: unknown workload", nil, []string{"bench", "--workload", "dance"}, `"dance"`, nil},
	{"bench: seq 0", nil, []string{"bench", "--seq", "0"}, "--seq", nil},
}

// TestFaults is the fault suite: every case of faults against the golens
// binary.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs golens once per case; skipped with -short")
	}
	fixtureDir = fixture(t)
	hub := faultHub(t)
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, fixtureDir, dir)
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "$D", dir)
			}
			want := strings.NewReplacer("$D", dir, "$URL", hub.URL).Replace(tc.want)
			home := t.TempDir()
			env := []string{"HF_HOME=" + home, "HF_ENDPOINT=" + hub.URL + "/missing"} // never the real hub
			for _, e := range tc.env {
				env = append(env, strings.ReplaceAll(e, "$URL", hub.URL))
			}
			before := treeSnapshot(t, dir)
			_, stderr, err := runCLIEnv(t, faultTimeout, env, args...)
			checkFailure(t, args, stderr, err, want)
			after := treeSnapshot(t, dir)
			for p, v := range before {
				if after[p] != v {
					t.Errorf("%s changed: %s, was %s", p, after[p], v)
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					t.Errorf("%s was left behind", p)
				}
			}
			// A failed download caches nothing but its locks.
			filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".lock") {
					t.Errorf("%s is in the hub cache after a failure", p)
				}
				return nil
			})
		})
	}
	t.Cleanup(func() {
		if fi, err := os.Lstat("/dev/null"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
			t.Errorf("/dev/null is no longer a device: %v", err)
		}
		t.Logf("%d fault cases", len(faults))
	})
}

// TestTrainInterrupted: SIGTERM, like Ctrl-C, stops training after the
// current step with a checkpoint and exits 1 with one line saying how to
// resume; meanwhile a second run on the same folder is refused, naming the
// first; running the same command again finishes the run.
func TestTrainInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in a child process; skipped with -short")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "train.json")
	os.WriteFile(cfg, []byte(`{"model": {"n_layers": 1, "d_model": 8, "d_head": 4, "n_heads": 2, "n_ctx": 9, "d_vocab": 12, "attn_only": true},
		"train": {"steps": 3000, "batch": 2, "eval_every": 0, "eval_batches": 1, "log_every": 1, "checkpoint_every": 0},
		"data": {"kind": "repeated_tokens"}}`), 0o644)
	out := filepath.Join(dir, "run")
	args := []string{"train", "--config", cfg, "--out", out, "--device", "cpu"}

	first := exec.Command(os.Args[0], args...)
	first.Env = append(os.Environ(), asCLI+"=1")
	var stderr bytes.Buffer
	first.Stderr = &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	// Wait for training to be under way: metrics.jsonl has a step.
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
		if bytes.Contains(b, []byte(`"kind":"train"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no training step within a minute; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	_, second, err := runCLI(t, faultTimeout, args...)
	checkFailure(t, args, second, err, fmt.Sprintf("locked by golens (pid %d)", first.Process.Pid))

	first.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case err = <-done:
	case <-time.After(faultTimeout):
		t.Fatal("training still running a minute after SIGTERM")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("after SIGTERM: %v, want exit status 1\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "golens: interrupted at step ") || !strings.Contains(last, "run the same command again to resume") {
		t.Errorf("after SIGTERM the last line is %q", last)
	}
	cks, _ := filepath.Glob(filepath.Join(out, "checkpoints", "step-*"))
	if len(cks) != 1 {
		t.Fatalf("checkpoints after SIGTERM: %q, want one", cks)
	}

	stdout, _, err := runCLI(t, 5*time.Minute, args...)
	if err != nil || !strings.Contains(stdout, "trained 3000 steps") {
		t.Errorf("resuming: %v\n%s", err, stdout)
	}
}

// A report folder golens wrote is golens's to write again; a folder of
// other things takes --force, and keeps what was in it.
func TestReportFolderOwnership(t *testing.T) {
	dir := t.TempDir()
	for range 2 {
		if out, err := golens(t, "demo", "--out", dir, "--device", testDevice()); err != nil {
			t.Fatalf("demo into its own report folder: %v\n%s", err, out)
		}
	}
	// analyze too, on a model whose n_ctx of 32 fits 15 tokens per repeat,
	// not the default 20 (that failed when no --seq-len was given).
	model := tinyGPT2(t)
	for range 2 {
		if out, err := golens(t, "analyze", "--model", model, "--prompt", "The cat sat", "--out", dir, "--device", testDevice()); err != nil {
			t.Fatalf("analyze into a report folder: %v\n%s", err, out)
		}
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644)
	if out, err := golens(t, "demo", "--out", other, "--force", "--device", testDevice()); err != nil {
		t.Fatalf("demo --force: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "notes.txt")); string(b) != "mine" {
		t.Error("demo --force touched a file not its own")
	}
	if _, err := os.Stat(filepath.Join(other, "index.html")); err != nil {
		t.Errorf("demo --force wrote no report: %v", err)
	}
}
