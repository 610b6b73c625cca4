package hub

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	commitA = "11e8a5c7e3b7ee1cc2fb1d3b7ca5d0f8cd1a7e01"
	commitB = "22f9b6d8f4c8ff2dd3ac2e4c8db6e1a9de2b8f02"
)

var (
	configJSON = []byte(`{"model_type": "gpt2", "n_layer": 2}`)
	weights    = randomBytes(64 << 10)
	modelWant  = []Want{{"config.json"}, {"model.safetensors", "pytorch_model.bin"}}
)

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// gpt2Files is a small repository with one git file, one LFS file and one
// file in a folder.
func gpt2Files() map[string]fakeFile {
	return map[string]fakeFile{
		"config.json":       {data: configJSON},
		"model.safetensors": {data: weights, lfs: true},
		"onnx/decoder.onnx": {data: []byte("onnx"), lfs: true},
	}
}

// testAttempts is how often the tests try a request.
const testAttempts = 3

// opts points Resolve at the fake hub and a fresh cache, quietly and
// independent of the HF_* variables of whoever runs the tests, with short
// waits between tries and timeouts that only a hang meets.
func (f *fakeHub) opts(cache string, more ...Option) []Option {
	return append([]Option{WithEndpoint(f.hub.URL), WithCacheDir(cache), WithProgress(nil), WithToken(""), WithOffline(false),
		WithTimeouts(5*time.Second, 5*time.Second), WithRetries(testAttempts, time.Millisecond)}, more...)
}

