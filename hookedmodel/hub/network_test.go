package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cacheFiles lists the files under cache as slash paths, lock files aside
// (they stay, as Python's do).
func cacheFiles(t *testing.T, cache string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(cache, p)
		if rel = filepath.ToSlash(rel); !strings.HasPrefix(rel, ".locks/") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// resolveOrHang resolves the fake's repository under a deadline, so that a
// client that hangs fails the test instead of stopping it.
func resolveOrHang(t *testing.T, f *fakeHub, want []Want, opts ...Option) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	dir, err := Resolve(ctx, f.repo, want, opts...)
	if took := time.Since(start); ctx.Err() != nil || took > 2*time.Second {
		t.Fatalf("Resolve hung: %v after %s", err, took)
	}
	return dir, err
}

// silent holds a request open without answering until the client goes.
func silent(r *http.Request) bool {
	<-r.Context().Done()
	return true
}

// trickle answers with weights' length and then sends a byte every 5 ms
// until the client goes.
func trickle(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("Content-Length", strconv.Itoa(len(weights)))
	for _, b := range weights {
		if _, err := w.Write([]byte{b}); err != nil {
			return true
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return true
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

func TestResolveTimeouts(t *testing.T) {
	isHead := func(r *http.Request, cdn bool) bool { return !cdn && r.Method == http.MethodHead }
	isGet := func(r *http.Request, cdn bool) bool { return cdn && r.Method == http.MethodGet }
	tests := []struct {
		name     string
		which    func(r *http.Request, cdn bool) bool // the requests at fault
		times    int                                  // how many of them; 0 for all
		answer   func(w http.ResponseWriter, r *http.Request) bool
		contains []string // in the error; none for success
	}{
		{name: "silent hub, once", which: isHead, times: 1, answer: func(_ http.ResponseWriter, r *http.Request) bool { return silent(r) }},
		{name: "silent hub", which: isHead, answer: func(_ http.ResponseWriter, r *http.Request) bool { return silent(r) },
			contains: []string{`"config.json" is not cached`, "gave up after 3 attempts", "/openai/gpt2/resolve/main/config.json", "nothing received for 100ms (HF_HUB_ETAG_TIMEOUT"}},
		{name: "silent CDN, once", which: isGet, times: 1, answer: func(_ http.ResponseWriter, r *http.Request) bool { return silent(r) }},
		{name: "trickle, once", which: isGet, times: 1, answer: trickle},
		{name: "trickle", which: isGet, answer: trickle,
			contains: []string{`download "model.safetensors"`, "gave up after 3 attempts", "/blobs/" + sha256Hex(weights), "nothing received for 100ms (HF_HUB_DOWNLOAD_TIMEOUT", "kept for resuming"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
			var n atomic.Int32
			f.fault = func(w http.ResponseWriter, r *http.Request, cdn bool) bool {
				if !tt.which(r, cdn) || tt.times > 0 && int(n.Add(1)) > tt.times {
					return false
				}
				return tt.answer(w, r)
			}
			cache := t.TempDir()
			dir, err := resolveOrHang(t, f, modelWant, f.opts(cache, WithTimeouts(100*time.Millisecond, 100*time.Millisecond))...)
			if tt.contains == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := readFile(t, filepath.Join(dir, "model.safetensors")); string(got) != string(weights) {
					t.Error("model.safetensors differs from the hub's")
				}
				// What the trickle sent was kept, and the next try asked for the rest.
				if tt.name == "trickle, once" {
					if last := f.ranges[len(f.ranges)-1]; !strings.HasPrefix(last, "bytes=") || last == "bytes=0-" {
						t.Errorf("Range headers %q: the retry did not resume", f.ranges)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestResolveRetries(t *testing.T) {
	const backoff = time.Second // no test waits it: the waits are recorded
	status := func(code int, retryAfter string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, http.StatusText(code), code)
		}
	}
	tests := []struct {
		name     string
		cdn      bool // the fault is on the CDN's GETs, else the hub's HEADs
		times    int  // how many requests fail; 0 for all
		answer   func(w http.ResponseWriter)
		waits    []time.Duration // the nominal waits between tries
		exact    bool            // the waits are as given; else each within its upper half, for jitter
		contains []string        // in the error; none for success
	}{
		{name: "503 twice, then the file", times: 2, answer: status(503, ""), waits: []time.Duration{backoff, 2 * backoff}},
		{name: "500 from the CDN, then the file", cdn: true, times: 1, answer: status(500, ""), waits: []time.Duration{backoff}},
		{name: "429 with Retry-After", times: 1, answer: status(429, "7"), waits: []time.Duration{7 * time.Second}, exact: true},
		{name: "429 with Retry-After over the cap", answer: status(429, "3600"), exact: true,
			contains: []string{"retry after 1h0m0s (Retry-After), more than the 1m0s", "429 Too Many Requests", "/openai/gpt2/resolve/main/config.json"}},
		{name: "503 always", answer: status(503, ""), waits: []time.Duration{backoff, 2 * backoff},
			contains: []string{"gave up after 3 attempts", "HEAD http://127.0.0.1:", "/openai/gpt2/resolve/main/config.json: 503 Service Unavailable"}},
		{name: "403 from the CDN is no transient failure", cdn: true, answer: status(403, ""), exact: true,
			contains: []string{`download "model.safetensors"`, "403 Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
			var n atomic.Int32
			f.fault = func(w http.ResponseWriter, r *http.Request, cdn bool) bool {
				if cdn != tt.cdn || !cdn && (r.Method != http.MethodHead || !strings.HasSuffix(r.URL.Path, "/config.json")) ||
					tt.times > 0 && int(n.Add(1)) > tt.times {
					return false
				}
				tt.answer(w)
				return true
			}
			var waits []time.Duration
			record := func(c *config) {
				c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			}
			cache := t.TempDir()
			_, err := resolveOrHang(t, f, modelWant, f.opts(cache, WithRetries(testAttempts, backoff), record)...)
			if tt.contains == nil && err != nil {
				t.Fatal(err)
			}
			if tt.contains != nil && err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to contain %q", err, s)
				}
			}
			if len(waits) != len(tt.waits) {
				t.Fatalf("waits %v, want %d", waits, len(tt.waits))
			}
			for i, d := range waits {
				if lo := tt.waits[i] / 2; d > tt.waits[i] || d < lo || tt.exact && d != tt.waits[i] {
					t.Errorf("wait %d = %s, want %s less a jitter of up to half", i, d, tt.waits[i])
				}
			}
		})
	}
}

func TestResolveCancelDuringBackoff(t *testing.T) {
	f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
	failed := make(chan struct{})
	var once sync.Once
	f.fault = func(w http.ResponseWriter, r *http.Request, cdn bool) bool {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		once.Do(func() { close(failed) })
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	go func() {
		<-failed
		cancelled <- time.Now()
		cancel()
	}()
	_, err := Resolve(ctx, "openai/gpt2", modelWant, f.opts(t.TempDir(), WithRetries(5, time.Hour))...)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(<-cancelled); took > time.Second {
		t.Errorf("Resolve returned %s after the cancellation", took)
	}
	if log := f.log(); len(log) != 1 {
		t.Errorf("requests %q, want the one before the back-off", log)
	}
}

func TestTimeoutsFromEnvironment(t *testing.T) {
	const def = 10 * time.Second
	tests := []struct {
		name       string
		etag, dl   string // HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT
		opts       []Option
		meta, idle time.Duration
		err        string
	}{
		{name: "unset", meta: def, idle: def},
		{name: "both set", etag: "3", dl: "60", meta: 3 * time.Second, idle: time.Minute},
		{name: "0 as unset, as in Python", etag: "0", dl: " 7 ", meta: def, idle: 7 * time.Second},
		{name: "options before the environment", etag: "abc", dl: "-1", opts: []Option{WithTimeouts(2*time.Second, 3*time.Second)},
			meta: 2 * time.Second, idle: 3 * time.Second},
		{name: "an option for one", etag: "4", dl: "5", opts: []Option{WithTimeouts(0, time.Second)}, meta: 4 * time.Second, idle: time.Second},
		{name: "not a number", etag: "abc", err: `bad HF_HUB_ETAG_TIMEOUT="abc": want a whole number of seconds`},
		{name: "negative", dl: "-5", err: `bad HF_HUB_DOWNLOAD_TIMEOUT="-5"`},
		{name: "fraction", dl: "1.5", err: `bad HF_HUB_DOWNLOAD_TIMEOUT="1.5"`},
		{name: "too large", etag: "99999999999", err: `bad HF_HUB_ETAG_TIMEOUT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HF_ENDPOINT", "")
			t.Setenv("HF_HUB_ETAG_TIMEOUT", tt.etag)
			t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", tt.dl)
			r := &resolver{cfg: newConfig(tt.opts)}
			err := r.online()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.cfg.metaTimeout != tt.meta || r.cfg.idleTimeout != tt.idle {
				t.Errorf("timeouts %s, %s; want %s, %s", r.cfg.metaTimeout, r.cfg.idleTimeout, tt.meta, tt.idle)
			}
		})
	}

	// Resolve reports a bad value before it asks the hub anything.
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "ten")
	f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
	_, err := Resolve(context.Background(), "openai/gpt2", modelWant,
		WithEndpoint(f.hub.URL), WithCacheDir(t.TempDir()), WithProgress(nil), WithOffline(false))
	if err == nil || !strings.Contains(err.Error(), "HF_HUB_DOWNLOAD_TIMEOUT") {
		t.Errorf("err = %v, want it to name HF_HUB_DOWNLOAD_TIMEOUT", err)
	}
	if log := f.log(); len(log) > 0 {
		t.Errorf("requests despite a bad setting: %v", log)
	}
}

func TestResolveOversize(t *testing.T) {
	var sent atomic.Int64 // bytes the endless stream got out
	endless := func(w http.ResponseWriter) {
		data, junk := weights, make([]byte, 32<<10)
		for sent.Load() < 64<<20 {
			n, err := w.Write(data)
			sent.Add(int64(n))
			if err != nil {
				return
			}
			data = junk
		}
	}
	longer := func(data []byte) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)+1000))
			w.Write(data)
			w.Write(make([]byte, 1000))
		}
	}
	tests := []struct {
		name     string
		file     string
		cdn      bool // the CDN sends it, else the hub
		answer   func(w http.ResponseWriter)
		contains []string
	}{
		{name: "an LFS file streamed past its size", file: "model.safetensors", cdn: true, answer: endless,
			contains: []string{fmt.Sprintf("more than the %d bytes announced (stopped at %d)", len(weights), len(weights)+1)}},
		{name: "an LFS download longer than announced", file: "model.safetensors", cdn: true, answer: longer(weights),
			contains: []string{fmt.Sprintf("the download is %d bytes, the hub announced %d", len(weights)+1000, len(weights))}},
		{name: "a git file longer than its HEAD said", file: "config.json", answer: longer(configJSON),
			contains: []string{fmt.Sprintf("the download is %d bytes, the hub announced %d", len(configJSON)+1000, len(configJSON))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent.Store(0)
			f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
			f.fault = func(w http.ResponseWriter, r *http.Request, cdn bool) bool {
				if cdn != tt.cdn || r.Method != http.MethodGet {
					return false
				}
				tt.answer(w)
				return true
			}
			cache := t.TempDir()
			_, err := resolveOrHang(t, f, []Want{{tt.file}}, f.opts(cache)...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range append(tt.contains, `download "`+tt.file+`"`) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to contain %q", err, s)
				}
			}
			if left := cacheFiles(t, cache); len(left) > 0 {
				t.Errorf("a failed download left %q in the cache", left)
			}
			// Socket buffers take a few MB before the server sees the
			// client gone; a client that reads on takes all 64 MB.
			if n := sent.Load(); n > 32<<20 {
				t.Errorf("the client read on: the server got %d bytes out", n)
			}
		})
	}
}

func TestResolveDamagedCache(t *testing.T) {
	for _, offline := range []bool{true, false} {
		t.Run("offline="+strconv.FormatBool(offline), func(t *testing.T) {
			f := newFakeHub(t, "openai/gpt2", commitA, gpt2Files())
			cache := t.TempDir()
			writePythonCache(t, cache, "openai/gpt2", commitA, gpt2Files(), false)
			blob := filepath.Join(cache, "models--openai--gpt2", "blobs", gitSHA1(configJSON))
			if err := os.WriteFile(blob, configJSON[:10], 0o644); err != nil { // truncated after the download
				t.Fatal(err)
			}
			_, err := Resolve(context.Background(), "openai/gpt2", modelWant, f.opts(cache, WithOffline(offline))...)
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
			for _, s := range []string{`cached "config.json"`, "want git blob sha1 " + gitSHA1(configJSON), blob, "delete it"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to contain %q", err, s)
				}
			}
			if log := f.log(); len(log) > 0 {
				t.Errorf("requests: %v", log)
			}

			// As the message says: without the blob, it is downloaded again.
			if err := os.Remove(blob); err != nil {
				t.Fatal(err)
			}
			dir, err := Resolve(context.Background(), "openai/gpt2", modelWant, f.opts(cache)...)
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(dir, "config.json")); string(got) != string(configJSON) {
				t.Errorf("config.json = %q after the new download", got)
			}
		})
	}
}