// writePythonCache lays out a repository's cache as huggingface_hub does:
// blobs named by etag, refs/main holding the commit with no newline, and
// snapshot entries that are relative symlinks, or copies where plain is set
// (Python's fallback without symlinks).
func writePythonCache(t *testing.T, cache, repo, commit string, files map[string]fakeFile, plain bool) {
	t.Helper()
	root := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "refs", "main"), []byte(commit))
	for name, file := range files {
		blob := filepath.Join(root, "blobs", file.etag())
		pointer := filepath.Join(root, "snapshots", commit, filepath.FromSlash(name))
		if plain {
			write(pointer, file.data)
			continue
		}
		write(blob, file.data)
		rel, _ := filepath.Rel(filepath.Dir(pointer), blob)
		if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(rel, pointer); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResolveCacheHit(t *testing.T) {
	binOnly := map[string]fakeFile{"config.json": {data: configJSON}, "pytorch_model.bin": {data: weights, lfs: true}}
	tests := []struct {
		name     string
		cached   map[string]fakeFile
		plain    bool
		revision string
		env      string // HF_HUB_OFFLINE
	}{
		{name: "python symlinks", cached: gpt2Files()},
		{name: "python plain files", cached: gpt2Files(), plain: true},
		{name: "second alternative", cached: binOnly},
		{name: "commit as revision", cached: gpt2Files(), revision: commitA},
		{name: "offline", cached: gpt2Files(), env: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HF_HUB_OFFLINE", tt.env)
			f := newFakeHub(t, "openai/gpt2", commitB, gpt2Files())
			cache := t.TempDir()
			writePythonCache(t, cache, "openai/gpt2", commitA, tt.cached, tt.plain)
			opts := []Option{WithEndpoint(f.hub.URL), WithCacheDir(cache), WithProgress(nil)}
			if tt.revision != "" {
				opts = append(opts, WithRevision(tt.revision))
			}

			dir, err := Resolve(context.Background(), "openai/gpt2", modelWant, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(cache, "models--openai--gpt2", "snapshots", commitA); dir != want {
				t.Errorf("dir = %s, want %s", dir, want)
			}
			if got := readFile(t, filepath.Join(dir, "config.json")); !bytes.Equal(got, configJSON) {
				t.Errorf("config.json = %q, want %q", got, configJSON)
			}
			if log := f.log(); len(log) > 0 {
				t.Errorf("a cache hit sent requests: %v", log)
			}
		})
	}
}

func TestResolveDownloadWritesPythonLayout(t *testing.T) {
	f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
	f.token = "hf_secret"
	cache := t.TempDir()
	var progress bytes.Buffer
	want := append(slices.Clone(modelWant), Want{"onnx/decoder.onnx"})

	dir, err := Resolve(context.Background(), "openai/gpt2", want, f.opts(cache, WithToken("hf_secret"), WithProgress(&progress))...)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "models--openai--gpt2")
	if dir != filepath.Join(root, "snapshots", commitA) {
		t.Errorf("dir = %s, want the snapshot of %s", dir, commitA)
	}
	if ref := string(readFile(t, filepath.Join(root, "refs", "main"))); ref != commitA {
		t.Errorf("refs/main = %q, want %q", ref, commitA)
	}
	for name, file := range gpt2Files() {
		pointer := filepath.Join(dir, filepath.FromSlash(name))
		target, err := os.Readlink(pointer)
		if err != nil {
			t.Errorf("%s: %v (want a symlink)", name, err)
			continue
		}
		wantTarget := strings.Repeat("../", 2+strings.Count(name, "/")) + "blobs/" + file.etag()
		if target != filepath.FromSlash(wantTarget) {
			t.Errorf("%s -> %s, want %s", name, target, wantTarget)
		}
		if got := readFile(t, pointer); !bytes.Equal(got, file.data) {
			t.Errorf("%s: content differs from the hub's", name)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(root, "blobs", "*.incomplete")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if !strings.Contains(progress.String(), "model.safetensors 100%") || !strings.Contains(progress.String(), "66 kB") {
		t.Errorf("progress output lacks the file name, its end or its size: %q", progress.String())
	}

	// What we wrote is a cache hit the next time.
	before := len(f.log())
	if _, err := Resolve(context.Background(), "openai/gpt2", want, f.opts(cache)...); err != nil {
		t.Fatal(err)
	}
	if after := f.log(); len(after) != before {
		t.Errorf("second Resolve sent requests: %v", after[before:])
	}
}

// The token comes from HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the
// token file under HF_HOME, as huggingface_hub's get_token finds it, and
// goes to the hub as a bearer token.
func TestTokenFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		tokenFile string
	}{
		{name: "HF_TOKEN", env: map[string]string{"HF_TOKEN": "hf_secret", "HUGGING_FACE_HUB_TOKEN": "hf_old"}, tokenFile: "hf_file"},
		{name: "HUGGING_FACE_HUB_TOKEN", env: map[string]string{"HUGGING_FACE_HUB_TOKEN": "hf_secret"}, tokenFile: "hf_file"},
		{name: "token file", tokenFile: "hf_secret\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			home := t.TempDir()
			t.Setenv("HF_HOME", home)
			if err := os.WriteFile(filepath.Join(home, "token"), []byte(tc.tokenFile), 0o600); err != nil {
				t.Fatal(err)
			}
			f := newFakeHub(t, "meta/gated", commitA, gpt2Files())
			f.token = "hf_secret"
			opts := []Option{WithEndpoint(f.hub.URL), WithCacheDir(t.TempDir()), WithProgress(nil), WithOffline(false)}
			if _, err := Resolve(context.Background(), "meta/gated", modelWant, opts...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTokenStaysOnHub(t *testing.T) {
	f := newFakeHub(t, "meta/gated", commitA, gpt2Files())
	f.token = "hf_secret"
	if _, err := Resolve(context.Background(), "meta/gated", modelWant, f.opts(t.TempDir(), WithToken("hf_secret"))...); err != nil {
		t.Fatal(err)
	}
	for _, a := range f.hubAuth {
		if a != "Bearer hf_secret" {
			t.Errorf("hub saw Authorization %q, want the token", a)
		}
	}
	if len(f.cdnAuth) == 0 {
		t.Fatal("the CDN was never asked: the LFS file did not go through the redirect")
	}
	for _, a := range f.cdnAuth {
		if a != "" {
			t.Errorf("the CDN, on another port, saw Authorization %q", a)
		}
	}
}

func TestResolveFollowsRename(t *testing.T) {
	// huggingface.co answers for a renamed repository ("gpt2", now
	// "openai-community/gpt2") with a redirect on its own host.
	f := newFakeHub(t, "openai-community/gpt2", commitA, gpt2Files())
	f.token = "hf_secret"
	f.oldName = "gpt2"
	cache := t.TempDir()
	dir, err := Resolve(context.Background(), "gpt2", modelWant, f.opts(cache, WithToken("hf_secret"))...)
	if err != nil {
		t.Fatal(err)
	}
	// Python keeps the name it was asked for.
	if want := filepath.Join(cache, "models--gpt2", "snapshots", commitA); dir != want {
		t.Errorf("dir = %s, want %s", dir, want)
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "model.safetensors")), weights) {
		t.Error("model.safetensors differs from the hub's")
	}
}

func TestResolvePicksAlternativeOnline(t *testing.T) {
	f := newFakeHub(t, "old/model", commitA, map[string]fakeFile{
		"config.json":       {data: configJSON},
		"pytorch_model.bin": {data: weights, lfs: true},
	})
	dir, err := Resolve(context.Background(), "old/model", modelWant, f.opts(t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "pytorch_model.bin")), weights) {
		t.Error("pytorch_model.bin differs from the hub's")
	}
	if _, err := os.Lstat(filepath.Join(dir, "model.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("model.safetensors: %v, want not there", err)
	}
}

func TestResolveRevisionMoved(t *testing.T) {
	// The cache has main at A with only config.json; the hub's main is now B.
	cache := t.TempDir()
	writePythonCache(t, cache, "openai/gpt2", commitA, map[string]fakeFile{"config.json": {data: []byte("old")}}, false)
	f := newFakeHub(t, "openai/gpt2", commitB, gpt2Files())

	dir, err := Resolve(context.Background(), "openai/gpt2", modelWant, f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "models--openai--gpt2")
	if dir != filepath.Join(root, "snapshots", commitB) {
		t.Fatalf("dir = %s, want the snapshot of %s", dir, commitB)
	}
	if got := readFile(t, filepath.Join(dir, "config.json")); !bytes.Equal(got, configJSON) {
		t.Errorf("config.json = %q, want B's", got)
	}
	if ref := string(readFile(t, filepath.Join(root, "refs", "main"))); ref != commitB {
		t.Errorf("refs/main = %q, want %q", ref, commitB)
	}
	if got := readFile(t, filepath.Join(root, "snapshots", commitA, "config.json")); string(got) != "old" {
		t.Errorf("snapshot A changed: %q", got)
	}
	// The files after the first were asked for by commit, not by "main".
	for _, req := range f.log()[1:] {
		if strings.Contains(req, "/resolve/main/") {
			t.Errorf("request not pinned to the commit: %s", req)
		}
	}
}

func TestResolveResumes(t *testing.T) {
	quarter := len(weights) / 4
	tests := []struct {
		name        string
		cuts        int
		ignoreRange bool
		calls       int      // Resolve calls until success
		ranges      []string // Range headers the CDN saw
	}{
		{name: "within one call", cuts: 1, calls: 1, ranges: []string{"", "bytes=16384-"}},
		{name: "in the next call", cuts: testAttempts, calls: 2,
			ranges: []string{"", "bytes=16384-", "bytes=32768-", "bytes=49152-"}},
		{name: "server ignores Range", cuts: 1, ignoreRange: true, calls: 1, ranges: []string{"", "bytes=16384-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
			f.cuts, f.ignoreRange = tt.cuts, tt.ignoreRange
			cache := t.TempDir()
			var err error
			for call := 1; call <= tt.calls; call++ {
				_, err = Resolve(context.Background(), "openai/gpt2", modelWant, f.opts(cache)...)
				if call < tt.calls {
					for _, s := range []string{"connection broken", "gave up after 3 attempts", f.cdn.URL + "/blobs/", "kept for resuming"} {
						if err == nil || !strings.Contains(err.Error(), s) {
							t.Fatalf("call %d: err = %v, want a broken connection, with %q", call, err, s)
						}
					}
					part := filepath.Join(cache, "models--openai--gpt2", "blobs", sha256Hex(weights)+".incomplete")
					if fi, statErr := os.Stat(part); statErr != nil || fi.Size() != int64(tt.cuts*quarter) {
						t.Fatalf("after call %d: .incomplete %v, want %d bytes kept", call, statErr, tt.cuts*quarter)
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.ranges, tt.ranges) {
				t.Errorf("Range headers = %q, want %q", f.ranges, tt.ranges)
			}
			got := readFile(t, filepath.Join(cache, "models--openai--gpt2", "snapshots", commitA, "model.safetensors"))
			if !bytes.Equal(got, weights) {
				t.Error("resumed file differs from the hub's")
			}
		})
	}
}

func TestResolveChecksumMismatch(t *testing.T) {
	tests := []struct {
		file, kind string
		etag       string
	}{
		{file: "config.json", kind: "git blob sha1", etag: gitSHA1(configJSON)}, // the hub's ETag of a git file
		{file: "model.safetensors", kind: "sha256", etag: sha256Hex(weights)},   // X-Linked-Etag of an LFS file
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
			f.corrupt = true
			cache := t.TempDir()
			_, err := Resolve(context.Background(), "openai/gpt2", []Want{{tt.file}}, f.opts(cache)...)
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
			for _, s := range []string{`"` + tt.file + `"`, "want " + tt.kind + " " + tt.etag, "got "} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to name the file, the expected and the received checksum (%q)", err, s)
				}
			}
			if left := cacheFiles(t, cache); len(left) > 0 {
				t.Errorf("a failed download left %q in the cache", left)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name     string
		repo     string
		want     []Want
		token    string // the hub requires "hf_secret" when set
		sent     string
		revision string
		is       error
		contains []string
	}{
		{name: "missing file", repo: "openai/gpt2", want: []Want{{"nope.bin"}},
			is: ErrNotFound, contains: []string{`"nope.bin"`, "openai/gpt2", `revision "main"`}},
		{name: "no alternative", repo: "openai/gpt2", want: []Want{{"a.bin", "b.bin"}},
			is: ErrNotFound, contains: []string{`"a.bin" or "b.bin"`}},
		{name: "missing repository", repo: "openai/gpt3", want: modelWant,
			is: ErrNotFound, contains: []string{"repository openai/gpt3", "HF_TOKEN"}},
		{name: "missing revision", repo: "openai/gpt2", want: modelWant, revision: "v9",
			is: ErrNotFound, contains: []string{`revision "v9"`}},
		{name: "gated without token", repo: "openai/gpt2", want: modelWant, token: "hf_secret",
			is: ErrAccess, contains: []string{"repository openai/gpt2 is gated", "401", "accept its terms at http://", "/openai/gpt2", "set HF_TOKEN", "huggingface-cli login", "restricted"}},
		{name: "gated with a wrong token", repo: "openai/gpt2", want: modelWant, token: "hf_secret", sent: "hf_wrong",
			is: ErrAccess, contains: []string{"is gated", "403", "no access", "from hub.WithToken", "accept its terms"}},
		{name: "bad repository", repo: "a/b/c", want: modelWant, contains: []string{"bad repository name"}},
		{name: "file outside the repository", repo: "openai/gpt2", want: []Want{{"../../etc/passwd"}},
			contains: []string{"bad file name"}},
		{name: "empty want", repo: "openai/gpt2", want: []Want{{}}, contains: []string{"empty Want"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
			f.token = tt.token
			opts := f.opts(t.TempDir(), WithToken(tt.sent))
			if tt.revision != "" {
				opts = append(opts, WithRevision(tt.revision))
			}
			_, err := Resolve(context.Background(), tt.repo, tt.want, opts...)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.sent != "" && strings.Contains(err.Error(), tt.sent) {
				t.Errorf("err = %q shows the token", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.is)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestResolveBadEndpoint(t *testing.T) {
	notAHub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>hello</html>")
	}))
	defer notAHub.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	tests := []struct {
		name, endpoint, contains string
	}{
		{"not a hub", notAHub.URL, "Hugging Face hub?"},
		{"unreachable", gone.URL, `gave up after 2 attempts: "config.json" is not cached and the hub is out of reach: Head "` + gone.URL + "/gpt2/resolve/main/config.json"},
		{"not a URL", "huggingface.co", "bad hub endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(context.Background(), "gpt2", modelWant,
				WithEndpoint(tt.endpoint), WithCacheDir(t.TempDir()), WithProgress(nil), WithOffline(false), WithRetries(2, time.Millisecond))
			if err == nil || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.contains)
			}
		})
	}
}

func TestResolveOffline(t *testing.T) {
	tests := []struct {
		name     string
		cached   map[string]fakeFile
		contains []string
	}{
		{name: "nothing cached", contains: []string{`"config.json"`, `no ref "main"`}},
		{name: "weights missing", cached: map[string]fakeFile{"config.json": {data: configJSON}},
			contains: []string{`"model.safetensors" or "pytorch_model.bin"`, filepath.Join("snapshots", commitA)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HF_HUB_OFFLINE", "1")
			f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
			cache := t.TempDir()
			if tt.cached != nil {
				writePythonCache(t, cache, "openai/gpt2", commitA, tt.cached, false)
			}
			_, err := Resolve(context.Background(), "openai/gpt2", modelWant,
				WithEndpoint(f.hub.URL), WithCacheDir(cache), WithProgress(nil))
			if !errors.Is(err, ErrOffline) {
				t.Fatalf("err = %v, want ErrOffline", err)
			}
			for _, s := range append(tt.contains, "HF_HUB_OFFLINE", filepath.Join(cache, "models--openai--gpt2")) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to contain %q", err, s)
				}
			}
			if log := f.log(); len(log) > 0 {
				t.Errorf("offline mode sent requests: %v", log)
			}
		})
	}
}

func TestResolveConcurrent(t *testing.T) {
	f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
	cache := t.TempDir()
	const n = 4
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			dirs[i], errs[i] = Resolve(context.Background(), "openai/gpt2", modelWant, f.opts(cache)...)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if dirs[i] != dirs[0] {
			t.Errorf("goroutine %d: dir %s, want %s", i, dirs[i], dirs[0])
		}
	}
	if !bytes.Equal(readFile(t, filepath.Join(dirs[0], "model.safetensors")), weights) {
		t.Error("model.safetensors differs from the hub's")
	}
	if f.cdnGets != 1 {
		t.Errorf("the blob was downloaded %d times, want once", f.cdnGets)
	}
}

func TestResolveCancel(t *testing.T) {
	f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
	stalled := make(chan struct{})
	f.stall = stalled
	cache := t.TempDir()
	part := filepath.Join(cache, "models--openai--gpt2", "blobs", sha256Hex(weights)+".incomplete")

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stalled
		// Cancel once the quarter that was sent is on disk.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if fi, err := os.Stat(part); err == nil && fi.Size() == int64(len(weights)/4) {
				break
			}
		}
		cancel()
	}()
	_, err := Resolve(ctx, "openai/gpt2", modelWant, f.opts(cache)...)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if fi, err := os.Stat(part); err != nil || fi.Size() != int64(len(weights)/4) {
		t.Fatalf(".incomplete: %v, want %d bytes kept for resuming", err, len(weights)/4)
	}

	f.mu.Lock()
	f.stall = nil
	f.mu.Unlock()
	dir, err := Resolve(context.Background(), "openai/gpt2", modelWant, f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "model.safetensors")), weights) {
		t.Error("resumed file differs from the hub's")
	}
	if last := f.ranges[len(f.ranges)-1]; last != "bytes=16384-" {
		t.Errorf("resume sent Range %q, want bytes=16384-", last)
	}
}

func TestResolveWithoutSymlinks(t *testing.T) {
	symlink = func(string, string) error { return &os.LinkError{Op: "symlink", Err: errors.ErrUnsupported} }
	t.Cleanup(func() { symlink = os.Symlink })
	f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
	dir, err := Resolve(context.Background(), "openai/gpt2", modelWant, f.opts(t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"config.json": configJSON, "model.safetensors": weights} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v, want a plain file", name, err)
			continue
		}
		if !bytes.Equal(readFile(t, filepath.Join(dir, name)), data) {
			t.Errorf("%s differs from the hub's", name)
		}
	}
}

func TestDefaults(t *testing.T) {
	home, _ := os.UserHomeDir()
	tests := []struct {
		name      string
		env       map[string]string
		cache     string
		tokenFile string // written to $HF_HOME/token
		token     string
		endpoint  string
		offline   bool
	}{
		{name: "nothing set", cache: filepath.Join(home, ".cache", "huggingface", "hub"), endpoint: "https://huggingface.co"},
		{name: "XDG_CACHE_HOME", env: map[string]string{"XDG_CACHE_HOME": "/xdg"}, cache: "/xdg/huggingface/hub"},
		{name: "HF_HOME beats XDG", env: map[string]string{"XDG_CACHE_HOME": "/xdg", "HF_HOME": "/hf"}, cache: "/hf/hub"},
		{name: "legacy HUGGINGFACE_HUB_CACHE", env: map[string]string{"HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy"}, cache: "/legacy"},
		{name: "HF_HUB_CACHE first", env: map[string]string{"HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "/c"}, cache: "/c"},
		{name: "expansion", env: map[string]string{"HF_HUB_CACHE": "~/x/$SUB", "SUB": "y"}, cache: filepath.Join(home, "x", "y")},
		{name: "token file", tokenFile: "hf_file\n", token: "hf_file"},
		{name: "HF_TOKEN beats the file", env: map[string]string{"HF_TOKEN": "hf_env"}, tokenFile: "hf_file", token: "hf_env"},
		{name: "HF_ENDPOINT", env: map[string]string{"HF_ENDPOINT": "http://mirror.local/"}, endpoint: "http://mirror.local"},
		{name: "HF_HUB_OFFLINE", env: map[string]string{"HF_HUB_OFFLINE": "1"}, offline: true},
		{name: "TRANSFORMERS_OFFLINE", env: map[string]string{"TRANSFORMERS_OFFLINE": "yes"}, offline: true},
		{name: "offline off", env: map[string]string{"HF_HUB_OFFLINE": "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME",
				"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
				t.Setenv(k, "")
			}
			if tt.tokenFile != "" {
				hfHome := t.TempDir()
				t.Setenv("HF_HOME", hfHome)
				if err := os.WriteFile(filepath.Join(hfHome, "token"), []byte(tt.tokenFile), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := newConfig(nil)
			if c.token != "" && (c.tokenSrc == "" || strings.Contains(c.tokenSrc, c.token)) {
				t.Errorf("token source %q: want where the token came from, without the token", c.tokenSrc)
			}
			if tt.cache != "" && c.cacheDir != tt.cache {
				t.Errorf("cache = %s, want %s", c.cacheDir, tt.cache)
			}
			if c.token != tt.token {
				t.Errorf("token = %q, want %q", c.token, tt.token)
			}
			if tt.endpoint != "" && c.endpoint != tt.endpoint {
				t.Errorf("endpoint = %q, want %q", c.endpoint, tt.endpoint)
			}
			if c.offline != tt.offline {
				t.Errorf("offline = %v, want %v", c.offline, tt.offline)
			}
		})
	}
}
